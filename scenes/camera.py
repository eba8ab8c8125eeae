"""The real camera of issue 16 (pure numpy, no bpy): field of view, roll, height and pitch
variety, radial lens distortion and the shutter, drawn per layout from their own stream.

Lens model (``Camera.lens = {"model": "radial", "k1", "k2", "k3"}``): OpenCV's radial
distortion of the pinhole projection.  A camera point (X, Y, Z), Z > 0, goes to
x = X / Z, y = Y / Z, r = |(x, y)|, then to x_d = x D(r) / r with
D(r) = r (1 + k1 r^2 + k2 r^4 + k3 r^6), and to the pixel u = fx x_d + cx, v = fy y_d + cy.
``hfov_deg`` stays the image's true field of view (edge to edge through the centre row), so
fx = (W / 2) / D(tan(hfov / 2)); the lens dict stores K (Camera.intrinsics returns it), and
OpenCV's ``distCoeffs = [k1, k2, 0, 0, k3]`` with that K undistorts an rgsd image.  The renderer
inverts D per camera ray (generator/lens.py), so every pixel is the point sample of the
ray (x, y, 1) with D(|(x, y)|) = the pixel's distorted radius.  D must increase over the
radii the image covers, up to its corners; a lens that folds the image over (D turns
before the corner radius) is refused.
"""
from __future__ import annotations

import math

import numpy as np

from scenes import portable_math as pm

K_STREAM = 16002  # this module's RNG stream: SeedSequence([seed, layout, K_STREAM])
_RADII = np.linspace(0.0, 1.0, 4097)[1:]


def camera_options(cfg: dict) -> dict | None:
    """The ``camera`` knobs in force, or None (the camera of before issue 16) when
    ``variety.enabled`` is false or the config predates them."""
    if not (cfg.get("variety") or {}).get("enabled", False):
        return None
    return cfg.get("camera")


def distort(r, k1: float, k2: float, k3: float):
    r = np.asarray(r, np.float64)
    r2 = r * r
    return r * (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3)))


def undistorted_corner(k1: float, k2: float, k3: float, r_corner: float) -> float | None:
    """The radius r with D(r) = r_corner, D increasing on [0, r]; None if the lens folds
    the image over first (D stops increasing, so some pixels would have no ray, or two)."""
    hi = max(4.0 * r_corner, 4.0)
    r = _RADII * hi
    slope = 1.0 + r * r * (3 * k1 + r * r * (5 * k2 + 7 * k3 * r * r))
    d = distort(r, k1, k2, k3)
    turn = np.flatnonzero(slope <= 0.0)
    limit = len(r) if not len(turn) else int(turn[0])
    reach = np.flatnonzero(d[:limit] >= r_corner)
    if not len(reach):
        return None
    j = int(reach[0])
    lo, top = (r[j - 1] if j else 0.0), r[j]
    for _ in range(60):  # bisection: D is increasing on [lo, top]
        mid = 0.5 * (lo + top)
        lo, top = (mid, top) if distort(mid, k1, k2, k3) < r_corner else (lo, mid)
    return float(top)


def radial_lens(k1: float, k2: float, k3: float, hfov_deg: float, width: int, height: int) -> dict | None:
    """The spec's lens of a radial-distortion camera whose image spans ``hfov_deg`` from its
    left to its right edge (through the centre row): the coefficients, K (fx = fy, the
    principal point at the centre) and r_max, the undistorted radius of the image corner.
    None if the lens folds the image over before the corner."""
    t = pm.tan(math.radians(hfov_deg) / 2.0)
    edge = float(distort(t, k1, k2, k3))
    if edge <= 0:
        return None
    r_max = undistorted_corner(k1, k2, k3, edge * pm.hypot(1.0, height / width))
    if r_max is None or r_max < t:
        return None
    fx = width / 2.0 / edge
    return {"model": "radial", "k1": float(k1), "k2": float(k2), "k3": float(k3),
            "fx": fx, "fy": fx, "cx": width / 2.0, "cy": height / 2.0, "r_max": r_max}


def undistort_points(xd: np.ndarray, yd: np.ndarray, lens: dict, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Undistorted normalised coordinates of distorted ones (radii up to D(r_max))."""
    rd = pm.hypot(xd, yd)
    lo, hi = np.zeros_like(rd), np.full_like(rd, r_max)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = distort(mid, lens["k1"], lens["k2"], lens["k3"]) < rd
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    s = np.where(rd > 0, hi / np.maximum(rd, 1e-300), 1.0)
    return xd * s, yd * s


def view_bounds(cam) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): a rectangle in undistorted normalised coordinates (x = X/Z, y = Y/Z)
    that holds every point the image sees: the bounding box of its undistorted border."""
    k = cam.intrinsics()
    w, h = k["width"], k["height"]
    t = np.linspace(0.0, 1.0, 257)
    u = np.concatenate([t * w, t * w, np.zeros_like(t), np.full_like(t, w)])
    v = np.concatenate([np.zeros_like(t), np.full_like(t, h), t * h, t * h])
    x, y = undistort_points((u - k["cx"]) / k["fx"], (v - k["cy"]) / k["fy"], cam.lens, cam.lens["r_max"] * 1.001)
    pad = 1e-6
    return float(x.min()) - pad, float(x.max()) + pad, float(y.min()) - pad, float(y.max()) + pad


def sample_camera(cam, cfg: dict, seed: int, layout: int) -> None:
    """Draw this layout's camera knobs from their own stream and apply them to ``cam``
    (the frames of a layout share one camera rig).  Draws nothing with variety off."""
    opts = camera_options(cfg)
    if not opts:
        return
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(layout), K_STREAM])))
    # Always the same draws in the same order, so switching one knob off leaves the others.
    u = rng.random(9)

    def draw(key, x):
        lo, hi = opts[key]
        return float(lo + (hi - lo) * x) if hi > lo else float(lo)

    cam.hfov_deg = float(cfg["render"]["hfov_deg"]) + draw("hfov_offset_deg", u[0])
    cam.roll_deg = cam.roll_deg + draw("roll_deg", u[1])
    cam.pitch_deg = cam.pitch_deg + draw("pitch_offset_deg", u[2])
    cam.position = [cam.position[0], cam.position[1], cam.position[2] + draw("height_offset_m", u[3])]
    cam.shutter_s = draw("shutter_s", u[4])
    if u[5] < opts["distortion_fraction"]:
        k = (draw("k1", u[6]), draw("k2", u[7]), draw("k3", u[8]))
        lens = radial_lens(*k, cam.hfov_deg, cam.width, cam.height)
        if lens is None:  # camera_problem checks a grid of the ranges; this is between its points
            raise ValueError(f"camera lens k1={k[0]:g}, k2={k[1]:g}, k3={k[2]:g} drawn for layout {layout} "
                              f"folds the image over at {cam.hfov_deg:g} degrees: narrow camera.k1/k2/k3")
        cam.lens = lens


def store_intrinsics(cfg: dict, intrinsics: dict) -> dict:
    """The store's intrinsics attribute: the nominal pinhole K, marked when scenes vary."""
    opts = camera_options(cfg)
    if not opts or (opts["hfov_offset_deg"] == [0, 0] and opts["distortion_fraction"] <= 0):
        return intrinsics
    return {**intrinsics, "per_scene": "varies: each scene's spec camera (hfov_deg, lens) gives its K and distortion"}


def camera_problem(cfg: dict) -> str | None:
    """What is physically wrong with the camera knobs, in one line (scenes.config raises it
    as a ConfigError), or None: the field of view must stay in (0, 170], the shutter in
    [0, 1] s, the fraction in [0, 1], and no lens in the ranges may fold the image over."""
    c, r = cfg["camera"], cfg["render"]
    lo, hi = (r["hfov_deg"] + x for x in c["hfov_offset_deg"])
    if lo <= 0 or hi > 170.0:
        return (f"camera.hfov_offset_deg {c['hfov_offset_deg']} puts the field of view at "
                f"{lo:g}..{hi:g} degrees; it must stay above 0 and at most 170")
    if not 0.0 <= c["shutter_s"][0] <= c["shutter_s"][1] <= 1.0:
        return f"camera.shutter_s must be a range within [0, 1] seconds, got {c['shutter_s']}"
    if not 0.0 <= c["distortion_fraction"] <= 1.0:
        return f"camera.distortion_fraction must be between 0 and 1, got {c['distortion_fraction']}"
    if c["distortion_fraction"] <= 0:
        return None
    # A 5-point grid per coefficient (the ranges' corners, middles and quarters) at both
    # ends of the field of view; scenes.camera.sample_camera re-checks every drawn lens.
    grid = np.stack(np.meshgrid(*[np.unique(np.linspace(*c[k], 5)) for k in ("k1", "k2", "k3")]), -1).reshape(-1, 3)
    for fov in (lo, hi):
        bad = np.flatnonzero(folds(grid, fov, r["width"], r["height"]))
        if len(bad):
            k1, k2, k3 = grid[bad[0]]
            return (f"camera lens k1={k1:g}, k2={k2:g}, k3={k3:g} (in camera.k1/k2/k3) folds the image over "
                    f"at a {fov:g} degree field of view: its distortion stops increasing before the image corner")
    return None


def folds(k: np.ndarray, hfov_deg: float, width: int, height: int) -> np.ndarray:
    """Per lens (rows k1, k2, k3 of ``k``): True where radial_lens would refuse it."""
    k1, k2, k3 = (k[:, i:i + 1] for i in range(3))
    t = pm.tan(math.radians(hfov_deg) / 2.0)
    edge = distort(t, k1, k2, k3)[:, 0]
    rc = edge * pm.hypot(1.0, height / width)
    r = _RADII[None, :] * max(4.0 * float(rc.max(initial=0.0)), 4.0)
    slope = 1.0 + r * r * (3 * k1 + r * r * (5 * k2 + 7 * k3 * r * r))
    rising = np.cumprod(slope > 0.0, axis=1).astype(bool)  # before the first turn
    reach = (rising & (distort(r, k1, k2, k3) >= rc[:, None])).any(1)
    return (edge <= 0) | ~reach
