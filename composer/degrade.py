"""Degradation families: initial depths unlike the paper's P(.), so the refiner can be trained
on a mixture of them and evaluated on the ones it never saw (issue 27).

Monocular estimators (DPT, Depth Anything) do not dilate, erode and blur: their edges bleed
along the image, they lose resolution and thin structures, their scale drifts at low
frequency and their edges sit a few pixels off the object's.  One family per failure:

``perturb``     P(.) of maskdepth supp. §3 (``composer.ops.perturb``), as in the paper
``edge_bleed``  RGB-guided filter of the depth (He et al.): depth edges bleed where colour is smooth
``resolution``  down-sampling by 2-8x (area) and back up (bilinear or bicubic)
``thin_lost``   grey opening of inverse depth: near structures thinner than k px are eroded away
``warp``        low-frequency scale and shift fields: a(x, y) * D + b(x, y), smooth over the image
``misalign``    the depth map translated 1-4 px against the image and the mask
``smooth``      bilateral filter + 4x down/up-sampling (the issue-5 unseen case, kept to compare)

Every family is a pure function of (depth, rgb, mask, params); params are drawn by
:func:`sample_params` from an ``rng`` and recorded as ``PARAMS`` floats (NaN when unused), so
a sample's degradation can be replayed from its metadata.  Except for ``perturb`` (the
paper's operation, left exactly as trained before), sky -- depth 0, no surface -- stays 0 and
every surface pixel stays a surface (> 0): an estimator's sky segment is not what the refiner
is asked to fix, and a surface must not turn into sky.

Depth is in the refiner's space (``composer.depth_space``): inverse depth in [0, 10].
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from composer import ops
from composer.shard_store import DEGRADATIONS, N_DEGRADATION_PARAMS

FAMILIES = DEGRADATIONS  # the shard store owns the order (its "degradation" array indexes it)
N_PARAMS = N_DEGRADATION_PARAMS
# What each recorded float means, per family (the rest are NaN).  perturb's parameters are the
# shard store's own arrays (k_dilate, k_erode, dilate_first, blur_sigma, hole_t).
PARAMS = {
    "perturb": (),
    "edge_bleed": ("radius_px", "eps", "extra_blur_sigma"),
    "resolution": ("factor", "bicubic"),
    "thin_lost": ("kernel_px", "ellipse"),
    "warp": ("scale_amp", "shift_amp", "grid", "field_seed"),
    "misalign": ("dx_px", "dy_px"),
    "smooth": (),
}
DEFAULT_MIX = {"perturb": 1.0}


class DegradeError(ValueError):
    """An unknown family or a bad mixture (one line for the user)."""


def check_family(name: str) -> str:
    if name not in FAMILIES:
        raise DegradeError(f"unknown degradation family '{name}' (one of: {', '.join(FAMILIES)})")
    return name


def check_mix(mix) -> dict:
    """A mixture {family: weight}: known families, finite non-negative weights, some positive."""
    if not isinstance(mix, dict) or not mix:
        raise DegradeError(f"degrade_mix must map some of {', '.join(FAMILIES)} to weights")
    for k, v in mix.items():
        check_family(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise DegradeError(f"degrade_mix weight of '{k}' must be a non-negative number, not {v!r}")
    if sum(mix.values()) <= 0:
        raise DegradeError("degrade_mix needs a positive weight")
    return {k: float(v) for k, v in mix.items()}


def parse_mix(text: str) -> dict:
    """``perturb=2,edge_bleed=1`` or JSON ``{"perturb": 2}`` -> a checked mixture."""
    import json
    text = text.strip()
    if text.startswith("{"):
        try:
            return check_mix(json.loads(text))
        except ValueError as exc:
            if isinstance(exc, DegradeError):
                raise
            raise DegradeError(f"degradation mix is not JSON: {text}") from None
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, w = part.partition("=")
        try:
            mix[name.strip()] = float(w) if w else 1.0
        except ValueError:
            raise DegradeError(f"degradation mix: '{part}' is not FAMILY=WEIGHT") from None
    return check_mix(mix)


def pick_family(rng: np.random.Generator, mix: dict) -> str:
    names = [k for k in FAMILIES if mix.get(k, 0) > 0]
    if len(names) == 1:  # no draw: a one-family mixture leaves the stream alone
        return names[0]
    w = np.array([mix[k] for k in names], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def sample_params(family: str, rng: np.random.Generator) -> np.ndarray:
    """N_PARAMS float32 values (NaN where unused) for one draw of ``family``."""
    p = np.full(N_PARAMS, np.nan, np.float32)
    if family == "edge_bleed":
        p[:3] = (int(rng.integers(3, 13)), 10 ** rng.uniform(-3.0, -1.5), rng.uniform(0.0, 1.5))
    elif family == "resolution":
        p[:2] = (rng.uniform(2.0, 8.0), float(rng.random() < 0.5))
    elif family == "thin_lost":
        p[:2] = (int(rng.integers(1, 5)) * 2 + 1, float(rng.random() < 0.5))  # 3, 5, 7 or 9 px
    elif family == "warp":
        p[:4] = (rng.uniform(0.05, 0.3), rng.uniform(0.0, 0.5), int(rng.integers(2, 5)), int(rng.integers(0, 2**24)))
    elif family == "misalign":
        r, theta = rng.uniform(1.0, 4.0), rng.uniform(0.0, 2 * math.pi)
        dx, dy = int(round(r * math.cos(theta))), int(round(r * math.sin(theta)))
        if dx == 0 and dy == 0:
            dx = 1
        p[:2] = (dx, dy)
    else:
        check_family(family)
    return p


def box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window clipped to the image (He et al.'s boxfilter / N)."""
    ones = np.ones(x.shape[:2], np.float32)
    s = cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=False, borderType=cv2.BORDER_CONSTANT)
    n = cv2.boxFilter(ones, -1, (2 * r + 1, 2 * r + 1), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return s / (n[..., None] if s.ndim == 3 else n)


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He, Sun and Tang's guided filter of ``src`` (H, W) by ``guide`` (H, W) or (H, W, 3) in
    [0, 1], window radius ``r``, regulariser ``eps``; float32 arithmetic, float64 solve."""
    p = src.astype(np.float32)
    g = guide.astype(np.float32)
    mean_p = box_mean(p, r)
    if g.ndim == 2:
        mean_i = box_mean(g, r)
        var = box_mean(g * g, r) - mean_i * mean_i
        a = (box_mean(g * p, r) - mean_i * mean_p) / (var + eps)
        b = mean_p - a * mean_i
        return box_mean(a, r) * g + box_mean(b, r)
    mean_i = box_mean(g, r)  # (H, W, 3)
    cov_ip = box_mean(g * p[..., None], r) - mean_i * mean_p[..., None]
    h, w = p.shape
    sigma = np.empty((h, w, 3, 3), np.float64)
    for i in range(3):
        for j in range(i, 3):
            v = box_mean(g[..., i] * g[..., j], r) - mean_i[..., i] * mean_i[..., j]
            sigma[..., i, j] = sigma[..., j, i] = v
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_ip.astype(np.float64)[..., None])[..., 0].astype(np.float32)
    b = mean_p - (a * mean_i).sum(-1)
    return (box_mean(a, r) * g).sum(-1) + box_mean(b, r)


def _keep_sky(out: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Sky (depth 0) stays 0; a surface stays a surface, no farther than the farthest one."""
    sky = depth <= 0
    if sky.all():
        return np.zeros_like(depth, np.float32)
    floor = float(depth[~sky].min())
    return np.where(sky, 0.0, np.maximum(out, floor)).astype(np.float32)


def _smooth_field(rng: np.random.Generator, grid: int, hw: tuple[int, int]) -> np.ndarray:
    """A field in [-1, 1]: a (grid x grid) random lattice, bicubically up-sampled."""
    lattice = rng.uniform(-1.0, 1.0, (grid, grid)).astype(np.float32)
    return np.clip(cv2.resize(lattice, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC), -1.0, 1.0)


def apply(family: str, depth: np.ndarray, rgb: np.ndarray, mask: np.ndarray, params,
          perturb_params: dict | None = None) -> np.ndarray:
    """The degraded depth.  ``rgb`` (H, W, 3) uint8, ``mask`` (H, W) the mask(s) the refiner
    will get (``perturb`` fills its holes); ``perturb_params`` from ``ops.sample_perturbation``."""
    d = depth.astype(np.float32)
    h, w = d.shape
    if family == "perturb":
        return ops.perturb(d, mask.astype(np.uint8), perturb_params)[0]
    if family == "smooth":
        b = cv2.bilateralFilter(d, 9, 1.0, 5)
        small = cv2.resize(b, (max(w // 4, 8), max(h // 4, 8)), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    elif family == "edge_bleed":
        r, eps, sigma = int(params[0]), float(params[1]), float(params[2])
        out = guided_filter(rgb.astype(np.float32) / 255.0, d, r, eps)
        if sigma > 0:
            out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    elif family == "resolution":
        f, cubic = float(params[0]), bool(params[1])
        small = cv2.resize(d, (max(round(w / f), 1), max(round(h / f), 1)), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR)
    elif family == "thin_lost":
        k, ellipse = int(params[0]), bool(params[1])
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE if ellipse else cv2.MORPH_RECT, (k, k))
        # Near = large inverse depth: an opening removes near structures narrower than k.
        out = cv2.morphologyEx(d, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_REPLICATE)
    elif family == "warp":
        amp_a, amp_b, grid, seed = float(params[0]), float(params[1]), int(params[2]), int(params[3])
        frng = np.random.default_rng(seed)
        out = (1.0 + amp_a * _smooth_field(frng, grid, (h, w))) * d + amp_b * _smooth_field(frng, grid, (h, w))
    elif family == "misalign":
        m = np.float32([[1, 0, int(params[0])], [0, 1, int(params[1])]])
        out = cv2.warpAffine(d, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    else:
        check_family(family)
        raise AssertionError(family)
    return _keep_sky(out, d)


def degrade(family: str, depth: np.ndarray, rgb: np.ndarray, mask: np.ndarray,
            rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Draw ``family``'s parameters from ``rng`` and apply them: (degraded depth, record),
    the record holding the family and its named parameters."""
    check_family(family)
    if family == "perturb":
        pp = ops.sample_perturbation(rng)
        return apply(family, depth, rgb, mask, None, pp), {"family": family, **pp}
    params = sample_params(family, rng)
    record = {"family": family, **{n: float(params[i]) for i, n in enumerate(PARAMS[family])}}
    return apply(family, depth, rgb, mask, params), record
