"""The product surface every code is marked on: a crop of a product photo or a procedural material.

Photos give real-world texture; procedural materials give unlimited variety at no disk cost.
Both compete by weight in one draw per sample. Photos are decoded once per process and cached;
materials build their low-frequency structure (tone, mottling, illumination) at quarter
resolution, finer texture at half resolution, and take full-resolution grain straight from the
sample's rng as raw bytes (8x cheaper than cv2.randn, and no cv2 global RNG state), so each one
stays well within 12 ms at 1600x1200 on one core.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import cv2
import numpy as np
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from ..core.assets import bundled_dir
from ..core.config import FloatRange, StrictModel, resolve_path
from ..core.streams import choose, integer, uniform

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
BUNDLED = "bundled"

# Flat, undistorted parts of the bundled texture atlases, as (x0, y0, x1, y1) fractions of the
# photo's width and height. The rest of an atlas holds seams, stretched edge pixels, printed
# text or holes, none of which looks like a product surface.
ATLAS_FLAT_REGIONS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "polyhaven_cardboard_box_01_diff_1k_ATLAS.jpg": (
        (0.43, 0.41, 0.54, 0.46),
        (0.785, 0.30, 0.87, 0.38),
        (0.645, 0.73, 0.74, 0.80),
        (0.38, 0.78, 0.46, 0.85),
        (0.735, 0.43, 0.81, 0.49),
        (0.36, 0.47, 0.42, 0.555),
    ),
    "polyhaven_metal_tool_chest_diff_1k_ATLAS.jpg": (
        (0.01, 0.45, 0.365, 0.60),
        (0.005, 0.79, 0.365, 0.995),
        (0.39, 0.645, 0.57, 0.99),
        (0.63, 0.645, 0.775, 0.99),
    ),
}

_LOW_RES_FACTOR = 4  # low-frequency structure is computed at 1/4 of the output resolution


# --------------------------------------------------------------------------- shared helpers


def _low_shape(width: int, height: int) -> tuple[int, int]:
    return max(2, -(-height // _LOW_RES_FACTOR)), max(2, -(-width // _LOW_RES_FACTOR))


def _half_shape(width: int, height: int) -> tuple[int, int]:
    return max(2, height // 2), max(2, width // 2)


def _std(field: np.ndarray) -> float:
    """Standard deviation, estimated on every 4th pixel of large fields (plenty for noise, 16x cheaper)."""
    if min(field.shape) >= 64:
        field = np.ascontiguousarray(field[::4, ::4])
    return max(float(cv2.meanStdDev(field)[1][0, 0]), 1e-6)


_BYTE_STD = 73.9  # standard deviation of uniform int8 noise


def _uniform_bytes(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Uniform int8 noise: the raw 64-bit output of `rng`'s generator cut into bytes.

    8x faster than cv2.randn, and blurred or as fine grain it looks the same as Gaussian noise.
    """
    count = shape[0] * shape[1]
    return rng.bit_generator.random_raw(-(-count // 8)).view(np.int8)[:count].reshape(shape)


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean float32 noise of standard deviation `sigma`."""
    return _uniform_bytes(rng, shape).astype(np.float32) * np.float32(sigma / _BYTE_STD)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """A float32 random field of unit standard deviation whose blobs are about `cell` pixels wide.

    Random values on a grid of `cell`-sized squares are smoothed at 4 samples per cell (cheap
    whatever the cell size) and then stretched to `shape`.
    """
    h, w = shape
    grid = rng.standard_normal((max(2, round(h / cell) + 2), max(2, round(w / cell) + 2)), dtype=np.float32)
    fine = cv2.resize(grid, (grid.shape[1] * 4, grid.shape[0] * 4), interpolation=cv2.INTER_LINEAR)
    fine = cv2.GaussianBlur(fine, (0, 0), 1.5)
    field = cv2.resize(fine[2:-2, 2:-2], (w, h), interpolation=cv2.INTER_LINEAR)
    field -= np.float32(cv2.mean(field)[0])
    return field / np.float32(_std(field))


def _illumination(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    """Smooth gain field around 1: a linear falloff plus a soft hotspot, like a lamp off to one side."""
    h, w = shape
    aspect = w / h
    gy, gx = np.mgrid[0:24, 0:32].astype(np.float32)
    gx = (gx / 31 - 0.5) * aspect
    gy = gy / 23 - 0.5
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (gx * math.cos(angle) + gy * math.sin(angle)) * (2 * strength * rng.uniform(0.4, 1.0))
    cx, cy = rng.uniform(-0.6, 0.6) * aspect, rng.uniform(-0.6, 0.6)
    radius = rng.uniform(0.3, 0.9)
    spot = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * radius * radius))
    gain = 1 + ramp + strength * rng.uniform(0.3, 1.0) * (spot - spot.mean())
    return cv2.resize(gain.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _base(rng: np.random.Generator, width: int, height: int, level: tuple[float, float],
          lighting: tuple[float, float], mottle: tuple[float, float] = (0.0, 0.0),
          mottle_cell: tuple[float, float] = (20, 50)) -> np.ndarray:
    """Low-resolution tone of a surface: its grey level under uneven light, plus optional mottling."""
    low_shape = _low_shape(width, height)
    low = _illumination(rng, low_shape, rng.uniform(*lighting)) * np.float32(rng.uniform(*level))
    if mottle[1] > 0:
        low += _smooth_noise(rng, low_shape, rng.uniform(*mottle_cell)) * np.float32(rng.uniform(*mottle))
    return low


def _upscale(field: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)


def _half_res_base(low: np.ndarray, width: int, height: int) -> np.ndarray:
    """The low-resolution tone stretched to half resolution, where finer texture is added.

    Everything is summed at half resolution and upscaled once: each full-resolution float
    image costs about 1 ms (memory), more than the texture itself.
    """
    h, w = _half_shape(width, height)
    return _upscale(low, w, h)


def _streaks(rng: np.random.Generator, width: int, height: int, horizontal: bool, shrink: int,
             length: float, amplitude: float) -> np.ndarray:
    """Noise smeared along one axis: the marks left by brushing or grinding.

    Computed on the output grid shrunk `shrink` times along the streaks (they are long anyway);
    `length` is in output pixels.
    """
    if horizontal:
        shape, kernel = (height, max(2, width // shrink)), (max(1, round(length / shrink)), 1)
    else:
        shape, kernel = (max(2, height // shrink), width), (1, max(1, round(length / shrink)))
    # two box blurs make a triangle kernel whose output std is sigma * sqrt(2 / (3 k))
    noise = _noise(rng, shape, amplitude * math.sqrt(1.5 * max(kernel)))
    return cv2.blur(cv2.blur(noise, kernel), kernel)


def _half_res_noise(rng: np.random.Generator, width: int, height: int, feature: float) -> np.ndarray:
    """Unit-std float32 noise with blobs about `feature` output pixels wide, at half the output resolution."""
    shape = _half_shape(width, height)
    if feature >= 12:  # a wide blur at half resolution would cost more than a coarse grid
        return _smooth_noise(rng, shape, feature / 2)
    noise = cv2.GaussianBlur(_noise(rng, shape, 1.0), (0, 0), max(0.4, feature / 4))
    return noise / np.float32(_std(noise))


def _relief(rng: np.random.Generator, width: int, height: int, feature: float, amplitude: float) -> np.ndarray:
    """A bumpy surface (moulded grain, orange peel) lit from one side: the slope of a random height map.

    Returned at half resolution.
    """
    height_map = _half_res_noise(rng, width, height, feature)
    angle = rng.uniform(0, 2 * math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    kernel = np.array([[0, -dy, 0], [-dx, 0, dx], [0, dy, 0]], np.float32)
    shading = cv2.filter2D(height_map, -1, kernel)
    shading *= np.float32(amplitude / _std(shading))
    return shading


def _reflections(rng: np.random.Generator, low_shape: tuple[int, int], count: int,
                 amplitude: tuple[float, float], half_width: tuple[float, float]) -> np.ndarray:
    """Soft bright bands, nearly parallel: mirror images of tube lamps or windows on a curved glossy part."""
    lh, lw = low_shape
    gy, gx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    axis = rng.uniform(0, math.pi)
    bands = np.zeros(low_shape, np.float32)
    for _ in range(count):
        angle = axis + rng.uniform(-0.08, 0.08)
        across = gx * np.float32(math.cos(angle)) + gy * np.float32(math.sin(angle))
        across -= np.float32(rng.uniform(across.min(), across.max()))
        width = rng.uniform(*half_width) * lw
        # one edge sharper than the other, as on a cylinder
        rise = np.clip((across + np.float32(width)) / np.float32(rng.uniform(0.1, 0.6) * width + 2), 0, 1)
        fall = np.clip((np.float32(width) - across) / np.float32(rng.uniform(0.3, 1.5) * width + 2), 0, 1)
        band = np.minimum(rise, fall)
        # brightness drifts slowly along the band
        along = 1 + np.float32(rng.uniform(0.05, 0.25)) * _smooth_noise(rng, low_shape, rng.uniform(60, 150))
        bands += band * along * np.float32(rng.uniform(*amplitude))
    return bands


def _random_segments(rng: np.random.Generator, width: int, height: int, count: int,
                     min_length: float, max_length: float, angle: float | None = None,
                     angle_spread: float = math.pi) -> list[np.ndarray]:
    """Short line segments (fibres, scratches) as int32 point pairs for cv2.polylines."""
    centers = rng.uniform((0, 0), (width, height), size=(count, 2))
    base = rng.uniform(0, math.pi) if angle is None else angle
    angles = base + rng.uniform(-angle_spread / 2, angle_spread / 2, size=count)
    half = rng.uniform(min_length, max_length, size=count) / 2
    offsets = np.stack([np.cos(angles) * half, np.sin(angles) * half], axis=1)
    return list(np.rint(np.stack([centers - offsets, centers + offsets], axis=1)).astype(np.int32))


def _draw_segments(canvas: np.ndarray, segments: list[np.ndarray], value: float, thickness: int = 1) -> None:
    if segments:
        cv2.polylines(canvas, segments, False, float(value), thickness, cv2.LINE_8)


def _specks(rng: np.random.Generator, canvas: np.ndarray, count: int, value: float, max_radius: int) -> None:
    """Dust, inclusions or pits: small round dots on a zero-mean detail canvas (sizes in its pixels)."""
    h, w = canvas.shape
    for x, y, r in zip(rng.integers(0, w, count), rng.integers(0, h, count),
                       rng.integers(0, max_radius + 1, count)):
        cv2.circle(canvas, (int(x), int(y)), int(r), float(value), -1, cv2.LINE_8)


def _density(width: int, height: int, per_megapixel: float) -> int:
    return int(per_megapixel * width * height / 1e6)


def _finish(rng: np.random.Generator, image: np.ndarray, grain_sigma: float) -> np.ndarray:
    """Add full-resolution grain, round and clip to uint8 (one pass over the image)."""
    grain = _uniform_bytes(rng, image.shape)
    return cv2.addWeighted(image, 1.0, grain, grain_sigma / _BYTE_STD, 0.0, dtype=cv2.CV_8U)


# --------------------------------------------------------------------------- materials


def brushed_metal(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Brushed steel/aluminium: fine long streaks and a highlight band across the brushing direction."""
    horizontal = bool(rng.random() < 0.65)
    low = _base(rng, width, height, level=(100, 170), lighting=(0.06, 0.15))
    # anisotropic reflection stretches the lamp's highlight perpendicular to the brushing
    lh, lw = low.shape
    across = np.linspace(-0.5, 0.5, lw if horizontal else lh, dtype=np.float32)
    band = np.exp(-((across - rng.uniform(-0.5, 0.5)) ** 2) / (2 * rng.uniform(0.05, 0.25) ** 2))
    band *= np.float32(rng.uniform(0, 45))
    low += band[None, :] if horizontal else band[:, None]
    field = _streaks(rng, width, height, horizontal, 4, rng.uniform(30, 100), rng.uniform(4, 8))
    # deeper scratches along the brushing, drawn on the streak grid (full resolution across them)
    fh, fw = field.shape
    for value in (rng.uniform(15, 35), -rng.uniform(10, 30)):
        scratches = _random_segments(rng, fw, fh, _density(width, height, rng.uniform(5, 25)),
                                     (fw if horizontal else fh) * 0.05, (fw if horizontal else fh) * 0.4,
                                     0.0 if horizontal else math.pi / 2, 0.03)
        _draw_segments(field, scratches, value)
    long_streaks = _streaks(rng, width, height, horizontal, 16, rng.uniform(300, 900), rng.uniform(5, 10))
    cv2.add(field, _upscale(long_streaks, fw, fh), field)
    cv2.add(field, _upscale(low, fw, fh), field)
    return _finish(rng, _upscale(field, width, height), rng.uniform(0.5, 1.5))


def anodized_aluminium(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Anodized aluminium: even, matte, very fine grain, often a faint trace of the machining underneath."""
    half = _half_res_base(_base(rng, width, height, level=(45, 165), lighting=(0.05, 0.12),
                                mottle=(0.3, 1.2), mottle_cell=(20, 60)), width, height)
    texture = _noise(rng, half.shape, rng.uniform(2.0, 4.0))
    if rng.random() < 0.6:
        length = int(rng.integers(3, 16))
        texture = cv2.blur(texture, (length, 1) if rng.random() < 0.5 else (1, length))
        texture *= np.float32(length ** 0.35)
    cv2.add(half, texture, half)
    return _finish(rng, _upscale(half, width, height), rng.uniform(0.5, 1.5))


def blasted_metal(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Bead- or sand-blasted steel: a dense matte speckle of tiny craters."""
    half = _half_res_base(_base(rng, width, height, level=(105, 185), lighting=(0.06, 0.15),
                                mottle=(0.5, 2.0)), width, height)
    cv2.add(half, _noise(rng, half.shape, rng.uniform(8, 16)), half)
    return _finish(rng, _upscale(half, width, height), rng.uniform(5, 10))


def painted_metal(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Powder-coated or painted sheet: smooth, with orange-peel waviness, dust specks and light scratches."""
    half = _half_res_base(_base(rng, width, height, level=(35, 200), lighting=(0.06, 0.18),
                                mottle=(0.3, 1.5)), width, height)
    detail = _relief(rng, width, height, rng.uniform(10, 24), rng.uniform(1.0, 3.0))
    _specks(rng, detail, _density(width, height, rng.uniform(0, 40)), -rng.uniform(10, 40), 1)
    scratches = _random_segments(rng, detail.shape[1], detail.shape[0],
                                 _density(width, height, rng.uniform(0, 15)), width * 0.005, width * 0.06)
    _draw_segments(detail, scratches, rng.uniform(10, 30))
    cv2.add(half, detail, half)
    return _finish(rng, _upscale(half, width, height), rng.uniform(1.0, 2.0))


def plastic_black(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Black moulded plastic: very dark, smooth, with broad soft reflections of the lamps."""
    low = _base(rng, width, height, level=(16, 42), lighting=(0.1, 0.35))
    low += _reflections(rng, low.shape, int(rng.integers(0, 3)), amplitude=(4, 30), half_width=(0.05, 0.25))
    half = _half_res_base(low, width, height)
    detail = _relief(rng, width, height, rng.uniform(6, 14), rng.uniform(0.3, 1.2))
    _specks(rng, detail, _density(width, height, rng.uniform(0, 30)), rng.uniform(10, 35), 0)
    cv2.add(half, detail, half)
    return _finish(rng, _upscale(half, width, height), rng.uniform(1.0, 1.8))


def plastic_white(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """White moulded plastic: bright, soft (light scatters under the surface), gently shaded."""
    half = _half_res_base(_base(rng, width, height, level=(180, 228), lighting=(0.04, 0.1),
                                mottle=(0.3, 1.0), mottle_cell=(30, 80)), width, height)
    cv2.add(half, _noise(rng, half.shape, rng.uniform(1.5, 3.0)), half)
    return _finish(rng, _upscale(half, width, height), rng.uniform(0.3, 1.0))


def plastic_textured(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Coloured plastic with a moulded (spark-eroded) texture: mid grey, fine stippled relief."""
    half = _half_res_base(_base(rng, width, height, level=(75, 170), lighting=(0.06, 0.15)), width, height)
    cv2.add(half, _relief(rng, width, height, rng.uniform(3, 8), rng.uniform(5, 11)), half)
    return _finish(rng, _upscale(half, width, height), rng.uniform(1.5, 3.0))


def _dust_and_lint(rng: np.random.Generator, layer: np.ndarray, width: int, height: int, specks: tuple,
                   speck_level: tuple, lines: tuple, line_length: tuple, line_level: tuple) -> None:
    """Pale specks and thin fibres/hairlines drawn into `layer` (in place), densities per megapixel of the page."""
    _specks(rng, layer, _density(width, height, rng.uniform(*specks)), rng.uniform(*speck_level), 0)
    segments = _random_segments(rng, layer.shape[1], layer.shape[0],
                                _density(width, height, rng.uniform(*lines)), *line_length)
    _draw_segments(layer, segments, rng.uniform(*line_level))


def rubber(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Black rubber: dark, dull, finely stippled, with a little pale dust and lint."""
    half = _half_res_base(_base(rng, width, height, level=(24, 55), lighting=(0.05, 0.15),
                                mottle=(0.5, 1.5)), width, height)
    detail = _relief(rng, width, height, rng.uniform(3, 6), rng.uniform(2, 5))
    _dust_and_lint(rng, detail, width, height, specks=(5, 60), speck_level=(8, 25),
                   lines=(0, 6), line_length=(5, 30), line_level=(8, 20))
    cv2.add(half, detail, half)
    return _finish(rng, _upscale(half, width, height), rng.uniform(1.5, 3.0))


def _flutes(rng: np.random.Generator, low_shape: tuple[int, int], amplitude: float) -> np.ndarray:
    """Corrugation seen through the liner: faint parallel ridges 40-140 px apart (a strip to broadcast)."""
    horizontal = bool(rng.random() < 0.5)
    period = rng.uniform(40, 140) / _LOW_RES_FACTOR
    positions = np.arange(low_shape[0] if horizontal else low_shape[1], dtype=np.float32)
    profile = np.abs(np.sin(positions * np.float32(math.pi / period) + np.float32(rng.uniform(0, math.pi))))
    profile = (profile ** 0.6 - np.float32(0.72)) * np.float32(amplitude)
    return profile[:, None] if horizontal else profile[None, :]


def _paper(rng: np.random.Generator, width: int, height: int, level: tuple[float, float],
           floc: float, fibres_per_mp: float, fibre_length: float, fibre_contrast: float,
           grain_sigma: float, flutes: float = 0.0, inclusions_per_mp: float = 0.0) -> np.ndarray:
    """Shared by the paper-based materials: flocculated fibre mottle, loose fibres, fine grain.

    The detail (flocs, grain, fibres, inclusions) is drawn at half resolution on a zero-mean
    canvas: paper fibres are 1-2 px wide at this scale, so nothing is lost.
    """
    low = _base(rng, width, height, level=level, lighting=(0.05, 0.14), mottle=(floc * 0.4, floc * 0.4),
                mottle_cell=(15, 40))
    if flutes:
        low += _flutes(rng, low.shape, flutes)
    detail = _half_res_noise(rng, width, height, rng.uniform(3, 7)) * np.float32(floc)
    cv2.add(detail, _noise(rng, detail.shape, grain_sigma), detail)
    h, w = detail.shape
    count = _density(width, height, fibres_per_mp)
    for value in (fibre_contrast, -fibre_contrast):
        _draw_segments(detail, _random_segments(rng, w, h, count // 2, 2, fibre_length / 2), value)
    if inclusions_per_mp:
        # bits of bark and ink in recycled fibre
        inclusions = _random_segments(rng, w, h, _density(width, height, inclusions_per_mp), 0, 3)
        _draw_segments(detail, inclusions, -rng.uniform(25, 60))
    cv2.add(detail, _half_res_base(low, width, height), detail)
    return _finish(rng, _upscale(detail, width, height), grain_sigma * 0.5)


def cardboard(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Corrugated board: brown (mid grey), blotchy recycled fibre, dark inclusions, faint flutes."""
    return _paper(rng, width, height, level=(115, 170), floc=rng.uniform(3, 6),
                  fibres_per_mp=rng.uniform(2000, 4000), fibre_length=rng.uniform(15, 35),
                  fibre_contrast=rng.uniform(6, 12), grain_sigma=rng.uniform(2, 4),
                  flutes=rng.uniform(3, 7), inclusions_per_mp=rng.uniform(5, 50))


def kraft_paper(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Kraft paper or tape: like cardboard but smoother, long fibres, no flutes."""
    return _paper(rng, width, height, level=(110, 165), floc=rng.uniform(2, 5),
                  fibres_per_mp=rng.uniform(2000, 5000), fibre_length=rng.uniform(25, 50),
                  fibre_contrast=rng.uniform(5, 10), grain_sigma=rng.uniform(1.5, 3),
                  inclusions_per_mp=rng.uniform(0, 10))


def label_paper(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """White paper label: bright, slightly cloudy, faint fibres."""
    return _paper(rng, width, height, level=(200, 235), floc=rng.uniform(1, 2.5),
                  fibres_per_mp=rng.uniform(500, 2000), fibre_length=rng.uniform(15, 30),
                  fibre_contrast=rng.uniform(2, 4), grain_sigma=rng.uniform(1, 2))


def glass(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Glass (bottle, vial, window): dark, blurred scenery behind, soft reflections of lamps and windows."""
    low = _base(rng, width, height, level=(12, 45), lighting=(0.1, 0.3), mottle=(2, 10), mottle_cell=(30, 90))
    low += _reflections(rng, low.shape, int(rng.integers(1, 4)), amplitude=(15, 110), half_width=(0.01, 0.12))
    half = _half_res_base(low, width, height)
    dust = np.zeros(half.shape, np.float32)
    _dust_and_lint(rng, dust, width, height, specks=(5, 60), speck_level=(15, 45),
                   lines=(0, 20), line_length=(10, 75), line_level=(4, 12))
    cv2.add(half, dust, half)
    return _finish(rng, _upscale(half, width, height), rng.uniform(0.8, 1.5))


MATERIALS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "brushed_metal": brushed_metal,
    "anodized_aluminium": anodized_aluminium,
    "blasted_metal": blasted_metal,
    "painted_metal": painted_metal,
    "plastic_black": plastic_black,
    "plastic_white": plastic_white,
    "plastic_textured": plastic_textured,
    "rubber": rubber,
    "cardboard": cardboard,
    "kraft_paper": kraft_paper,
    "label_paper": label_paper,
    "glass": glass,
}

MaterialName = Literal[tuple(MATERIALS)]  # type: ignore[valid-type]


# --------------------------------------------------------------------------- photos

_PHOTO_CACHE: dict[str, np.ndarray] = {}


def list_photos(folder: Path) -> tuple[str, ...]:
    """Image files directly inside `folder`, sorted so every process sees the same order."""
    if not folder.is_dir():
        raise ValueError(f"background photo folder {folder} does not exist; "
                         f"give a folder of {', '.join(PHOTO_EXTENSIONS)} images or `{BUNDLED}`")
    photos = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS)
    if not photos:
        raise ValueError(f"background photo folder {folder} holds no images; "
                         f"allowed extensions: {', '.join(PHOTO_EXTENSIONS)}")
    return tuple(photos)


def load_gray_photo(path: str) -> np.ndarray:
    """Decode a photo to 8-bit grayscale once per process; the cached array is read-only."""
    image = _PHOTO_CACHE.get(path)
    if image is None:
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot decode background photo {path}; "
                             f"use a readable {', '.join(PHOTO_EXTENSIONS)} file")
        image.flags.writeable = False
        _PHOTO_CACHE[path] = image
    return image


class PhotoFolder(StrictModel):
    """One folder of product photos competing for samples with the given weight."""

    folder: str = Field(BUNDLED, description="folder of photos, relative to the recipe file; "
                                             "`bundled` = the photos shipped with the tool")
    weight: float = Field(1.0, ge=0, description="relative chance of drawing a photo from this folder")
    _files: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _list_files(self, info: ValidationInfo) -> "PhotoFolder":
        if self.folder == BUNDLED:
            path = bundled_dir("backgrounds")
        else:
            path = resolve_path(self.folder, info.context)
        self._files = list_photos(path)
        return self

    @property
    def files(self) -> tuple[str, ...]:
        """Absolute paths of the photos found at validation time, sorted."""
        return self._files


def _default_materials() -> dict[str, float]:
    return {name: 1.0 / len(MATERIALS) for name in MATERIALS}


class BackgroundConfig(StrictModel):
    """Recipe section `background`: where the product surface under the code comes from."""

    photos: tuple[PhotoFolder, ...] = Field(
        default_factory=lambda: (PhotoFolder(),),
        description="folders of product photos with weights; `[]` for none (default: the bundled photos, weight 1)")
    materials: dict[MaterialName, Annotated[float, Field(ge=0)]] = Field(
        default_factory=_default_materials,
        description=f"procedural materials and their weights (default: all, sharing weight 1); "
                    f"one of {', '.join(MATERIALS)}")
    crop_scale: FloatRange(0.02, 1.0) = Field(
        (0.35, 1.0), description="photo crop side as a fraction of the photo's shorter side")
    flip: bool = Field(True, description="flip photo crops horizontally/vertically at random")
    brightness: FloatRange(-255, 255) = Field((-30.0, 30.0), description="gray levels added to every pixel")
    contrast: FloatRange(0.0, 5.0) = Field((0.75, 1.25), description="factor on each pixel's deviation from the mean")

    @model_validator(mode="after")
    def _needs_a_source(self) -> "BackgroundConfig":
        total = sum(p.weight for p in self.photos) + sum(self.materials.values())
        if total <= 0:
            raise ValueError("background needs at least one photo folder or material with a positive weight; "
                             f"materials are {', '.join(MATERIALS)}")
        return self


# --------------------------------------------------------------------------- sampling


def _crop_box(rng: np.random.Generator, cfg: BackgroundConfig, photo_shape: tuple[int, int],
              region: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """A crop (x, y, w, h) inside `region` of the photo, with the output's aspect ratio.

    The crop's shorter side is `crop_scale` times the photo's shorter side, shrunk to fit the
    region: atlas regions are small, so their crops are as large as they can be.
    """
    ph, pw = photo_shape
    rx0, ry0 = int(math.ceil(region[0] * pw)), int(math.ceil(region[1] * ph))
    rw = max(1, int(region[2] * pw) - rx0)
    rh = max(1, int(region[3] * ph) - ry0)
    short = uniform(rng, cfg.crop_scale) * min(pw, ph)
    aspect = width / height
    crop_w, crop_h = (short * aspect, short) if aspect >= 1 else (short, short / aspect)
    fit = min(1.0, rw / crop_w, rh / crop_h)
    crop_w = min(rw, max(1, round(crop_w * fit)))
    crop_h = min(rh, max(1, round(crop_h * fit)))
    x = rx0 + integer(rng, (0, rw - crop_w))
    y = ry0 + integer(rng, (0, rh - crop_h))
    return x, y, crop_w, crop_h


def sample_photo(cfg: BackgroundConfig, source: PhotoFolder, rng: np.random.Generator,
                 width: int, height: int) -> dict[str, Any]:
    """Draw which photo, where to crop it and how to flip it."""
    path = choose(rng, source.files)
    photo = load_gray_photo(path)
    region_index = None
    region = (0.0, 0.0, 1.0, 1.0)
    flat_regions = ATLAS_FLAT_REGIONS.get(Path(path).name)
    if flat_regions:
        areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in flat_regions]
        region_index = choose(rng, range(len(flat_regions)), areas)
        region = flat_regions[region_index]
    crop = _crop_box(rng, cfg, photo.shape, region, width, height)
    return {
        "kind": "photo", "name": source.folder, "file": path, "region": region_index, "crop": list(crop),
        "hflip": bool(cfg.flip and rng.random() < 0.5), "vflip": bool(cfg.flip and rng.random() < 0.5),
    }


def render_photo(record: dict[str, Any], width: int, height: int) -> np.ndarray:
    """Cut, resize and flip the photo as drawn in `record`."""
    x, y, w, h = record["crop"]
    crop = load_gray_photo(record["file"])[y:y + h, x:x + w]
    shrinking = w * h > width * height
    image = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if record["hflip"] and record["vflip"]:
        return cv2.flip(image, -1)
    if record["hflip"] or record["vflip"]:
        return cv2.flip(image, 1 if record["hflip"] else 0)
    return image


def apply_tone(image: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    """Exposure jitter: stretch deviations from the mean by `contrast`, then add `brightness`."""
    mean = cv2.mean(image)[0]
    levels = contrast * (np.arange(256) - mean) + mean + brightness
    return cv2.LUT(image, np.clip(np.rint(levels), 0, 255).astype(np.uint8))


def sample_background(cfg: BackgroundConfig, rng: np.random.Generator,
                      width: int, height: int) -> tuple[np.ndarray, dict]:
    """The background of one sample (HxW uint8) and a record of what was drawn."""
    materials = sorted(cfg.materials)  # a list keeps its order; a mapping's is drawn over sorted (schema.choose_key)
    sources: list[PhotoFolder | str] = [*cfg.photos, *materials]
    weights = [p.weight for p in cfg.photos] + [cfg.materials[m] for m in materials]
    source = choose(rng, sources, weights)
    if isinstance(source, PhotoFolder):
        record = sample_photo(cfg, source, rng, width, height)
        image = render_photo(record, width, height)
    else:
        record = {"kind": "material", "name": source, "file": None, "region": None, "crop": None,
                  "hflip": False, "vflip": False}
        image = MATERIALS[source](rng, width, height)
    record["brightness"] = uniform(rng, cfg.brightness)
    record["contrast"] = uniform(rng, cfg.contrast)
    return apply_tone(image, record["brightness"], record["contrast"]), record
