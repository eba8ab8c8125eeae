"""Independent ground truth: ray casting axis-aligned boxes and a ground plane in numpy."""
from __future__ import annotations

import math

import numpy as np


def pixel_rays(width: int, height: int, hfov_deg: float, k=None) -> np.ndarray:
    """Unit-less camera-frame (OpenCV) ray directions with z = 1 through every pixel centre.

    With ``k = (k1, k2, k3)``: OpenCV's radial lens, the pixel (u, v) = (fx x_d + cx, ...)
    of the ray (x, y, 1) with (x_d, y_d) = (x, y) (1 + k1 r^2 + k2 r^4 + k3 r^6), r = |(x, y)|,
    and fx chosen so the image spans ``hfov_deg`` edge to edge.  Each pixel's ray is found
    by the polynomial's roots (numpy's eigenvalue solver), independently of rgsd's code."""
    t = math.tan(math.radians(hfov_deg) / 2.0)
    v, u = np.mgrid[0:height, 0:width] + 0.5
    if k is None:
        f = width / 2.0 / t
        return np.stack([(u - width / 2.0) / f, (v - height / 2.0) / f, np.ones_like(u)], -1)
    k1, k2, k3 = k
    f = width / 2.0 / (t * (1 + k1 * t**2 + k2 * t**4 + k3 * t**6))
    xd, yd = (u - width / 2.0) / f, (v - height / 2.0) / f
    rd = np.hypot(xd, yd)
    keys, inverse = np.unique(np.round(rd, 12), return_inverse=True)
    ru = np.empty_like(keys)
    for i, r in enumerate(keys):
        roots = np.roots([k3, 0.0, k2, 0.0, k1, 0.0, 1.0, -r])
        real = roots[(np.abs(roots.imag) < 1e-9) & (roots.real >= 0)].real
        ru[i] = real.min()  # the lens is monotonic up to the corner: the first root is the ray
    s = (ru / np.maximum(keys, 1e-300))[inverse.reshape(rd.shape)]
    return np.stack([xd * s, yd * s, np.ones_like(u)], -1)


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
