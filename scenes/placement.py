"""Collision-free placement on the ground plane: oriented footprints and a separating-axis test."""
from __future__ import annotations

import math

import numpy as np

from scenes import portable_math as pm


def footprint(x: float, y: float, length: float, width: float, yaw_deg: float, margin: float = 0.0) -> np.ndarray:
    """Corners (4, 2) of an oriented rectangle centred at (x, y) with its length along yaw."""
    a = math.radians(yaw_deg)
    u = np.array([pm.cos(a), pm.sin(a)]) * (length / 2 + margin)
    v = np.array([-pm.sin(a), pm.cos(a)]) * (width / 2 + margin)
    c = np.array([x, y])
    return np.stack([c + u + v, c - u + v, c - u - v, c + u - v])


_NEXT = [1, 2, 3, 0]


def _separated(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Separating-axis test of convex quads ``a`` (..., 4, 2) against ``b`` (..., 4, 2),
    broadcast: True where some edge normal of either separates them."""
    ea, eb = np.broadcast_arrays(a[..., _NEXT, :] - a, b[..., _NEXT, :] - b)
    edges = np.concatenate([ea, eb], axis=-2)  # (..., 8, 2)
    ax, ay = -edges[..., None, :, 1], edges[..., None, :, 0]  # the candidate axes, (..., 1, 8)
    pa = a[..., :, 0, None] * ax + a[..., :, 1, None] * ay  # (..., 4, 8) projections, a fixed order
    pb = b[..., :, 0, None] * ax + b[..., :, 1, None] * ay
    return ((pa.max(-2) <= pb.min(-2)) | (pb.max(-2) <= pa.min(-2))).any(-1)


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex quads: True if their interiors intersect."""
    return not bool(_separated(a, b))


class Ground:
    """The footprints placed so far; ``try_place`` resamples a pose until it is free."""

    def __init__(self):
        self._stack = np.empty((0, 4, 2))

    def free(self, fp: np.ndarray) -> bool:
        return bool(_separated(np.asarray(fp, np.float64), self._stack).all())

    def add(self, fp: np.ndarray) -> None:
        self._stack = np.concatenate([self._stack, np.asarray(fp, np.float64)[None]])

    def try_place(self, sample_pose, size, tries: int, margin: float = 0.1):
        """``sample_pose()`` -> (x, y, yaw_deg); returns the first free pose or None."""
        for _ in range(tries):
            x, y, yaw = sample_pose()
            fp = footprint(x, y, size[0], size[1], yaw, margin)
            if self.free(fp):
                self.add(fp)
                return x, y, yaw
        return None
