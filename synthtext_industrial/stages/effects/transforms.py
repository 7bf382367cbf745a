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
from typing import Annotated, Any, Literal

import numpy as np
from albumentations.core.pydantic import check_range_bounds, nondecreasing
from albumentations.core.transforms_interface import BaseTransformInitSchema, ImageOnlyTransform
from pydantic import AfterValidator, Field, field_validator

from ...core.streams import choose_key
from .functional import apply_camera_noise, apply_frame_blur, apply_highlights, apply_partial_blur, apply_vignetting

BlurKind = Literal["gaussian", "defocus", "motion"]
DEFAULT_BLUR_KINDS = {"gaussian": 1.0, "defocus": 1.0, "motion": 1.0}

# cv2.setRNGSeed takes a C int.
CV2_SEED_LIMIT = 2**31 - 1

# The allowed [min, max] of every ranged argument, both ends inclusive: the one source of these bounds. Each
# transform's InitSchema checks them, and the recipe's effects section (config.py) is built from them.
HIGHLIGHT_BOUNDS = {"count_range": (1, 50), "intensity_range": (0, 255), "size_range": (0.001, 2)}
PARTIAL_BLUR_BOUNDS = {"sigma_range": (0.1, 50), "area_range": (0.001, 1), "feather_range": (0.01, 1)}
CAMERA_NOISE_BOUNDS = {"gaussian_sigma_range": (0, 100), "shot_gain_range": (0, 20), "salt_pepper_range": (0, 0.5)}
VIGNETTING_BOUNDS = {"strength_range": (0, 1)}
FRAME_BLUR_BOUNDS = {"sigma_range": (0.1, 50)}


def _range(bounds: dict, name: str, kind: type = float):
    """The InitSchema type of a ranged argument: a nondecreasing pair within bounds[name]."""
    return Annotated[tuple[kind, kind], AfterValidator(check_range_bounds(*bounds[name])),
                     AfterValidator(nondecreasing)]


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
        count_range: _range(HIGHLIGHT_BOUNDS, "count_range", int)
        intensity_range: _range(HIGHLIGHT_BOUNDS, "intensity_range")
        size_range: _range(HIGHLIGHT_BOUNDS, "size_range")
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
        sigma_range: _range(PARTIAL_BLUR_BOUNDS, "sigma_range")
        area_range: _range(PARTIAL_BLUR_BOUNDS, "area_range")
        feather_range: _range(PARTIAL_BLUR_BOUNDS, "feather_range")

        @field_validator("kind_weights")
        @classmethod
        def _positive_weights(cls, weights: dict[str, float] | None) -> dict[str, float]:
            if weights is None:
                return dict(DEFAULT_BLUR_KINDS)
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
        gaussian_sigma_range: _range(CAMERA_NOISE_BOUNDS, "gaussian_sigma_range")
        shot_gain_range: _range(CAMERA_NOISE_BOUNDS, "shot_gain_range")
        salt_pepper_range: _range(CAMERA_NOISE_BOUNDS, "salt_pepper_range")

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
            "seed": int(rng.integers(0, CV2_SEED_LIMIT)),
        }

    def apply(self, img: np.ndarray, gaussian_sigma: float, shot_gain: float, salt_pepper: float, seed: int,
              **params: Any) -> np.ndarray:
        return apply_camera_noise(img, gaussian_sigma, shot_gain, salt_pepper, seed)



class Vignetting(ImageOnlyTransform):
    """Lens vignetting: brightness falls off smoothly from the centre to the corners.

    Args:
        strength_range: fraction of brightness lost in the corners.
        p: chance that an image gets vignetting.

    Targets: image, volume. Image types: uint8, HxW / HxWx1 / HxWxC.
    """

    class InitSchema(BaseTransformInitSchema):
        strength_range: _range(VIGNETTING_BOUNDS, "strength_range")

    def __init__(self, strength_range: tuple[float, float] = (0.1, 0.4), p: float = 0.5):
        super().__init__(p=p)
        self.strength_range = strength_range

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return {"strength": float(self.random_generator.uniform(*self.strength_range))}

    def apply(self, img: np.ndarray, strength: float, **params: Any) -> np.ndarray:
        return apply_vignetting(img, strength)


class FrameBlur(ImageOnlyTransform):
    """The whole frame out of focus: a Gaussian blur of the entire image (what `fit` measures as blur).

    Args:
        sigma_range: blur strength, kernel standard deviation in pixels.
        p: chance that an image is blurred.

    Targets: image, volume. Image types: uint8, HxW / HxWx1 / HxWxC.
    """

    class InitSchema(BaseTransformInitSchema):
        sigma_range: _range(FRAME_BLUR_BOUNDS, "sigma_range")

    def __init__(self, sigma_range: tuple[float, float] = (0.5, 2.0), p: float = 0.5):
        super().__init__(p=p)
        self.sigma_range = sigma_range

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return {"sigma": float(self.random_generator.uniform(*self.sigma_range))}

    def apply(self, img: np.ndarray, sigma: float, **params: Any) -> np.ndarray:
        return apply_frame_blur(img, sigma)
