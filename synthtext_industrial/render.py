"""Render one sample of a recipe: the conductor that runs the stages in order.

background -> camera tilt -> for each text block: text, font, typography, place (layout), typeset and draw
each character (typeset), mark (marking) -> post-effects (effects). Each stage lives in `stages/`; this
module only passes one stage's output to the next and gathers the ground truth (`core.groundtruth`) and the
records (the provenance). Each stage draws from its own generators of (seed, index, stage), one for the page
and one per text block (`core.streams.SampleStreams`), so a draw added to one stage changes no other stage's
draws.
"""
from __future__ import annotations

import cv2
import numpy as np

from .core import geometry as geo
from .core.groundtruth import Char, Field, Line, Sample
from .core.streams import SampleStreams, choose, choose_key, integer, uniform
from .recipe import Recipe
from .stages.backgrounds import sample_background
from .stages.context import draw_label, draw_page_context, label_outline, label_record, sample_label
from .stages.display import (draw_glare, draw_unlabelled, draw_window, drum_applies, drum_glyphs, ghost_glyphs,
                             hollow_glyphs, hollow_lines, plate_marks, sample_display, window_quads)
from .stages.dotmatrix import DotMatrixSource, sample_dot_style
from .stages.effects.pipeline import legible_effects
from .stages.fonts import FontFace, quantise_aspect
from .stages.layout import PlacementError, camera, overlaps, place_block, region_box
from .stages.legibility import CharInk, MarkedBlock, texture_sigma
from .stages.marking import MARK_PAD, RELIEF_KINDS, legible_mark, sample_marking
from .stages.surface import chord_quad, sample_surface, shade
from .stages.text import choose_block, fill_block
from .stages.typeset import TypesetLine, draw_char, extent, sample_segment_forms

PLACEMENT_REDRAWS = 20  # blocks drawn again when none fits a page (rare: a large block under a strong tilt)
BLOCK_STAGES = ("text", "fonts", "typeset", "layout", "display", "marking", "surface", "context")  # the stages that draw per text block

__all__ = ["PlacementError", "encode_image", "render_sample"]


def render_sample(recipe: Recipe, seed: int, index: int, keep_char_masks: bool = False,
                  measure_legibility: bool = False) -> Sample:
    """Render sample `index` of `recipe` under master `seed`; identical in any process.

    `keep_char_masks` also returns each character's own warped coverage (for tests
    and debugging) in `Sample.char_masks`. `measure_legibility` scores every character after the effects
    even when the recipe sets no floor (`audit` does; the page is the same).
    """
    streams = SampleStreams(seed, index)
    W, Hh = recipe.canvas.width, recipe.canvas.height
    background, bg_record = sample_background(recipe.background, streams.page("background"), W, Hh)
    G, tilt = camera(recipe.canvas, recipe.layout, streams.page("camera"))
    if tilt:
        background = cv2.warpPerspective(background, geo.to_cv(G), (W, Hh), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REFLECT_101)
    image = background
    plain = background  # the page without its labelled text (display windows and ghost segments are not text)
    mask = np.zeros((Hh, W), np.uint8)
    lines_out: list[Line] = []
    char_masks: list = []
    placed_boxes: list[np.ndarray] = []
    block_records = []
    marked_blocks: list[MarkedBlock] = []
    typo, lay = recipe.typography, recipe.layout
    page_layout = streams.page("layout")
    n_blocks = integer(page_layout, lay.blocks)
    empty_page = lay.empty_pages > 0 and page_layout.random() < lay.empty_pages  # no draw unless the recipe asks
    blocks_left, redraws, drawn_blocks = (0 if empty_page else n_blocks), 0, 0
    while blocks_left > 0:
        blocks_left -= 1
        rng = {stage: streams.block(stage, drawn_blocks) for stage in BLOCK_STAGES}
        drawn_blocks += 1
        template = choose_block(recipe.text, rng["text"])
        choices = recipe.font_choices(template)
        pick = choose(rng["fonts"], range(len(choices)), [c[1] for c in choices])
        font, avoid = choices[pick][0], recipe.font_avoid(template)[pick]
        generated = fill_block(recipe.text, template, rng["text"], index, avoid)  # after the font: its lookalikes
        dot_style = sample_dot_style(font, rng["fonts"]) if isinstance(font, DotMatrixSource) else None
        height = uniform(rng["typeset"], typo.height_px)
        gap_em = uniform(rng["typeset"], typo.char_gap)
        aspect = quantise_aspect(uniform(rng["typeset"], typo.aspect))
        stroke = integer(rng["typeset"], typo.stroke_px)
        spacing = uniform(rng["typeset"], typo.line_spacing)
        align = choose_key(rng["layout"], lay.alignment)
        angle = uniform(rng["layout"], lay.rotation)
        region, rbox = region_box(recipe.canvas, lay, rng["layout"])
        slant = uniform(rng["typeset"], typo.slant) if tuple(typo.slant) != (0.0, 0.0) else 0.0
        forms = sample_segment_forms(typo.segment_forms, font, rng["typeset"])
        display = sample_display(recipe.display, rng["display"])
        cylinder = sample_surface(recipe.surface, rng["surface"]) if display is None else None  # glass is flat
        label = sample_label(recipe.context, rng["context"])
        if not any(line.text.strip() for line in generated):
            continue

        placement, set_lines, height = place_block(generated, font, dot_style, height, aspect, gap_em, stroke,
                                                   spacing, align, angle, rbox, G, recipe.canvas, typo, lay,
                                                   placed_boxes, rng["layout"], rng["typeset"], slant, forms,
                                                   cylinder)
        if placement is None:
            if blocks_left == 0 and not placed_boxes:  # the page would be empty: draw another block instead
                if redraws == PLACEMENT_REDRAWS:
                    raise PlacementError(f"{recipe.source}: sample {index} (seed {seed}): no text block could be "
                                         f"placed in {redraws + 1} draws; the text is too large for the page at "
                                         f"typography.height_px min {typo.height_px[0]:g} px under this camera "
                                         f"tilt: lower height_px, layout.perspective or layout.margin_px, or "
                                         f"shorten the text")
                redraws += 1
                blocks_left += 1
            continue
        H, box, (px, py) = placement.H, placement.box, placement.position
        set_lines = hollow_lines(set_lines, font, display)  # outlined LCD segments, where drawn
        placed_boxes.append(box)
        H_inv = np.linalg.inv(H)
        curve = placement.bend
        page_of = {}  # per glyph on a cylinder: its own homography from the flat block frame to the page

        drawn = []  # (line, x0, y0, coverage, own box) per glyph
        for tl in set_lines:
            for g in tl.glyphs:
                if curve is None:
                    drawn.append((tl, g) + draw_char(g, H, H_inv, W, Hh))
                    continue
                h, w = g.glyph.bitmap.shape
                page_of[id(g)] = Hg = H @ curve.glyph_matrix(g.x, g.y, g.x + w, g.y + h)
                drawn.append((tl, g) + draw_char(g, Hg, np.linalg.inv(Hg), W, Hh))
        rx0 = max(min(d[2] for d in drawn) - MARK_PAD, 0)
        ry0 = max(min(d[3] for d in drawn) - MARK_PAD, 0)
        rx1 = min(max(d[2] + d[4].shape[1] for d in drawn) + MARK_PAD, W)
        ry1 = min(max(d[3] + d[4].shape[0] for d in drawn) + MARK_PAD, Hh)
        coverage = np.zeros((ry1 - ry0, rx1 - rx0), np.uint8)
        for _tl, _g, x0, y0, cov, _own in drawn:
            view = coverage[y0 - ry0:y0 - ry0 + cov.shape[0], x0 - rx0:x0 - rx0 + cov.shape[1]]
            np.maximum(view, cov, out=view)
        image = image.copy() if image is background else image
        if label is not None:
            label_drawn = lay_label(label, set_lines, height, H, placed_boxes, curve is not None or display is not None)
            if label_drawn is not None:
                plain = plain.copy() if plain is background else plain
                draw_label([image, plain], label_drawn[0], label)
        if curve is not None:  # the cylinder's light falls on the page and on the text-free page alike
            image, plain = shade([image, plain], curve, H)
        if display is not None:  # the window is part of the page the text is measured against
            plain = plain.copy() if plain is background else plain
            ghosts = ghost_glyphs(set_lines, font, height, aspect, stroke, gap_em * height, slant, display)
            if display.get("hollow"):
                ghosts = hollow_glyphs(ghosts, display["hollow"])
            marks = plate_marks(set_lines, height, aspect, gap_em * height, display)
            framed = set_lines + [TypesetLine(set_lines[0].source, ghosts + marks)] if ghosts or marks else set_lines
            if display.get("drum") and not drum_applies(display, set_lines, font):
                display["drum"] = None  # the record says what was drawn: no drums here
            frame = extent(framed)
            marks += drum_glyphs(set_lines, font, height, aspect, stroke, slant, display, frame) \
                if display.get("drum") else []
            glass, outer = window_quads(frame, height, display, H)
            display["window_quad"] = np.round(outer, 2).tolist()  # what a cropper framing the display cuts out
            for target in (image, plain):
                draw_window(target, glass, outer, display)
        surface = image[ry0:ry1, rx0:rx1]
        chars_ink = [CharInk(x0 - rx0, y0 - ry0, cov) for _tl, _g, x0, y0, cov, _own in drawn]
        marking, marked, _scores = legible_mark(surface, coverage, chars_ink,
                                                 sample_marking(recipe.marking, recipe.colour, rng["marking"]),
                                                 recipe.colour.min_legibility, height, rng["marking"])
        image[ry0:ry1, rx0:rx1] = marked
        if display is not None and (ghosts or marks):  # a page-sized mask only when there is something to draw
            lit = np.zeros((Hh, W), np.uint8)
            lit[ry0:ry1, rx0:rx1] = coverage
            draw_unlabelled(image, plain, ghosts, H, lit, marking, display["ghost"])
            draw_unlabelled(image, plain, marks, H, lit, marking, 1.0)
        if display is not None and display.get("glare"):  # light on the glass, over the text and what is not text
            for target in (image, plain):
                draw_glare(target, glass, display["glare"])
        marked_blocks.append(MarkedBlock((rx0, ry0, rx1, ry1), chars_ink, marking["kind"] in RELIEF_KINDS,
                                         texture_sigma(height)))
        np.maximum(mask[ry0:ry1, rx0:rx1], coverage, out=mask[ry0:ry1, rx0:rx1])

        first_line = len(lines_out)
        for tl in set_lines:
            mine = [d for d in drawn if d[0] is tl]
            if not mine:
                continue
            chars = [Char(tl.source.text[g.char_index],
                          geo.apply(page_of.get(id(g), H), geo.rect_quad(*own)).astype(np.float32))
                     for _tl, g, _x0, _y0, _cov, own in mine]
            owns = np.array([own for *_rest, own in mine])
            line_own = (owns[:, 0].min(), owns[:, 1].min(), owns[:, 2].max(), owns[:, 3].max())
            fields = [Field(name, start, end) for name, start, end in tl.source.fields]
            line_quad = (geo.apply(H, geo.rect_quad(*line_own)) if curve is None
                         else chord_quad(H @ curve.line_matrix(tl), [c.quad for c in chars]))
            lines_out.append(Line(tl.source.text, line_quad.astype(np.float32), chars, fields))
            if keep_char_masks:
                char_masks.append([(x0, y0, cov) for _tl, _g, x0, y0, cov, _own in mine])
        block_records.append({
            "template": template, "font": font.label if isinstance(font, FontFace) else f"bitmap:{font.bitmap}",
            "avoided": "".join(sorted(avoid)), "dot_style": dot_style, "height_px": height, "char_gap": gap_em, "aspect": aspect, "stroke_px": stroke,
            "line_spacing": spacing, "alignment": align, "rotation": angle, "region": region,
            "position": [px, py], "marking": marking, "lines": [first_line, len(lines_out)],
            **({"slant": slant} if slant else {}), **({"segment_forms": sorted(forms)} if forms else {}),
            **({"display": display} if display is not None else {}),
            **({"surface": curve.record()} if curve is not None else {}),
            **({"label": label_record(label, *label_drawn) if label_drawn else None} if label is not None else {}),
        })

    context_record = None
    if recipe.context.page_items():  # barcodes and other printed text, in the room the labelled lines leave
        image = image.copy() if image is background else image
        plain = plain.copy() if plain is background else plain
        context_record = draw_page_context(recipe.context, streams.page("context"), [image, plain],
                                           [line.quad for line in lines_out], G)
    image, effects_record, after_effects, draws = legible_effects(recipe.effects, image, plain, marked_blocks,
                                                                   streams.page("effects"),
                                                                   measure=measure_legibility)
    floor = recipe.effects.min_legibility
    for block, scores in zip(block_records, after_effects):
        block["legibility_after_effects"] = round(float(min(scores, default=np.inf)), 3) if scores else None
        block["char_legibility"] = [round(float(score), 2) if np.isfinite(score) else None for score in scores]
        below = [i for i, score in enumerate(scores) if score < floor]
        if floor > 0 and below:
            block["below_floor"] = below  # what no effects draw could fix: the label's characters to distrust
    records = {"background": bg_record, "camera_tilt": tilt, "blocks": block_records, "effects": effects_record,
               "effect_draws": draws}
    if lay.empty_pages > 0:
        records["empty_page"] = empty_page
    if redraws:
        records["placement_redraws"] = redraws
    if context_record is not None:
        records["context"] = context_record
    return Sample(image=np.ascontiguousarray(image), mask=mask, lines=lines_out, seed=int(seed), index=int(index),
                  records=records, char_masks=char_masks if keep_char_masks else None)


def lay_label(label, set_lines, height: float, H: np.ndarray, placed_boxes: list[np.ndarray],
              bent: bool) -> tuple[np.ndarray, float] | None:
    """The label's outline under the block just placed (the last of `placed_boxes`) and its margins' scale:
    margins are halved until the label clears the blocks placed before, whose text is already marked. None on
    a cylinder or a display (flat paper would not follow the bend; the window is the frame) or without room."""
    if bent:
        return None
    for scale in (1.0, 0.5, 0.25, 0.0):
        outline = label_outline(label, extent(set_lines), height, H, scale)
        box = np.array([*outline.min(axis=0) - 1, *outline.max(axis=0) + 6])  # the shadow reaches 6 px further
        if not overlaps(box, placed_boxes[:-1], 0):
            return outline, scale
    return None


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """Encode a page as the recipe's canvas.encoding says."""
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()
