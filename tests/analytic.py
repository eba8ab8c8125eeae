"""Independent ground truth: ray casting axis-aligned boxes and a ground plane in numpy."""
from __future__ import annotations

import math

import numpy as np


def pixel_rays(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Unit-less camera-frame (OpenCV) ray directions with z = 1 through every pixel centre."""
    f = width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
    v, u = np.mgrid[0:height, 0:width] + 0.5
    return np.stack([(u - width / 2.0) / f, (v - height / 2.0) / f, np.ones_like(u)], -1)


def ray_box(origin, dirs, lo, hi):
    """Entry parameter t of each ray into the box [lo, hi] (inf if missed) and the entry-face normal."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - origin) / dirs
        t2 = (hi - origin) / dirs
    tmin = np.nanmax(np.minimum(t1, t2), axis=-1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=-1)
    hit = (tmax >= tmin) & (tmin > 0)
    axis = np.argmax(np.minimum(t1, t2), axis=-1)
    normal = np.zeros(dirs.shape)
    np.put_along_axis(normal, axis[..., None], -np.sign(np.take_along_axis(dirs, axis[..., None], -1)), -1)
    # Margin: how far inside the slab intervals the ray is (small = grazes an edge).
    margin = tmax - tmin
    return np.where(hit, tmin, np.inf), normal, margin
