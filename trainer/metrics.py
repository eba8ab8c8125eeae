"""Evaluation metrics for mask-guided layered depth refinement (maskdepth §4.2-§4.3).

Pure numpy / scipy / scikit-image / OpenCV; no torch, so the metrics can run in a light
evaluation process.  Conventions:

* Every map is an (H, W) array in the refiner's *inverse-depth* space ("All metrics are
  measured in the inverse depth space", §4.3); larger = closer.
* Predictions are expected to be aligned to the ground truth first with
  :func:`align_scale_shift` (§4.2: "Predictions are scaled and shifted using l2
  minimization to match the ground truth depth"), so absolute thresholds such as R³'s
  t = 0.05 are in the units of the ground-truth inverse depth.
* ``valid`` is a boolean (H, W) mask; ``None`` means every finite pixel of ``gt``.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from scipy import ndimage

# iBims-1 depth boundary error constants (Koch et al., ECCVW 2018, reference script).
DBE_MAX_DIST = 10.0
DBE_CANNY_SIGMA = float(np.sqrt(2.0))
DBE_CANNY_LOW, DBE_CANNY_HIGH = 0.15, 0.3


def _valid(gt: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    v = np.isfinite(gt)
    return v if valid is None else (v & np.asarray(valid, bool))


def align_scale_shift(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Return ``s * pred + t`` with (s, t) = argmin Σ_valid (s·pred + t − gt)² (MiDaS protocol).

    Solved with ``lstsq`` so a constant prediction (singular normal equations) still gets
    the minimum-norm solution instead of a division by zero.  The whole map is returned,
    invalid pixels included, so it can be fed to the other metrics unchanged."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    v = _valid(gt, valid) & np.isfinite(pred)
    if not v.any():
        raise ValueError("align_scale_shift: no valid pixels")
    a = np.stack([pred[v], np.ones(int(v.sum()))], axis=1)
    (s, t), *_ = np.linalg.lstsq(a, gt[v], rcond=None)
    return s * pred + t


def rmse(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """sqrt(mean over valid pixels of (pred − gt)²)."""
    v = _valid(gt, valid)
    d = np.asarray(pred, np.float64)[v] - np.asarray(gt, np.float64)[v]
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def r3_counts(pred, gt, initial, region=None, t: float = 0.05) -> tuple[int, int]:
    """(#pixels improved by more than t, #pixels worsened by more than t) in absolute error.

    Exposed so a dataset-level R³ can be formed from summed counts if wanted; the paper
    does not say whether R³ is averaged per image or pooled (see :func:`r3`)."""
    v = _valid(gt, region)
    gt64 = np.asarray(gt, np.float64)[v]
    e_init = np.abs(np.asarray(initial, np.float64)[v] - gt64)
    e_ref = np.abs(np.asarray(pred, np.float64)[v] - gt64)
    # "more than a threshold" -> strict inequality; a change of exactly t counts as neither.
    return int(np.sum(e_init - e_ref > t)), int(np.sum(e_ref - e_init > t))


def r3(pred, gt, initial, mask_boundary_or_valid=None, t: float = 0.05) -> float:
    """Relative refinement ratio R³ (maskdepth §4.3), quoted:

        "we define R³ (relative refinement ratio) as the ratio of the number of pixels
        improved by more than a threshold t to the number of pixels worsened by more than
        t, in terms of absolute error. We set t = 0.05 and compute R³ of refined results
        over initial results by base models."

    Implemented per pixel p of the region (``mask_boundary_or_valid``; ``None`` = all
    finite GT pixels, which is what the paper's wording implies — it names no sub-region):
        e0 = |initial − gt|, e1 = |pred − gt|,
        improved ⇔ e0 − e1 > t,  worsened ⇔ e1 − e0 > t,
        R³ = #improved / #worsened.
    Undefined denominators (not specified by the paper): #worsened = 0 gives +inf when
    something improved and NaN when nothing changed by more than t."""
    imp, wor = r3_counts(pred, gt, initial, mask_boundary_or_valid, t)
    if wor == 0:
        return float("inf") if imp > 0 else float("nan")
    return imp / wor


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """M_b = dilate_5x5(M − erode_3x3(M)) as a bool array (§4.3).

    The paper gives only the 5×5 dilation; the 3×3 erosion (a one-pixel inner contour) is
    our choice.  OpenCV's default border value for erosion is +inf, so the image border
    is *not* a mask boundary: an object cut by the frame is not scored along the cut."""
    m = np.asarray(mask, bool).astype(np.uint8)
    edge = m - cv2.erode(m, np.ones((3, 3), np.uint8))
    return cv2.dilate(edge, np.ones((5, 5), np.uint8)).astype(bool)


def mbe(pred, gt, masks: Sequence[np.ndarray], valid: np.ndarray | None = None) -> float:
    """Mask boundary error, eq. (4): (1/N) Σ_i sqrt( (1/N_i^b) Σ_{M_i^b} (D − D̂)² ).

    Instances whose boundary has no valid pixel (empty or whole-frame masks) are skipped
    rather than counted as 0 error; NaN if no instance is left."""
    v = _valid(gt, valid)
    diff2 = (np.asarray(pred, np.float64) - np.asarray(gt, np.float64)) ** 2
    per_inst = []
    for m in masks:
        b = mask_boundary(m) & v
        if b.any():
            per_inst.append(np.sqrt(diff2[b].mean()))
    return float(np.mean(per_inst)) if per_inst else float("nan")


def _ordinal(a: np.ndarray, b: np.ndarray, tau: float) -> np.ndarray:
    # +1 if a > (1+tau)·b, −1 if b > (1+tau)·a, else 0.  For positive values this is the
    # ratio rule a/b > 1+tau / a/b < 1/(1+tau); with tau = 0 it is exactly sign(a − b).
    # Written multiplicatively so that zeros (sky) and negative aligned values don't divide.
    r = np.zeros(a.shape, np.int8)
    r[a > (1.0 + tau) * b] = 1
    r[b > (1.0 + tau) * a] = -1
    return r


def whdr(pred, gt, valid: np.ndarray | None = None, n_pairs: int = 10000, seed: int = 0,
         rel_threshold: float = 0.0, exclude_gt_ties: bool = False) -> float:
    """Ordinal disagreement rate on ``n_pairs`` random point pairs, LeReS style.

    Sampling: 2·n_pairs *distinct* valid pixels drawn with ``default_rng(seed)`` and split
    into pairs (first half, second half), as LeReS' ``select_index`` does (it draws
    without replacement and is unseeded; here the seed makes results reproducible).  With
    fewer than 2·n_pairs valid pixels we use floor(n_valid/2) pairs of distinct pixels
    (LeReS falls back to sampling with replacement — deviation).

    Relations: the same rule is applied to gt and pred (:func:`_ordinal`).  The default
    ``rel_threshold=0`` is the *strict sign of the difference*, which is what the LeReS
    released code does (AdelaiDepth issue #26: ``rank[p1 > p2] = 1; rank[p1 < p2] = -1``).
    τ = 0.03 is the ratio threshold of LeReS/Xian et al.'s ranking *loss*, not of its WHDR
    evaluation; pass ``rel_threshold=0.03`` to get that variant.  Disagreement counts are
    invariant to taking relations in inverse depth instead of depth (1/x reverses every
    relation of both maps alike), as long as both maps live in the same space.
    Note LeReS also drops gt ≤ 0 pixels; pass such a ``valid`` mask for the same effect
    (``trainer.evaluate`` does: sky is 0 in this space, and sky–sky pairs are ties that any
    noise in the prediction turns into disagreements).

    ``exclude_gt_ties``: drop pairs whose gt relation is 0 (equal within ``rel_threshold``)
    and divide by the pairs left; NaN if none is left.  LeReS' released code keeps them (a
    tie in gt counts as an error whenever pred orders the pair); in this project's space a
    gt tie arises where the truth is unknown -- both pixels on the plateau of surfaces at
    or nearer than 1 m, clamped to 10 -- so the evaluation excludes them (a deviation).

    Unweighted (all pair weights 1), as in LeReS: WHDR = #(rel_gt ≠ rel_pred) / #pairs."""
    v = _valid(gt, valid).ravel()
    idx = np.flatnonzero(v)
    n = min(int(n_pairs), idx.size // 2)
    if n == 0:
        return float("nan")
    pick = idx[np.random.default_rng(seed).choice(idx.size, 2 * n, replace=False)]
    p1, p2 = pick[:n], pick[n:]
    g = np.asarray(gt, np.float64).ravel()
    p = np.asarray(pred, np.float64).ravel()
    rel_gt = _ordinal(g[p1], g[p2], rel_threshold)
    rel_pred = _ordinal(p[p1], p[p2], rel_threshold)
    if exclude_gt_ties:
        keep = rel_gt != 0
        if not keep.any():
            return float("nan")
        rel_gt, rel_pred = rel_gt[keep], rel_pred[keep]
    return float(np.mean(rel_gt != rel_pred))


def _canny_normalised(img: np.ndarray, v: np.ndarray) -> np.ndarray:
    from skimage.feature import canny  # local import: skimage is only needed here

    x = np.asarray(img, np.float64)
    lo, hi = x[v].min(), x[v].max()
    if hi <= lo:  # constant map: no edges (normalisation would divide by zero)
        return np.zeros(x.shape, bool)
    x = np.where(v, (x - lo) / (hi - lo), 0.0)
    return canny(x, sigma=DBE_CANNY_SIGMA, low_threshold=DBE_CANNY_LOW,
                 high_threshold=DBE_CANNY_HIGH, mask=v) & v


def depth_boundary_errors(pred, gt, valid: np.ndarray | None = None,
                          completeness: str = "symmetric") -> tuple[float, float]:
    """iBims-1 depth boundary errors (ε_acc, ε_comp), in pixels.

    Follows the iBims-1 reference script (``compute_depth_boundary_error``): maps min-max
    normalised to [0, 1] over valid pixels, ``skimage.feature.canny(sigma=√2, low=0.15,
    high=0.3)``, exact EDTs, 10 px neighbourhood:

    * ε_acc = mean over predicted edge pixels with D_gt < 10 of D_gt (distance to the
      nearest GT edge) — the directed chamfer distance pred → GT.
    * ε_comp, ``completeness="symmetric"`` (default) reproduces the later iBims script:
      (Σ_pred min(D_gt,10) + Σ_gt min(D_pred,10)) / (#pred + #gt), a capped symmetric
      chamfer.  ``"directed"`` -- mean over GT edge pixels of min(D_pred, 10) -- is this
      project's earlier default, a hybrid that matches neither published script (the
      ECCVW'18 text's reverse chamfer is not capped; the script is symmetric).

    Deviations from iBims-1: (1) iBims has hand-annotated GT edge maps; our data has none,
    so GT edges come from the same Canny on the normalised GT.  (2) Invalid pixels are
    excluded through ``valid`` (canny's ``mask``) instead of iBims' "0 → NaN".
    Undefined cases: no GT edges → (NaN, NaN) as in iBims; no predicted edge within 10 px
    of a GT edge → (10, 10), iBims' penalty value (not NaN, so such images still count)."""
    v = _valid(gt, valid) & np.isfinite(pred)
    if not v.any():
        return float("nan"), float("nan")
    e_gt = _canny_normalised(gt, v)
    if not e_gt.any():
        return float("nan"), float("nan")
    e_pred = _canny_normalised(pred, v)
    d_gt = ndimage.distance_transform_edt(~e_gt)
    near = e_pred & (d_gt < DBE_MAX_DIST)
    if not near.any():
        return DBE_MAX_DIST, DBE_MAX_DIST
    eps_acc = float(d_gt[near].mean())
    d_pred = np.minimum(ndimage.distance_transform_edt(~e_pred), DBE_MAX_DIST)
    if completeness == "directed":
        eps_comp = float(d_pred[e_gt].mean())
    elif completeness == "symmetric":
        s = np.minimum(d_gt[e_pred], DBE_MAX_DIST).sum() + d_pred[e_gt].sum()
        eps_comp = float(s / (e_pred.sum() + e_gt.sum()))
    else:
        raise ValueError(f"completeness must be 'directed' or 'symmetric', not {completeness!r}")
    return eps_acc, eps_comp


def merge_instances(initial: np.ndarray, refined_list: Sequence[np.ndarray]) -> np.ndarray:
    """§4.2 (iii): D̂ = argmax_{D̂_i} |D' − D̂_i| per pixel, D' the initial depth.

    Each instance run only changes its own mask region, so the candidate that moved a
    pixel most is the one whose mask covers it.  Ties (e.g. all unchanged) go to the first
    candidate (np.argmax), which is harmless: tied candidates differ from D' equally and
    are usually identical.  No candidates → a copy of the initial map."""
    init = np.asarray(initial)
    if len(refined_list) == 0:
        return init.copy()
    stack = np.stack([np.asarray(r) for r in refined_list])
    k = np.argmax(np.abs(stack - init[None]), axis=0)
    return np.take_along_axis(stack, k[None], axis=0)[0]


def instance_masks(instance_map: np.ndarray, min_fraction: float = 0.01,
                   background: Sequence[int] = (0,)) -> list[np.ndarray]:
    """Binary masks of instances with *more than* ``min_fraction`` of all pixels (§4.2 (i)).

    ``background`` ids (scene stores: 0 = none) and negative ids (−1 fills) are not
    instances.  Masks are returned in increasing id order."""
    im = np.asarray(instance_map)
    ids, counts = np.unique(im, return_counts=True)
    keep = (counts > min_fraction * im.size) & (ids >= 0) & ~np.isin(ids, list(background))
    return [im == i for i in ids[keep]]
