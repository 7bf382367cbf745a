"""Page geometry: the canvas, typography and layout sections of a recipe, and where each block goes.

`camera` draws the page's camera tilt, `region_box` the area a block goes in, and `place_block` sets the
block's text (shrinking it when it does not fit) and tries random positions until one is inside the
margins and clear of the blocks already placed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from ..core import geometry as geo
from ..core.config import FloatRange, IntRange, RecipeError, StrictModel
from ..core.streams import choose_key, uniform
from .fonts import SEGMENT_FORMS
from .surface import Bend, Cylinder, bend
from .text import GeneratedLine
from .typeset import TypesetLine, extent, typeset

MIN_HEIGHT_PX = 6.0


class EncodingConfig(StrictModel):
    """How each page is encoded in the dataset."""

    format: Literal["png", "jpeg"] = Field("png", description="png (lossless) or jpeg")
    quality: int = Field(95, ge=1, le=100, description="jpeg quality, 1-100 (ignored for png)")


class CanvasConfig(StrictModel):
    """The page: 8-bit grayscale, like an industrial line camera."""

    width: int = Field(1600, ge=64, le=8192, description="image width in pixels")
    height: int = Field(1200, ge=64, le=8192, description="image height in pixels")
    encoding: EncodingConfig = Field(default_factory=EncodingConfig)


class TypographyConfig(StrictModel):
    """Size and spacing of the characters, drawn per block."""

    height_px: FloatRange(6, 1000) = Field(
        (28.0, 72.0), description="character height in pixels (height of the digit 0, about the capital height)")
    char_gap: FloatRange(-0.5, 3.0) = Field(
        (-0.03, 0.25), description="extra space between characters (tracking), in character heights; may be negative")
    aspect: FloatRange(0.3, 3.0) = Field((0.8, 1.25), description="horizontal stretch of the text (1 = as designed)")
    stroke_px: IntRange(0, 20) = Field((0, 0), description="extra outline width in pixels (bolder strokes)")
    slant: FloatRange(-30.0, 30.0) = Field(
        (0.0, 0.0), description="italic lean of the characters in degrees (positive leans right), drawn per block; "
                                "LCD and LED digits lean about 5-12 degrees. [0, 0] draws nothing")
    segment_forms: dict[Literal[tuple(SEGMENT_FORMS)], Annotated[float, Field(ge=0.0, le=1.0)]] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="chance per block that a seven-segment font (dseg7) draws each "
                                          "alternative digit form: tailless_7 (7 without its upper-left segment), "
                                          "tailless_6 (no top segment), tailless_9 (no bottom segment); "
                                          "{} draws nothing")
    line_spacing: FloatRange(1.0, 5.0) = Field(
        (1.35, 1.8), description="baseline-to-baseline distance between lines, in character heights")


class Region(StrictModel):
    """A named area of the page, as fractions of its width and height."""

    x: FloatRange(0.0, 1.0) = Field((0.0, 1.0), description="[left, right] as fractions of the width")
    y: FloatRange(0.0, 1.0) = Field((0.0, 1.0), description="[top, bottom] as fractions of the height")
    weight: float = Field(1.0, gt=0, description="relative chance of placing a block here")

    @model_validator(mode="after")
    def _has_area(self):
        if self.x[1] - self.x[0] < 0.02 or self.y[1] - self.y[0] < 0.02:
            raise ValueError("a region must span at least 2% of the width and of the height")
        return self


class LayoutConfig(StrictModel):
    """Where the text blocks go."""

    blocks: IntRange(1, 50) = Field((1, 2), description="number of text blocks per page")
    regions: dict[str, Region] = Field(
        default_factory=dict, description="named areas a block is placed in, drawn by weight; none = anywhere")
    alignment: dict[Literal["left", "center", "right"], float] = Field(
        default_factory=lambda: {"left": 2.0, "center": 1.0, "right": 0.5},
        description="weights of the line alignments within a block")
    rotation: FloatRange(-180, 180) = Field((-4.0, 4.0), description="block rotation in degrees (counter-clockwise)")
    perspective: FloatRange(0.0, 0.15) = Field(
        (0.0, 0.03), description="camera tilt: how far each image corner may move, as a fraction of the image size")
    margin_px: int = Field(12, ge=0, le=1000, description="minimum distance from text to the image border")
    block_gap_px: int = Field(24, ge=0, le=1000, description="minimum distance between two blocks")
    attempts: int = Field(60, ge=1, le=10000, description="random placements tried per block before it shrinks")
    empty_pages: float = Field(
        0.0, ge=0, le=1, allow_inf_nan=False,
        description="probability that a page has no text at all (background, camera and effects only: negatives "
                    "for a text detector); counted as empty_pages in the manifest")

    @model_validator(mode="after")
    def _weights(self):
        if self.alignment and sum(self.alignment.values()) <= 0:
            raise ValueError("alignment weights must have a positive sum")
        if not self.alignment:
            raise ValueError("alignment needs at least one of left, center, right")
        return self


class PlacementError(RecipeError):
    """A page on which no text block could be placed: the recipe's text is too large for its page."""


def aabb(quad: np.ndarray) -> np.ndarray:
    return np.array([quad[:, 0].min(), quad[:, 1].min(), quad[:, 0].max(), quad[:, 1].max()])


def overlaps(box: np.ndarray, others: list[np.ndarray], gap: float) -> bool:
    return any(box[0] < o[2] + gap and o[0] < box[2] + gap and box[1] < o[3] + gap and o[1] < box[3] + gap
               for o in others)


def camera(canvas: CanvasConfig, layout: LayoutConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The page's camera tilt: (homography, strength); the identity when it moves no corner by half a pixel."""
    W, H = canvas.width, canvas.height
    strength = uniform(rng, layout.perspective)
    shift = rng.uniform(-1, 1, size=(4, 2)) * strength * np.array([W, H])
    if strength * max(W, H) < 0.5:  # under half a pixel: not worth resampling the background
        return np.eye(3), 0.0
    return geo.camera_tilt(W, H, shift), strength


def region_box(canvas: CanvasConfig, layout: LayoutConfig, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """(name, x0 y0 x1 y1 in pixels) of the area a block goes in: a region drawn by weight, or the page."""
    W, H, m = canvas.width, canvas.height, layout.margin_px
    regions = layout.regions
    if not regions:
        return "anywhere", np.array([m, m, W - m, H - m], dtype=np.float64)
    name = choose_key(rng, {n: r.weight for n, r in regions.items()})
    r = regions[name]
    box = np.array([r.x[0] * W, r.y[0] * H, r.x[1] * W, r.y[1] * H])
    return name, np.clip(box, [m, m, m, m], [W - m, H - m, W - m, H - m])


@dataclass
class Placement:
    H: np.ndarray  # block frame -> page (camera tilt included)
    box: np.ndarray  # axis-aligned page box of the block's extent
    position: tuple[float, float]
    bend: Bend | None = None  # the block's cylinder at the size it was set (None: flat)


def place_block(lines: list[GeneratedLine], font, dot_style: dict | None, height: float, aspect: float,
                gap_em: float, stroke: int, spacing: float, align: str, angle: float, rbox: np.ndarray,
                G: np.ndarray, canvas: CanvasConfig, typo: TypographyConfig, lay: LayoutConfig,
                placed_boxes: list[np.ndarray], rng: np.random.Generator, typeset_rng: np.random.Generator,
                slant: float = 0.0, forms: dict | None = None,
                cylinder: Cylinder | None = None) -> tuple[Placement | None, list[TypesetLine], float]:
    """Set a block and find it a place: (placement or None, its typeset lines, the height it was set at).

    Text too large for its region is shrunk (never below typography.height_px min); each size gets
    `layout.attempts` random positions, and a crowded page shrinks it further. Positions are drawn from `rng`
    (the block's layout stream), the glyphs' own draws (dot jitter) from `typeset_rng`. On a `cylinder`, the
    margins and the other blocks are kept clear of the bent block.
    """
    W, Hh = canvas.width, canvas.height
    placement = None
    for _shrink in range(8):
        set_lines = typeset(lines, font, dot_style, height, aspect, gap_em * height, stroke, spacing, align,
                            typeset_rng, slant, forms)
        ex0, ey0, ex1, ey1 = extent(set_lines)
        cx, cy = (ex0 + ex1) / 2, (ey0 + ey1) / 2
        curve = bend(cylinder, (ex0, ey0, ex1, ey1), height) if cylinder is not None else None
        if curve is not None:
            ex0, ey0, ex1, ey1 = curve.extent(set_lines)
        local = geo.rotate(angle) @ geo.translate(-cx, -cy)
        lq = geo.apply(local, geo.rect_quad(ex0, ey0, ex1, ey1))
        lx0, ly0, lx1, ly1 = aabb(lq)
        room = min((rbox[2] - rbox[0]) / (lx1 - lx0), (rbox[3] - rbox[1]) / (ly1 - ly0))
        smallest = max(typo.height_px[0], MIN_HEIGHT_PX)  # never below the recipe's range
        if room < 1.0 and height > smallest:
            height = max(height * room * 0.9, smallest)
            continue
        for _attempt in range(lay.attempts):
            px = uniform(rng, (rbox[0] - lx0, max(rbox[2] - lx1, rbox[0] - lx0)))
            py = uniform(rng, (rbox[1] - ly0, max(rbox[3] - ly1, rbox[1] - ly0)))
            H = G @ geo.translate(px, py) @ local
            quad = geo.apply(H, geo.rect_quad(ex0, ey0, ex1, ey1))
            box = aabb(quad)
            m = lay.margin_px
            if box[0] < m or box[1] < m or box[2] > W - m or box[3] > Hh - m:
                continue
            if overlaps(box, placed_boxes, lay.block_gap_px):
                continue
            placement = Placement(H, box, (px, py), curve)
            break
        crowded_floor = max(typo.height_px[0], MIN_HEIGHT_PX)
        if placement is not None or height <= crowded_floor:
            break
        height = max(height * 0.8, crowded_floor)  # crowded page: smaller text, not below the recipe's minimum
    return placement, set_lines, height
