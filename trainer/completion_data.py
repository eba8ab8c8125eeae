"""Amodal-completion samples straight from scene stores (no export step).

A scene is read whole (scenes.store's public API), its instances of the model's classes
with at least ``min_visible_area`` visible pixels become crops (trainer.completion_crops).
Training jitters each crop (centre +-``jitter`` of the side, scale x[1 - jitter, 1 + jitter]),
flips half of them and degrades the scene's depth (trainer.amodal_inputs.degrade_depth) before
the depth cues are computed, so the in-front map and the cues see estimated-looking depth.

Order: a seeded permutation of all done scenes per epoch, dealt round-robin to DDP ranks
(trainer.data.epoch_blocks), cut into groups of ``scenes_per_step`` scenes; one group is one
batch (all its instances, at most ``max_instances``, a seeded subset beyond that).  Every
batch is a function of (seed, epoch, group), and workers take whole groups in turn, so
batches do not depend on the loader worker count and a resumed run sees the same batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trainer.amodal_data import DataError, class_labels, open_stores
from trainer.amodal_inputs import degrade_depth
from trainer.completion_crops import channels, crop_for, needs_depth, raw_crop, visible_box

READ = ["rgb", "depth", "instance", "amodal", "num_instances", "instance_class"]
DEFAULT_CLASSES = ["car", "van", "truck", "bus", "pedestrian"]

__all__ = ["DataError", "SampleConfig", "scene_instances", "box_statistics", "torch_dataset", "open_stores"]


@dataclass
class SampleConfig:
    size: int = 64  # S
    factor: float = 2.0  # crop side / visible box's longer side
    min_side: float = 16.0
    classes: list = field(default_factory=lambda: list(DEFAULT_CLASSES))
    inputs: list = field(default_factory=lambda: ["visible", "rgb"])
    min_visible_area: int = 32
    degrade: float = 1.0
    jitter: float = 0.08
    flip: bool = True

    @classmethod
    def from_model(cls, mc: dict, **over) -> SampleConfig:
        keys = ("size", "factor", "min_side", "classes", "inputs")
        return cls(**{k: mc[k] for k in keys}, **over)


def read_scene(store, i: int, lut) -> dict:
    d = store.read_scene(i, READ)
    k = int(d["num_instances"])
    return {"rgb": d["rgb"], "depth": d["depth"], "instance": d["instance"], "amodal": d["amodal"][:k],
            "labels": lut[d["instance_class"][:k]]}


def scene_instances(scene: dict, cfg: SampleConfig, rng: np.random.Generator | None = None,
                    with_full: bool = False, depth_too: bool = False) -> list[dict]:
    """The crops of one scene's eligible instances.  ``rng`` given: training (degraded depth,
    jitter, flips); None: evaluation (exact crops, the depth as it is).  ``with_full`` keeps
    the full-resolution visible and amodal masks (evaluation pastes predictions back);
    ``depth_too`` samples depth even for inputs without depth cues (one extraction for many models)."""
    depth = scene["depth"] if needs_depth(cfg.inputs) or depth_too else None
    if depth is not None and rng is not None and cfg.degrade > 0:
        depth = degrade_depth(depth, rng, cfg.degrade)
    from scipy.ndimage import find_objects
    inst = scene["instance"]
    k = len(scene["labels"])
    areas = np.bincount(inst.ravel(), minlength=k + 1)
    boxes = find_objects(inst, max_label=k)
    out = []
    for slot in np.flatnonzero(scene["labels"] > 0):
        area, sl = int(areas[slot + 1]), boxes[slot]
        if area < max(cfg.min_visible_area, 1) or sl is None:
            continue
        vis_box = inst[sl] == slot + 1
        box = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
        shift, scale, flip = (0.0, 0.0), 1.0, False
        if rng is not None:
            shift = tuple(rng.uniform(-cfg.jitter, cfg.jitter, 2))
            scale, flip = rng.uniform(1 - cfg.jitter, 1 + cfg.jitter), cfg.flip and rng.random() < 0.5
        c = crop_for(box, cfg.factor, cfg.min_side, shift, scale)
        ref = depth[sl][vis_box] if depth is not None else None
        raw = raw_crop(scene["rgb"], depth, inst, c, cfg.size, scene["amodal"][slot], flip, slot + 1, ref)
        item = {"raw": raw, "crop": c, "label": int(scene["labels"][slot]), "visible_area": area, "slot": int(slot)}
        if with_full:
            vis = inst == slot + 1
            item["visible_full"], item["amodal_full"] = vis, scene["amodal"][slot] | vis
        out.append(item)
    return out


def box_statistics(stores, classes, max_scenes: int = 200, min_visible_area: int = 32,
                   sizes=(28, 48, 64, 96), factors=(1.5, 2.0, 2.5, 3.0),
                   resample_factor: float = 2.0) -> dict:
    """What the crop needs to hold: for each eligible instance the factor that would contain its
    amodal box (twice the farthest amodal-box edge from the visible box's centre over the
    visible box's longer side), the share of amodal pixels each candidate factor keeps, and
    the IoU left after sampling the ground-truth amodal mask to S x S (crop ``resample_factor``)
    and pasting it back."""
    from trainer.completion_crops import paste_full, sample_nearest
    need, kept, iou_at, occl = [], {f: [] for f in factors}, {s: [] for s in sizes}, []
    n = 0
    for st in stores:
        lut = class_labels(st, classes)
        for i in np.flatnonzero(st.done())[:max_scenes]:
            sc = read_scene(st, int(i), lut)
            n += 1
            for slot in np.flatnonzero(sc["labels"] > 0):
                vis = sc["instance"] == slot + 1
                if vis.sum() < min_visible_area:
                    continue
                am = sc["amodal"][slot] | vis
                x0, y0, x1, y1 = visible_box(vis)
                ax0, ay0, ax1, ay1 = visible_box(am)
                cx, cy, long_side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
                reach = max(cx - ax0, ax1 - cx, cy - ay0, ay1 - cy)
                need.append(2 * reach / long_side)
                occl.append(1 - vis.sum() / am.sum())
                for f in factors:
                    c = crop_for((x0, y0, x1, y1), f)
                    xa, ya = max(int(np.floor(c.x0)), 0), max(int(np.floor(c.y0)), 0)
                    inside = am[ya:int(np.ceil(c.y0 + c.side)), xa:int(np.ceil(c.x0 + c.side))].sum()
                    kept[f].append(inside / am.sum())
                c = crop_for((x0, y0, x1, y1), resample_factor)
                for s in sizes:
                    back = paste_full(sample_nearest(am, c, s, False).astype(np.float32), c, am.shape)
                    iou_at[s].append((back & am).sum() / (back | am).sum())
    need, occl = np.asarray(need), np.asarray(occl)
    occluded = occl > 0.01
    return {"scenes": n, "instances": int(len(need)), "occluded_instances": int(occluded.sum()),
            "factor_needed_percentiles": {str(p): round(float(np.percentile(need, p)), 3) for p in (50, 75, 90, 95, 99)},
            "factor_needed_occluded_percentiles": {str(p): round(float(np.percentile(need[occluded], p)), 3)
                                                   for p in (50, 75, 90, 95)} if occluded.any() else {},
            "amodal_pixels_kept": {str(f): round(float(np.mean(v)), 4) for f, v in kept.items()},
            "amodal_pixels_kept_occluded": {str(f): round(float(np.mean(np.asarray(v)[occluded])), 4)
                                            for f, v in kept.items()} if occluded.any() else {},
            "resample_iou": {str(s): round(float(np.mean(v)), 4) for s, v in iou_at.items()}}


def batch_arrays(items: list[dict], inputs) -> tuple[np.ndarray, np.ndarray]:
    """(B, C, S, S) inputs and (B, S, S) amodal targets of a list of crops."""
    x = np.stack([channels(it["raw"], inputs) for it in items])
    y = np.stack([it["raw"]["amodal"] for it in items]).astype(np.float32)
    return x, y


def group_order(n_scenes: int, per_step: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> np.ndarray:
    from trainer.data import epoch_blocks
    mine = epoch_blocks(np.arange(n_scenes), seed, epoch, rank, world)
    nb = len(mine) // per_step
    return mine[:nb * per_step].reshape(nb, per_step)


def make_batch(stores, luts, index, group, cfg: SampleConfig, seed: int, epoch: int, max_instances: int):
    items = []
    for item in group:
        s, i = (int(v) for v in index[item])
        rng = np.random.default_rng([seed, epoch, s, i])
        items += scene_instances(read_scene(stores[s], i, luts[s]), cfg, rng)
    if len(items) > max_instances:
        pick = np.random.default_rng([seed, epoch, int(group[0]), 1]).choice(len(items), max_instances, replace=False)
        items = [items[k] for k in np.sort(pick)]
    if not items:
        return None
    return batch_arrays(items, cfg.inputs)


def scene_index(stores) -> np.ndarray:
    rows = [(s, int(i)) for s, st in enumerate(stores) for i in np.flatnonzero(st.done())]
    if not rows:
        raise DataError("no finished scenes in " + ", ".join(st.url for st in stores))
    return np.asarray(rows, np.int64)


def torch_dataset(urls, cfg: SampleConfig, seed: int, per_step: int, max_instances: int, rank: int = 0, world: int = 1):
    """An IterableDataset of whole batches (x, y tensors) for ``DataLoader(ds, batch_size=None)``;
    ``set_epoch(epoch, skip)`` before iterating (``skip``: groups already consumed).  A group
    whose scenes hold no eligible instance yields an empty batch (the trainer skips it but
    counts it, so the position stays exact)."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    class CompletionBatches(IterableDataset):
        def __init__(self):
            self.urls, self.rank, self.world = list(urls), rank, world
            stores = open_stores(self.urls)
            for st in stores:
                class_labels(st, cfg.classes)  # unknown class names fail here, in the parent
            self.index = scene_index(stores)
            self.epoch, self.start = 0, 0

        def set_epoch(self, epoch: int, skip: int = 0) -> None:
            self.epoch, self.start = epoch, skip

        def batches_per_epoch(self) -> int:
            return len(self.index) // self.world // per_step

        def __iter__(self):
            stores = open_stores(self.urls)
            luts = [class_labels(st, cfg.classes) for st in stores]
            order = group_order(len(self.index), per_step, seed, self.epoch, self.rank, self.world)[self.start:]
            info = get_worker_info()
            if info is not None:
                torch.set_num_threads(1)
                order = order[info.id::info.num_workers]
            for group in order:
                b = make_batch(stores, luts, self.index, group, cfg, seed, self.epoch, max_instances)
                if b is None:
                    yield torch.zeros((0, 1)), torch.zeros((0, 1))
                else:
                    yield torch.from_numpy(b[0]), torch.from_numpy(b[1])

    return CompletionBatches()
