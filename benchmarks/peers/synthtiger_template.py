"""A minimal SynthTIGER template for code-like line crops, built from the components in the `synthtiger` wheel.

The wheel ships no templates, configs or resources (they live in SynthTIGER's git repository), so this file
rebuilds the shape of its default "synthtiger" template with the same component kinds and the same ranges as its
horizontal config: per-character elastic distortion, flow/curve layout, gray colours from a colour map, photo
texture on text and background (p=0.5), text style (border/shadow/extrusion, p=0.25), a perspective/trapezoid/
skew/rotate transform, padding, blending with a random blend mode, and noise/blur/resample/median effects.
It also keeps the default's ground truth (text mask and per-character boxes).
With `visibility_check` (on in SynthTIGER's default config) a blend mode is kept only if the text stays visible:
flood fills from every text pixel may leak into at most 10% of the text's outline, else the next mode is tried,
and the sample is redrawn if none passes. Left out, which makes SynthTIGER a little faster than its default
(so the comparison is conservative): the 25% "midground" second text drawn behind the main one.
"""
import cv2
import numpy as np

from synthtiger import components, layers, templates, utils

BLEND_MODES = ["normal", "multiply", "screen", "overlay", "hard_light", "soft_light", "dodge", "divide",
               "addition", "difference", "darken_only", "lighten_only"]


def make_config(corpus_path, font_paths, colormap_path, texture_paths, visibility_check):
    """The horizontal-config ranges of SynthTIGER's default template, pointed at this repository's resources."""
    return {
        "visibility_check": visibility_check,
        "corpus": {"paths": [corpus_path], "weights": [1], "min_length": 1, "max_length": 25},
        "font": {"paths": font_paths, "weights": [1] * len(font_paths), "size": [40, 80], "bold": 0.5},
        "texture": {"prob": 0.5, "args": {"paths": texture_paths, "weights": [1] * len(texture_paths),
                                          "alpha": [0, 1], "grayscale": 0, "crop": 1}},
        "colormap2": {"paths": [colormap_path], "weights": [1], "k": 2, "alpha": [1, 1], "colorize": 1},
        "colormap3": {"paths": [colormap_path], "weights": [1], "k": 3, "alpha": [1, 1], "colorize": 1},
        "shape": {"prob": 1, "args": {"weights": [1, 1], "args": [{"alpha": [15, 30], "sigma": [4, 12]},
                                                                  {"alpha": [0, 2], "sigma": [0, 0.6]}]}},
        "layout": {"weights": [4, 1], "args": [{"space": [-2, 5], "line_align": ["middle"]},
                                               {"curve": [20, 40], "space": [-2, 5], "convex": 0.5, "upward": 0.5}]},
        "style": {"prob": 0.25, "args": {"weights": [1, 2, 2], "args": [
            {"size": [1, 12], "alpha": [1, 1], "grayscale": 0},
            {"distance": [1, 6], "angle": [0, 360], "alpha": [0.3, 0.7], "grayscale": 0},
            {"length": [1, 12], "angle": [0, 360], "alpha": [1, 1], "grayscale": 0}]}},
        "transform": {"prob": 1, "args": {"weights": [1, 1, 1, 1, 1, 1, 2], "args": [
            {"percents": [[0.5, 1], [1, 1]], "aligns": [[0, 0], [0, 0]]},
            {"percents": [[1, 1], [0.5, 1]], "aligns": [[0, 0], [0, 0]]},
            {"weights": [1, 0, 1, 0], "percent": [0.75, 1], "align": [-1, 1]},
            {"weights": [0, 1, 0, 1], "percent": [0.5, 1], "align": [-1, 1]},
            {"weights": [1, 0], "angle": [0, 30], "ccw": 0.5},
            {"weights": [0, 1], "angle": [0, 10], "ccw": 0.5},
            {"angle": [0, 10], "ccw": 0.5}]}},
        "pad": {"prob": 1, "args": {"pxs": [[0, 10], [0, 10], [0, 10], [0, 10]]}},
        "postprocess": {"args": [{"prob": 1, "args": {"scale": [4, 8], "per_channel": 0}},
                                 {"prob": 0.9, "args": {"sigma": [0, 2]}},
                                 {"prob": 0.1, "args": {"size": [0.4, 0.4]}},
                                 {"prob": 1, "args": {"k": [1, 1]}}]},
    }


class CodeLine(templates.Template):
    def __init__(self, config):
        c = config
        self.visibility_check = c["visibility_check"]
        self.corpus = components.BaseCorpus(**c["corpus"])
        self.font = components.BaseFont(**c["font"])
        self.texture = components.Switch(components.BaseTexture(), **c["texture"])
        self.colormap2 = components.GrayMap(**c["colormap2"])
        self.colormap3 = components.GrayMap(**c["colormap3"])
        self.shape = components.Switch(
            components.Selector([components.ElasticDistortion(), components.ElasticDistortion()]), **c["shape"])
        self.layout = components.Selector([components.FlowLayout(), components.CurveLayout()], **c["layout"])
        self.style = components.Switch(components.Selector(
            [components.TextBorder(), components.TextShadow(), components.TextExtrusion()]), **c["style"])
        self.transform = components.Switch(components.Selector(
            [components.Perspective(), components.Perspective(), components.Trapezoidate(),
             components.Trapezoidate(), components.Skew(), components.Skew(), components.Rotate()]),
            **c["transform"])
        self.paint = components.Gray()  # applies a colour sampled from a colour map
        self.fit = components.Fit()
        self.pad = components.Switch(components.Pad(), **c["pad"])
        self.postprocess = components.Iterator(
            [components.Switch(components.AdditiveGaussianNoise()), components.Switch(components.GaussianBlur()),
             components.Switch(components.Resample()), components.Switch(components.MedianBlur())],
            **c["postprocess"])

    def generate(self):
        style = self.style.sample()
        if style["state"]:  # a styled text needs a third colour for its border/shadow/extrusion
            text_color, background_color, style_color = self.colormap3.sample()
            style["meta"]["meta"]["rgb"] = style_color["rgb"]
        else:
            text_color, background_color = self.colormap2.sample()

        label = self.corpus.data(self.corpus.sample())
        chars = utils.split_text(label, reorder=True)
        font = self.font.sample({"text": "".join(chars), "vertical": False})
        char_layers = [layers.TextLayer(char, **font) for char in chars]
        self.shape.apply(char_layers)
        self.layout.apply(char_layers, {"meta": {"vertical": False}})
        text_layer = layers.Group(char_layers).merge()
        mask_layer = text_layer.copy()

        self.paint.apply([text_layer], text_color)
        self.texture.apply([text_layer])
        self.style.apply([text_layer], style)
        self.style.apply(char_layers, style)
        transform = self.transform.sample()
        for group in ([text_layer], [mask_layer], char_layers):
            self.transform.apply(group, transform)
        self.fit.apply([text_layer])
        self.fit.apply(char_layers)
        self.pad.apply([text_layer])
        for char_layer in char_layers:
            char_layer.topleft -= text_layer.topleft
        foreground = text_layer.output()
        mask = mask_layer.output(bbox=text_layer.bbox)
        boxes = [char_layer.bbox for char_layer in char_layers]

        background_layer = layers.RectLayer(foreground.shape[:2][::-1])
        self.paint.apply([background_layer], background_color)
        self.texture.apply([background_layer])
        image = self._blend(foreground, background_layer.output())

        image_layer, mask_layer = layers.Layer(image), layers.Layer(mask)
        self.postprocess.apply([image_layer, mask_layer])
        return {"image": image_layer.output(), "label": label, "mask": mask_layer.output(), "bboxes": boxes}

    def _blend(self, foreground, background):
        for mode in np.random.permutation(BLEND_MODES):
            image = utils.blend_image(foreground, background, mode=mode)
            if not self.visibility_check or text_is_visible(image, foreground[..., 3]):
                return image
        raise RuntimeError("text is not visible with any blend mode")  # synthtiger.generator redraws the sample

    def init_save(self, root):
        pass

    def save(self, root, data, idx):
        pass

    def end_save(self, root):
        pass


def text_is_visible(image, alpha):
    """True when flood fills (gray tolerance 16) started from every solid text pixel reach at most 10% of the ring
    of pixels just outside the text, i.e. the text does not melt into its background."""
    gray = utils.to_gray(image[..., :3]).astype(np.uint8)
    alpha = alpha.astype(np.uint8)
    inside = (alpha > 0).astype(np.uint8)
    grown = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    ring = grown & (1 - inside)
    reached = np.pad(1 - grown, 1, constant_values=1)  # floodFill's mask: nonzero cells are never filled
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY
    for y, x in np.argwhere(alpha > 127):
        cv2.floodFill(gray, reached, (int(x), int(y)), 1, 16, 16, flags)
    leaked = int(np.sum(reached[1:-1, 1:-1] & ring))
    outline = int(np.sum(ring))
    return outline > 0 and leaked <= outline * 0.1
