"""Recipe sections for the page geometry: canvas, typography and block layout."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .schema import FloatRange, IntRange, StrictModel


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
