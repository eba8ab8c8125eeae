"""Per-instance crops for amodal completion, on numpy arrays (no torch).

An instance's crop is a square centred on its visible box, ``factor`` times the box's longer
side (at least ``min_side`` pixels), sampled to S x S.  Coordinates: pixel (x, y) covers
[x, x + 1) x [y, y + 1); crop pixel u's centre lies at image x = x0 + (u + 0.5) * side / S,
with x0 = cx - side / 2.  Masks and depth are sampled at the nearest image pixel (labels and
depth edges stay exact), RGB bilinearly; outside the image masks are 0, RGB and depth
repeat the border.

Channels (``CHANNELS``; any subset, in this order):
  visible  the instance's visible mask (1 channel)
  rgb      RGB in [0, 1] (3)
  depth    log2 of depth relative to the instance's median visible depth, clipped to +-3
           (1; sky and anything 8x farther read +3).  Relative, so a monocular estimator's
           unknown scale cancels.
  rdn      DAISnet's regional depth normalisation (eq. 4 with the soft floor of eq. 5,
           trainer.amodal_inputs.regional_depth) of that relative depth, Ds = 1 (one period
           per doubling of depth), Dm = 4 offset maps (4)
  tangent  DAISnet's tangent normals (eqs. 15-22, 5x5 generalised Sobel, Dz = 0.7) of the
           relative depth at crop resolution (3)
  infront  pixels nearer than the instance's visible surface -- nearer than the 5th
           percentile of its visible depth, its own visible pixels excluded -- where an
           occluder can hide it (1)
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from trainer.amodal_inputs import regional_depth, tangent_normals

CHANNELS = {"visible": 1, "rgb": 3, "depth": 1, "rdn": 4, "tangent": 3, "infront": 1}
DEPTH_CHANNELS = ("depth", "rdn", "tangent", "infront")
IN_FRONT_QUANTILE = 5.0
RELATIVE_DEPTH_CLIP = 3.0


def input_channels(inputs) -> int:
    return sum(CHANNELS[k] for k in inputs)


def needs_depth(inputs) -> bool:
    return any(k in DEPTH_CHANNELS for k in inputs)


def check_inputs(inputs) -> None:
    unknown = [k for k in inputs if k not in CHANNELS]
    if unknown or not inputs:
        raise ValueError(f"unknown input '{unknown[0] if unknown else ''}' (choose from {', '.join(CHANNELS)})")


@dataclass(frozen=True)
class Crop:
    """A square window of the image: top-left corner (x0, y0) and side, in image pixels."""
    x0: float
    y0: float
    side: float


def visible_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), pixel edges, of a non-empty mask."""
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def crop_for(box, factor: float, min_side: float = 16.0, shift=(0.0, 0.0), scale: float = 1.0) -> Crop:
    """The square crop around a visible box; ``shift`` (fractions of the side) and ``scale``
    jitter it in training."""
    x0, y0, x1, y1 = box
    side = max(factor * max(x1 - x0, y1 - y0), min_side) * scale
    cx, cy = (x0 + x1) / 2 + shift[0] * side, (y0 + y1) / 2 + shift[1] * side
    return Crop(cx - side / 2, cy - side / 2, side)


def _centres(c: Crop, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates (continuous, pixel centres at k + 0.5) of the crop's pixel centres."""
    t = (np.arange(s, dtype=np.float64) + 0.5) * (c.side / s)
    return c.x0 + t, c.y0 + t


def sample_nearest(arr: np.ndarray, c: Crop, s: int, outside=None) -> np.ndarray:
    """arr[..., H, W] sampled at the crop's pixel centres (nearest); ``outside`` fills
    samples beyond the image (None: repeat the border)."""
    h, w = arr.shape[-2:]
    xs, ys = _centres(c, s)
    ix, iy = np.floor(xs).astype(np.intp), np.floor(ys).astype(np.intp)
    out = arr[..., np.clip(iy, 0, h - 1)[:, None], np.clip(ix, 0, w - 1)[None, :]]
    if outside is not None:
        bad = ((iy < 0) | (iy >= h))[:, None] | ((ix < 0) | (ix >= w))[None, :]
        out = np.where(bad, outside, out)
    return out


def sample_rgb(rgb: np.ndarray, c: Crop, s: int) -> np.ndarray:
    xs, ys = _centres(c, s)
    mx, my = np.meshgrid((xs - 0.5).astype(np.float32), (ys - 0.5).astype(np.float32))
    if c.side / s > 1.5:  # shrinking: average first, as a camera would, instead of aliasing
        k = int(round(c.side / s)) | 1
        rgb = cv2.blur(rgb, (k, k))
    return cv2.remap(rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def paste_back(prob: np.ndarray, c: Crop, shape) -> tuple[np.ndarray, tuple[int, int]]:
    """The crop's S x S probability map resampled (bilinear) onto the image pixels the crop
    covers: (mask region, (x, y) of its top-left pixel); threshold 0.5."""
    s = prob.shape[0]
    h, w = shape
    xa, ya = max(int(np.floor(c.x0)), 0), max(int(np.floor(c.y0)), 0)
    xb, yb = min(int(np.ceil(c.x0 + c.side)), w), min(int(np.ceil(c.y0 + c.side)), h)
    if xb <= xa or yb <= ya:
        return np.zeros((0, 0), bool), (0, 0)
    # image pixel centre x + 0.5 -> crop coordinate u with u + 0.5 = (x + 0.5 - x0) * S / side
    u = ((np.arange(xa, xb) + 0.5 - c.x0) * (s / c.side) - 0.5).astype(np.float32)
    v = ((np.arange(ya, yb) + 0.5 - c.y0) * (s / c.side) - 0.5).astype(np.float32)
    mu, mv = np.meshgrid(u, v)
    region = cv2.remap(prob.astype(np.float32), mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0.0)
    return region > 0.5, (xa, ya)


def paste_full(prob: np.ndarray, c: Crop, shape) -> np.ndarray:
    out = np.zeros(shape, bool)
    region, (x, y) = paste_back(prob, c, shape)
    out[y:y + region.shape[0], x:x + region.shape[1]] = region
    return out


def relative_depth(depth: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """log2(depth / median visible depth), clipped; +inf (sky) reads as the far clip."""
    d = np.asarray(depth, np.float32)
    vis = d[visible & np.isfinite(d) & (d > 0)]
    ref = float(np.median(vis)) if vis.size else float(np.median(d[np.isfinite(d) & (d > 0)]) if np.isfinite(d).any()
                                                         else 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log2(np.maximum(d, 1e-6) / ref)
    z = np.where(np.isfinite(z), z, RELATIVE_DEPTH_CLIP)
    return np.clip(z, -RELATIVE_DEPTH_CLIP, RELATIVE_DEPTH_CLIP).astype(np.float32)


def in_front(depth: np.ndarray, visible: np.ndarray, ref_depths: np.ndarray | None = None) -> np.ndarray:
    """Pixels nearer than the instance's visible surface (its 5th-percentile visible depth),
    its own visible pixels excluded.  ``ref_depths``: the visible depths to take the
    percentile of (default: those of ``visible`` in ``depth``)."""
    vals = depth[visible] if ref_depths is None else ref_depths
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return np.zeros(depth.shape, bool)
    return (depth < np.percentile(vals, IN_FRONT_QUANTILE)) & ~visible


def channels(raw: dict, inputs) -> np.ndarray:
    """The model input (C, S, S) float32 of one raw crop (``rgb`` uint8 S x S x 3, ``depth``
    float32, ``visible`` bool; ``infront`` bool computed at full resolution if given)."""
    parts = []
    z = relative_depth(raw["depth"], raw["visible"]) if needs_depth(inputs) else None
    for k in inputs:
        if k == "visible":
            parts.append(raw["visible"][None].astype(np.float32))
        elif k == "rgb":
            parts.append(raw["rgb"].transpose(2, 0, 1).astype(np.float32) / 255.0)
        elif k == "depth":
            parts.append(z[None])
        elif k == "rdn":
            parts.append(regional_depth(z, ds=1.0, dm=4, soft=True))
        elif k == "tangent":
            parts.append(tangent_normals(z, 5, 0.7))
        elif k == "infront":
            m = raw.get("infront")
            parts.append((in_front(raw["depth"], raw["visible"]) if m is None else m)[None].astype(np.float32))
        else:
            raise ValueError(f"unknown input {k!r}")
    return np.ascontiguousarray(np.concatenate(parts), np.float32)


def raw_crop(rgb, depth, visible_full, c: Crop, s: int, amodal_full=None, flip: bool = False,
             instance_id: int | None = None, ref_depths: np.ndarray | None = None) -> dict:
    """Everything a crop needs, sampled once: RGB, depth, visible (and amodal) masks, and the
    in-front map, whose reference is the full-resolution visible surface's depth (so a small
    crop scale does not move it).  ``instance_id`` given: ``visible_full`` is an instance-id
    map and the visible mask is where it equals the id (``ref_depths``: that instance's visible
    depths, when the caller has them)."""
    if instance_id is None:
        vis = sample_nearest(visible_full, c, s, False)
        ref = depth[visible_full] if depth is not None and ref_depths is None else ref_depths
    else:
        vis = sample_nearest(visible_full, c, s, 0) == instance_id
        ref = ref_depths if ref_depths is not None or depth is None else depth[visible_full == instance_id]
    out = {"rgb": sample_rgb(rgb, c, s), "visible": vis}
    if depth is not None:
        d = sample_nearest(depth, c, s)
        out["depth"] = d
        out["infront"] = in_front(d, vis, ref)
    if amodal_full is not None:
        out["amodal"] = sample_nearest(amodal_full, c, s, False) | vis
    if flip:
        out = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in out.items()}
    return out


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """The filled convex hull of a mask's pixels (a baseline: occluders often cut a convex
    object's outline inwards)."""
    pts = cv2.findNonZero(mask.astype(np.uint8))
    out = np.zeros(mask.shape, np.uint8)
    if pts is None:
        return out.astype(bool)
    cv2.fillConvexPoly(out, cv2.convexHull(pts), 1)
    return out.astype(bool) | mask
