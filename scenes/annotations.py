"""Annotations from raw render passes: pure numpy, no bpy, so it is testable on its own and
shared by the renderer (generator/render.py) and the RGB-D importer (composer/rgbd_import.py).

The renderer encodes each object's pass index as ``class_id * INDEX_BASE + instance_id``
(instance_id 0 for stuff), so one point-sampled Object Index pass gives both the
semantic and the instance map.
"""
from __future__ import annotations

import numpy as np

from scenes import portable_math as pm
from scenes.classes import CLASS_IDS

INDEX_BASE = 1024  # instance ids live below this; class ids above
NO_SURFACE = 0.0  # the depth AOV stays 0 where a camera ray hits nothing


def pass_index(class_id: int, instance_id: int) -> int:
    return class_id * INDEX_BASE + instance_id


# Amodal masks leave Cycles packed: instance k adds AMODAL_BASE ** (k % AMODAL_PER_PASS) to
# AOV pass "am{k // AMODAL_PER_PASS}" at every crossing of its surface.  Sums of integers below
# 2**24 are exact in float32, so each instance keeps a digit of 8 bits: up to 255 crossings of
# one instance on one ray (a closed mesh is crossed twice per piece) before it would carry.
# Three instances a pass means a third of the film passes to convert, write and read back.
AMODAL_BASE = 256
AMODAL_PER_PASS = 3


def amodal_pass(k: int) -> tuple[str, float]:
    """(AOV name, value added per crossing) of candidate instance k (0-based)."""
    return f"am{k // AMODAL_PER_PASS}", float(1 << (8 * (k % AMODAL_PER_PASS)))  # AMODAL_BASE ** digit


def amodal_pass_names(k: int) -> list[str]:
    return [f"am{j}" for j in range(-(-k // AMODAL_PER_PASS))]


# An amodal mask leaves the renderer as a crop: ((y0, y1, x0, x1), bool mask of that box),
# the box tight, or None for an empty mask.  At 1280x720 a full-frame mask is ~1 MB an
# instance, and most instances cover a small part of the frame.
Crop = tuple[tuple[int, int, int, int], np.ndarray]


def _tight(mask: np.ndarray, y0: int = 0, x0: int = 0) -> Crop | None:
    """The crop of a 2-D boolean mask whose top-left pixel is (y0, x0) in the frame."""
    rows = np.flatnonzero(mask.any(1))
    if not rows.size:
        return None
    cols = np.flatnonzero(mask.any(0))
    a, b, c, d = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return (a + y0, b + y0, c + x0, d + x0), mask[a:b, c:d]


def mask_crops(masks: np.ndarray) -> list[Crop | None]:
    """Crops of a dense (K, H, W) stack of masks (any dtype; non-zero is inside)."""
    return [_tight(m != 0) for m in masks]


def amodal_crops(passes: dict, k: int) -> list[Crop | None]:
    """The K candidate instances' amodal masks (crossing count > 0) from their packed passes."""
    out: list[Crop | None] = []
    for j, name in enumerate(amodal_pass_names(k)):
        here = min(AMODAL_PER_PASS, k - j * AMODAL_PER_PASS)
        whole = _tight(passes[name] != 0)
        if whole is None:
            out += [None] * here
            continue
        (y0, y1, x0, x1), _ = whole
        packed = passes[name][y0:y1, x0:x1].astype(np.uint32)  # exact: integer sums below 2**24
        for d in range(here):
            count = (packed >> (8 * d)) & 0xFF
            # Rendered meshes cross a ray at most ~20 times (measured: 18 on 18 tiny scenes);
            # half the digit is refused, before a carry could give a neighbour a mask it does
            # not have.
            if count.max() >= AMODAL_BASE // 2:
                raise ValueError(f"an instance crosses one ray {int(count.max())} times; amodal masks "
                                 f"allow fewer than {AMODAL_BASE // 2} (scenes.annotations.AMODAL_BASE)")
            out.append(_tight(count != 0, y0, x0))
    return out


def decode_index(object_index: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(instance uint16, semantic uint8) from the float Object Index pass."""
    code = np.rint(object_index).astype(np.int64)
    instance = (code % INDEX_BASE).astype(np.uint16)
    semantic = (code // INDEX_BASE).astype(np.uint8)
    semantic[~np.isfinite(depth)] = CLASS_IDS["sky"]
    return instance, semantic


def clean_depth(depth: np.ndarray) -> np.ndarray:
    out = depth.astype(np.float32, copy=True)
    out[out <= NO_SURFACE] = np.inf
    return out


def boxes(masks: np.ndarray) -> np.ndarray:
    """[x0, y0, x1, y1] (exclusive ends) per mask of (K, H, W); -1 rows for empty masks."""
    out = np.full((len(masks), 4), -1, np.int32)
    for k, m in enumerate(masks):
        crop = _tight(m)
        if crop is not None:
            (y0, y1, x0, x1), _ = crop
            out[k] = x0, y0, x1, y1
    return out


def label_boxes(labels: np.ndarray, k: int) -> np.ndarray:
    """boxes() of the masks labels == 1..k of one label image, in one pass over it."""
    h, w = labels.shape
    rows = np.zeros((k + 1, h), bool)
    cols = np.zeros((k + 1, w), bool)
    rows[labels, np.arange(h)[:, None]] = True
    cols[labels, np.arange(w)[None, :]] = True
    out = np.full((k, 4), -1, np.int32)
    for i in range(k):
        r, c = np.flatnonzero(rows[i + 1]), np.flatnonzero(cols[i + 1])
        if r.size:
            out[i] = c[0], r[0], c[-1] + 1, r[-1] + 1
    return out


def occlusion_matrix(instance: np.ndarray, amodal: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
    """occ[a, b]: instance a is visible at a pixel inside b's amodal mask (a's surface is in
    front of b on that camera ray).  Both directions may hold (InstaOrder's bidirectional).
    ``boxes`` (x0, y0, x1, y1 per mask, as boxes() gives) only saves looking outside them."""
    k = len(amodal)
    occ = np.zeros((k, k), bool)
    for b in range(k):
        if boxes is None:
            ids = instance[amodal[b]]
        else:
            x0, y0, x1, y1 = (int(v) for v in boxes[b])
            ids = instance[y0:y1, x0:x1][amodal[b, y0:y1, x0:x1]] if x0 >= 0 else instance[:0, :0]
        hits = np.bincount(ids.astype(np.int64).ravel(), minlength=k + 1)[1:k + 1] > 0
        occ[:, b] = hits
        occ[b, b] = False
    return occ


def depth_order(z: np.ndarray, equal_abs: float = 0.5, equal_rel: float = 0.05) -> np.ndarray:
    """order[a, b] = -1 if a is closer than b, +1 if farther, 0 if equal (InstaOrder's
    closer/equal/farther), comparing each instance's camera-space centre depth ``z``; two
    depths are equal within max(equal_abs metres, equal_rel * the nearer depth)."""
    za, zb = z[:, None], z[None, :]
    tol = np.maximum(equal_abs, equal_rel * np.minimum(za, zb))
    out = np.where(za < zb - tol, -1, np.where(za > zb + tol, 1, 0)).astype(np.int8)
    np.fill_diagonal(out, 0)
    return out


def camera_normals(world_normals: np.ndarray, world_to_camera: np.ndarray) -> np.ndarray:
    """World-space normals (H, W, 3) to OpenCV camera space, unit length, 0 where none."""
    out = np.empty(world_normals.shape[:-1] + (3,), np.float16)
    rot = world_to_camera[:3, :3].T
    # In blocks of ~32k pixels: the float64 temporaries stay in cache instead of ~22 MB each
    # at 1280x720 (4x faster); every value is computed by the same operations either way.
    step = max(1, 2**15 // max(1, int(np.prod(world_normals.shape[1:-1]))))
    for y in range(0, len(world_normals), step):
        n = pm.matmul(world_normals[y:y + step], rot)
        length = pm.norm(n, axis=-1)[..., None]
        out[y:y + step] = np.where(length > 0.5, n / np.maximum(length, 1e-12), 0.0)
    return out


def assemble(*, object_index, depth, amodal, world_normals, world_to_camera, candidates,
             max_instances: int, rgb: np.ndarray) -> dict:
    """Every stored annotation of one scene.

    ``amodal`` holds one crop per candidate (:func:`amodal_crops`, :func:`mask_crops`), and
    ``candidates`` lists, per candidate instance id 1..K in pass-index order, a dict with
    ``class_id``, ``object`` (index into the spec's objects) and ``box3d`` (camera frame).
    Candidates whose amodal mask is empty (outside the frame) are dropped and ids compacted.
    """
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:  # numpy releases the GIL: the normals beside the masks
        normals = pool.submit(camera_normals, world_normals, world_to_camera)
        out = _assemble(object_index, depth, amodal, candidates, max_instances, rgb)
        out["normals"] = normals.result()
    return out


def _assemble(object_index, depth, crops: list, candidates, max_instances: int, rgb) -> dict:
    depth = clean_depth(depth)
    instance, semantic = decode_index(object_index, depth)
    n, (h, w) = len(crops), instance.shape
    # The same pixel-centre ray hit k in the full scene, so it hits k alone: modal ⊆ amodal
    # holds by construction; the OR below guards against a watertightness slip at a triangle
    # edge, so an instance's amodal box is the union of its crop's box and its modal box.
    modal_box = label_boxes(instance, n)
    box = modal_box.copy()
    for i, crop in enumerate(crops):
        if crop is not None:
            (y0, y1, x0, x1), _ = crop
            box[i] = (x0, y0, x1, y1) if box[i, 0] < 0 else (
                min(x0, box[i, 0]), min(y0, box[i, 1]), max(x1, box[i, 2]), max(y1, box[i, 3]))
    keep = np.flatnonzero(box[:, 0] >= 0)
    k = len(keep)
    if k > max_instances:
        raise ValueError(f"{k} instances exceed scene.max_instances={max_instances}")
    remap = np.zeros(n + 1, np.uint16)
    remap[keep + 1] = np.arange(1, k + 1, dtype=np.uint16)
    instance = remap[instance]
    # Built in the padded array the store takes, each mask inside its box only.
    amodal_all = np.zeros((max_instances, h, w), bool)
    for j, i in enumerate(keep):
        if crops[i] is not None:
            (y0, y1, x0, x1), mask = crops[i]
            amodal_all[j, y0:y1, x0:x1] = mask
    ys, xs = np.nonzero(instance)
    amodal_all[instance[ys, xs].astype(np.intp) - 1, ys, xs] = True
    amodal, amodal_box = amodal_all[:k], box[keep]
    amodal_area = np.array([np.count_nonzero(amodal[j, y0:y1, x0:x1])
                            for j, (x0, y0, x1, y1) in enumerate(amodal_box)], np.int32)
    cands = [candidates[i] for i in keep]
    modal_area = np.bincount(instance.ravel(), minlength=k + 1)[1:k + 1].astype(np.int32)
    box3d = np.array([c["box3d"] for c in cands], np.float32).reshape(k, 7)
    pad = max_instances
    out = {
        "rgb": rgb, "depth": depth, "instance": instance, "semantic": semantic,
        "num_instances": np.uint16(k),
        "amodal": amodal_all,
        "instance_class": pad_instances(np.array([c["class_id"] for c in cands], np.uint8), pad, 0),
        "instance_object": pad_instances(np.array([c["object"] for c in cands], np.int32), pad, -1),
        "modal_box": pad_instances(modal_box[keep], pad, -1),
        "amodal_box": pad_instances(amodal_box, pad, -1),
        "modal_area": pad_instances(modal_area, pad, 0),
        "amodal_area": pad_instances(amodal_area, pad, 0),
        "visible_fraction": pad_instances((modal_area / np.maximum(amodal_area, 1)).astype(np.float32), pad, 0.0),
        "distance": pad_instances(pm.norm(box3d[:, :3], axis=1).astype(np.float32), pad, np.nan),
        "box3d": pad_instances(box3d, pad, np.nan),
        "occlusion": pad_pairs(occlusion_matrix(instance, amodal, amodal_box), pad, False),
        "depth_order": pad_pairs(depth_order(box3d[:, 2]), pad, 0),
    }
    return out


def pad_instances(a: np.ndarray, n: int, fill) -> np.ndarray:
    """A per-instance array of len(a) rows padded with ``fill`` to the store's ``n`` slots."""
    out = np.full((n,) + a.shape[1:], fill, a.dtype)
    out[: len(a)] = a
    return out


def pad_pairs(a: np.ndarray, n: int, fill) -> np.ndarray:
    """An instance x instance array padded with ``fill`` to n x n."""
    out = np.full((n, n), fill, a.dtype)
    out[: len(a), : len(a)] = a
    return out
