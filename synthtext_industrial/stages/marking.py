"""Marking styles: how placed characters become a mark on the product surface.

The glyph renderer decides WHERE the characters are (an antialiased coverage map,
which is also the ground-truth mask and is never changed here). This module
decides what the mark looks like there, in the ways factories mark products:
ink printed on top (inkjet, thermal transfer), a laser-annealed tone change, or
relief with no ink at all (emboss, stamp, engrave), lit from one side.

Ink styles pick their gray level against the surface under the text (local mean
minus or plus a contrast) and switch polarity when the drawn one would be
clipped below the minimum contrast (dark ink on a black part, say), as a line
engineer would pick a ribbon or ink that can be read.

Work is confined to the bounding box of the coverage, padded by how far a style
reaches (relief shading: 2 px; laser halo: twice its radius), so the cost is the
same on any image size.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Optional, Sequence, Union

import cv2
import numpy as np
from pydantic import Field, model_validator

from ..core.config import FloatRange, IntRange, StrictModel
from ..core.streams import choose, integer, uniform
from .legibility import CharInk, chars_legibility, texture_sigma

MARK_PAD = 12  # marking styles may touch pixels this close to the ink (halo, relief shading)
LEGIBILITY_STEPS = 3  # tries to strengthen a faint mark; what is still under the floor keeps its measured value
POLARITIES = ("dark_on_light", "light_on_dark")
INK_KINDS = ("inkjet", "thermal", "laser")
RELIEF_KINDS = ("emboss", "stamp", "engrave")

RELIEF_GAIN = 110.0  # gray levels of shading per unit slope of the height map (height 0..1 = depth 1)
RELIEF_REACH = 2  # px: relief shading never extends further than this beyond the footprint
MAX_HALO_RADIUS = 5.0  # px; a laser halo reaches at most twice this beyond the strokes
NOISE_CELL = 40  # px: scale of the low-frequency density / intensity variation

# 3x3 Sobel derivatives scaled to "change per pixel"; cv2.filter2D correlates, so these give +d/dx, +d/dy.
_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32) / 8.0
_SOBEL_Y = _SOBEL_X.T.copy()
_REACH_KERNEL = np.ones((2 * RELIEF_REACH + 1, 2 * RELIEF_REACH + 1), dtype=np.uint8)


class _Style(StrictModel):
    """Fields every style has; unknown fields are reported with the fields the kind allows."""

    weight: float = Field(1.0, gt=0, description="Relative chance that a block is drawn in this style.")

    @model_validator(mode="before")
    @classmethod
    def _only_known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                kind = cls.model_fields["kind"].default
                allowed = ", ".join(cls.model_fields)
                raise ValueError(f"unknown field(s) {', '.join(unknown)} for kind {kind!r}; "
                                 f"allowed fields: {allowed}")
        return data


class InkjetStyle(_Style):
    """Printed ink (continuous inkjet / drop-on-demand on packaging)."""

    kind: Literal["inkjet"] = "inkjet"
    opacity: FloatRange(0.0, 1.0) = Field((0.85, 1.0), description="Ink opacity at full coverage.")
    density_variation: FloatRange(0.0, 1.0) = Field(
        (0.0, 0.2), description="Depth of the slow ink-density fluctuation: density varies from 1 minus this to 1.")
    contrast: Optional[FloatRange(0.0, 255.0)] = Field(
        None, description="Gray levels between ink and surface; overrides colour.contrast when set.")


class ThermalStyle(_Style):
    """Thermal-transfer label printing: crisp, nearly opaque, sometimes with print-head streaks."""

    kind: Literal["thermal"] = "thermal"
    opacity: FloatRange(0.0, 1.0) = Field((0.93, 1.0), description="Ribbon opacity at full coverage.")
    density_variation: FloatRange(0.0, 1.0) = Field(
        (0.0, 0.08), description="Depth of the slow density fluctuation: density varies from 1 minus this to 1.")
    streak_chance: float = Field(0.3, ge=0.0, le=1.0, description="Chance that the print head leaves streaks.")
    streaks: IntRange(1, 20) = Field((1, 3), description="Number of streaks when there are any.")
    streak_width: IntRange(1, 10) = Field((1, 2), description="Streak width in px (a weak or dead head element).")
    streak_strength: FloatRange(0.0, 1.0) = Field(
        (0.3, 0.9), description="Fraction of the ink density a streak removes (1 = no ink at all).")
    print_direction: Literal["horizontal", "vertical", "random"] = Field(
        "horizontal", description="Direction the label moves under the head; streaks run along it.")
    contrast: Optional[FloatRange(0.0, 255.0)] = Field(
        None, description="Gray levels between ink and surface; overrides colour.contrast when set.")


class LaserStyle(_Style):
    """Laser-etched / annealed marks on metal or plastic: a low-contrast tone change that keeps the texture."""

    kind: Literal["laser"] = "laser"
    mark: Literal["dark", "light", "random"] = Field(
        "random", description="Tone of the mark; random follows colour.polarity.")
    contrast: Optional[FloatRange(0.0, 255.0)] = Field(
        (20.0, 70.0), description="Gray levels between mark and surface (lower than ink); null = colour.contrast.")
    unevenness: FloatRange(0.0, 1.0) = Field(
        (0.05, 0.3), description="Depth of the slow intensity fluctuation along the mark.")
    halo: FloatRange(0.0, 1.0) = Field(
        (0.0, 0.5), description="Strength of the heat-affected band around the strokes, as a fraction of the contrast.")
    halo_radius: FloatRange(1.0, MAX_HALO_RADIUS) = Field(
        (2.0, 4.0), description="Width of the halo in px; it fades out at twice this distance from the strokes.")


class _ReliefStyle(_Style):
    light_angle: FloatRange(-360.0, 720.0) = Field(
        (0.0, 360.0), description="Direction the light comes from, degrees: 0 = from the right, 90 = from the top.")
    depth: FloatRange(0.0, 10.0) = Field(
        (0.6, 1.5), description="Relief strength: at 1 a sharp edge is shaded by about 50 gray levels, a soft one "
                                 "(edge_softness 1.5) by about 30.")


class EmbossStyle(_ReliefStyle):
    """Raised characters (embossed sheet, moulded plastic): bright on the side facing the light."""

    kind: Literal["emboss"] = "emboss"
    edge_softness: FloatRange(0.3, 3.0) = Field((0.8, 1.6), description="Blur sigma of the relief edges, px.")


class StampStyle(_ReliefStyle):
    """Characters pressed into the surface (dot-peen / stamping dies): recessed with soft edges."""

    kind: Literal["stamp"] = "stamp"
    edge_softness: FloatRange(0.3, 3.0) = Field((1.0, 2.0), description="Blur sigma of the relief edges, px.")


class EngraveStyle(_ReliefStyle):
    """Characters cut into the surface (milled / scribed): recessed, sharp edges, darker groove floor."""

    kind: Literal["engrave"] = "engrave"
    edge_softness: FloatRange(0.3, 3.0) = Field((0.4, 0.7), description="Blur sigma of the relief edges, px.")
    floor_darkening: FloatRange(0.0, 255.0) = Field(
        (5.0, 25.0), description="Gray levels the groove floor is darker than the surface.")


MarkingStyle = Annotated[
    Union[InkjetStyle, ThermalStyle, LaserStyle, EmbossStyle, StampStyle, EngraveStyle],
    Field(discriminator="kind"),
]


class PolarityWeights(StrictModel):
    """Relative chances of a dark mark on a light surface and of a light mark on a dark one."""

    dark_on_light: float = Field(0.7, ge=0.0, description="Weight of dark marks on a lighter surface.")
    light_on_dark: float = Field(0.3, ge=0.0, description="Weight of light marks on a darker surface.")

    @model_validator(mode="after")
    def _some_weight(self) -> "PolarityWeights":
        if self.dark_on_light + self.light_on_dark <= 0:
            raise ValueError("polarity weights must not both be 0; give dark_on_light or light_on_dark a positive weight")
        return self


class ColourConfig(StrictModel):
    """How ink styles choose their gray level against the surface under the text."""

    polarity: PolarityWeights = Field(default_factory=PolarityWeights, description="Dark-vs-light mark weights.")
    contrast: FloatRange(0.0, 255.0) = Field(
        (50.0, 170.0), description="Gray levels between the mark and the mean surface under it; the minimum is also "
                                   "the least contrast a polarity must reach before the other one is used.")
    min_legibility: float = Field(
        8.0, ge=0.0, le=100.0, allow_inf_nan=False,
        description="Least legibility of every character right after marking: the 10th percentile over its ink of "
                    "the visible change at (ink) or beside (relief) each ink pixel, over the std of its "
                    "surroundings' fine texture. Weaker marks are strengthened; ink that clips changes polarity "
                    "and relief lit along its strokes gets a diagonal light. 0 = off.")


def sample_marking(styles: Sequence[MarkingStyle], colour: ColourConfig, rng: np.random.Generator) -> dict:
    """Draw one style (by weight) and all of its parameters; the record is the block's provenance."""
    styles = list(styles) or [InkjetStyle()]
    style = choose(rng, styles, [s.weight for s in styles])
    record: dict[str, Any] = {"kind": style.kind}
    if isinstance(style, InkjetStyle):
        record["opacity"] = uniform(rng, style.opacity)
        record["density_variation"] = uniform(rng, style.density_variation)
        record.update(_sample_ink(colour, style.contrast, None, rng))
    elif isinstance(style, ThermalStyle):
        record["opacity"] = uniform(rng, style.opacity)
        record["density_variation"] = uniform(rng, style.density_variation)
        direction = style.print_direction
        if direction == "random":
            direction = choose(rng, ["horizontal", "vertical"])
        record["print_direction"] = direction
        count = integer(rng, style.streaks) if rng.random() < style.streak_chance else 0
        record["streaks"] = [
            {"position": float(rng.random()), "width": integer(rng, style.streak_width),
             "strength": uniform(rng, style.streak_strength)}
            for _ in range(count)
        ]
        record.update(_sample_ink(colour, style.contrast, None, rng))
    elif isinstance(style, LaserStyle):
        record["unevenness"] = uniform(rng, style.unevenness)
        record["halo"] = uniform(rng, style.halo)
        record["halo_radius"] = uniform(rng, style.halo_radius)
        forced = {"dark": "dark_on_light", "light": "light_on_dark", "random": None}[style.mark]
        record.update(_sample_ink(colour, style.contrast, forced, rng))
    else:
        record["light_angle"] = uniform(rng, style.light_angle) % 360.0
        record["depth"] = uniform(rng, style.depth)
        record["edge_softness"] = uniform(rng, style.edge_softness)
        if isinstance(style, EngraveStyle):
            record["floor_darkening"] = uniform(rng, style.floor_darkening)
    return record


def _sample_ink(colour: ColourConfig, contrast_override: tuple[float, float] | None, polarity: str | None,
                rng: np.random.Generator) -> dict:
    contrast_range = contrast_override if contrast_override is not None else colour.contrast
    if polarity is None:
        polarity = choose(rng, POLARITIES, [colour.polarity.dark_on_light, colour.polarity.light_on_dark])
    return {"polarity": polarity, "contrast": uniform(rng, contrast_range), "min_contrast": float(contrast_range[0])}


def resolve_colour(image: np.ndarray, coverage: np.ndarray, params: dict) -> dict:
    """Fix an ink record's gray level against this background; returns a new record.

    Adds `local_mean` (mean background under the footprint's bounding box), `ink_level`
    and `achieved_contrast`, and replaces `polarity` with the other one when clipping
    to [0, 255] would leave less than `min_contrast` and the other does better.
    Call it before `apply_marking` to keep the final colour in the sample's record.
    Relief records have no colour and come back as an unchanged copy.
    """
    if params["kind"] not in INK_KINDS:
        return dict(params)
    x, y, w, h = cv2.boundingRect(coverage)
    if w == 0:
        local_mean = float(cv2.mean(image)[0])
    else:
        local_mean = float(cv2.mean(image[y:y + h, x:x + w])[0])
    contrast = params["contrast"]

    def ink_for(polarity: str) -> float:
        level = local_mean - contrast if polarity == "dark_on_light" else local_mean + contrast
        return min(255.0, max(0.0, level))

    polarity = params["polarity"]
    ink_level = ink_for(polarity)
    if abs(ink_level - local_mean) < params["min_contrast"]:
        other = POLARITIES[1 - POLARITIES.index(polarity)]
        if abs(ink_for(other) - local_mean) > abs(ink_level - local_mean):
            polarity, ink_level = other, ink_for(other)
    return {**params, "polarity": polarity, "local_mean": local_mean, "ink_level": ink_level,
            "achieved_contrast": abs(ink_level - local_mean)}


MAX_STRENGTHEN = 4.0  # per step; a few steps reach any floor a recipe allows


def strengthen(params: dict, factor: float) -> dict:
    """The same mark `factor` times stronger: more contrast for ink and laser, deeper relief."""
    stronger = dict(params)
    if params["kind"] in INK_KINDS:
        stronger["contrast"] = min(params["contrast"] * factor, 255.0)
    else:
        stronger["depth"] = params["depth"] * factor
        if "floor_darkening" in params:
            stronger["floor_darkening"] = min(params["floor_darkening"] * factor, 255.0)
    return stronger


def apply_marking(image: np.ndarray, coverage: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Composite the mark described by `params` where `coverage` says the characters are."""
    if image.shape != coverage.shape or image.ndim != 2 or image.dtype != np.uint8 or coverage.dtype != np.uint8:
        raise ValueError(f"image and coverage must be HxW uint8 of the same shape, got {image.shape} {image.dtype} "
                         f"and {coverage.shape} {coverage.dtype}")
    kind = params["kind"]
    if kind not in INK_KINDS + RELIEF_KINDS:
        raise ValueError(f"unknown marking kind {kind!r}; expected one of {', '.join(INK_KINDS + RELIEF_KINDS)}")
    marked = image.copy()
    x, y, w, h = cv2.boundingRect(coverage)
    if w == 0:
        return marked
    if kind in INK_KINDS and "ink_level" not in params:
        params = resolve_colour(image, coverage, params)

    pad = _reach(params) + 2  # margin so blurs see the true surroundings rather than a reflected border
    rows, cols = image.shape
    y0, y1, x0, x1 = max(0, y - pad), min(rows, y + h + pad), max(0, x - pad), min(cols, x + w + pad)
    surface = image[y0:y1, x0:x1].astype(np.float32)
    cover = coverage[y0:y1, x0:x1].astype(np.float32) * np.float32(1.0 / 255.0)

    if kind == "inkjet":
        result = _ink(surface, params, _density(cover, params, rng))
    elif kind == "thermal":
        result = _ink(surface, params, _streaked(_density(cover, params, rng), params))
    elif kind == "laser":
        result = _laser(surface, cover, params, rng)
    else:
        result = _relief(surface, cover, params)

    np.clip(result, 0.0, 255.0, out=result)
    result += 0.5
    marked[y0:y1, x0:x1] = result.astype(np.uint8)
    return marked


def _reach(params: dict) -> int:
    """How far (px) beyond the footprint a style may change pixels."""
    if params["kind"] == "laser":
        return 2 * _halo_px(params["halo_radius"])
    if params["kind"] in RELIEF_KINDS:
        return RELIEF_REACH
    return 0


def _halo_px(radius: float) -> int:
    return max(1, int(round(radius)))


def _smooth_noise(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Low-frequency field in [0, 1]: a coarse random grid upsampled smoothly."""
    rows, cols = shape
    grid = rng.random((rows // NOISE_CELL + 2, cols // NOISE_CELL + 2), dtype=np.float32)
    field = cv2.resize(grid, (cols, rows), interpolation=cv2.INTER_CUBIC)
    return np.clip(field, 0.0, 1.0, out=field)


def _density(cover: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Ink alpha: coverage x opacity x a slow density fluctuation between 1 - variation and 1."""
    alpha = _smooth_noise(cover.shape, rng)
    alpha *= np.float32(-params["density_variation"])
    alpha += np.float32(1.0)
    alpha *= cover
    alpha *= np.float32(params["opacity"])
    return alpha


def _streaked(alpha: np.ndarray, params: dict) -> np.ndarray:
    """Thin lines along the print direction where a weak head element left less ink."""
    across = alpha.shape[0] if params["print_direction"] == "horizontal" else alpha.shape[1]
    for streak in params["streaks"]:
        start = int(streak["position"] * (across - 1))
        lines = slice(start, start + streak["width"])
        keep = np.float32(1.0 - streak["strength"])
        if params["print_direction"] == "horizontal":
            alpha[lines, :] *= keep
        else:
            alpha[:, lines] *= keep
    return alpha


def _ink(surface: np.ndarray, params: dict, alpha: np.ndarray) -> np.ndarray:
    """Opaque-ish ink over the surface: surface * (1 - alpha) + ink * alpha."""
    ink = np.float32(params["ink_level"])
    return surface + (ink - surface) * alpha


def _laser(surface: np.ndarray, cover: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """A tone shift (texture stays visible) with uneven strength and a soft halo around the strokes."""
    strength = _smooth_noise(cover.shape, rng)
    strength *= np.float32(-params["unevenness"])
    strength += np.float32(1.0)
    strength *= cover
    if params["halo"] > 0:
        radius = _halo_px(params["halo_radius"])
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        band = cv2.dilate(cover, disc)
        band = cv2.GaussianBlur(band, (2 * radius + 1, 2 * radius + 1), radius / 2.0)
        band *= np.float32(params["halo"])
        np.maximum(strength, band, out=strength)
    shift = np.float32(params["ink_level"] - params["local_mean"])
    return surface + strength * shift


def _relief(surface: np.ndarray, cover: np.ndarray, params: dict) -> np.ndarray:
    """Shade the slopes of a height map (blurred coverage) lit from `light_angle`; no ink colour."""
    sigma = params["edge_softness"]
    radius = 1 if sigma < 0.75 else RELIEF_REACH
    height = cv2.GaussianBlur(cover, (2 * radius + 1, 2 * radius + 1), sigma)
    angle = math.radians(params["light_angle"])
    # Slope towards the light; image y points down, so "from the top" is -y.
    towards_light = (math.cos(angle) * _SOBEL_X - math.sin(angle) * _SOBEL_Y).astype(np.float32)
    slope = cv2.filter2D(height, -1, towards_light)
    # A raised surface faces the light where its height falls towards the light; a recess the opposite.
    sign = -1.0 if params["kind"] == "emboss" else 1.0
    near = cv2.dilate((cover > 0).view(np.uint8), _REACH_KERNEL)
    slope *= near
    slope *= np.float32(sign * RELIEF_GAIN * params["depth"])
    result = surface + slope
    if params["kind"] == "engrave":
        result -= cover * np.float32(params["floor_darkening"])
    return result


# ----------------------------------------------------------------------------- a legible mark

def nearest_diagonal(angle: float) -> float:
    """The diagonal light direction (45, 135, 225 or 315 degrees) nearest `angle`: it shades edges of every
    orientation, where light along a stroke shades none of it."""
    return (45.0 + 90.0 * round((angle - 45.0) / 90.0)) % 360.0


def legible_mark(surface: np.ndarray, coverage: np.ndarray, chars: list[CharInk], marking: dict, floor: float,
                  height: float, rng: np.random.Generator) -> tuple[dict, np.ndarray, list[float]]:
    """Mark the surface so that every character is legible (`legibility.char_legibility` >= floor).

    A faint mark is strengthened (more contrast, deeper relief). When strengthening stops helping, the cause
    is not strength: ink that clips against its surface (dark ink on black) changes polarity, and relief lit
    along its strokes gets its light turned to the nearest diagonal. Returns the record (with `legibility`,
    the weakest character's score, and `adjusted`, what was changed), the marked surface and every
    character's score.
    """
    sigma = texture_sigma(height)
    relief = marking["kind"] in RELIEF_KINDS
    marking = resolve_colour(surface, coverage, marking)
    marked = apply_marking(surface, coverage, marking, rng)
    scores = chars_legibility(surface, marked, chars, relief, sigma)
    adjusted: list[str] = []
    previous = None
    for _step in range(LEGIBILITY_STEPS if floor > 0 else 0):
        weakest = min(scores, default=np.inf)
        if weakest >= floor:
            break
        # One part gone while the rest is clear, or strengthening no longer helping: the cause is not strength.
        structural = weakest < 0.25 * float(np.median(scores))
        stalled = previous is not None and weakest <= 1.1 * previous
        candidate = _other_cause(marking, adjusted) if structural or stalled else None
        if candidate is None:
            if stalled:
                break
            factor = min(1.1 * floor / max(weakest, 0.25), MAX_STRENGTHEN)  # a little over: clipping, relief
            candidate = {**strengthen(marking, factor), "_adjustment": "strengthened"}
        adjusted.append(candidate.pop("_adjustment"))
        previous = weakest
        marking = resolve_colour(surface, coverage, candidate)
        marked = apply_marking(surface, coverage, marking, rng)
        scores = chars_legibility(surface, marked, chars, relief, sigma)
    weakest = min(scores, default=np.inf)
    record = {**marking, "legibility": round(float(weakest), 3) if np.isfinite(weakest) else None}
    if adjusted:
        record["adjusted"] = adjusted
    return record, marked, scores


def _other_cause(marking: dict, adjusted: list[str]) -> dict | None:
    """The one change that is not strength: ink of the other polarity, or relief lit from a diagonal."""
    kind = marking["kind"]
    if kind in ("inkjet", "thermal") and "polarity_flipped" not in adjusted:
        other = POLARITIES[1 - POLARITIES.index(marking["polarity"])]
        return {**marking, "polarity": other, "_adjustment": "polarity_flipped"}
    if kind in RELIEF_KINDS and "light_turned" not in adjusted:
        return {**marking, "light_angle": nearest_diagonal(marking["light_angle"]), "_adjustment": "light_turned"}
    return None
