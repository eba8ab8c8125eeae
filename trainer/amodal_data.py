"""Amodal training samples straight from scene stores (no export step).

Each sample is one scene read whole through scenes.store's public API (``open_store``,
``read_scene``, ``done``, ``attrs``; one chunk per array), then a random scale, crop and
horizontal flip to the model's input size, the class filter, optional depth degradation and
the DAISnet input channels (trainer.amodal_inputs).  Instances whose amodal part in the crop
is below ``min_amodal_area`` pixels are dropped; those whose *visible* part is below
``min_visible_area`` stay as amodal targets (boxes, classes, amodal masks -- fully hidden
ones included) but carry ``visible_valid = False`` so the visible-mask loss skips them.

Order: a seeded permutation of all done scenes per epoch, dealt round-robin to DDP ranks
(trainer.data.epoch_blocks, the refiner's sharding), cut into batches, and the batches dealt
to loader workers; every sample's randomness is a function of (seed, epoch, store, scene),
so batches do not depend on the worker count and a resumed run sees the same batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from trainer.amodal_inputs import build_inputs, degrade_depth, occlusion_edges

READ = ["rgb", "depth", "normals", "instance", "amodal", "num_instances", "instance_class"]


class DataError(ValueError):
    """Stores or options that cannot give training samples (one line, exit 2)."""


@dataclass
class SampleConfig:
    size: tuple[int, int] = (640, 360)  # output width, height
    classes: list[str] = field(default_factory=lambda: ["car", "van", "truck", "bus", "pedestrian"])
    inputs: list[str] = field(default_factory=lambda: ["rgb"])
    depth_roi: bool = False
    ds: float = 3.0
    dm: int = 4
    soft_floor: bool = True
    sobel: int = 5
    dz: float = 0.7
    scale: tuple[float, float] = (1.0, 1.5)  # zoom over the smallest scale that covers the output
    flip: bool = True
    degrade: float = 1.0  # 0: ground-truth depth as is
    min_visible_area: int = 16
    min_amodal_area: int = 4

    @classmethod
    def from_model(cls, model_config: dict, **over) -> SampleConfig:
        keys = ("classes", "inputs", "depth_roi", "ds", "dm", "soft_floor", "sobel", "dz")
        return cls(size=tuple(model_config["input_size"]), **{k: model_config[k] for k in keys}, **over)


def open_stores(urls) -> list:
    from scenes.store import StoreError, open_store
    out = []
    for u in urls:
        try:
            out.append(open_store(u))
        except StoreError as exc:
            raise DataError(str(exc)) from None
    return out


def class_labels(store, classes) -> np.ndarray:
    """Store class id -> model label (1..K), 0 for classes the model does not learn."""
    table = list(store.attrs["classes"])
    unknown = [c for c in classes if c not in table]
    if unknown:
        raise DataError(f"unknown class '{unknown[0]}' (classes: {', '.join(table)})")
    lut = np.zeros(256, np.int64)
    for k, c in enumerate(classes):
        lut[table.index(c)] = k + 1
    return lut


def scene_index(stores, classes, probe: int = 64) -> np.ndarray:
    """(N, 2) [store, scene] of every done scene; refuses stores whose first ``probe`` done
    scenes hold no instance of ``classes`` (a mistyped or absent class, the wrong data)."""
    rows, found = [], 0
    for s, st in enumerate(stores):
        done = np.flatnonzero(st.done())
        rows += [(s, int(i)) for i in done]
        lut = class_labels(st, classes)
        for i in done[:probe]:
            d = st.read_scene(int(i), ["num_instances", "instance_class"])
            found += int((lut[d["instance_class"][:int(d["num_instances"])]] > 0).sum())
    if not rows:
        raise DataError("no finished scenes in " + ", ".join(st.url for st in stores))
    if not found:
        raise DataError(f"no instances of the classes {','.join(classes)} in the first {probe} scenes of "
                        + ", ".join(st.url for st in stores))
    return np.asarray(rows, np.int64)


def read_gt(store, i: int, lut: np.ndarray) -> dict:
    """One scene at full resolution, instances of the model's classes only."""
    d = store.read_scene(i, READ)
    k = int(d["num_instances"])
    labels = lut[d["instance_class"][:k]]
    keep = np.flatnonzero(labels > 0)
    inst = d["instance"].astype(np.int32)
    return {"rgb": d["rgb"], "depth": d["depth"], "normals": d["normals"], "slots": keep, "labels": labels[keep],
            "amodal": d["amodal"][keep], "instance": inst}


def warp(gt: dict, size, rng: np.random.Generator, scale=(1.0, 1.5), flip: bool = True) -> dict:
    """Random zoom, crop and flip to ``size`` (w, h): RGB bilinear, everything else nearest
    (labels, depth edges and +inf sky stay exact)."""
    h0, w0 = gt["depth"].shape
    w, h = size
    s = max(w / w0, h / h0) * rng.uniform(*scale)
    cw, ch = w / s, h / s
    x0, y0 = rng.uniform(0, max(w0 - cw, 0)), rng.uniform(0, max(h0 - ch, 0))
    flipped = flip and rng.random() < 0.5
    # dst pixel centre u + 0.5 = s (src + 0.5 - x0); a flip mirrors u -> w - 1 - u.
    u = np.arange(w, dtype=np.float64)
    if flipped:
        u = w - 1 - u
    sx = (u + 0.5) / s + x0 - 0.5
    sy = (np.arange(h, dtype=np.float64) + 0.5) / s + y0 - 0.5
    ix = np.clip(np.rint(sx), 0, w0 - 1).astype(np.intp)
    iy = np.clip(np.rint(sy), 0, h0 - 1).astype(np.intp)
    mx, my = np.meshgrid(sx.astype(np.float32), sy.astype(np.float32))
    out = {"rgb": cv2.remap(gt["rgb"], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
           "depth": gt["depth"][iy[:, None], ix[None, :]],
           "instance": gt["instance"][iy[:, None], ix[None, :]],
           "amodal": gt["amodal"][:, iy[:, None], ix[None, :]],
           "slots": gt["slots"], "labels": gt["labels"]}
    n = gt["normals"][iy[:, None], ix[None, :]].astype(np.float32)
    if flipped:
        n[..., 0] = -n[..., 0]  # a mirrored surface's normal mirrors too
    out["normals"] = n
    return out


def targets(gt: dict, min_visible_area: int = 16, min_amodal_area: int = 4) -> dict:
    """Boxes (the amodal box, in which both masks are predicted), labels, visible and amodal
    masks, occlusion edges and visible_valid, as numpy arrays."""
    amodal = gt["amodal"]
    visible = gt["instance"][None] == (gt["slots"][:, None, None] + 1)
    keep = amodal.sum((1, 2)) >= max(min_amodal_area, 1)
    amodal, visible, labels = amodal[keep], visible[keep] & amodal[keep], gt["labels"][keep]
    h, w = gt["instance"].shape
    boxes = np.zeros((len(amodal), 4), np.float32)
    for n, m in enumerate(amodal):
        ys, xs = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        boxes[n] = [xs[0], ys[0], xs[-1] + 1, ys[-1] + 1]
    vis_area = visible.sum((1, 2))
    am_area = amodal.sum((1, 2))
    return {"boxes": boxes, "labels": labels.astype(np.int64), "masks": visible.astype(np.uint8),
            "amodal_masks": amodal.astype(np.uint8), "edges": occlusion_edges(visible, amodal),
            "visible_valid": vis_area >= min_visible_area,
            "visible_fraction": (vis_area / np.maximum(am_area, 1)).astype(np.float32),
            "size": np.array([h, w])}


def make_sample(store, i: int, lut, cfg: SampleConfig, rng: np.random.Generator, train: bool = True):
    gt = read_gt(store, i, lut)
    if train:
        gt = warp(gt, cfg.size, rng, cfg.scale, cfg.flip)
    depth = degrade_depth(gt["depth"], rng, cfg.degrade) if train else gt["depth"]
    x = build_inputs(gt["rgb"], depth, gt["normals"], cfg.inputs, cfg.ds, cfg.dm, cfg.soft_floor, cfg.sobel,
                     cfg.dz, depth_channel=cfg.depth_roi)
    return x, targets(gt, cfg.min_visible_area, cfg.min_amodal_area), gt


def epoch_batches(n_items: int, batch: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> np.ndarray:
    from trainer.data import epoch_blocks
    mine = epoch_blocks(np.arange(n_items), seed, epoch, rank, world)
    nb = len(mine) // batch
    return mine[:nb * batch].reshape(nb, batch)


TORCH_KEYS = ("boxes", "labels", "masks", "amodal_masks", "edges", "visible_valid")


def torch_dataset(urls, cfg: SampleConfig, seed: int, batch: int, rank: int = 0, world: int = 1):
    """An IterableDataset of whole batches (list of image tensors, list of target dicts) for
    ``DataLoader(ds, batch_size=None)``; ``set_epoch`` and ``skip`` (batches already
    consumed this epoch) before iterating."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    class AmodalBatches(IterableDataset):
        def __init__(self):
            self.urls, self.cfg, self.seed, self.batch, self.rank, self.world = list(urls), cfg, seed, batch, rank, world
            stores = open_stores(self.urls)
            self.index = scene_index(stores, cfg.classes)
            self.epoch, self.start = 0, 0

        def set_epoch(self, epoch: int, skip: int = 0) -> None:
            self.epoch, self.start = epoch, skip

        def batches_per_epoch(self) -> int:
            return len(self.index) // self.world // self.batch

        def __iter__(self):
            stores = open_stores(self.urls)  # one handle per loader process
            luts = [class_labels(st, self.cfg.classes) for st in stores]
            order = epoch_batches(len(self.index), self.batch, self.seed, self.epoch, self.rank, self.world)
            order = order[self.start:]
            info = get_worker_info()
            if info is not None:
                order = order[info.id::info.num_workers]
            for items in order:
                images, tgts = [], []
                for item in items:
                    s, i = (int(v) for v in self.index[item])
                    rng = np.random.default_rng([self.seed, self.epoch, s, i])
                    x, t, _ = make_sample(stores[s], i, luts[s], self.cfg, rng)
                    images.append(torch.from_numpy(x))
                    tgts.append({k: torch.from_numpy(np.ascontiguousarray(t[k])) for k in TORCH_KEYS})
                yield images, tgts

    return AmodalBatches()
