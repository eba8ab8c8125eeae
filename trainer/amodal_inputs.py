"""DAISnet's depth-derived input channels (daisnet §3.3-3.5), on numpy arrays (no torch).

Where the paper and the authors' code (JingchengYang4/DAIS, see daisnet-code-notes.md)
differ, rgsd follows:

* log-depth standardisation (eqs. 2-3): the code -- log10 depth standardised over the whole
  map with its mean and unbiased std.  Pixels without a surface (+inf) take the farthest
  finite depth first, so sky reads as "far" and does not blow up the statistics.
* regional depth normalisation (eqs. 4-5): the paper's equations with the code's offsets:
  map k = 0 .. Dm-1 is s_k = z + k * Ds / Dm and R_k = s_k - Ds * floor(s_k / Ds), with
  floor the soft floor of eq. 5 (``soft=True``; R_k is then Ds sin(2 pi s_k / Ds) / (2 pi))
  or the hard floor of eq. 4.  Defaults Ds = 3, Dm = 4 (the code's; §3.5's "Ds of 4" is Dm).
* tangent normals (eqs. 14-22): the generalised Sobel kernel Gx[j, i] = i / (i^2 + j^2) of
  eqs. 18-21 times 2 (the factor that makes the 3x3 kernel eq. 14's Sobel and that the
  code uses; 20 x the 5x5 kernel is eq. 22 exactly), correlated with the standardised log
  depth (the code's input) with replicated borders (the code pads zeros, which draws a
  false edge round every image); T = [-Dx, -Dy, Dz] / |T| in the paper's order (eq. 15),
  Dz = 0.7 (the code's and Fig. 8's; the text says 0.8).
* true normals: the store's camera-space normals (OpenCV axes, facing the camera) negated,
  n -> -n, so they share the tangent map's convention (+z towards the viewer, x/y signs of
  -grad z); 0 where there is no surface.

Everything here is invariant to a global scale of the depth (log, then standardised), so a
monocular estimator's depth in unknown units works at inference.
"""
from __future__ import annotations

import cv2
import numpy as np

INPUTS = ("rgb", "rdn", "tangent", "normals")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def input_channels(inputs, dm: int = 4) -> int:
    return sum({"rgb": 3, "rdn": dm, "tangent": 3, "normals": 3}[k] for k in inputs)


def log_depth_standardised(depth: np.ndarray) -> np.ndarray:
    """Eqs. 2-3: z = (log10 d - mean) / std over the map (unbiased std, as the code)."""
    d = np.asarray(depth, np.float64)
    finite = np.isfinite(d) & (d > 0)
    if not finite.any():
        return np.zeros(d.shape, np.float32)
    far = d[finite].max()
    dl = np.log10(np.where(finite, d, far))
    sd = dl.std(ddof=1) if dl.size > 1 else 0.0
    return ((dl - dl.mean()) / (sd if sd > 1e-12 else 1.0)).astype(np.float32)


def soft_floor(x: np.ndarray) -> np.ndarray:
    """Eq. 5: y = x - sin(2 pi x) / (2 pi), a floor with smooth steps (equal at integers)."""
    return x - np.sin(2 * np.pi * x) / (2 * np.pi)


def regional_depth(z: np.ndarray, ds: float = 3.0, dm: int = 4, soft: bool = True) -> np.ndarray:
    """Eq. 4 on Dm offset maps: (Dm, H, W), R_k = s_k - Ds floor(s_k / Ds), s_k = z + k Ds / Dm."""
    floor = soft_floor if soft else np.floor
    out = np.empty((dm,) + z.shape, np.float32)
    for k in range(dm):
        s = z.astype(np.float64) + k * ds / dm
        out[k] = s - ds * floor(s / ds)
    return out


def sobel_kernels(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 17-21 for an odd size N: Gx[y, x] = i / (i^2 + j^2), Gy = j / (i^2 + j^2), with
    (i, j) the offset of entry (x, y) from the centre (0 there).  Unscaled: 2 Gx is eq. 14's
    Sobel for N = 3, 20 Gx is eq. 22 for N = 5."""
    if n < 3 or n % 2 == 0:
        raise ValueError(f"Sobel kernel size must be odd and >= 3, got {n}")
    r = (n - 1) // 2
    j, i = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    d2 = i * i + j * j
    d2[r, r] = 1.0
    return i / d2, j / d2


def tangent_normals(z: np.ndarray, size: int = 5, dz: float = 0.7) -> np.ndarray:
    """Eqs. 15-16: the unit tangent map (3, H, W) of the standardised log depth ``z``."""
    gx, gy = sobel_kernels(size)
    src = z.astype(np.float32)
    # cv2.filter2D correlates (no kernel flip), as the code's conv2d does.
    dx = cv2.filter2D(src, cv2.CV_32F, (2 * gx).astype(np.float32), borderType=cv2.BORDER_REPLICATE)
    dy = cv2.filter2D(src, cv2.CV_32F, (2 * gy).astype(np.float32), borderType=cv2.BORDER_REPLICATE)
    t = np.stack([-dx, -dy, np.full_like(dx, dz)])
    return (t / np.linalg.norm(t, axis=0, keepdims=True)).astype(np.float32)


def true_normals(normals: np.ndarray) -> np.ndarray:
    """(H, W, 3) store normals -> (3, H, W) in the tangent map's convention (negated)."""
    n = np.asarray(normals, np.float32)
    return np.ascontiguousarray(-n.transpose(2, 0, 1))


def build_inputs(rgb: np.ndarray, depth: np.ndarray | None, normals: np.ndarray | None, inputs,
                 ds: float = 3.0, dm: int = 4, soft: bool = True, sobel: int = 5, dz: float = 0.7,
                 depth_channel: bool = False) -> np.ndarray:
    """The model's input (C, H, W) float32: RGB in [0, 1] (the model standardises it), then
    the selected depth channels, then, with ``depth_channel``, the standardised log depth
    that the RoI heads pool (§3.6; the backbone does not see it)."""
    parts = []
    z = log_depth_standardised(depth) if depth is not None else None
    for k in inputs:
        if k == "rgb":
            parts.append(np.asarray(rgb, np.float32).transpose(2, 0, 1) / 255.0)
        elif k == "rdn":
            parts.append(regional_depth(z, ds, dm, soft))
        elif k == "tangent":
            parts.append(tangent_normals(z, sobel, dz))
        elif k == "normals":
            parts.append(true_normals(normals))
        else:
            raise ValueError(f"unknown input {k!r} (choose from {', '.join(INPUTS)})")
    if depth_channel:
        parts.append(z[None])
    return np.ascontiguousarray(np.concatenate(parts), np.float32)


def degrade_depth(depth: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Ground-truth depth made to look estimated, so the model does not learn to trust
    perfect depth: a random global scale (irrelevant after standardisation, kept honest),
    multiplicative log-normal noise, a Gaussian blur and a down/up-sampling, each drawn per
    call.  Sky stays +inf."""
    if strength <= 0:
        return depth
    d = np.asarray(depth, np.float32)
    sky = ~np.isfinite(d)
    far = float(d[~sky].max()) if (~sky).any() else 1.0
    x = np.log(np.where(sky, far, np.maximum(d, 1e-3)))
    x = x + rng.normal(0, 0.03 * strength, x.shape).astype(np.float32)
    sigma = rng.uniform(0, 2.0 * strength)
    if sigma > 0.3:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    f = int(rng.choice([1, 2, 4]))
    if f > 1:
        h, w = x.shape
        small = cv2.resize(x, (max(w // f, 4), max(h // f, 4)), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    out = np.exp(x).astype(np.float32)
    out[sky] = np.inf
    return out


def occlusion_edges(visible: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """§3.7's target before blurring: the visible pixels that touch the instance's occluded
    part (amodal minus visible), i.e. where the visible mask ends because something is in
    front, not at the object's own outline.  (N, H, W) bool -> (N, H, W) uint8."""
    out = np.zeros(visible.shape, np.uint8)
    k = np.ones((3, 3), np.uint8)
    for n in range(len(visible)):
        occluded = (amodal[n] & ~visible[n]).astype(np.uint8)
        if occluded.any():
            out[n] = cv2.dilate(occluded, k) & visible[n].astype(np.uint8)
    return out
