"""Homographies shared by image and ground truth.

Every geometric change is one 3x3 matrix applied to pixels and to quads alike, in
continuous pixel coordinates (pixel centres at +0.5). OpenCV's warp functions
index pixels by their centres at integer positions, so `to_cv` shifts by half a
pixel on both sides.
"""
from __future__ import annotations

import cv2
import numpy as np

_HALF = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], dtype=np.float64)
_MINUS_HALF = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]], dtype=np.float64)


def translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=np.float64)


def scale(sx: float, sy: float) -> np.ndarray:
    return np.array([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], dtype=np.float64)


def rotate(degrees: float) -> np.ndarray:
    """Counter-clockwise on screen (y points down), about the origin."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]], dtype=np.float64)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map Nx2 points through a homography."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homog = pts @ matrix[:, :2].T + matrix[:, 2]
    return homog[:, :2] / homog[:, 2:3]


def rect_quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Corners of an axis-aligned box, clockwise from the top-left."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def to_cv(matrix: np.ndarray) -> np.ndarray:
    """The same mapping for OpenCV's pixel-index coordinates."""
    return _MINUS_HALF @ matrix @ _HALF


def is_affine(matrix: np.ndarray) -> bool:
    return bool(abs(matrix[2, 0]) < 1e-12 and abs(matrix[2, 1]) < 1e-12 and abs(matrix[2, 2] - 1) < 1e-12)


def camera_tilt(width: int, height: int, corner_shift: np.ndarray) -> np.ndarray:
    """A mild perspective: the image corners move by `corner_shift` (4x2, pixels), as under a tilted camera."""
    src = rect_quad(0, 0, width, height).astype(np.float32)
    dst = (src + corner_shift).astype(np.float32)
    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)
