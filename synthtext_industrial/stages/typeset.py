"""Typesetting: characters laid out in a block's own frame, then each drawn into the page with its exact quad.

`typeset` places the glyphs of a block's lines (pixels, y down, first baseline at y = 0), stretched by the
aspect. `draw_char` warps one glyph into the page through the block's homography and measures its quad from
the warped ink, mapped back through the same matrix: the box is tight around the pixels it labels, whatever
the font, dots, stroke, stretch, rotation or tilt.
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import cv2
import numpy as np

from ..core import geometry as geo
from .dotmatrix import DotMatrixSource, dot_glyph
from .fonts import SEGMENT_FORMS, Glyph, has_segment_forms, height_per_em, truetype_glyph
from .text import GeneratedLine

MASK_FLOOR = 48  # warped coverage below this (about 20%) is resampling haze, not ink: it leaves the mask
BOX_PAD = -0.5  # quad sides run half a pixel inside the centres of the outermost (faint) ink pixels
MAX_GAIN = 4.0  # at most this much boost for glyphs whose strokes are thinner than a pixel
INK_GAIN = 1.6


@dataclass
class PlacedGlyph:
    char_index: int  # position in the line's text
    glyph: Glyph
    x: float  # top-left of the glyph bitmap in the block frame
    y: float


@dataclass
class TypesetLine:
    source: GeneratedLine
    glyphs: list[PlacedGlyph]


def slanted(glyph: Glyph, slant: float) -> Glyph:
    """The glyph leaning `slant` degrees to the right (sheared about its baseline), as italic display digits and
    oblique printer fonts do; the bitmap is trimmed to its ink again, so its box stays tight."""
    if not slant or glyph.bitmap.size == 0:
        return glyph
    t = math.tan(math.radians(slant))
    h, w = glyph.bitmap.shape
    shifts = (-t * glyph.top, -t * (glyph.top + h))  # how far the top and bottom rows move right
    lo = math.floor(min(shifts)) - 1
    width = w + int(math.ceil(max(shifts) - min(shifts))) + 3
    matrix = np.float32([[1, -t, -t * glyph.top - lo], [0, 1, 0]])
    bitmap = cv2.warpAffine(glyph.bitmap, matrix, (width, h), flags=cv2.INTER_LINEAR, borderValue=0)
    columns = np.nonzero(bitmap.max(axis=0))[0]
    if columns.size == 0:
        return glyph
    return Glyph(np.ascontiguousarray(bitmap[:, columns[0]:columns[-1] + 1]), glyph.left + lo + columns[0],
                 glyph.top, glyph.advance)


def sample_segment_forms(chances: dict[str, float], font, rng: np.random.Generator) -> dict[str, tuple]:
    """The alternative digit forms (fonts.SEGMENT_FORMS) one block's seven-segment display uses, drawn with
    their chances: {name: (character, form)}. A display draws each digit one way, so this is per block. No
    draws unless the recipe asks and the font is a seven-segment one."""
    if not chances or not has_segment_forms(font):
        return {}
    return {name: SEGMENT_FORMS[name] for name in sorted(chances) if rng.random() < chances[name]}


def typeset(lines: list[GeneratedLine], font, dot_style, height, aspect, gap, stroke, spacing, align, rng,
            slant: float = 0.0, forms: dict | None = None):
    """Lay lines out in the block frame (pixels, y down, first baseline at y = 0), stretched by `aspect` and
    slanted by `slant` degrees (each glyph, so the characters lean and their boxes stay upright); `forms`
    (from `sample_segment_forms`) replaces some digits' glyphs by their alternative forms."""
    alternative = {char: form for char, form in (forms or {}).values()}
    set_lines, widths = [], []
    for n, line in enumerate(lines):
        baseline = n * spacing * height
        pen, placed, last_gap = 0.0, [], 0.0
        for i, ch in enumerate(line.text):
            if isinstance(font, DotMatrixSource):
                glyph = dot_glyph(ch, height, dot_style, rng, aspect)
            else:
                em = max(4, int(round(height / height_per_em(font))))
                glyph = truetype_glyph(font, em, ch, stroke, aspect, alternative.get(ch, ()))
            glyph = slanted(glyph, slant)
            if ch != " " and glyph.bitmap.size:
                placed.append(PlacedGlyph(i, glyph, pen + glyph.left, baseline + glyph.top))
            # a mark with no advance of its own (DSEG's decimal point, drawn in the gap between two digit
            # cells) takes no gap either: a display's digits keep their pitch across the point
            last_gap = gap if glyph.advance > 0 else 0.0
            pen += glyph.advance + last_gap
        set_lines.append(TypesetLine(line, placed))
        widths.append(max(pen - last_gap, 0.0))
    block_width = max(widths)
    for tl, width in zip(set_lines, widths):
        shift = {"left": 0.0, "center": (block_width - width) / 2, "right": block_width - width}[align]
        for g in tl.glyphs:
            g.x += shift
    return set_lines


def extent(set_lines: list[TypesetLine]) -> tuple[float, float, float, float]:
    xs0, ys0, xs1, ys1 = [], [], [], []
    for tl in set_lines:
        for g in tl.glyphs:
            h, w = g.glyph.bitmap.shape
            xs0.append(g.x), ys0.append(g.y), xs1.append(g.x + w), ys1.append(g.y + h)
    return min(xs0), min(ys0), max(xs1), max(ys1)


def _warp(bitmap: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    cv_matrix = geo.to_cv(matrix)
    if geo.is_affine(cv_matrix):
        return cv2.warpAffine(bitmap, cv_matrix[:2], size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.warpPerspective(bitmap, cv_matrix, size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def draw_char(glyph: PlacedGlyph, H: np.ndarray, H_inv: np.ndarray, width: int, height: int):
    """Warp one glyph into the page; returns its ROI origin, its coverage and its quad."""
    bitmap = glyph.glyph.bitmap
    h, w = bitmap.shape
    M = H @ geo.translate(glyph.x, glyph.y)
    corners = geo.apply(M, geo.rect_quad(0, 0, w, h))
    x0 = max(int(np.floor(corners[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(corners[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 1, width)
    y1 = min(int(np.ceil(corners[:, 1].max())) + 1, height)
    warped = _warp(bitmap, geo.translate(-x0, -y0) @ M, (x1 - x0, y1 - y0))
    peak = int(warped.max()) if warped.size else 0
    if peak > 0:
        # Ink saturates: coverage above about 60% prints at full density (dot gain), and a
        # hairline thinner than a pixel still prints at full density instead of fading.
        warped = cv2.convertScaleAbs(warped, alpha=INK_GAIN * min(255.0 / peak, MAX_GAIN))
    ink = warped >= MASK_FLOOR
    if not ink.any():  # a tiny mark (a dot at a small size): keep all of it rather than lose it
        ink = warped > 0
    warped = np.where(ink, warped, 0).astype(np.uint8)
    ys, xs = np.nonzero(ink)
    if ys.size == 0:
        own = geo.rect_quad(glyph.x, glyph.y, glyph.x + w, glyph.y + h)
    else:
        pts = np.stack([xs + x0 + 0.5, ys + y0 + 0.5], axis=1)
        own = geo.apply(H_inv, pts)
    # BOX_PAD is in page pixels; the block frame is stretched by the aspect (and tilt), so convert
    pad_x = BOX_PAD / np.hypot(H[0, 0] - H[2, 0] * H[0, 2], H[1, 0] - H[2, 0] * H[1, 2])
    pad_y = BOX_PAD / np.hypot(H[0, 1] - H[2, 1] * H[0, 2], H[1, 1] - H[2, 1] * H[1, 2])
    bx0, by0 = own.min(axis=0) - (pad_x, pad_y)
    bx1, by1 = own.max(axis=0) + (pad_x, pad_y)
    return x0, y0, warped, (bx0, by0, bx1, by1)
