"""The effects as plain functions of an image and drawn parameters: what each transform's `apply` does.

Pure and deterministic: the same image and parameters give the same pixels (the parameters are the
provenance an effects record holds). `transforms.py` draws the parameters; these apply them.
"""
from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Callable

import cv2
import numpy as np



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



def apply_frame_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Blurred copy of the whole image: a Gaussian of standard deviation `sigma` px, edges reflected."""
    return _each_channel(img, lambda channel: cv2.GaussianBlur(channel, (0, 0), float(sigma),
                                                               borderType=cv2.BORDER_REFLECT_101))
