"""The ground-truth exactness rule, checked against the rendered mark mask.

1. Every pixel with mask > 0 lies inside some character quad grown by 1 px.
2. Each side of every character quad lies within 1.5 px of a pixel of that
   character with coverage >= 128 (needs `render_sample(..., keep_char_masks=True)`).
3. Every line quad encloses its character quads; quads run clockwise and lie in the image.

Pixel (r, c) is the point (c + 0.5, r + 0.5). Used by the tests and by the
large-scale checking script alike.
"""
from __future__ import annotations

import numpy as np

from .core.groundtruth import Sample

GROW_PX = 1.0
SIDE_PX = 1.5


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    nearest = a + t[:, None] * ab
    return np.linalg.norm(points - nearest, axis=1)


def _inside_convex(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Points inside a clockwise (in y-down coordinates) convex quad, edges included."""
    inside = np.ones(len(points), bool)
    for k in range(4):
        a, b = quad[k], quad[(k + 1) % 4]
        cross = (b[0] - a[0]) * (points[:, 1] - a[1]) - (b[1] - a[1]) * (points[:, 0] - a[0])
        inside &= cross >= -1e-6
    return inside


def distance_to_quad(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Euclidean distance from each point to a convex quad (0 inside)."""
    quad = np.asarray(quad, np.float64)
    dist = np.min([_segment_distance(points, quad[k], quad[(k + 1) % 4]) for k in range(4)], axis=0)
    dist[_inside_convex(points, quad)] = 0.0
    return dist


def signed_area(quad: np.ndarray) -> float:
    """Positive for clockwise order on screen (y down)."""
    q = np.asarray(quad, np.float64)
    x, y = q[:, 0], q[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def check_sample(sample: Sample) -> list[str]:
    """Every violation of the exactness rule in this sample, worded for a person (empty: exact)."""
    problems: list[str] = []
    quads = [(li, ci, np.asarray(ch.quad, np.float64)) for li, line in enumerate(sample.lines)
             for ci, ch in enumerate(line.chars)]
    for li, line in enumerate(sample.lines):
        lq = np.asarray(line.quad, np.float64)
        if signed_area(lq) <= 0:
            problems.append(f"line {li}: quad is not clockwise")
        if (lq[:, 0].min() < 0 or lq[:, 1].min() < 0 or lq[:, 0].max() > sample.width
                or lq[:, 1].max() > sample.height):
            problems.append(f"line {li}: quad leaves the image")
        non_space = [c for c in line.text if not c.isspace()]
        if [c.char for c in line.chars] != non_space:
            problems.append(f"line {li}: chars {[c.char for c in line.chars]} do not match text {line.text!r}")
        for ci, ch in enumerate(line.chars):
            if not _inside_convex(np.asarray(ch.quad, np.float64), lq + 0.0).all():
                corners = np.asarray(ch.quad, np.float64)
                if distance_to_quad(corners, lq).max() > 1e-3:
                    problems.append(f"line {li} char {ci} {ch.char!r}: outside its line quad")
            if signed_area(ch.quad) <= 0:
                problems.append(f"line {li} char {ci} {ch.char!r}: quad is not clockwise")

    ys, xs = np.nonzero(sample.mask)
    points = np.stack([xs + 0.5, ys + 0.5], axis=1).astype(np.float64)
    covered = np.zeros(len(points), bool)
    for _li, _ci, q in quads:
        x0, y0 = q.min(axis=0) - GROW_PX
        x1, y1 = q.max(axis=0) + GROW_PX
        near = (~covered) & (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
        idx = np.nonzero(near)[0]
        if idx.size:
            covered[idx[distance_to_quad(points[idx], q) <= GROW_PX]] = True
    if (~covered).any():
        bad = points[~covered]
        problems.append(f"{len(bad)} mask pixels outside every character quad grown by {GROW_PX} px, "
                        f"e.g. at {bad[0].tolist()}")

    if sample.char_masks is not None:
        for li, (line, masks) in enumerate(zip(sample.lines, sample.char_masks)):
            for ci, (ch, (x0, y0, cov)) in enumerate(zip(line.chars, masks)):
                ys, xs = np.nonzero(cov >= 128)
                if ys.size == 0:
                    problems.append(f"line {li} char {ci} {ch.char!r}: no pixel with coverage >= 128")
                    continue
                pts = np.stack([xs + x0 + 0.5, ys + y0 + 0.5], axis=1).astype(np.float64)
                q = np.asarray(ch.quad, np.float64)
                for k in range(4):
                    d = _segment_distance(pts, q[k], q[(k + 1) % 4]).min()
                    if d > SIDE_PX:
                        problems.append(f"line {li} char {ci} {ch.char!r}: side {k} is {d:.2f} px from its ink "
                                        f"(limit {SIDE_PX})")
    return problems
