"""Build one shard of training samples from a batch of source scenes loaded once.

Shard ``j`` depends only on (seed, j, config, sources): its generator is seeded from
``SeedSequence([seed, j])``, so any worker count gives the same shards.
"""
from __future__ import annotations

import numpy as np

from composer import degrade, ops
from composer.shard_config import ShardConfig
from composer.shard_store import DEGRADATIONS, MASK_KINDS, N_DEGRADATION_PARAMS


def to_f16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> IEEE half bits (int16), with OpenCV's SIMD path (3x numpy 2's astype here;
    OpenCV 5 dropped convertFp16 but converts to CV_16F in any arithmetic op)."""
    import cv2
    a = np.ascontiguousarray(a, np.float32)
    flat = a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a  # OpenCV takes 2 dims (plus channels)
    return cv2.multiply(flat, 1.0, dtype=cv2.CV_16F).view(np.int16).reshape(a.shape)


def shard_rng(seed: int, j: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(j), 1])))


def load_scene(store, i: int, near_m: float) -> dict:
    s = store.read_scene(i, ["rgb", "depth", "instance", "semantic", "num_instances", "instance_class",
                             "modal_area", "modal_box"])
    s["inv"] = ops.to_inverse(s["depth"], near_m)
    return s


def mask_candidates(scenes: list[dict], classes: list[str], cfg: ShardConfig) -> dict[str, list]:
    """(scene slot, instance id or 0 for sky) per mask kind, among the loaded scenes."""
    human = {classes.index(c) for c in cfg.human_classes if c in classes}
    obj = {classes.index(c) for c in cfg.object_classes if c in classes}
    sky_id = classes.index("sky")
    out: dict[str, list] = {k: [] for k in MASK_KINDS}
    for b, s in enumerate(scenes):
        area = s["instance"].size
        if (s["semantic"] == sky_id).mean() >= cfg.min_fraction:
            out["sky"].append((b, 0))
        for k in range(int(s["num_instances"])):
            if s["modal_area"][k] < cfg.min_fraction * area:
                continue
            c = int(s["instance_class"][k])
            if c in human:
                out["human"].append((b, k + 1))
                if ops.has_holes(s["instance"] == k + 1):
                    out["human_holes"].append((b, k + 1))
            elif c in obj:
                out["object"].append((b, k + 1))
    return out


def _pick_kind(rng, mix: dict, available: dict) -> str:
    names = [k for k in MASK_KINDS if mix.get(k, 0) > 0]
    w = np.array([mix[k] for k in names], float)
    kind = names[int(rng.choice(len(names), p=w / w.sum()))]
    if available[kind]:
        return kind
    # None of this kind in this batch: fall back to the kinds it does have, same weights.
    names = [k for k in names if available[k]]
    w = np.array([mix[k] for k in names], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def build_shard(stores: list, refs: list[tuple[int, int]], j: int, cfg: ShardConfig, seed: int, on_chunk=None) -> dict:
    """Arrays (shard_store.ARRAYS) of shard j.  ``refs`` lists (store id, scene) of every done
    source scene; ``stores`` are the opened scene stores.  ``on_chunk(arrays, first, stop)`` is called
    as each ``chunk_size`` run of samples is finished, so the caller can write it while the
    next one is built."""
    rng = shard_rng(seed, j)
    patch, n = cfg.patch, cfg.shard_size
    chunk = min(cfg.chunk_size, n)  # as the store was created
    pick = rng.choice(len(refs), size=min(cfg.batch_scenes, len(refs)), replace=False)
    batch = [refs[int(p)] for p in sorted(pick)]
    scenes = [load_scene(stores[si], i, cfg.near_m) for si, i in batch]
    classes = stores[0].attrs["classes"]
    cands = mask_candidates(scenes, classes, cfg)
    if not any(cands.values()):
        raise ValueError(f"shard {j}: no usable masks in its {len(batch)} source scenes")
    out = {
        "rgb": np.zeros((n, 3, patch, patch), np.uint8), "mask": np.zeros((n, patch, patch), np.uint8),
        "depth": np.zeros((n, patch, patch), np.float16), "depth1": np.zeros((n, patch, patch), np.float16),
        "depth2": np.zeros((n, patch, patch), np.float16), "perturbed": np.zeros((n, patch, patch), np.float16),
        "mask_kind": np.zeros(n, np.uint8), "source_store": np.zeros((n, 3), np.int16),
        "source_scene": np.zeros((n, 3), np.int32), "source_crop": np.zeros((n, 3, 4), np.int32),
        "mask_instance": np.zeros(n, np.int16), "k_dilate": np.zeros(n, np.uint8),
        "k_erode": np.zeros(n, np.uint8), "dilate_first": np.zeros(n, bool),
        "blur_sigma": np.zeros(n, np.float32), "hole_t": np.zeros(n, np.float32),
        "holes": np.zeros(n, np.int16), "sample_seed": np.zeros(n, np.uint64),
        "degradation": np.zeros(n, np.uint8), "degradation_params": np.zeros((n, N_DEGRADATION_PARAMS), np.float32),
    }
    mix = cfg.degrade_mix
    others = np.arange(len(scenes))
    sky_id = classes.index("sky")
    for s in range(n):
        sample_seed = int(rng.integers(0, 2**63))
        r = np.random.Generator(np.random.PCG64(sample_seed))
        kind = _pick_kind(r, cfg.mask_mix, cands)
        bm, inst = cands[kind][int(r.integers(len(cands[kind])))]
        sm = scenes[bm]
        # The mask is compared inside its window only: a full-frame comparison per sample
        # cost more than the rest of the sample.
        labels, target = (sm["semantic"], sky_id) if kind == "sky" else (sm["instance"], inst)
        hw = labels.shape
        if kind == "sky":
            # A random stuff crop can miss the sky; retry so the mask is not (nearly) empty.
            for _ in range(20):
                win_m = ops.stuff_crop(r, hw)
                if (labels[win_m[1]:win_m[3], win_m[0]:win_m[2]] == target).mean() >= cfg.min_fraction:
                    break
        else:
            win_m = ops.adaptive_crop(r, tuple(int(v) for v in sm["modal_box"][inst - 1]), hw, patch)
        window = labels[win_m[1]:win_m[3], win_m[0]:win_m[2]] == target
        m = ops.crop_resize(window.view(np.uint8), (0, 0, window.shape[1], window.shape[0]), patch, nearest=True)
        # Two RGB-D sources from other scenes than the mask's when the batch allows it.
        pool = others[others != bm] if len(scenes) >= 3 else others
        b1, b2 = (int(x) for x in r.choice(pool, size=2, replace=False))
        s1, s2 = scenes[b1], scenes[b2]
        w1 = ops.random_crop(r, s1["inv"].shape, patch)
        w2 = ops.random_crop(r, s2["inv"].shape, patch)
        d1 = s1["inv"][w1[1]:w1[3], w1[0]:w1[2]]
        d2 = s2["inv"][w2[1]:w2[3], w2[0]:w2[2]]
        i1 = s1["rgb"][w1[1]:w1[3], w1[0]:w1[2]]
        i2 = s2["rgb"][w2[1]:w2[3], w2[0]:w2[2]]
        dprime = ops.composite(m, d1, d2)
        p = ops.sample_perturbation(r)  # drawn whatever the family: the stream above stays the same
        rgb = ops.composite(m, i1, i2)
        # The family and its parameters come from a stream of their own, so a mixture changes
        # only the initial depth, never the masks, crops or sources of the samples.
        fr = np.random.Generator(np.random.PCG64([sample_seed, 27]))
        family = degrade.pick_family(fr, mix)
        if family == "perturb":
            pert, holes = ops.perturb(dprime, m, p)
            params = np.full(N_DEGRADATION_PARAMS, np.nan, np.float32)
        else:
            params = degrade.sample_params(family, fr)
            pert, holes = degrade.apply(family, dprime, rgb, m, params), 0
            p = {"k_dilate": 0, "k_erode": 0, "order": "", "blur_sigma": 0.0, "hole_t": 0.0}  # P(.) not applied
        out["degradation"][s], out["degradation_params"][s] = DEGRADATIONS.index(family), params
        out["rgb"][s] = rgb.transpose(2, 0, 1)
        out["mask"][s] = m
        for name, value in (("depth", dprime), ("depth1", d1), ("depth2", d2), ("perturbed", pert)):
            out[name].view(np.int16)[s] = to_f16_bits(value)
        out["mask_kind"][s] = MASK_KINDS.index(kind)
        out["source_store"][s] = [batch[b1][0], batch[b2][0], batch[bm][0]]
        out["source_scene"][s] = [batch[b1][1], batch[b2][1], batch[bm][1]]
        out["source_crop"][s] = [w1, w2, win_m]
        out["mask_instance"][s] = inst
        out["k_dilate"][s], out["k_erode"][s] = p["k_dilate"], p["k_erode"]
        out["dilate_first"][s] = p["order"] == "dilate-first"
        out["blur_sigma"][s], out["hole_t"][s], out["holes"][s] = p["blur_sigma"], p["hole_t"], holes
        out["sample_seed"][s] = sample_seed
        if on_chunk is not None and ((s + 1) % chunk == 0 or s + 1 == n):
            on_chunk(out, s + 1 - ((s + 1) % chunk or chunk), s + 1)
    return out
