"""Curved surfaces: a text block printed on a cylinder (a bottle, a can, a cable) and seen by the camera.

The cylinder bends the block's own frame before the block's homography (rotation, position, camera tilt)
takes it to the page. A bend is not a homography, so each character is drawn through its own: the one that
agrees with the cylinder at the four corners of its glyph (`Bend.glyph_matrix`). A glyph is small beside the
radius, so it shows the cylinder's foreshortening and the arc of its line, and its quad is measured from its
own warped ink as every character's is: exact by the same rule. A bent line's quad is the tightest rectangle
around its characters' quads in the frame of the line's chord (`Bend.glyph_matrix` at the line's ends).

The view is orthographic (the page's camera tilt adds the perspective): a point at angle t around a vertical
axis, height y, shows at x' = R sin t, y' = y cos(e) + R cos t sin(e) for a camera e degrees above the axis.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import Field, model_validator

from ..core import geometry as geo
from ..core.config import FloatRange, StrictModel
from ..core.streams import choose_key, uniform
from .typeset import TypesetLine, extent

MAX_ANGLE = 60.0  # degrees: a block's ends stay this far round from the facing line at most (beyond, slivers)
RIM = 0.25  # outside the silhouette the edge darkening fades out over this many radii (the cylinder's rim)
EDGE_PX = 2.0  # room kept around a bent block for quads measured from ink that bleeds past its glyph's bitmap
HIGHLIGHT_WIDTH = 0.12  # radians: half-width of the highlight band along the axis


class SurfaceConfig(StrictModel):
    """Print a block on a cylinder: a bottle or can standing (vertical axis) or lying, a cable (horizontal)."""

    cylinder: float = Field(
        0.0, ge=0.0, le=1.0, description="Chance that a block lies on a cylinder; 0 = never (and no random draws, "
                                         "so other pages stay as they were). Blocks in a display window stay flat.")
    axis: dict[Literal["vertical", "horizontal"], float] = Field(
        default_factory=lambda: {"vertical": 1.0},
        description="weights of the cylinder's axis in the text's frame: vertical (a standing bottle: the lines run "
                    "round it, foreshortened towards its edges) or horizontal (a cable, a lying can: the lines run "
                    "along it and stay straight, the lines and characters foreshortened towards its top and bottom)")
    radius: FloatRange(1.0, 200.0) = Field(
        (4.0, 12.0), description="radius of the cylinder in text heights; a block too wide for it gets the smallest "
                                 f"radius that keeps its ends {MAX_ANGLE:g} degrees round from the facing line")
    elevation: FloatRange(-45.0, 45.0) = Field(
        (-15.0, 15.0), description="degrees the camera looks down on (positive) or up at (negative) a vertical axis: "
                                   "the lines become arcs (ends up when looked down on); no effect on a horizontal "
                                   "axis, whose lines stay straight")
    offset: FloatRange(-30.0, 30.0) = Field(
        (-10.0, 10.0), description="degrees round the cylinder from the facing line to the block's centre (a label "
                                   "not quite facing the camera: one side more foreshortened)")
    shading: FloatRange(0.0, 0.8) = Field(
        (0.0, 0.3), description="darkening towards the silhouette, as a fraction of the gray level (page and "
                                "text-free page alike); 0 = none")
    highlight: FloatRange(0.0, 0.8) = Field(
        (0.0, 0.25), description="light of a specular band along the axis, as a fraction of the way to white; "
                                 "0 = none")

    @model_validator(mode="after")
    def _weights(self):
        if not self.axis or sum(self.axis.values()) <= 0:
            raise ValueError("axis needs at least one of vertical, horizontal with a positive weight")
        return self


@dataclass
class Cylinder:
    """One block's cylinder, as drawn (radius in text heights, angles in degrees)."""

    axis: str
    radius: float
    elevation: float
    offset: float
    shading: float
    highlight: float
    highlight_at: float  # degrees round from the facing line

    def record(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def sample_surface(cfg: SurfaceConfig, rng: np.random.Generator) -> Cylinder | None:
    """Whether this block lies on a cylinder and its parameters; no draws when the recipe never asks."""
    if cfg.cylinder <= 0 or rng.random() >= cfg.cylinder:
        return None
    return Cylinder(axis=choose_key(rng, cfg.axis), radius=uniform(rng, cfg.radius),
                    elevation=uniform(rng, cfg.elevation), offset=uniform(rng, cfg.offset),
                    shading=uniform(rng, cfg.shading), highlight=uniform(rng, cfg.highlight),
                    highlight_at=float(rng.uniform(-35.0, 35.0)))


@dataclass
class Bend:
    """A cylinder at one block's size: the map from the flat block frame to the bent one (pixels)."""

    cylinder: Cylinder
    radius_px: float
    centre: tuple[float, float]  # the flat block's centre: it stays where it is

    def points(self, pts: np.ndarray) -> np.ndarray:
        """Flat block-frame points (N x 2) as the camera sees them on the cylinder."""
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        cx, cy = self.centre
        R, t0 = self.radius_px, math.radians(self.cylinder.offset)
        x, y = pts[:, 0] - cx, pts[:, 1] - cy
        if self.cylinder.axis == "vertical":
            e = math.radians(self.cylinder.elevation)
            t = x / R + t0
            return np.stack([cx + R * (np.sin(t) - math.sin(t0)),
                             cy + y * math.cos(e) + R * (np.cos(t) - math.cos(t0)) * math.sin(e)], axis=1)
        t = y / R + t0
        return np.stack([cx + x, cy + R * (np.sin(t) - math.sin(t0))], axis=1)

    def glyph_matrix(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """The homography (flat block frame -> bent one) that agrees with the cylinder at the box's corners."""
        src = geo.rect_quad(x0, y0, x1, y1)
        return cv2.getPerspectiveTransform(src.astype(np.float32),
                                           self.points(src).astype(np.float32)).astype(np.float64)

    def line_matrix(self, line: TypesetLine) -> np.ndarray:
        """The frame of a bent line's quad: the homography that agrees with the cylinder at its glyphs' ends."""
        return self.glyph_matrix(*extent([line]))

    def extent(self, set_lines: list[TypesetLine]) -> tuple[float, float, float, float]:
        """The bent block's box, with room for its lines' quads: every glyph lies in the quad its corners bend
        to, each line's quad is the rectangle around those in the line's frame (`chord_quad`), and a glyph's
        measured quad may reach a pixel past its bitmap (EDGE_PX)."""
        outline = []
        for tl in set_lines:
            if tl.glyphs:
                quads = [self.points(geo.rect_quad(g.x, g.y, g.x + g.glyph.bitmap.shape[1],
                                                   g.y + g.glyph.bitmap.shape[0])) for g in tl.glyphs]
                outline.append(chord_quad(self.line_matrix(tl), quads))
        points = np.concatenate(outline)
        (x0, y0), (x1, y1) = points.min(axis=0) - EDGE_PX, points.max(axis=0) + EDGE_PX
        return float(x0), float(y0), float(x1), float(y1)

    def record(self) -> dict:
        return {**self.cylinder.record(), "radius_px": round(self.radius_px, 2)}


def bend(cylinder: Cylinder, extent: tuple[float, float, float, float], height: float) -> Bend:
    """The cylinder under a block of this flat extent set at this height: its radius is `cylinder.radius`
    text heights, or more where the block would reach further round than MAX_ANGLE."""
    ex0, ey0, ex1, ey1 = extent
    half = (ex1 - ex0) / 2 if cylinder.axis == "vertical" else (ey1 - ey0) / 2
    room = math.radians(MAX_ANGLE - abs(cylinder.offset))
    return Bend(cylinder, max(cylinder.radius * height, half / room), ((ex0 + ex1) / 2, (ey0 + ey1) / 2))


def chord_quad(M: np.ndarray, quads: list[np.ndarray]) -> np.ndarray:
    """A bent line's quad: the tightest rectangle around its characters' quads in the frame of `M` (the
    homography that agrees with the cylinder at the line's ends), mapped to the page. It encloses every
    character quad, so all the line's ink, and on an arc also the room under it."""
    own = geo.apply(np.linalg.inv(M), np.concatenate(quads))
    (x0, y0), (x1, y1) = own.min(axis=0), own.max(axis=0)
    return geo.apply(M, geo.rect_quad(x0, y0, x1, y1))


def shade(pages: list[np.ndarray], curve: Bend, H: np.ndarray) -> list[np.ndarray]:
    """The pages lit as the cylinder is: darker towards its silhouette (and a rim fading out beyond it), a
    highlight band along its axis. Computed on a coarse grid (the light is smooth) and applied to each page."""
    cyl = curve.cylinder
    if cyl.shading <= 0 and cyl.highlight <= 0:
        return pages
    h, w = pages[0].shape[:2]
    step = 4
    gx, gy = np.meshgrid(np.arange(0, w + step, step, dtype=np.float64) + 0.5,
                         np.arange(0, h + step, step, dtype=np.float64) + 0.5)
    bent = geo.apply(np.linalg.inv(H), np.stack([gx.ravel(), gy.ravel()], axis=1))
    cx, cy = curve.centre
    u = (bent[:, 0] - cx) if cyl.axis == "vertical" else (bent[:, 1] - cy)
    s = u / curve.radius_px + math.sin(math.radians(cyl.offset))  # sine of the angle round from the facing line
    inside = np.abs(s) < 1
    t = np.arcsin(np.clip(s, -1, 1))
    dark = np.where(inside, 1 - np.cos(t), np.clip(1 - (np.abs(s) - 1) / RIM, 0, 1))
    light = np.where(inside, np.exp(-((t - math.radians(cyl.highlight_at)) / HIGHLIGHT_WIDTH) ** 2), 0.0)
    factor = (1 - cyl.shading * dark).reshape(gx.shape).astype(np.float32)
    lift = (cyl.highlight * light).reshape(gx.shape).astype(np.float32)
    # a grid node per `step` pixels (a pixel or two of misalignment does not show in light this smooth)
    size = (gx.shape[1] * step, gx.shape[0] * step)
    factor = cv2.resize(factor, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
    lift = cv2.resize(lift, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
    out = []
    for page in pages:
        p = page.astype(np.float32) * factor
        out.append(np.clip(p + (255 - p) * lift, 0, 255).round().astype(np.uint8))
    return out
