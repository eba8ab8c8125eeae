"""Sample synthesis for mask-guided layered depth refinement (Kim et al., maskdepth §3.1 and
supp. §3): adaptive cropping, random composition and depth perturbations.

Pure numpy/OpenCV functions on arrays; every random choice comes from the ``rng`` passed in.
Depth here is in the refiner's space (``composer.depth_space``): inverse depth scaled to
[0, DEPTH_SCALE] = [0, 10] (:func:`to_inverse`).
"""
from __future__ import annotations

import cv2
import numpy as np

from composer.depth_space import DEPTH_SCALE


def to_inverse(depth_m: np.ndarray, near_m: float = 1.0) -> np.ndarray:
    """Metres to the refiner's depth space: ``DEPTH_SCALE * min(1, near_m / z)``.

    Surfaces at or nearer than ``near_m`` map to 10, the depth halves with each doubling of
    distance, and sky (z = +inf) maps to 0."""
    with np.errstate(divide="ignore"):
        inv = np.where(np.isfinite(depth_m) & (depth_m > 0), near_m / np.maximum(depth_m, 1e-6), 0.0)
    return (DEPTH_SCALE * np.minimum(inv, 1.0)).astype(np.float32)


def composite(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """M·a + (1−M)·b for a binary mask (H, W) and images (H, W) or (H, W, C)."""
    out = np.array(b, copy=True, order="C")
    # OpenCV's masked copy: ~30x numpy's where/copyto on a 320x320x3 patch.
    cv2.copyTo(np.ascontiguousarray(a), (mask != 0).astype(np.uint8), out)
    return out


def random_crop(rng: np.random.Generator, hw: tuple[int, int], patch: int) -> tuple[int, int, int, int]:
    """A patch x patch window [x0, y0, x1, y1] uniformly placed in an image of size hw."""
    h, w = hw
    if patch > h or patch > w:
        raise ValueError(f"patch {patch} is larger than a {w}x{h} source")
    y0 = int(rng.integers(0, h - patch + 1))
    x0 = int(rng.integers(0, w - patch + 1))
    return x0, y0, x0 + patch, y0 + patch


def adaptive_crop(rng: np.random.Generator, box: tuple[int, int, int, int], hw: tuple[int, int],
                  patch: int) -> tuple[int, int, int, int]:
    """A square window around an object (supp. §3): the patch size when the object fits in it,
    else p ~ U(s, 2s) with s = max(object h, w); placed at random with the object inside.
    When the image is too small for that, the window shrinks to the image and stays over the
    object as far as it can."""
    x0, y0, x1, y1 = box
    oh, ow = y1 - y0, x1 - x0
    h, w = hw
    s = max(oh, ow)
    p = patch if s <= patch else int(rng.integers(s, 2 * s + 1))
    p = min(p, h, w)
    # Window origin range that keeps the whole object inside (clamped to the image).
    lo_x, hi_x = max(0, x1 - p), min(x0, w - p)
    lo_y, hi_y = max(0, y1 - p), min(y0, h - p)
    if lo_x > hi_x:  # object wider than the window: centre the window on it
        lo_x = hi_x = int(np.clip((x0 + x1 - p) // 2, 0, w - p))
    if lo_y > hi_y:
        lo_y = hi_y = int(np.clip((y0 + y1 - p) // 2, 0, h - p))
    cx = int(rng.integers(lo_x, hi_x + 1))
    cy = int(rng.integers(lo_y, hi_y + 1))
    return cx, cy, cx + p, cy + p


def stuff_crop(rng: np.random.Generator, hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Stuff masks (sky): a square p ~ U(H/2, H) at a random location (supp. §3)."""
    h, w = hw
    p = int(rng.integers(h // 2, h + 1))
    p = min(p, w)
    x0 = int(rng.integers(0, w - p + 1))
    y0 = int(rng.integers(0, h - p + 1))
    return x0, y0, x0 + p, y0 + p


def crop_resize(img: np.ndarray, window: tuple[int, int, int, int], patch: int, nearest: bool) -> np.ndarray:
    x0, y0, x1, y1 = window
    out = img[y0:y1, x0:x1]
    if out.shape[0] != patch or out.shape[1] != patch:
        out = cv2.resize(out, (patch, patch), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
    return out


def mask_holes(mask: np.ndarray) -> list[np.ndarray]:
    """Holes of a binary mask (background regions enclosed by it), from the two-level contour
    hierarchy of ``cv2.findContours``, as filled boolean masks."""
    out = []
    for (x0, y0, x1, y1), hole in hole_windows(mask, margin=0):
        full = np.zeros(mask.shape, bool)
        full[y0:y1, x0:x1] = hole
        out.append(full)
    return out


def hole_windows(mask: np.ndarray, margin: int) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Each hole of ``mask`` as (window [x0, y0, x1, y1], boolean hole inside the window): its
    bounding box grown by ``margin`` pixels and clipped to the image.  Working in the window
    keeps the per-hole cost at the hole's size rather than the patch's."""
    m = mask.astype(np.uint8)
    contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    out = []
    if hierarchy is None:
        return out
    h, w = m.shape
    for c, (_nxt, _prev, _child, parent) in zip(contours, hierarchy[0]):
        if parent < 0:
            continue
        bx, by, bw, bh = cv2.boundingRect(c)
        x0, y0 = max(bx - margin, 0), max(by - margin, 0)
        x1, y1 = min(bx + bw + margin, w), min(by + bh + margin, h)
        filled = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.drawContours(filled, [c], -1, 1, thickness=-1, offset=(-x0, -y0))
        hole = filled.astype(bool) & (m[y0:y1, x0:x1] == 0)
        if hole.any():
            out.append(((x0, y0, x1, y1), hole))
    return out


def has_holes(mask: np.ndarray) -> bool:
    _, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool((hierarchy[0][:, 3] >= 0).any())


RING = 10  # width of the outer ring whose mean bounds a hole's fill value (supp. §3)


def _square(k: int) -> np.ndarray:
    """The structuring element of k iterations of a 3x3 square."""
    return np.ones((2 * k + 1, 2 * k + 1), np.uint8)


def sample_perturbation(rng: np.random.Generator) -> dict:
    """Perturbation parameters (supp. §3)."""
    small = bool(rng.random() < 0.5)
    return {
        "k_dilate": int(rng.integers(1, 6)),
        "k_erode": int(rng.integers(1, 6)),
        "order": "dilate-first" if rng.random() < 0.5 else "erode-first",
        "blur_sigma": float(rng.uniform(0.0, 1.0) if small else rng.uniform(1.0, 5.0)),
        "hole_t": float(rng.random()),  # where between inside and ring mean the first hole lands
    }


def perturb(depth: np.ndarray, mask: np.ndarray, p: dict) -> tuple[np.ndarray, int]:
    """P(D'): hole perturbation, then random dilation/erosion, then Gaussian blur.

    Each hole of the mask gets a value between the mean depth inside it and the mean of its
    10-pixel outer ring (holes first, so the later operations treat them like any other
    region).  Morphology runs in the order (dilate, erode, erode, dilate) or (erode, dilate,
    dilate, erode) with k_dilate / k_erode iterations of a 3x3 kernel.  Returns the
    perturbed map and the number of holes filled."""
    out = depth.astype(np.float32, copy=True)
    holes = hole_windows(mask, margin=RING)
    ring_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING + 1, 2 * RING + 1))
    for i, ((x0, y0, x1, y1), hole) in enumerate(holes):
        # Hole i lands at fraction t_i of the way; a golden-ratio walk spreads the t_i over
        # [0, 1) so each hole gets its own value from one recorded number.
        t = (p["hole_t"] + i * 0.6180339887) % 1.0
        # OpenCV's default dilation border ignores outside pixels, so dilating inside the
        # window grown by RING equals dilating the whole patch.
        ring = cv2.dilate(hole.view(np.uint8), ring_kernel).astype(bool) & ~hole
        d = depth[y0:y1, x0:x1]
        inside = float(d[hole].mean())
        around = float(d[ring].mean()) if ring.any() else inside
        out[y0:y1, x0:x1][hole] = inside + t * (around - inside)
    # k iterations of a 3x3 square equal one (2k+1)-square pass (OpenCV's default border
    # ignores pixels outside the image either way), and the two middle steps merge into one
    # of 2k: three separable passes instead of up to twenty (tested equal in test_composer_ops).
    kd, ke = p["k_dilate"], p["k_erode"]
    first, middle = (cv2.dilate, cv2.erode) if p["order"] == "dilate-first" else (cv2.erode, cv2.dilate)
    k1, k2 = (kd, ke) if p["order"] == "dilate-first" else (ke, kd)
    out = first(out, _square(k1))
    out = middle(out, _square(2 * k2))
    out = first(out, _square(k1))
    if p["blur_sigma"] > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=p["blur_sigma"], borderType=cv2.BORDER_REFLECT)
    return out, len(holes)
