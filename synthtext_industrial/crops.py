"""Upright line crops for text-recognition datasets.

Recognisers (e.g. deep-text-recognition-benchmark) train on one image per text
line, upright and reading left to right. A line quad is a rectangle in the
text's own frame (see docs/ground-truth.md), so one homography from that frame
to the crop undoes rotation, stretch and camera tilt at once; because the quad's
first point is the top-left of the text as read, text rotated by 180 degrees
comes out upright too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .core import geometry, portable
from .stages.framing import CropConfig, crop_rng, sample_framing

MIN_HEIGHT = 8


@dataclass(frozen=True)
class FramedCrop:
    """One line's crop as `generate --crops` writes it, with what it was cut from (its provenance)."""

    image: np.ndarray
    text: str
    text_height: float  # the line's height on the page, px
    framing: dict  # sample_framing's record: margins, capture height, window, box view


def framed_line_crops(sample, cfg: CropConfig) -> list[FramedCrop]:
    """Every line of a Sample, framed as `cfg` says, from the sample's own crop stream (so pages never change)."""
    rng = crop_rng(sample.seed, sample.index)
    windows = _line_windows(sample)
    out = []
    for k, line in enumerate(sample.lines):
        framing = sample_framing(cfg, rng, in_window=k in windows)
        frame = windows[k] if framing.get("window") else line.quad
        if framing.get("box"):
            crop = box_crop(sample.image, frame, framing["margins"], **framing["box"])
        else:
            crop = line_crop(sample.image, frame, framing["margins"])
        text_height = portable.quad_sides(np.asarray(line.quad, np.float64))[1]
        if framing["text_height_px"] is not None:
            crop = capture_at(crop, text_height, framing["text_height_px"])
        out.append(FramedCrop(crop, line.text, text_height, framing))
    return out


def framed_crops(sample, cfg: CropConfig) -> list[tuple[np.ndarray, str]]:
    """(crop, text) for every line of a Sample, framed as `cfg` says (see framed_line_crops)."""
    return [(c.image, c.text) for c in framed_line_crops(sample, cfg)]


def _line_windows(sample) -> dict[int, np.ndarray]:
    """The display window (outer quad) of every line that is alone in its display's block."""
    windows = {}
    for block in (sample.records or {}).get("blocks", []):
        first, last = block["lines"]
        quad = (block.get("display") or {}).get("window_quad")
        if quad is not None and last - first == 1:
            windows[first] = np.asarray(quad, np.float64)
    return windows


def capture_at(crop: np.ndarray, text_height: float, target: float) -> np.ndarray:
    """The crop as a camera would see it with the text `target` px tall: averaged down, then scaled back up
    (bilinear) to its size. A crop whose text is already that small is returned as it is."""
    factor = target / max(text_height, 1e-6)
    if factor >= 1.0:
        return crop
    rows, cols = crop.shape
    small = cv2.resize(crop, (max(1, round(cols * factor)), max(1, round(rows * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (cols, rows), interpolation=cv2.INTER_LINEAR)


def _warp(image: np.ndarray, image_to_crop: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.warpPerspective(image, geometry.to_cv(image_to_crop), (width, height),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def line_crop(image: np.ndarray, quad: np.ndarray, margin: float | Sequence[float] = 0.15,
              height: int | None = None) -> np.ndarray:
    """The line inside `quad`, rectified to an upright HxW uint8 crop with `margin` x line height of context per side
    (one number, or four: left, top, right, bottom).

    Without `height` the crop keeps the source resolution: its height is the quad's mean left/right side plus
    the two margins (at least 8 px). With `height` the whole crop is that tall and its width keeps the aspect
    ratio. Parts outside the image repeat the border pixels.
    """
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"image must be a 2-D uint8 array, got {image.dtype} with shape {image.shape}")
    margins = [float(margin)] * 4 if np.isscalar(margin) else [float(m) for m in margin]
    if len(margins) != 4 or min(margins) < 0:
        raise ValueError(f"margin must be one number >= 0 or four (left, top, right, bottom), got {margin}")
    if height is not None and height < 1:
        raise ValueError(f"height must be >= 1 px, got {height}")
    return portable.rectified_crop(image, quad, margins, height, min_height=MIN_HEIGHT)


def view(quad: np.ndarray, rotation: float, shear: Sequence[float]) -> np.ndarray:
    """The page seen turned by `rotation` degrees and sheared by (horizontal, vertical) `shear` about the quad's
    centre: a 3x3 matrix from page to viewed page."""
    cx, cy = np.asarray(quad, np.float64).reshape(4, 2).mean(axis=0)
    shx, shy = shear
    skew = np.array([[1.0, shx, 0.0], [shy, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return geometry.translate(cx, cy) @ skew @ geometry.rotate(rotation) @ geometry.translate(-cx, -cy)


def box_frame(quad: np.ndarray, margins: Sequence[float], rotation: float = 0.0,
              shear: Sequence[float] = (0.0, 0.0)) -> tuple[np.ndarray, int, int]:
    """(page-to-crop matrix, width, height) of a detector-style crop: the upright box around `quad` as the view
    shows it, widened by `margins` (left, top, right, bottom) x the quad's height. Nothing is rectified."""
    quad = np.asarray(quad, np.float64).reshape(4, 2)
    page_to_view = view(quad, rotation, shear)
    seen = geometry.apply(page_to_view, quad)
    unit = portable.quad_sides(quad)[1]
    left, top, right, bottom = (float(m) * unit for m in margins)
    x0, y0 = seen.min(axis=0) - (left, top)
    x1, y1 = seen.max(axis=0) + (right, bottom)
    width, height = max(1, int(np.ceil(x1 - x0))), max(MIN_HEIGHT, int(np.ceil(y1 - y0)))
    return geometry.translate(-x0, -y0) @ page_to_view, width, height


def box_crop(image: np.ndarray, quad: np.ndarray, margins: Sequence[float], rotation: float = 0.0,
             shear: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """The crop a detector's upright box cuts around `quad` seen under the view (see box_frame): the text keeps
    its tilt and slant inside it, with whatever surrounds it in the box. Parts outside the image repeat the
    border pixels."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"image must be a 2-D uint8 array, got {image.dtype} with shape {image.shape}")
    page_to_crop, width, height = box_frame(quad, margins, rotation, shear)
    return _warp(image, page_to_crop, width, height)


def line_crops(sample, margin: float = 0.15, height: int | None = None) -> list[tuple[np.ndarray, str]]:
    """(upright crop, text) for every line of a Sample, in ground-truth order."""
    return [(line_crop(sample.image, line.quad, margin, height), line.text) for line in sample.lines]
