"""The recipe's `effects` section: which post-effects, how often and how strong.

The ranges of the custom effects are the transforms' own bounds (transforms.py), so a recipe accepts exactly
what the transform does.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from ...core.config import FloatRange, IntRange, StrictModel
from .transforms import (CAMERA_NOISE_BOUNDS, DEFAULT_BLUR_KINDS, FRAME_BLUR_BOUNDS, HIGHLIGHT_BOUNDS,
                         PARTIAL_BLUR_BOUNDS, VIGNETTING_BOUNDS, BlurKind)

Probability = Annotated[float, Field(ge=0, le=1)]


class HighlightsConfig(StrictModel):
    """Reflections of lights on shiny surfaces (blobs and streaks) on random areas."""

    p: Probability = Field(0.3, description="chance that an image gets reflections (0 disables)")
    count: IntRange(*HIGHLIGHT_BOUNDS["count_range"]) = Field((1, 3), description="number of reflections per image")
    intensity: FloatRange(*HIGHLIGHT_BOUNDS["intensity_range"]) = Field((60, 200), description="light added at a reflection's core, gray levels")
    size: FloatRange(*HIGHLIGHT_BOUNDS["size_range"]) = Field(
        (0.05, 0.35), description="blob length / streak width scale, fraction of the image's shorter side")
    streak_p: Probability = Field(0.3, description="chance that a reflection is a long streak rather than a blob")


class PartialBlurConfig(StrictModel):
    """An off-focus area: gaussian, defocus or motion blur inside a soft-edged ellipse."""

    p: Probability = Field(0.3, description="chance that an image gets a blurred area (0 disables)")
    kinds: dict[BlurKind, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: dict(DEFAULT_BLUR_KINDS),
        description="relative weights of the blur kinds: gaussian, defocus, motion")
    sigma: FloatRange(*PARTIAL_BLUR_BOUNDS["sigma_range"]) = Field((1, 4), description="blur strength, kernel standard deviation in pixels")
    area: FloatRange(*PARTIAL_BLUR_BOUNDS["area_range"]) = Field((0.1, 0.5), description="blurred area, fraction of the image area")
    feather: FloatRange(*PARTIAL_BLUR_BOUNDS["feather_range"]) = Field((0.2, 0.6), description="soft edge width, fraction of the ellipse's size")

    @field_validator("kinds")
    @classmethod
    def _some_kind(cls, kinds: dict[str, float]) -> dict[str, float]:
        if not kinds or sum(kinds.values()) <= 0:
            raise ValueError("give at least one blur kind (gaussian, defocus, motion) a positive weight")
        return kinds


class BlurConfig(StrictModel):
    """The whole frame out of focus (a Gaussian blur of the entire page); `fit` sets it from real crops."""

    p: Probability = Field(0.0, description="chance that an image is blurred as a whole (0 disables)")
    sigma: FloatRange(*FRAME_BLUR_BOUNDS["sigma_range"]) = Field((0.5, 2.0), description="blur strength, kernel standard deviation in pixels")


class NoiseConfig(StrictModel):
    """Camera sensor noise on the whole image."""

    p: Probability = Field(0.8, description="chance that an image gets noise (0 disables)")
    gaussian_sigma: FloatRange(*CAMERA_NOISE_BOUNDS["gaussian_sigma_range"]) = Field((2, 8), description="read noise standard deviation, gray levels")
    shot: FloatRange(*CAMERA_NOISE_BOUNDS["shot_gain_range"]) = Field(
        (0, 0.5), description="shot noise gain: variance = shot * intensity (0.5 gives std 11 at white)")
    salt_pepper: FloatRange(*CAMERA_NOISE_BOUNDS["salt_pepper_range"]) = Field((0, 0.002), description="fraction of pixels set to black or white")


class ToneConfig(StrictModel):
    """Global brightness, contrast and gamma changes (exposure and camera tone curve)."""

    p: Probability = Field(0.5, description="chance that an image gets a tone change (0 disables)")
    brightness: FloatRange(-1, 1) = Field((-0.15, 0.15), description="brightness shift, fraction of white")
    contrast: FloatRange(-1, 1) = Field((-0.2, 0.2), description="contrast change, fraction (0 keeps it)")
    gamma: FloatRange(0.2, 5) = Field((0.8, 1.25), description="gamma exponent (1 keeps it, >1 darkens midtones)")


class VignettingConfig(StrictModel):
    """Lens vignetting: darker corners."""

    p: Probability = Field(0.3, description="chance that an image gets vignetting (0 disables)")
    strength: FloatRange(*VIGNETTING_BOUNDS["strength_range"]) = Field((0.1, 0.4), description="fraction of brightness lost in the corners")


class JpegConfig(StrictModel):
    """JPEG compression artefacts."""

    p: Probability = Field(0.2, description="chance that an image is JPEG-compressed (0 disables)")
    quality: IntRange(1, 100) = Field((40, 90), description="JPEG quality")


class EffectsConfig(StrictModel):
    """Post-effects on the finished page, each applied to a random share of the images."""

    highlights: HighlightsConfig = Field(default_factory=HighlightsConfig, description="light reflections")
    partial_blur: PartialBlurConfig = Field(default_factory=PartialBlurConfig, description="off-focus area")
    blur: BlurConfig = Field(default_factory=BlurConfig, description="whole frame out of focus")
    noise: NoiseConfig = Field(default_factory=NoiseConfig, description="camera sensor noise")
    tone: ToneConfig = Field(default_factory=ToneConfig, description="brightness, contrast and gamma")
    vignetting: VignettingConfig = Field(default_factory=VignettingConfig, description="darker corners")
    jpeg: JpegConfig = Field(default_factory=JpegConfig, description="JPEG artefacts")
    min_legibility: float = Field(
        3.0, ge=0.0, le=100.0, allow_inf_nan=False,
        description="Least legibility of every character once the effects are applied (the per-character rule "
                    "of colour.min_legibility, measured against the text-free page through the same effects); a "
                    "page whose effects wash out, blur or drown a character under it gets its effects drawn "
                    "again, up to 3 draws in all, and keeps the least damaging one; characters still under it "
                    "are listed in the block's below_floor. 0 = off.")
