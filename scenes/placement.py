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


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex quads: True if their interiors intersect."""
    edges = np.concatenate([np.roll(a, -1, 0) - a, np.roll(b, -1, 0) - b])  # (8, 2)
    ax, ay = -edges[:, 1], edges[:, 0]  # each edge's normal: the candidate separating axes
    pa = a[:, 0, None] * ax + a[:, 1, None] * ay  # (4, 8) projections, in a fixed order
    pb = b[:, 0, None] * ax + b[:, 1, None] * ay
    return not ((pa.max(0) <= pb.min(0)) | (pb.max(0) <= pa.min(0))).any()


class Ground:
    """The footprints placed so far; ``try_place`` resamples a pose until it is free."""

    def __init__(self):
        self.taken: list[np.ndarray] = []

    def free(self, fp: np.ndarray) -> bool:
        return not any(overlaps(fp, t) for t in self.taken)

    def add(self, fp: np.ndarray) -> None:
        self.taken.append(fp)

    def try_place(self, sample_pose, size, tries: int, margin: float = 0.1):
        """``sample_pose()`` -> (x, y, yaw_deg); returns the first free pose or None."""
        for _ in range(tries):
            x, y, yaw = sample_pose()
            fp = footprint(x, y, size[0], size[1], yaw, margin)
            if self.free(fp):
                self.add(fp)
                return x, y, yaw
        return None
