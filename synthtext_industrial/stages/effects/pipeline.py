"""The effects pipeline of a recipe: built from its `effects` section, run with a sample's own random stream.

`apply_effects` seeds every transform from the stream and returns the effects record (the provenance);
`legible_effects` draws the effects again while one leaves a character under `effects.min_legibility`.
"""
from __future__ import annotations

import copy
import threading
from typing import Any

import albumentations as A
import numpy as np
from albumentations.core.composition import BaseCompose

from ...core.streams import child_seed
from ..legibility import MarkedBlock
from .config import EffectsConfig
from .transforms import CameraNoise, FrameBlur, Highlight, PartialBlur, Vignetting

EFFECT_DRAWS = 3  # effect draws per page when one leaves a character under effects.min_legibility


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
            # only when on, so that a recipe without it draws every other effect as it always has
            *([FrameBlur(sigma_range=cfg.blur.sigma, p=cfg.blur.p)] if cfg.blur.p > 0 else []),
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


_THREAD = threading.local()


def effects_pipeline(effects_json: str):
    """The recipe's effects pipeline, one per thread: apply_effects seeds its transforms for each call, so
    two threads sharing one would draw from each other's seeds (Dask workers run several render threads)."""
    pipelines = _THREAD.__dict__.setdefault("pipelines", {})
    if effects_json not in pipelines:
        if len(pipelines) >= 16:
            pipelines.clear()
        pipelines[effects_json] = build_effects(EffectsConfig.model_validate_json(effects_json))
    return pipelines[effects_json]


def legible_effects(config: EffectsConfig, page: np.ndarray, plain: np.ndarray, blocks: list[MarkedBlock],
                     rng: np.random.Generator, measure: bool = False) -> tuple[np.ndarray, dict, list[list[float]], int]:
    """Apply the recipe's effects to the page, drawing them again (up to EFFECT_DRAWS times) while one leaves a
    character under effects.min_legibility; the least damaging draw is kept.

    Each character is measured (`legibility.char_legibility`) against the text-free page (`plain`) put through
    the very same effects (a copy of the rng replays their draws). Returns (image, effects record, each block's
    per-character legibility, draws made); without a floor (unless `measure`) or text, one draw and no scores.
    """
    pipeline = effects_pipeline(config.model_dump_json())
    floor = config.min_legibility
    if (floor <= 0 and not measure) or not blocks:
        image, record = apply_effects(pipeline, page, rng)
        return image, record, [], 1
    best = None
    draws = EFFECT_DRAWS if floor > 0 else 1
    for draw in range(1, draws + 1):
        replay = copy.deepcopy(rng)
        image, record = apply_effects(pipeline, page, rng)
        plain_fx, _ = apply_effects(pipeline, plain, replay)
        scores = [block.measure(plain_fx, image) for block in blocks]
        weakest = min(min(s, default=np.inf) for s in scores)
        if best is None or weakest > best[3]:
            best = (image, record, scores, weakest)
        if weakest >= floor:
            break
    image, record, scores, _ = best
    return image, record, scores, draw
