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
from functools import cached_property
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

    @cached_property
    def ink(self) -> np.ndarray:
        """The pixels that are the character's ink (at least half covered; any coverage for hairlines)."""
        threshold = 128 if (self.coverage >= 128).any() else 1
        return self.coverage >= threshold

    @cached_property
    def half_width(self) -> float:
        """Half the width of its widest stroke, px."""
        ink = np.pad(self.ink.astype(np.uint8), 1)
        return float(cv2.distanceTransform(ink, cv2.DIST_L2, 3).max()) if ink.any() else 0.0


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


def reach_px(char: CharInk, relief: bool) -> int:
    """How far from an ink pixel the evidence of that pixel may lie: 1 px for ink (antialiasing, a little
    blur), one stroke width plus a pixel for relief (a stroke lit on one side shows only that edge)."""
    return int(math.ceil(2 * char.half_width)) + 1 if relief else 1


def char_legibility(plain: np.ndarray, finished: np.ndarray, char: CharInk, relief: bool, sigma: float) -> float:
    """Legibility of one character (see the module docstring): the PART_QUANTILE-th percentile over its ink of
    the largest |finished - plain| (speckles removed) within `reach_px`, over the fine-texture std of its
    surroundings in `plain`. `plain` and `finished` are the same region without and with the text, after the
    same effects."""
    return chars_legibility(plain, finished, [char], relief, sigma)[0]


def chars_legibility(plain: np.ndarray, finished: np.ndarray, chars: Sequence[CharInk], relief: bool,
                     sigma: float) -> list[float]:
    """`char_legibility` of each character of one block (the region's change and texture computed once)."""
    if not chars:
        return []
    before = plain.astype(np.float32)
    change = cv2.absdiff(finished.astype(np.float32), before)
    change = cv2.morphologyEx(change, cv2.MORPH_OPEN, _SPECKLE)  # a lone speckle is not a stroke or an edge
    texture = before - cv2.GaussianBlur(before, (0, 0), sigma)
    return [_score(change, texture, char, relief, sigma) for char in chars]


def _score(change: np.ndarray, texture: np.ndarray, char: CharInk, relief: bool, sigma: float) -> float:
    reach = reach_px(char, relief)
    rows, cols = change.shape
    h, w = char.coverage.shape
    pad = reach + int(math.ceil(sigma))  # the surroundings: its reach and a texture scale around it
    x0, y0 = max(char.x - pad, 0), max(char.y - pad, 0)
    x1, y1 = min(char.x + w + pad, cols), min(char.y + h + pad, rows)
    if x1 <= x0 or y1 <= y0:
        return math.inf
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    evidence = cv2.dilate(change[y0:y1, x0:x1], kernel)
    ink = np.zeros(evidence.shape, bool)
    cy0, cx0 = char.y - y0, char.x - x0
    inside = ink[max(cy0, 0):cy0 + h, max(cx0, 0):cx0 + w]
    inside |= char.ink[max(-cy0, 0):max(-cy0, 0) + inside.shape[0], max(-cx0, 0):max(-cx0, 0) + inside.shape[1]]
    if not ink.any():
        return math.inf
    values = evidence[ink]
    k = int(len(values) * PART_QUANTILE / 100.0)
    signal = float(np.partition(values, k)[k])  # a tenth of the ink shows less than this
    if relief:
        signal *= RELIEF_GAIN
    return signal / max(float(texture[y0:y1, x0:x1].std()), LEGIBILITY_NOISE_FLOOR)


@dataclass
class MarkedBlock:
    """Where a block's characters are on the page, for measuring them after the effects."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the marked region
    chars: list[CharInk]  # in region coordinates, in the order of the block's labelled characters
    relief: bool
    sigma: float  # texture scale for this text height

    def measure(self, plain: np.ndarray, finished: np.ndarray) -> list[float]:
        x0, y0, x1, y1 = self.box
        return chars_legibility(plain[y0:y1, x0:x1], finished[y0:y1, x0:x1], self.chars, self.relief, self.sigma)
