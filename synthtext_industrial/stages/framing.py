"""Framing: how a line is cut out of its page for a crop dataset, the last stage of a sample.

Real crops are framed by a person or a detector: loose, tight or off-centre, with a display bezel or
neighbouring marks in frame, and taken at a camera's pixel size. The recipe's `crops` section says how; each
line's framing is drawn from the sample's own `crops` stream, so framing never changes a page.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import Field

from ..core.config import FloatRange, StrictModel
from ..core.streams import stage_rng, uniform


class CropConfig(StrictModel):
    """How line crops are framed, the way a real cropper (a person, a detector) frames a line.

    The defaults cut every line tight with 0.15 line heights of context per side. Real crops are often loose
    or off-centre, with the display bezel, neighbouring marks or a label edge in frame, and taken at a low
    resolution: widen the margins (each side is drawn apart, so loose also means off-centre) and set
    `text_height_px` to capture them at the real pixel size. A margin is never negative: the labelled text is
    never cut.
    """

    margin_x: FloatRange(0.0, 20.0) = Field(
        (0.15, 0.15), description="Context left and right of the line, in line heights (each side drawn apart).")
    margin_y: FloatRange(0.0, 5.0) = Field(
        (0.15, 0.15), description="Context above and below the line, in line heights (each side drawn apart).")
    window: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance that a line shown in a display window or on a plate (the "
                                         "`display` section; one-line blocks) is framed by the whole window and "
                                         "its border instead, as crops of plates and meter displays are cut; "
                                         "0 = never (and no draws).")
    window_margin: FloatRange(0.0, 1.0) = Field(
        (0.0, 0.1), description="Context around a window-framed crop, in window heights (each side drawn apart).")
    box: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance that a crop is cut as a detector cuts it: the upright box around "
                                         "the line (or window) seen turned and sheared by a drawn view, not "
                                         "rectified, so the text stays tilted and slanted inside it as in crops "
                                         "of plates seen from the side; 0 = never (and no draws).")
    box_rotation: FloatRange(-45.0, 45.0) = Field(
        (-6.0, 6.0), description="A box-cut crop's extra turn of the view, in degrees (counter-clockwise).")
    box_shear: FloatRange(-0.6, 0.6) = Field(
        (-0.2, 0.2), description="A box-cut crop's shear of the view, horizontal (slanted letters) and vertical "
                                 "(sloping baseline), each drawn apart, as tan of the shear angle.")
    text_height_px: Optional[FloatRange(4.0, 200.0)] = Field(
        None, description="Capture the crop as if the text were this many pixels tall (then scale it back up), so "
                          "low-resolution blur and aliasing are real; null = the rendered resolution.")


def crop_rng(seed: int, index: int) -> np.random.Generator:
    """The framing generator of sample `index`: its own stream of (seed, index), so framing never changes a page."""
    return stage_rng(seed, index, "crops")


def sample_framing(cfg: CropConfig, rng: np.random.Generator, in_window: bool = False) -> dict:
    """One line's framing: margins (left, top, right, bottom, in line heights, or in window heights when
    `window` is true: the line is framed by its display window), capture text height, and `box` (a view's
    rotation in degrees and [horizontal, vertical] shear) when the crop is cut as a detector's upright box."""
    margins = [uniform(rng, cfg.margin_x), uniform(rng, cfg.margin_y), uniform(rng, cfg.margin_x),
               uniform(rng, cfg.margin_y)]
    framing = {"margins": margins,
               "text_height_px": uniform(rng, cfg.text_height_px) if cfg.text_height_px is not None else None}
    if cfg.window > 0 and in_window and rng.random() < cfg.window:
        framing.update(window=True, margins=[uniform(rng, cfg.window_margin) for _ in range(4)])
    if cfg.box > 0 and rng.random() < cfg.box:
        framing["box"] = {"rotation": uniform(rng, cfg.box_rotation),
                          "shear": [uniform(rng, cfg.box_shear), uniform(rng, cfg.box_shear)]}
    return framing
