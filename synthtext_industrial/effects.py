"""Post-effects applied to the finished page: what the camera and the scene do to a clean render.

Real line-camera photos of product codes show light reflections on metal, plastic or film,
parts of the image out of focus, sensor noise, tone shifts, lens vignetting and JPEG artefacts.
Like published industrial OCR systems, we post-process the synthetic images with these effects,
each on a random share of the images and, for the local ones, on random areas.

The effects are albumentations 2.0.8 transforms so that users can also put them in their own
`A.Compose` (for real photos with bboxes/keypoints, which they leave unchanged) and trainers can
reuse them for online augmentation. The custom transforms follow albumentations' conventions:
init arguments validated by a nested `InitSchema`, parameters sampled in
`get_params_dependent_on_data` from `self.random_generator` into plain values, and a pure
`apply(img, **params)` so the parameters are the effect's provenance. Where albumentations has
a fitting transform (brightness/contrast, gamma, JPEG) we use it as is.
"""
from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Annotated, Any, Callable, Literal

import albumentations as A
import cv2
import numpy as np
from albumentations.core.composition import BaseCompose
from albumentations.core.pydantic import check_range_bounds, nondecreasing
from albumentations.core.transforms_interface import BaseTransformInitSchema, ImageOnlyTransform
from pydantic import AfterValidator, Field, field_validator

from .schema import FloatRange, IntRange, StrictModel, child_seed, choose_key

BlurKind = Literal["gaussian", "defocus", "motion"]
_DEFAULT_BLUR_KINDS = {"gaussian": 1.0, "defocus": 1.0, "motion": 1.0}

# cv2.setRNGSeed takes a C int.
_CV2_SEED_LIMIT = 2**31 - 1


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _check_uint8(img: np.ndarray) -> None:
    if img.dtype != np.uint8:
        raise TypeError(f"synthtext_industrial effects work on uint8 images, got {img.dtype}")


def _each_channel(img: np.ndarray, func: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a single-channel function to an HxW, HxWx1 or HxWxC image, same parameters for every channel."""
    _check_uint8(img)
    if img.ndim == 2:
        return func(img)
    channels = [func(np.ascontiguousarray(img[..., c])) for c in range(img.shape[2])]
    return np.stack(channels, axis=-1)


def _clipped_box(cx: float, cy: float, half_w: float, half_h: float, height: int, width: int):
    """Integer box (x0, y0, x1, y1) around a centre, clipped to the image; None when empty."""
    x0, x1 = max(0, int(math.floor(cx - half_w))), min(width, int(math.ceil(cx + half_w)) + 1)
    y0, y1 = max(0, int(math.floor(cy - half_h))), min(height, int(math.ceil(cy + half_h)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def _rotated_extent(half_u: float, half_v: float, angle_deg: float) -> tuple[float, float]:
    """Half width and half height of the axis-aligned box around a rotated rectangle."""
    c, s = abs(math.cos(math.radians(angle_deg))), abs(math.sin(math.radians(angle_deg)))
    return half_u * c + half_v * s, half_u * s + half_v * c


_MAX_PATCH_SAMPLES = 256


def _rotated_profile(box, cx: float, cy: float, angle_deg: float, half_u: float, half_v: float,
                     step_u: float, step_v: float,
                     profile: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """A smooth profile(u, v) drawn into `box` (float32, box-sized), 0 where it was not evaluated.

    u runs along the axis rotated by angle_deg and v across it, in pixels from (cx, cy); the profile
    must have faded to ~0 at |u| = half_u and |v| = half_v. It is evaluated on a small grid in the
    rotated frame (step_u, step_v pixels apart) and warped into the box: smooth shapes lose nothing
    and this is 10-100x cheaper than evaluating every pixel.
    """
    step_u = max(step_u, 2 * half_u / (_MAX_PATCH_SAMPLES - 1))
    step_v = max(step_v, 2 * half_v / (_MAX_PATCH_SAMPLES - 1))
    n_u, n_v = int(math.ceil(2 * half_u / step_u)) + 1, int(math.ceil(2 * half_v / step_v)) + 1
    us = ((np.arange(n_u, dtype=np.float32) - (n_u - 1) / 2) * step_u)[None, :]
    vs = ((np.arange(n_v, dtype=np.float32) - (n_v - 1) / 2) * step_v)[:, None]
    patch = profile(us, vs).astype(np.float32)
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    x0, y0, x1, y1 = box
    mid_u, mid_v = (n_u - 1) / 2 * step_u, (n_v - 1) / 2 * step_v
    # patch (column i, row j) -> box pixel: centre + u * (c, s) + v * (-s, c)
    matrix = np.array([
        [step_u * c, -step_v * s, cx - x0 - mid_u * c + mid_v * s],
        [step_u * s, step_v * c, cy - y0 - mid_u * s - mid_v * c],
    ])
    return cv2.warpAffine(patch, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# ---------------------------------------------------------------------------------------------
# Highlight: specular reflections
# ---------------------------------------------------------------------------------------------

_HALO_SCALE = 2.0  # the soft glow around a reflection is this many times wider than its core
_HALO_WEIGHT = 0.25
_LIGHT_FLOOR = 0.02  # light below this share of the peak is dropped, so a reflection ends without an edge
_HALO_REACH = 4.5  # in core sigmas, where core + halo falls to _LIGHT_FLOOR
_STREAK_REACH = 1.7  # in half lengths, where a streak's flat-topped falloff exp(-x**4 / 2) falls to _LIGHT_FLOOR


def _core_and_halo(r2: np.ndarray) -> np.ndarray:
    """Reflection falloff over squared normalised radius: a bright core plus a wide faint glow."""
    return (1 - _HALO_WEIGHT) * np.exp(-0.5 * r2) + _HALO_WEIGHT * np.exp(-0.5 / _HALO_SCALE**2 * r2)


def _highlight_light(spec: dict, height: int, width: int):
    """Added light (gray levels) of one reflection and the box it covers (None when off the image)."""
    sigma_u, sigma_v = spec["length"] / 4, spec["width"] / 4
    half_v = _HALO_REACH * sigma_v
    if spec["kind"] == "blob":
        half_u, step_u = _HALO_REACH * sigma_u, sigma_u / 2

        def falloff(u, v):
            return _core_and_halo((u / sigma_u) ** 2 + (v / sigma_v) ** 2)
    else:
        half_length = spec["length"] / 2
        half_u, step_u = _STREAK_REACH * half_length, half_length / 16

        def falloff(u, v):
            # A long flat-topped band with soft ends, like the reflection of a tube light.
            return _core_and_halo((v / sigma_v) ** 2) * np.exp(-0.5 * (u / half_length) ** 4)

    def profile(u, v):
        return np.maximum(falloff(u, v) - _LIGHT_FLOOR, 0) * (spec["intensity"] / (1 - _LIGHT_FLOOR))

    half_w, half_h = _rotated_extent(half_u, half_v, spec["angle"])
    box = _clipped_box(spec["cx"], spec["cy"], half_w, half_h, height, width)
    if box is None:
        return None, None
    light = _rotated_profile(box, spec["cx"], spec["cy"], spec["angle"], half_u, half_v, step_u, sigma_v / 2, profile)
    return light, box


def apply_highlights(img: np.ndarray, highlights: list[dict]) -> np.ndarray:
    """Add reflections to a copy of the image; the sensor clips them to white where they are strong."""
    def one_channel(channel: np.ndarray) -> np.ndarray:
        out = channel.copy()
        height, width = out.shape
        for spec in highlights:
            light, box = _highlight_light(spec, height, width)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            out[y0:y1, x0:x1] = cv2.add(out[y0:y1, x0:x1], light, dtype=cv2.CV_8U)
        return out

    return _each_channel(img, one_channel)


class Highlight(ImageOnlyTransform):
    """Specular reflection of lights on metal, plastic or film: soft blobs and long streaks.

    Light is added to the image (brightening that clips to white in strong cores), on random
    areas: `count_range` reflections per image, each a soft elliptical blob or, with
    probability `streak_p`, a long soft band like the reflection of a tube light.

    Args:
        count_range: how many reflections an image gets.
        intensity_range: light added at a reflection's core, in gray levels.
        size_range: blob length (long axis) and streak width scale, as a fraction of the
            image's shorter side. A streak is 0.1-0.3 of that wide and 0.6-1.5 times the longer side long.
        streak_p: chance that a reflection is a streak rather than a blob.
        p: chance that an image gets reflections.

    Targets: image, volume. Image types: uint8, HxW / HxWx1 / HxWxC.
    """

    class InitSchema(BaseTransformInitSchema):
        count_range: Annotated[
            tuple[int, int], AfterValidator(check_range_bounds(1, 50)), AfterValidator(nondecreasing)
        ]
        intensity_range: Annotated[
            tuple[float, float], AfterValidator(check_range_bounds(0, 255)), AfterValidator(nondecreasing)
        ]
        size_range: Annotated[
            tuple[float, float],
            AfterValidator(check_range_bounds(0, 2, min_inclusive=False)),
            AfterValidator(nondecreasing),
        ]
        streak_p: float = Field(ge=0, le=1)

    def __init__(
        self,
        count_range: tuple[int, int] = (1, 3),
        intensity_range: tuple[float, float] = (60, 200),
        size_range: tuple[float, float] = (0.05, 0.35),
        streak_p: float = 0.3,
        p: float = 0.5,
    ):
        super().__init__(p=p)
        self.count_range = count_range
        self.intensity_range = intensity_range
        self.size_range = size_range
        self.streak_p = streak_p

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        rng = self.random_generator
        shorter, longer = min(height, width), max(height, width)
        highlights = []
        for _ in range(int(rng.integers(self.count_range[0], self.count_range[1] + 1))):
            size = float(rng.uniform(*self.size_range)) * shorter
            if rng.random() < self.streak_p:
                kind, length = "streak", float(rng.uniform(0.6, 1.5)) * longer
                width_px = size * float(rng.uniform(0.1, 0.3))
            else:
                kind, length = "blob", size
                width_px = size * float(rng.uniform(0.3, 1.0))
            highlights.append({
                "kind": kind,
                "cx": float(rng.uniform(0, width)),
                "cy": float(rng.uniform(0, height)),
                "length": length,
                "width": max(width_px, 2.0),
                "angle": float(rng.uniform(0, 180)),
                "intensity": float(rng.uniform(*self.intensity_range)),
            })
        return {"highlights": highlights}

    def apply(self, img: np.ndarray, highlights: list[dict], **params: Any) -> np.ndarray:
        return apply_highlights(img, highlights)


# ---------------------------------------------------------------------------------------------
# PartialBlur: an off-focus region
# ---------------------------------------------------------------------------------------------


def _defocus_kernel(radius: float) -> np.ndarray:
    """Anti-aliased disk: the image of a point through an out-of-focus lens."""
    half = int(math.ceil(radius))
    ys, xs = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    kernel = np.clip(radius + 0.5 - np.sqrt(xs * xs + ys * ys), 0, 1)
    return kernel / kernel.sum()


def _motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Anti-aliased line: the image of a point moving during the exposure."""
    half = int(math.ceil(length / 2)) + 1
    canvas = np.zeros((2 * half + 1, 2 * half + 1), np.uint8)  # cv2 anti-aliases lines on uint8 only
    dx, dy = length / 2 * math.cos(math.radians(angle_deg)), length / 2 * math.sin(math.radians(angle_deg))
    p0 = (round((half - dx) * 16), round((half - dy) * 16))  # 1/16-pixel precision (shift=4)
    p1 = (round((half + dx) * 16), round((half + dy) * 16))
    cv2.line(canvas, p0, p1, 255, 1, cv2.LINE_AA, 4)
    kernel = canvas.astype(np.float32)
    return kernel / kernel.sum()


def _blur_radius(params: dict) -> float:
    """How far the blur reaches, in pixels."""
    sigma = params["sigma"]
    return {"gaussian": 3 * sigma, "defocus": 2 * sigma, "motion": math.sqrt(3) * sigma}[params["kind"]]


_MAX_KERNEL_RADIUS = 4  # larger kernels are applied on a downscaled copy (cv2.filter2D gets 5-10x slower)


def _blur(roi: np.ndarray, params: dict) -> np.ndarray:
    """Blurred copy of a region.

    Strong blurs run on a copy downscaled so that the kernel radius stays small, then are scaled
    back: the blur removes the detail the downscale loses, and it is 10x faster.
    """
    scale = max(1, math.ceil(_blur_radius(params) / _MAX_KERNEL_RADIUS))
    height, width = roi.shape
    work = roi if scale == 1 else cv2.resize(
        roi, (math.ceil(width / scale), math.ceil(height / scale)), interpolation=cv2.INTER_AREA)
    sigma = params["sigma"] / scale
    if params["kind"] == "gaussian":
        blurred = cv2.GaussianBlur(work, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    else:
        if params["kind"] == "defocus":
            kernel = _defocus_kernel(2 * sigma)  # a disk of radius 2*sigma has standard deviation sigma
        else:
            kernel = _motion_kernel(2 * math.sqrt(3) * sigma, params["motion_angle"])  # a line of std sigma
        blurred = cv2.filter2D(work, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    if scale == 1:
        return blurred
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)


def apply_partial_blur(img: np.ndarray, params: dict) -> np.ndarray:
    """Blur a feathered elliptical area of a copy of the image; only a padded box around it is processed."""
    semi_major, semi_minor, feather = params["semi_major"], params["semi_minor"], params["feather"]
    outer = 1 + feather / 2  # the mask fades from 1 at radius 1 - feather/2 to 0 at 1 + feather/2

    def mask_profile(u, v):
        radius = np.sqrt((u / semi_major) ** 2 + (v / semi_minor) ** 2)
        t = np.clip((outer - radius) / feather, 0, 1)
        return t * t * (3 - 2 * t)

    def one_channel(channel: np.ndarray) -> np.ndarray:
        height, width = channel.shape
        half_w, half_h = _rotated_extent(semi_major * outer, semi_minor * outer, params["angle"])
        box = _clipped_box(params["cx"], params["cy"], half_w, half_h, height, width)
        if box is None:
            return channel.copy()
        x0, y0, x1, y1 = box
        pad = int(math.ceil(_blur_radius(params))) + 1
        px0, py0, px1, py1 = max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad)
        blurred = _blur(channel[py0:py1, px0:px1], params)
        blurred = np.ascontiguousarray(blurred[y0 - py0:y1 - py0, x0 - px0:x1 - px0])
        weight = _rotated_profile(box, params["cx"], params["cy"], params["angle"],
                                  semi_major * outer, semi_minor * outer,
                                  feather * semi_major / 6, feather * semi_minor / 6, mask_profile)
        out = channel.copy()
        out[y0:y1, x0:x1] = cv2.blendLinear(blurred, channel[y0:y1, x0:x1], weight, 1 - weight)
        return out

    return _each_channel(img, one_channel)


class PartialBlur(ImageOnlyTransform):
    """An off-focus area: gaussian, defocus (disk) or motion blur inside a feathered ellipse.

    Args:
        kind_weights: relative chance of each blur kind (gaussian, defocus, motion), drawn over the
            kinds in sorted order: the key order of the mapping (or of a YAML round trip) never matters.
        sigma_range: blur strength as the kernel's standard deviation in pixels (a defocus disk of
            radius 2*sigma, a motion streak of length 3.5*sigma).
        area_range: area of the blurred ellipse as a fraction of the image area.
        feather_range: width of the soft edge as a fraction of the ellipse's semi-axes.
        p: chance that an image gets a blurred area.

    Targets: image, volume. Image types: uint8, HxW / HxWx1 / HxWxC.
    """

    class InitSchema(BaseTransformInitSchema):
        kind_weights: dict[BlurKind, float] | None
        sigma_range: Annotated[
            tuple[float, float],
            AfterValidator(check_range_bounds(0, 50, min_inclusive=False)),
            AfterValidator(nondecreasing),
        ]
        area_range: Annotated[
            tuple[float, float],
            AfterValidator(check_range_bounds(0, 1, min_inclusive=False)),
            AfterValidator(nondecreasing),
        ]
        feather_range: Annotated[
            tuple[float, float],
            AfterValidator(check_range_bounds(0, 1, min_inclusive=False)),
            AfterValidator(nondecreasing),
        ]

        @field_validator("kind_weights")
        @classmethod
        def _positive_weights(cls, weights: dict[str, float] | None) -> dict[str, float]:
            if weights is None:
                return dict(_DEFAULT_BLUR_KINDS)
            if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"kind weights must be >= 0 with a positive sum, got {weights}")
            return weights

    def __init__(
        self,
        kind_weights: dict[BlurKind, float] | None = None,
        sigma_range: tuple[float, float] = (1, 4),
        area_range: tuple[float, float] = (0.1, 0.5),
        feather_range: tuple[float, float] = (0.2, 0.6),
        p: float = 0.5,
    ):
        super().__init__(p=p)
        self.kind_weights = kind_weights
        self.sigma_range = sigma_range
        self.area_range = area_range
        self.feather_range = feather_range

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        rng = self.random_generator
        kind = choose_key(rng, self.kind_weights)  # sorted kinds: any key order, and A.save/A.load, draw alike
        aspect = float(rng.uniform(0.4, 1.0))
        area = float(rng.uniform(*self.area_range)) * height * width
        semi_major = math.sqrt(area / (math.pi * aspect))
        return {
            "kind": kind,
            "sigma": float(rng.uniform(*self.sigma_range)),
            "motion_angle": float(rng.uniform(0, 180)),
            "cx": float(rng.uniform(0, width)),
            "cy": float(rng.uniform(0, height)),
            "semi_major": semi_major,
            "semi_minor": semi_major * aspect,
            "angle": float(rng.uniform(0, 180)),
            "feather": float(rng.uniform(*self.feather_range)),
        }

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return apply_partial_blur(img, params)


# ---------------------------------------------------------------------------------------------
# CameraNoise: sensor read noise, shot noise, salt and pepper
# ---------------------------------------------------------------------------------------------


_NOISE_ROWS = 64  # noise is made in bands of rows that stay in the CPU cache: 1.5x faster than whole images


def apply_camera_noise(img: np.ndarray, gaussian_sigma: float, shot_gain: float, salt_pepper: float,
                       seed: int) -> np.ndarray:
    """Noisy copy of the image; per-pixel variance = gaussian_sigma**2 + shot_gain * intensity.

    Shot noise (poisson) is approximated by gaussian noise scaled by sqrt(intensity). Uses cv2's
    RNG (3x faster than numpy's at 1600x1200), seeded from `seed` right before use. The unit noise
    of the last seed and shape is kept (per thread): the renderer puts the text-free page through
    the same effects right after the page, and drawing the noise again was a tenth of a page's time.
    """
    _check_uint8(img)
    flat = img.reshape(img.shape[0], -1)  # every value gets its own noise, whatever the channels
    out = np.empty_like(flat)
    count = int(round(salt_pepper * out.size))
    unit, positions, fresh = _unit_noise(int(seed), flat.shape, count)
    scaled = np.empty((min(_NOISE_ROWS, flat.shape[0]), flat.shape[1]), np.float32)
    std = np.empty_like(scaled)
    std_lut = np.sqrt(gaussian_sigma**2 + shot_gain * np.arange(256)).astype(np.float32).reshape(1, 256)
    if fresh:
        cv2.setRNGSeed(int(seed))
    for top in range(0, flat.shape[0], _NOISE_ROWS):
        rows = flat[top:top + _NOISE_ROWS]
        band_unit, band_scaled, band_std = unit[top:top + _NOISE_ROWS], scaled[:len(rows)], std[:len(rows)]
        if fresh:
            cv2.randn(band_unit, 0.0, 1.0)
        cv2.LUT(rows, std_lut, dst=band_std)
        cv2.multiply(band_unit, band_std, dst=band_scaled)
        cv2.add(rows, band_scaled, dst=out[top:top + _NOISE_ROWS], dtype=cv2.CV_8U)
    if count:
        if fresh:
            cv2.randu(positions, 0, out.size)
        values = out.reshape(-1)
        values[positions[: count // 2, 0]] = 0
        values[positions[count // 2:, 0]] = 255
    _NOISE.key = (int(seed), flat.shape, count)
    return out.reshape(img.shape)


_NOISE = threading.local()  # the last unit noise field and salt-and-pepper positions drawn in this thread


def _unit_noise(seed: int, shape: tuple[int, int], count: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(unit noise buffer, salt-and-pepper positions buffer, whether they must be drawn) for this draw."""
    if getattr(_NOISE, "key", None) == (seed, shape, count):
        return _NOISE.unit, _NOISE.positions, False
    _NOISE.key = None  # until the buffers hold this draw
    if getattr(_NOISE, "unit", None) is None or _NOISE.unit.shape != shape:
        _NOISE.unit = np.empty(shape, np.float32)
    _NOISE.positions = np.empty((count, 1), np.int32)
    return _NOISE.unit, _NOISE.positions, True


class CameraNoise(ImageOnlyTransform):
    """Image sensor noise: gaussian read noise, signal-dependent shot noise, salt-and-pepper pixels.

    Args:
        gaussian_sigma_range: standard deviation of the read noise, in gray levels.
        shot_gain_range: shot noise gain: its variance is gain * intensity (gray levels), so 0.5
            gives a standard deviation of 11 at white.
        salt_pepper_range: fraction of pixels set to black or white.
        p: chance that an image gets noise.

    Targets: image, volume. Image types: uint8, any number of channels (independent noise per channel).
    """

    class InitSchema(BaseTransformInitSchema):
        gaussian_sigma_range: Annotated[
            tuple[float, float], AfterValidator(check_range_bounds(0, 100)), AfterValidator(nondecreasing)
        ]
        shot_gain_range: Annotated[
            tuple[float, float], AfterValidator(check_range_bounds(0, 20)), AfterValidator(nondecreasing)
        ]
        salt_pepper_range: Annotated[
            tuple[float, float], AfterValidator(check_range_bounds(0, 0.5)), AfterValidator(nondecreasing)
        ]

    def __init__(
        self,
        gaussian_sigma_range: tuple[float, float] = (2, 8),
        shot_gain_range: tuple[float, float] = (0, 0.5),
        salt_pepper_range: tuple[float, float] = (0, 0.002),
        p: float = 0.5,
    ):
        super().__init__(p=p)
        self.gaussian_sigma_range = gaussian_sigma_range
        self.shot_gain_range = shot_gain_range
        self.salt_pepper_range = salt_pepper_range

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        rng = self.random_generator
        return {
            "gaussian_sigma": float(rng.uniform(*self.gaussian_sigma_range)),
            "shot_gain": float(rng.uniform(*self.shot_gain_range)),
            "salt_pepper": float(rng.uniform(*self.salt_pepper_range)),
            "seed": int(rng.integers(0, _CV2_SEED_LIMIT)),
        }

    def apply(self, img: np.ndarray, gaussian_sigma: float, shot_gain: float, salt_pepper: float, seed: int,
              **params: Any) -> np.ndarray:
        return apply_camera_noise(img, gaussian_sigma, shot_gain, salt_pepper, seed)


# ---------------------------------------------------------------------------------------------
# Vignetting: lens falloff towards the corners
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _radial_map(height: int, width: int) -> np.ndarray:
    """Squared distance from the image centre, 1 at the corners (read-only, cached per size)."""
    ys = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / (height / 2)
    xs = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / (width / 2)
    aspect = width / height  # distances in pixels, not in fractions of each side
    radial = (xs[None, :] ** 2 * aspect**2 + ys[:, None] ** 2) / (aspect**2 + 1)
    radial.flags.writeable = False
    return radial


def apply_vignetting(img: np.ndarray, strength: float) -> np.ndarray:
    """Darkened copy: gain 1 at the centre falling to 1 - strength at the corners."""
    def one_channel(channel: np.ndarray) -> np.ndarray:
        radial = _radial_map(*channel.shape)
        gain = cv2.addWeighted(radial, -float(strength), radial, 0.0, 1.0)
        return cv2.multiply(channel, gain, dtype=cv2.CV_8U)

    return _each_channel(img, one_channel)


class Vignetting(ImageOnlyTransform):
    """Lens vignetting: brightness falls off smoothly from the centre to the corners.

    Args:
        strength_range: fraction of brightness lost in the corners.
        p: chance that an image gets vignetting.

    Targets: image, volume. Image types: uint8, HxW / HxWx1 / HxWxC.
    """

    class InitSchema(BaseTransformInitSchema):
        strength_range: Annotated[
            tuple[float, float], AfterValidator(check_range_bounds(0, 1)), AfterValidator(nondecreasing)
        ]

    def __init__(self, strength_range: tuple[float, float] = (0.1, 0.4), p: float = 0.5):
        super().__init__(p=p)
        self.strength_range = strength_range

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return {"strength": float(self.random_generator.uniform(*self.strength_range))}

    def apply(self, img: np.ndarray, strength: float, **params: Any) -> np.ndarray:
        return apply_vignetting(img, strength)


# ---------------------------------------------------------------------------------------------
# Recipe section and pipeline
# ---------------------------------------------------------------------------------------------

Probability = Annotated[float, Field(ge=0, le=1)]


class HighlightsConfig(StrictModel):
    """Reflections of lights on shiny surfaces (blobs and streaks) on random areas."""

    p: Probability = Field(0.3, description="chance that an image gets reflections (0 disables)")
    count: IntRange(1, 50) = Field((1, 3), description="number of reflections per image")
    intensity: FloatRange(0, 255) = Field((60, 200), description="light added at a reflection's core, gray levels")
    size: FloatRange(0.001, 2) = Field(
        (0.05, 0.35), description="blob length / streak width scale, fraction of the image's shorter side")
    streak_p: Probability = Field(0.3, description="chance that a reflection is a long streak rather than a blob")


class PartialBlurConfig(StrictModel):
    """An off-focus area: gaussian, defocus or motion blur inside a soft-edged ellipse."""

    p: Probability = Field(0.3, description="chance that an image gets a blurred area (0 disables)")
    kinds: dict[BlurKind, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: dict(_DEFAULT_BLUR_KINDS),
        description="relative weights of the blur kinds: gaussian, defocus, motion")
    sigma: FloatRange(0.1, 50) = Field((1, 4), description="blur strength, kernel standard deviation in pixels")
    area: FloatRange(0.001, 1) = Field((0.1, 0.5), description="blurred area, fraction of the image area")
    feather: FloatRange(0.01, 1) = Field((0.2, 0.6), description="soft edge width, fraction of the ellipse's size")

    @field_validator("kinds")
    @classmethod
    def _some_kind(cls, kinds: dict[str, float]) -> dict[str, float]:
        if not kinds or sum(kinds.values()) <= 0:
            raise ValueError("give at least one blur kind (gaussian, defocus, motion) a positive weight")
        return kinds


class NoiseConfig(StrictModel):
    """Camera sensor noise on the whole image."""

    p: Probability = Field(0.8, description="chance that an image gets noise (0 disables)")
    gaussian_sigma: FloatRange(0, 100) = Field((2, 8), description="read noise standard deviation, gray levels")
    shot: FloatRange(0, 20) = Field(
        (0, 0.5), description="shot noise gain: variance = shot * intensity (0.5 gives std 11 at white)")
    salt_pepper: FloatRange(0, 0.5) = Field((0, 0.002), description="fraction of pixels set to black or white")


class ToneConfig(StrictModel):
    """Global brightness, contrast and gamma changes (exposure and camera tone curve)."""

    p: Probability = Field(0.5, description="chance that an image gets a tone change (0 disables)")
    brightness: FloatRange(-1, 1) = Field((-0.15, 0.15), description="brightness shift, fraction of white")
    contrast: FloatRange(-1, 1) = Field((-0.2, 0.2), description="contrast change, fraction (0 keeps it)")
    gamma: FloatRange(0.2, 5) = Field((0.8, 1.25), description="gamma exponent (1 keeps it, >1 darkens midtones)")


class VignettingConfig(StrictModel):
    """Lens vignetting: darker corners."""

    p: Probability = Field(0.3, description="chance that an image gets vignetting (0 disables)")
    strength: FloatRange(0, 1) = Field((0.1, 0.4), description="fraction of brightness lost in the corners")


class JpegConfig(StrictModel):
    """JPEG compression artefacts."""

    p: Probability = Field(0.2, description="chance that an image is JPEG-compressed (0 disables)")
    quality: IntRange(1, 100) = Field((40, 90), description="JPEG quality")


class EffectsConfig(StrictModel):
    """Post-effects on the finished page, each applied to a random share of the images."""

    highlights: HighlightsConfig = Field(default_factory=HighlightsConfig, description="light reflections")
    partial_blur: PartialBlurConfig = Field(default_factory=PartialBlurConfig, description="off-focus area")
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


def build_effects(cfg: EffectsConfig) -> A.Compose:
    """The effects pipeline of a recipe, in the order light meets the camera: scene, lens, sensor, ISP."""
    tone = cfg.tone
    return A.Compose(
        [
            Highlight(count_range=cfg.highlights.count, intensity_range=cfg.highlights.intensity,
                      size_range=cfg.highlights.size, streak_p=cfg.highlights.streak_p, p=cfg.highlights.p),
            PartialBlur(kind_weights=cfg.partial_blur.kinds, sigma_range=cfg.partial_blur.sigma,
                        area_range=cfg.partial_blur.area, feather_range=cfg.partial_blur.feather,
                        p=cfg.partial_blur.p),
            Vignetting(strength_range=cfg.vignetting.strength, p=cfg.vignetting.p),
            CameraNoise(gaussian_sigma_range=cfg.noise.gaussian_sigma, shot_gain_range=cfg.noise.shot,
                        salt_pepper_range=cfg.noise.salt_pepper, p=cfg.noise.p),
            A.Sequential(
                [
                    A.RandomBrightnessContrast(brightness_limit=tone.brightness, contrast_limit=tone.contrast, p=1),
                    A.RandomGamma(gamma_limit=(tone.gamma[0] * 100, tone.gamma[1] * 100), p=1),
                ],
                p=tone.p,
            ),
            A.ImageCompression(compression_type="jpeg", quality_range=cfg.jpeg.quality, p=cfg.jpeg.p),
        ],
        save_applied_params=True,
    )


def _reseed(transform: A.BasicTransform | BaseCompose, rng: np.random.Generator) -> None:
    """Give every transform its own seed from rng.

    `Compose.set_random_seed` gives all transforms the SAME seed, so their draws (including whether
    they apply) would be identical; seeding each one separately keeps them independent.
    """
    seed = child_seed(rng)
    if not isinstance(transform, BaseCompose):
        transform.set_random_seed(seed)
        return
    # a transform's own seeding (seed, numpy and python generators) on the compose itself: Compose's own
    # method would also seed every child, only for the loop below to reseed it
    A.BasicTransform.set_random_seed(transform, seed)
    for child in transform.transforms:
        _reseed(child, rng)


def _plain(value: Any) -> Any:
    """Parameters as plain python values (provenance records are saved as JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def apply_effects(pipeline: A.Compose, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Run the effects pipeline on one image; the result depends only on the image and the rng state.

    Returns the new image and a record {effect name: its parameters} of the effects that were applied,
    in application order (this turns on the pipeline's `save_applied_params`; a name seen twice gets
    a suffix `_2`, `_3`, ...).
    """
    _reseed(pipeline, rng)
    pipeline.save_applied_params = True
    result = pipeline(image=image)
    record: dict[str, dict] = {}
    for name, params in result.get("applied_transforms", []):
        key, n = name, 1
        while key in record:
            n += 1
            key = f"{name}_{n}"
        record[key] = _plain({k: v for k, v in params.items() if k != "shape"})
    return result["image"], record
