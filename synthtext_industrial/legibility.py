"""Can each labelled character be read from its pixels? One measure for every kind of mark.

A label is exact only if the image shows what it says. Two measures live here:

- `legibility`: how strongly a whole mark stands out (RMS change per inked pixel over the surface's fine
  texture). Kept for reports and old records.
- `char_legibility`: the rule the renderer enforces, per character, on the finished image. It compares the
  image with the same page rendered without text (`plain`: the same surface through the same effects) and
  asks, for every pixel of the character's ink, how much visible change there is *at or beside it*; the
  character's score is the `PART_QUANTILE` quantile of that over its ink, divided by the fine texture of
  its own surroundings. So a character scores low when any part larger than about a tenth of its ink is
  missing, whatever took it away:

  * ink of either polarity: the change is on the strokes (|change|, so dark and light ink alike);
  * relief (emboss, stamp, engrave): the change is the shading at the edges, so "beside" reaches one
    stroke width plus the shading's reach; a stroke lit along its length shades nothing and counts as gone;
  * dots and segments: each dot or segment is part of the ink, so a row of dots erased by a highlight is
    missing ink like any stroke;
  * dark ink on a near-black surface, or a clipped highlight: the change is small or zero there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

LEGIBILITY_NOISE_FLOOR = 2.0  # gray levels: a flat surface still has sensor noise, so no mark is infinitely clear
PART_QUANTILE = 10.0  # percent of a character's ink that may show no change before the character scores low
_SPECKLE = np.ones((2, 2), np.uint8)  # change must fill a 2x2 square to count: strokes and relief edges do, noise
                                     # that a mark leaves unclipped (speckles) mostly does not
# Relief shows a character as thin paired lines of light and shade, ink as filled strokes; on the audit sheets
# (`synthtext-industrial audit`) relief characters scoring 2 read as well as ink characters scoring 3.
RELIEF_GAIN = 1.5
RELIEF_REACH = 2  # px beyond the strokes that relief shading reaches (marking.RELIEF_REACH)


@dataclass(frozen=True)
class CharInk:
    """One character's antialiased coverage, placed at (x, y) in the region it is measured in."""

    x: int
    y: int
    coverage: np.ndarray  # HxW uint8, 255 = full ink


def texture_sigma(height: float) -> float:
    """Scale (px) below which surface detail competes with strokes of text `height` px tall."""
    return max(2.0, height / 6)


def texture_std(surface: np.ndarray, sigma: float) -> float:
    """Std of the surface's detail finer than `sigma` px (what competes with strokes), at least the noise floor."""
    surface = surface.astype(np.float32, copy=False)
    texture = surface - cv2.GaussianBlur(surface, (0, 0), sigma)
    return max(float(texture.std()), LEGIBILITY_NOISE_FLOOR)


def legibility(surface: np.ndarray, marked: np.ndarray, coverage: np.ndarray, sigma: float) -> float:
    """How strongly a whole mark stands out from its surface: the RMS change per inked pixel over the std of
    the surface's fine texture. A block-level figure; `char_legibility` is the rule for labels."""
    before = surface.astype(np.float32)
    change = marked.astype(np.float32) - before
    inked = max(float(coverage.sum()) / 255.0, 1.0)
    signal = math.sqrt(float((change * change).sum()) / inked)
    return signal / texture_std(before, sigma)


def reach_px(coverage: np.ndarray, relief: bool) -> int:
    """How far from an ink pixel the evidence of that pixel may lie: 1 px for ink (antialiasing, a little
    blur), one stroke width plus the shading's reach for relief (one lit edge shows a whole stroke)."""
    if not relief:
        return 1
    ink = (coverage >= 128).astype(np.uint8)
    if not ink.any():
        return RELIEF_REACH + 1
    half_width = float(cv2.distanceTransform(np.pad(ink, 1), cv2.DIST_L2, 3).max())
    return int(math.ceil(2 * half_width)) + 1  # the far side of a stroke lit on one side, and the shading line


def char_legibility(plain: np.ndarray, finished: np.ndarray, char: CharInk, relief: bool, sigma: float) -> float:
    """Legibility of one character (see the module docstring): the PART_QUANTILE-th percentile over its ink of
    the largest |finished - plain| (speckles removed) within `reach_px`, over the fine-texture std of its surroundings in `plain`.

    `plain` and `finished` are the same region without and with the text, after the same effects.
    """
    cov = char.coverage
    reach = reach_px(cov, relief)
    rows, cols = plain.shape
    h, w = cov.shape
    # The character's window, padded by its reach; the texture window by a little more.
    pad = reach + int(math.ceil(sigma))
    x0, y0 = max(char.x - pad, 0), max(char.y - pad, 0)
    x1, y1 = min(char.x + w + pad, cols), min(char.y + h + pad, rows)
    if x1 <= x0 or y1 <= y0:
        return math.inf
    before = plain[y0:y1, x0:x1].astype(np.float32)
    change = np.abs(finished[y0:y1, x0:x1].astype(np.float32) - before)
    change = cv2.morphologyEx(change, cv2.MORPH_OPEN, _SPECKLE)  # a lone speckle is not a stroke or an edge
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    evidence = cv2.dilate(change, kernel)
    ink = np.zeros(before.shape, bool)
    cy0, cx0 = char.y - y0, char.x - x0
    inside = ink[max(cy0, 0):cy0 + h, max(cx0, 0):cx0 + w]
    part = cov[max(-cy0, 0):max(-cy0, 0) + inside.shape[0], max(-cx0, 0):max(-cx0, 0) + inside.shape[1]]
    threshold = 128 if (part >= 128).any() else 1
    inside |= part >= threshold
    if not ink.any():
        return math.inf
    signal = float(np.percentile(evidence[ink], PART_QUANTILE))
    if relief:
        signal *= RELIEF_GAIN
    return signal / texture_std(before, sigma)


def chars_legibility(plain: np.ndarray, finished: np.ndarray, chars: Sequence[CharInk], relief: bool,
                     sigma: float) -> list[float]:
    """`char_legibility` of each character of one block."""
    return [char_legibility(plain, finished, char, relief, sigma) for char in chars]
