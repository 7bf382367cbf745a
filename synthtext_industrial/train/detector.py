"""Oriented text-line detector (EAST/FOTS RBOX): finds every line of a page as a rotated box, in reading order.

image [B, H, W, 1] -> the spotter's trunk (spotter.fused_features: backbone, U-Net fusion to stride 4) ->
  score [h, w, 1] (sigmoid): the cell lies inside a line, shrunk
  geometry [h, w, 4]: distances in input pixels to the line's rotated box's top, left, bottom, right, measured in
      the box's own frame (spotter.score_and_distances: the same heads as the spotter's axis-aligned ones)
  direction [h, w, 2]: (cos, sin) of the reading direction, a unit vector: any angle, upside down included

The spotter's boxes are axis-aligned, so a rotated line gets a loose box and its crop carries background; these
boxes turn with the text, and `crops.line_crop` rectifies them upright for the recognizer (train/reader.py).
Decoding is numpy and OpenCV (portable.decode_quads), so a device decodes as training and evaluation do.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core import portable
from .spotter import STRIDE, PageModelConfig, fused_features, score_and_distances


class DetectorConfig(PageModelConfig):
    """The oriented detector's shape and decoding, saved as the run's config.json (`"model": "detector"`)."""

    score_threshold: float = 0.7
    nms_iou: float = 0.3
    shrink: float = 0.25  # score map positives: the rotated box shrunk by this share of its height on every side
    angle_weight: float = 10.0  # weight of the direction loss |angle error| in radians (EAST's lambda_theta)

    def validate(self) -> None:
        self.check_input()
        if not 0.0 <= self.shrink < 0.5:
            raise ValueError(f"shrink must be in [0, 0.5), got {self.shrink}")

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"model": "detector", **self.model_dump()}, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> "DetectorConfig":
        data = json.loads(Path(path).read_text())
        if data.pop("model", None) != "detector":
            raise ValueError(f"{path} is not an oriented detector configuration")
        return cls(**data)


# ----------------------------------------------------------------------------- model

def build_oriented_detector(config: DetectorConfig):
    """keras.Model: image [B, H, W, 1] 0-255 -> (score [B, h, w, 1], geometry [B, h, w, 4], direction [B, h, w, 2]).

    The direction head starts at (1, 0) everywhere (text left to right, level: what most pages hold) and is
    normalised to unit length, so the loss and the decoder read an angle from it directly."""
    import keras
    from keras import layers, ops

    inputs = keras.Input((config.height, config.width, 1), name="image")
    fused = fused_features(inputs, config)
    score, geometry = score_and_distances(fused)
    raw = layers.Conv2D(2, 1, name="direction_raw", kernel_initializer="zeros", dtype="float32",
                        bias_initializer=keras.initializers.Constant([1.0, 0.0]))(fused)
    direction = layers.Lambda(lambda t: t / ops.sqrt(ops.sum(t * t, axis=-1, keepdims=True) + 1e-6),
                              name="direction", dtype="float32")(raw)
    return keras.Model(inputs, [score, geometry, direction], name="oriented_detector")


class Detector:
    """The oriented detector and its config, shaped like train.spotter.Spotter for the loop and the reader."""

    def __init__(self, config: DetectorConfig):
        config.validate()
        self.config = config
        self.model = build_oriented_detector(config)

    def __call__(self, images, training: bool = False):
        return self.model(images, training=training)

    @property
    def trainable_variables(self):
        return self.model.trainable_variables

    @property
    def weights(self):
        return self.model.weights

    def checkpoint_items(self) -> dict:
        return {"detector": self.model}

    def save_weights(self, path: str | Path) -> None:
        self.model.save_weights(str(path))

    def load_weights(self, path: str | Path) -> None:
        self.model.load_weights(str(path))


# ----------------------------------------------------------------------------- targets

def line_rboxes(quads: np.ndarray) -> np.ndarray:
    """Line quads [L, 4, 2] (clockwise from the text's top-left as read) -> their rotated boxes [L, 4, 2]: OpenCV's
    smallest enclosing rectangle, its corners renumbered so they too start at the text's top-left (the rotation of
    the corners closest to the quad's). A rotated rectangle comes back as itself."""
    import cv2

    quads = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    out = np.zeros_like(quads)
    for k, quad in enumerate(quads):
        rect = cv2.boxPoints(cv2.minAreaRect(quad.astype(np.float32))).astype(np.float64)
        x, y = rect[:, 0], rect[:, 1]
        if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:  # counter-clockwise on screen (y down)
            rect = rect[::-1]
        shifts = [np.roll(rect, -s, axis=0) for s in range(4)]
        out[k] = min(shifts, key=lambda r: float(np.sum((r - quad) ** 2)))
    return out


def encode_targets(quads: np.ndarray, config: DetectorConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score [h, w, 1], geometry [h, w, 4], direction [h, w, 2]) for line quads [L, 4, 2] in input pixels.

    Each line becomes its rotated box (line_rboxes). A cell is text if its centre lies in the box shrunk by
    `shrink` x the box height on every side (at least the cell nearest the box's centre, so every line has one);
    its geometry is the distances from its centre to the unshrunk box's top, left, bottom and right sides in the
    box's frame, its direction the box's reading direction. Where lines overlap, the smaller one wins.
    """
    rows, cols = config.map_shape
    score = np.zeros((rows, cols, 1), np.float32)
    geometry = np.zeros((rows, cols, 4), np.float32)
    direction = np.zeros((rows, cols, 2), np.float32)
    boxes = line_rboxes(quads)
    widths = np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=1)
    heights = np.linalg.norm(boxes[:, 3] - boxes[:, 0], axis=1)
    for k in np.argsort(-(widths * heights), kind="stable"):
        width, height = float(widths[k]), float(heights[k])
        if width < 1e-6 or height < 1e-6:
            continue
        tl = boxes[k, 0]
        u, v = (boxes[k, 1] - tl) / width, (boxes[k, 3] - tl) / height
        x0, y0 = np.floor(boxes[k].min(axis=0) / STRIDE).astype(int)
        x1, y1 = np.ceil(boxes[k].max(axis=0) / STRIDE).astype(int)
        r = np.arange(max(y0, 0), min(y1 + 1, rows))
        c = np.arange(max(x0, 0), min(x1 + 1, cols))
        centre = boxes[k].mean(axis=0)
        cr = int(np.clip(np.floor(centre[1] / STRIDE), 0, rows - 1))
        cc = int(np.clip(np.floor(centre[0] / STRIDE), 0, cols - 1))
        rr, ccs = np.meshgrid(r, c, indexing="ij")
        rr, ccs = np.append(rr.ravel(), cr), np.append(ccs.ravel(), cc)
        points = np.stack([(ccs + 0.5) * STRIDE, (rr + 0.5) * STRIDE], axis=1) - tl
        along, down = points @ u, points @ v  # the cell centres in the box's frame
        margin = config.shrink * height
        inside = (along >= margin) & (along <= width - margin) & (down >= margin) & (down <= height - margin)
        inside[-1] = True
        rr, ccs, along, down = rr[inside], ccs[inside], along[inside], down[inside]
        score[rr, ccs] = 1.0
        geometry[rr, ccs] = np.stack([down, along, height - down, width - along], axis=1)
        direction[rr, ccs] = u
    return score, geometry, direction


def decode_quads(score: np.ndarray, geometry: np.ndarray, direction: np.ndarray, threshold: float = 0.7,
                 nms_iou: float = 0.3, max_candidates: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(quads [K, 4, 2] in input pixels, clockwise from the text's top-left as read, scores [K]) from one image's
    maps: portable.decode_quads, the code the Jetson kit carries a copy of."""
    return portable.decode_quads(score, geometry, direction, threshold, nms_iou, STRIDE, max_candidates)


# ----------------------------------------------------------------------------- inference

def detect_batch(model: Detector, images) -> list[tuple[np.ndarray, np.ndarray]]:
    """(quads [K, 4, 2] in input pixels, scores [K]) per image of a preprocessed batch [B, H, W, 1]."""
    config = model.config
    score, geometry, direction = (np.asarray(t) for t in model(images, training=False))
    return [decode_quads(score[i], geometry[i], direction[i], config.score_threshold, config.nms_iou)
            for i in range(len(score))]


def detect_pages(model: Detector, pages: Sequence[np.ndarray], batch_size: int = 4) -> list[tuple[np.ndarray,
                                                                                                  np.ndarray]]:
    """(quads [K, 4, 2] in each page's pixels, scores [K]) of grayscale pages of any size (letterboxed into the
    input, aspect kept, as in training; the quads scaled back)."""
    config = model.config
    out = []
    for start in range(0, len(pages), batch_size):
        chunk = pages[start:start + batch_size]
        fitted = [portable.letterbox(p, config.height, config.width) for p in chunk]
        for (_, scale), (quads, scores) in zip(fitted, detect_batch(model, np.stack([x for x, _ in fitted]))):
            out.append((quads / scale, scores))
    return out
