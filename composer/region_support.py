"""Region support (RSN, "Region-Support Depth Inference from a Single Image", §3.1, Algorithm 1).

Numpy and OpenCV only.  Step 1 splits each semantic class into connected regions; step 2
splits a region whose depth spans at least ``2 * var`` into depth bins of width ``var``
(``var = (max(D) - min(D)) / bins`` over the whole image) and labels every region by its
mean depth.

Where the printed algorithm is ambiguous or cannot run as written, this module chooses:

* Regions are 8-connected components of one class (the algorithm's "distance <= 2"
  chaining of raster-sorted positions labels only a first run; 8-connectivity is what it
  is after).  Class 0 (``unlabeled``) forms no regions, as ``while max(S) > 0`` implies,
  and neither do pixels without a surface (depth +inf), which are left out of ``var`` too.
* A bin is dense when it holds more than ``len(d) / ((max(d) - min(d)) / var)`` pixels,
  the mean count per bin.  As printed, a sparse bin is skipped and left unlabelled and the
  last bin is never reached (``continue`` precedes it); here a sparse bin is merged into
  the bins after it until the group is dense, and whatever remains at the far end is one
  last group labelled by its own mean, so every pixel of a region is labelled.
* Region ids are 1.. in the raster order of each connected region's first pixel, then by
  depth inside it, so they do not depend on OpenCV's labelling order.  0 = no region.

Outside regions the support is +inf where there is no surface (as the depth) and NaN on
unlabeled pixels.
"""
from __future__ import annotations

import cv2
import numpy as np


def region_support(semantic: np.ndarray, depth: np.ndarray, bins: int = 10,
                   connectivity: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(support float32 metres, region ids int32) for one (H, W) semantic and depth map."""
    semantic = np.asarray(semantic)
    depth = np.asarray(depth, np.float32)
    h, w = depth.shape
    finite = np.isfinite(depth)
    valid = finite & (semantic > 0)
    ids = np.zeros((h, w), np.int32)
    support = np.where(finite, np.float32(np.nan), np.float32(np.inf)).astype(np.float32)
    if not valid.any():
        return support, ids

    # Step 1: connected regions per class, one global label map (classes are disjoint, so
    # the per-class maps add up).
    comp = np.zeros((h, w), np.int32)
    offset = 0
    sem_valid = np.where(valid, semantic, 0)
    for c in np.flatnonzero(np.bincount(sem_valid.ravel(), minlength=256)[1:]) + 1:
        m = (sem_valid == c).view(np.uint8)
        n, lab = cv2.connectedComponents(m, connectivity=connectivity, ltype=cv2.CV_32S)
        comp += (lab + offset) * m
        offset += n - 1
    flat = comp.ravel()
    pix = np.flatnonzero(flat)
    labels = flat[pix].astype(np.intp) - 1
    # Renumber components by the raster index of their first pixel.
    first = np.full(offset, flat.size, np.intp)
    np.minimum.at(first, labels, pix)
    rank = np.empty(offset, np.intp)
    rank[np.argsort(first)] = np.arange(offset)
    cid = rank[labels]
    ncomp = offset
    d = depth.ravel()[pix].astype(np.float64)

    # Step 2: per-component depth range, bins of width var, groups of dense bins.
    fin = depth[finite]
    var = (float(fin.max()) - float(fin.min())) / bins
    dmin = np.full(ncomp, np.inf)
    dmax = np.full(ncomp, -np.inf)
    np.minimum.at(dmin, cid, d)
    np.maximum.at(dmax, cid, d)
    count = np.bincount(cid, minlength=ncomp)
    span = dmax - dmin
    split = (var > 0) & (span >= 2 * var)
    nb = np.where(split, np.floor(span / var).astype(np.int64) + 1 if var > 0 else 1, 1)
    b = np.zeros(len(d), np.int64)
    if var > 0:
        b = np.floor((d - dmin[cid]) / var).astype(np.int64)
        b = np.where(split[cid], np.minimum(b, nb[cid] - 1), 0)
    nbmax = int(nb.max())
    per_bin = np.bincount(cid * nbmax + b, minlength=ncomp * nbmax).reshape(ncomp, nbmax)
    with np.errstate(divide="ignore", invalid="ignore"):
        dense = np.where(split, count / (span / var), np.inf)
    group_of = np.zeros((ncomp, nbmax), np.int64)
    acc = np.zeros(ncomp, np.int64)
    cur = np.zeros(ncomp, np.int64)
    for j in range(nbmax):
        live = j < nb
        group_of[:, j] = cur
        acc += np.where(live, per_bin[:, j], 0)
        close = live & split & (acc > dense) & (j < nb - 1)  # the last bin ends its group anyway
        cur += close
        acc[close] = 0
    ngroups = cur + 1
    base = np.concatenate([[0], np.cumsum(ngroups)[:-1]])
    region = base[cid] + group_of[cid, b]  # 0-based, ordered by component then depth
    nreg = int(ngroups.sum())
    sums = np.bincount(region, weights=d, minlength=nreg)
    counts = np.bincount(region, minlength=nreg)
    mean = (sums / np.maximum(counts, 1)).astype(np.float32)
    # Groups can be empty (a dense bin that closes just before an empty tail): renumber
    # the regions that hold pixels to 1..K without gaps.
    used = np.flatnonzero(counts)
    dense_id = np.zeros(nreg, np.int32)
    dense_id[used] = np.arange(1, len(used) + 1, dtype=np.int32)
    ids.ravel()[pix] = dense_id[region]
    support.ravel()[pix] = mean[region]
    return support, ids
