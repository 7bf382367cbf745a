"""FOTS-style end-to-end text spotter: one backbone, a detection head and a recognition head on shared features.

image [B, H, W, 1] -> backbone (strides 4/8/16/32) -> U-Net fusion to stride 4 ->
  detection head: text score (sigmoid) + distances to the box's top, left, bottom, right (EAST/FOTS RBOX
  without the angle: axis-aligned boxes, as in the published system)
  recognition head: `tf.image.crop_and_resize` of the fused features per box (ground-truth boxes while
  training, detections at inference) -> convolutions that pool the height to 1 -> BiLSTM -> CTC logits.

Sharing the features is the point of FOTS: recognition gradients shape the detector's features too,
and inference runs the backbone once per image. Pages are resized (stretched) to a fixed width x
height, so export sees one input shape; boxes are mapped back to page pixels at the end.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.config import StrictModel
from ..core import portable
from .backbones import check_backbone
from .text import Charset, ctc_greedy

STRIDE = 4  # fused features and score map: one cell per 4x4 input pixels
SPOTTER_BACKBONES = ("small", "efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3")
# EfficientNet stage outputs at strides 4, 8, 16, 32 (the same names in B0-B3)
_EFFICIENTNET_TAPS = ("block3a_expand_activation", "block4a_expand_activation", "block6a_expand_activation",
                      "top_activation")


class PageModelConfig(StrictModel):
    """What every page-level model (the spotter, the oriented detector in detector.py) has: a backbone, the input
    size pages are stretched to, and the fused stride-4 map's channels."""

    backbone: str = "small"
    height: int = 600
    width: int = 800
    fusion_channels: int = 64

    def check_input(self) -> None:
        """ValueError for a backbone or an input size the shared trunk (fused_features) cannot take."""
        if self.backbone not in SPOTTER_BACKBONES:
            check_backbone(self.backbone)
            raise ValueError(f"page models support the backbones {', '.join(SPOTTER_BACKBONES)}, "
                             f"not {self.backbone!r}")
        if self.height % STRIDE or self.width % STRIDE:
            raise ValueError(f"input width and height must be multiples of {STRIDE}, got {self.width}x{self.height}")

    @property
    def padded_height(self) -> int:
        """Input height padded (at the bottom) to a multiple of 32, as the backbone's stride 32 needs."""
        return -(-self.height // 32) * 32

    @property
    def padded_width(self) -> int:
        """Input width padded (on the right) to a multiple of 32."""
        return -(-self.width // 32) * 32

    @property
    def map_shape(self) -> tuple[int, int]:
        """(rows, columns) of the score and geometry maps, the padding included."""
        return self.padded_height // STRIDE, self.padded_width // STRIDE


class SpotterConfig(PageModelConfig):
    """The spotter's shape and decoding, saved as the run's config.json: a strict model like a recipe section."""

    roi_height: int = 8  # feature rows sampled per box
    roi_width: int = 64  # feature columns sampled per box = CTC steps; at least 2x the longest label
    lstm_units: int = 128
    charset: str = ""
    max_boxes: int = 32  # lines per page used for recognition while training
    score_threshold: float = 0.7
    nms_iou: float = 0.3
    shrink: float = 0.25  # score map positives: the box shrunk by this share of its height on every side
    box_jitter: float = 0.15  # training: each side of a ground-truth box the reader crops moves by up to this
    #                           share of the box height, so the reader learns detections' imprecision

    def validate(self, max_label_length: int | None = None) -> None:
        self.check_input()
        Charset(self.charset)
        if self.roi_width < 1 or self.roi_height < 1:
            raise ValueError(f"RoI size must be positive, got {self.roi_width}x{self.roi_height}")
        if max_label_length is not None and self.roi_width < 2 * max_label_length:
            raise ValueError(f"lines of up to {max_label_length} characters need a RoI width of at least "
                             f"{2 * max_label_length} (CTC steps), got {self.roi_width}")

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"model": "spotter", **self.model_dump()}, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> "SpotterConfig":
        data = json.loads(Path(path).read_text())
        if data.pop("model", None) != "spotter":
            raise ValueError(f"{path} is not a spotter configuration")
        return cls(**data)


# ----------------------------------------------------------------------------- model

def _conv(x, filters, kernel=3, strides=1):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def feature_pyramid(backbone: str, height: int, width: int):
    """keras.Model: [B, height, width, 1] pixels 0-255 -> features at strides 4, 8, 16, 32."""
    import keras
    from keras import layers

    inputs = keras.Input((height, width, 1), name="image")
    if backbone == "small":  # compact CNN for tests and CPU training
        x = layers.Rescaling(1.0 / 255.0)(inputs)
        x = _conv(x, 16, strides=2)
        taps = []
        for filters in (32, 64, 96, 128):
            x = _conv(x, filters, strides=2)
            x = _conv(x, filters)
            taps.append(x)
        return keras.Model(inputs, taps, name="small_pyramid")
    import keras.applications as apps

    make = {"efficientnet-b0": apps.EfficientNetB0, "efficientnet-b1": apps.EfficientNetB1,
            "efficientnet-b2": apps.EfficientNetB2, "efficientnet-b3": apps.EfficientNetB3}[backbone]
    base = make(include_top=False, weights=None, input_shape=(height, width, 1))
    return keras.Model(base.input, [base.get_layer(name).output for name in _EFFICIENTNET_TAPS],
                       name=f"{backbone.replace('-', '_')}_pyramid")


def build_detector(config: SpotterConfig):
    """keras.Model: image [B, H, W, 1] 0-255 -> (features [B, h, w, C], score [B, h, w, 1], geometry [B, h, w, 4]).

    h, w = config.map_shape. Geometry: distances in input pixels from each cell centre to the box's
    top, left, bottom and right sides, predicted as exp(x) * STRIDE (positive, scale-free start).
    """
    import keras

    inputs = keras.Input((config.height, config.width, 1), name="image")
    fused = fused_features(inputs, config)
    score, geometry = score_and_distances(fused)
    return keras.Model(inputs, [fused, score, geometry], name="detector")


def fused_features(inputs, config: PageModelConfig):
    """The shared trunk of the spotter and the oriented detector (train/detector.py): the input padded to multiples
    of 32, the backbone's pyramid, and the U-Net/EAST merge down to one stride-4 map of `fusion_channels`."""
    from keras import layers

    x = inputs
    if (config.padded_height, config.padded_width) != (config.height, config.width):
        pad = ((0, config.padded_height - config.height), (0, config.padded_width - config.width))
        x = layers.ZeroPadding2D(pad)(x)
    taps = feature_pyramid(config.backbone, config.padded_height, config.padded_width)(x)
    c = config.fusion_channels
    fused = _conv(taps[-1], c, kernel=1)
    for tap in reversed(taps[:-1]):  # U-Net/EAST merge: upsample, concatenate, 1x1 + 3x3
        fused = layers.UpSampling2D(2, interpolation="bilinear")(fused)
        fused = layers.Concatenate()([fused, tap])
        fused = _conv(fused, c, kernel=1)
        fused = _conv(fused, c)
    return fused


def score_and_distances(fused):
    """The EAST heads both detectors share: text score [B, h, w, 1] (sigmoid, starting low) and distances
    [B, h, w, 4] in input pixels to a box's four sides, as exp(x) * STRIDE (positive, scale-free start)."""
    import keras
    from keras import layers, ops

    # float32 heads even under mixed precision (loop.precision): the losses and the decoders read these maps
    score = layers.Conv2D(1, 1, activation="sigmoid", name="score", dtype="float32",
                          bias_initializer=keras.initializers.Constant(-2.0))(fused)
    raw = layers.Conv2D(4, 1, name="geometry_raw", dtype="float32")(fused)
    geometry = layers.Lambda(lambda t: ops.exp(ops.clip(t, -4.0, 7.0)) * STRIDE, name="geometry",
                             dtype="float32")(raw)
    return score, geometry


def build_reader(config: SpotterConfig):
    """keras.Model: RoI features [N, roi_height, roi_width, C] -> CTC logits [N, roi_width, classes]."""
    import keras
    from keras import layers

    inputs = keras.Input((config.roi_height, config.roi_width, config.fusion_channels), name="roi")
    x, rows = inputs, config.roi_height
    for filters in (64, 128, 128, 128):
        x = _conv(x, filters)
        if rows > 1:
            x = layers.MaxPooling2D((2, 1))(x)
            rows //= 2
    while rows > 1:
        x = layers.MaxPooling2D((2, 1))(x)
        rows //= 2
    x = layers.Reshape((config.roi_width, 128))(x)
    x = layers.Bidirectional(layers.LSTM(config.lstm_units, return_sequences=True))(x)
    logits = layers.Dense(Charset(config.charset).num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name="reader")


def roi_boxes(boxes, config: SpotterConfig):
    """Boxes (x0, y0, x1, y1) in input pixels -> crop_and_resize boxes (y0, x0, y1, x1) on the feature map."""
    import tensorflow as tf

    rows, cols = config.map_shape
    boxes = tf.cast(boxes, tf.float32) / STRIDE - 0.5  # cell k's centre is at input pixel (k + 0.5) * STRIDE
    x0, y0, x1, y1 = tf.unstack(boxes, axis=-1)
    return tf.stack([y0 / (rows - 1), x0 / (cols - 1), y1 / (rows - 1), x1 / (cols - 1)], axis=-1)


class Spotter:
    """The detector and reader with the RoI crop between them; `variables` for the optimizer and checkpoints."""

    def __init__(self, config: SpotterConfig):
        config.validate()
        self.config = config
        self.detector = build_detector(config)
        self.reader = build_reader(config)

    @property
    def trainable_variables(self):
        return self.detector.trainable_variables + self.reader.trainable_variables

    @property
    def weights(self):
        return self.detector.weights + self.reader.weights

    def read(self, features, boxes, box_index, training: bool = False):
        """CTC logits [N, T, classes] for boxes [N, 4] (input pixels) of images box_index [N] in the batch."""
        import tensorflow as tf

        rois = tf.image.crop_and_resize(features, roi_boxes(boxes, self.config), tf.cast(box_index, tf.int32),
                                        (self.config.roi_height, self.config.roi_width))
        return self.reader(rois, training=training)

    def checkpoint_items(self) -> dict:
        return {"detector": self.detector, "reader": self.reader}

    def save_weights(self, path: str | Path) -> None:
        """Both heads to PATH (the detector, backbone included) and PATH with `.reader` before the suffix."""
        path = Path(path)
        self.detector.save_weights(str(path))
        self.reader.save_weights(str(_reader_path(path)))

    def load_weights(self, path: str | Path) -> None:
        path = Path(path)
        self.detector.load_weights(str(path))
        self.reader.load_weights(str(_reader_path(path)))


def _reader_path(path: Path) -> Path:
    return path.with_name(path.name.replace(".weights.h5", ".reader.weights.h5"))


# ----------------------------------------------------------------------------- targets

def page_boxes(quads: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Line quads [L, 4, 2] in page pixels -> axis-aligned boxes [L, 4] (x0, y0, x1, y1) in input pixels."""
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2) * np.array([scale_x, scale_y], np.float32)
    return np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1).astype(np.float32)


def encode_targets(boxes: np.ndarray, config: SpotterConfig) -> tuple[np.ndarray, np.ndarray]:
    """(score [h, w, 1], geometry [h, w, 4]) for boxes [L, 4] in input pixels.

    A cell is text if its centre lies in the box shrunk by `shrink` x the box height on every side (at
    least the cell nearest the centre, so every box has one); its geometry is the distances from its
    centre to the unshrunk box's top, left, bottom and right. Where boxes overlap, the smaller one wins.
    """
    rows, cols = config.map_shape
    score = np.zeros((rows, cols, 1), np.float32)
    geometry = np.zeros((rows, cols, 4), np.float32)
    ys = (np.arange(rows, dtype=np.float32) + 0.5) * STRIDE
    xs = (np.arange(cols, dtype=np.float32) + 0.5) * STRIDE
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    for k in np.argsort(-areas, kind="stable"):
        x0, y0, x1, y1 = (float(v) for v in boxes[k])
        if x1 <= x0 or y1 <= y0:
            continue
        margin = config.shrink * (y1 - y0)
        inside_y = (ys >= y0 + margin) & (ys <= y1 - margin)
        inside_x = (xs >= x0 + margin) & (xs <= x1 - margin)
        cy = int(np.clip(np.floor((y0 + y1) / 2 / STRIDE), 0, rows - 1))
        cx = int(np.clip(np.floor((x0 + x1) / 2 / STRIDE), 0, cols - 1))
        inside_y[cy] = inside_x[cx] = True
        r, c = np.nonzero(inside_y)[0], np.nonzero(inside_x)[0]
        block = np.ix_(r, c)
        score[block] = 1.0
        geometry[block] = np.stack(np.broadcast_arrays(
            ys[r][:, None] - y0, xs[c][None, :] - x0, y1 - ys[r][:, None], x1 - xs[c][None, :]), axis=-1)
    return score, geometry


box_iou = portable.box_iou  # IoU matrix [len(a), len(b)] of boxes (x0, y0, x1, y1)


def decode_boxes(score: np.ndarray, geometry: np.ndarray, threshold: float = 0.7, nms_iou: float = 0.3,
                 max_candidates: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [K, 4] in input pixels, scores [K]) from one image's maps.

    Every cell above `threshold` proposes a box; non-maximum suppression keeps the best-scoring one of
    each overlapping group, and its box becomes the score-weighted mean of the group it suppressed
    (locality-aware NMS as in EAST: per-cell boxes are noisy, their mean is not). The code is portable.py's, which
    the Jetson kit carries a copy of, so a device decodes exactly as training and evaluation do.
    """
    return portable.decode_boxes(score, geometry, threshold, nms_iou, STRIDE, max_candidates)


# ----------------------------------------------------------------------------- inference

@dataclass
class Spot:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the original image's pixels
    text: str
    score: float  # mean text score of the cells that voted for the box


def spot_batch(model: Spotter, images) -> list[list[tuple[np.ndarray, str, float]]]:
    """(box in input pixels, text, score) per detection, per image of a preprocessed batch [B, H, W, 1]."""
    import tensorflow as tf

    config, charset = model.config, Charset(model.config.charset)
    features, score, geometry = model.detector(images, training=False)
    score, geometry = score.numpy(), geometry.numpy()
    found = [decode_boxes(score[i], geometry[i], config.score_threshold, config.nms_iou) for i in range(len(score))]
    boxes = np.concatenate([b for b, _ in found]).reshape(-1, 4)
    index = np.concatenate([np.full(len(b), i, np.int32) for i, (b, _) in enumerate(found)]).astype(np.int32)
    texts = []
    if len(boxes):
        logits = model.read(features, tf.constant(boxes), tf.constant(index)).numpy()
        texts = [charset.decode(labels) for labels in ctc_greedy(logits, charset.blank)]
    out, k = [], 0
    for b, s in found:
        out.append([(b[j], texts[k + j], float(s[j])) for j in range(len(b))])
        k += len(b)
    return out


def spot_pages(model: Spotter, pages: list[np.ndarray], batch_size: int = 8) -> list[list[Spot]]:
    """Boxes (in each page's pixels) and texts of the lines on grayscale pages."""
    config = model.config
    results = []
    for start in range(0, len(pages), batch_size):
        chunk = pages[start:start + batch_size]
        batch = np.stack([portable.preprocess(p, config.height, config.width) for p in chunk])
        for page, found in zip(chunk, spot_batch(model, batch)):
            sx, sy = page.shape[1] / config.width, page.shape[0] / config.height
            results.append([Spot(tuple(float(v) for v in box * np.array([sx, sy, sx, sy])), text, score)
                            for box, text, score in found])
    return results


def draw_spots(page: np.ndarray, spots: list[Spot]) -> np.ndarray:
    """A BGR copy of the page with each box and its text drawn on it."""
    import cv2

    canvas = cv2.cvtColor(page if page.ndim == 2 else page[..., 0], cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(page.shape[0] / 400))
    for s in spots:
        x0, y0, x1, y1 = (int(round(v)) for v in s.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (0, 200, 0), thickness)
        cv2.putText(canvas, s.text.encode("ascii", "replace").decode() or "?", (x0, max(12, y0 - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, (0, 0, 255), thickness, cv2.LINE_AA)
    return canvas


def auto_roi_width(max_label_length: int) -> int:
    """RoI columns for labels of up to this length: 3 steps per character (CTC needs 2), a multiple of 16, >= 32."""
    return max(32, int(math.ceil(3 * max(1, max_label_length) / 16)) * 16)
