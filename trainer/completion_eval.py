"""``gen eval completion``: mIoU of amodal completion on scene stores, with baselines.

Definitions follow C2F-Seg's reference code (amazon-science/c2f-seg, utils/evaluation.py):
  full      IoU of the predicted and true amodal masks in the image, averaged over instances;
  occluded  IoU of their parts outside the (given) visible mask, averaged over the instances
            whose true amodal mask has such a part (C2F-Seg adds 0 for the others and divides
            by the count of occluded ones: the same number).
Predictions are pasted back to image pixels (trainer.completion_crops.paste_back); amodal
pixels outside the crop count as misses.  Both are broken down by occlusion rate (1 - visible
area / amodal area) and by class.  Baselines in the same table: ``visible`` (the visible mask
as the amodal mask, occluded IoU 0 by definition) and ``hull`` (its convex hull).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scenes.atomic import write_text
from trainer.completion_crops import channels, convex_hull, paste_back

REPORT_FILES = ("report.json", "report.md")  # what ``evaluate`` writes into its folder
BINS = ((0.0, 0.01, "<1%"), (0.01, 0.25, "1-25%"), (0.25, 0.5, "25-50%"), (0.5, 0.75, "50-75%"), (0.75, 1.01, ">75%"))


class InputError(ValueError):
    """A user mistake in eval/complete inputs (one line, exit 2)."""


def extract(scene_urls, cfg, max_scenes: int = 200, degrade: float = 0.0, seed: int = 0, depth_too: bool = True):
    """The evaluation crops of the first ``max_scenes`` done scenes, each with the window of
    full-resolution masks it is scored in.  ``degrade`` > 0: the scene's depth is degraded
    (seeded per scene) before the crops' depth is sampled."""
    from trainer.amodal_data import class_labels, open_stores
    from trainer.amodal_inputs import degrade_depth
    from trainer.completion_data import read_scene, scene_instances
    stores = open_stores(scene_urls)
    jobs = [(s, int(i)) for s, st in enumerate(stores) for i in np.flatnonzero(st.done())][:max_scenes]
    if not jobs:
        raise InputError("no finished scenes in " + ", ".join(scene_urls))
    luts = [class_labels(st, cfg.classes) for st in stores]
    items = []
    for s, i in jobs:
        sc = read_scene(stores[s], i, luts[s])
        if degrade > 0:
            sc["depth"] = degrade_depth(sc["depth"], np.random.default_rng([seed, s, i, 99]), degrade)
        for it in scene_instances(sc, cfg, None, with_full=True, depth_too=depth_too):
            vis, am = it.pop("visible_full"), it.pop("amodal_full")
            h, w = am.shape
            c = it["crop"]
            ys, xs = np.flatnonzero(am.any(1)), np.flatnonzero(am.any(0))
            x0, y0 = min(max(int(np.floor(c.x0)), 0), xs[0]), min(max(int(np.floor(c.y0)), 0), ys[0])
            x1, y1 = max(min(int(np.ceil(c.x0 + c.side)), w), xs[-1] + 1), max(min(int(np.ceil(c.y0 + c.side)), h), ys[-1] + 1)
            it.update(window=(x0, y0), visible_win=vis[y0:y1, x0:x1], amodal_win=am[y0:y1, x0:x1], image_shape=(h, w),
                      scene=(s, i))
            items.append(it)
    return items, len(jobs)


def to_window(prob: np.ndarray, it: dict) -> np.ndarray:
    """A crop's probability map as a mask over the item's scoring window."""
    region, (x, y) = paste_back(prob, it["crop"], it["image_shape"])
    out = np.zeros(it["amodal_win"].shape, bool)
    wx, wy = it["window"]
    out[y - wy:y - wy + region.shape[0], x - wx:x - wx + region.shape[1]] = region
    return out


def baseline_masks(items, kind: str) -> list[np.ndarray]:
    if kind == "visible":
        return [it["visible_win"] for it in items]
    if kind == "hull":
        return [convex_hull(it["visible_win"]) for it in items]
    raise ValueError(kind)


def model_masks(model, mc: dict, items, chunk: int = 256) -> list[np.ndarray]:
    from trainer.completion_model import predict
    vis_ch = mc["inputs"].index("visible") if "visible" in mc["inputs"] else None
    out = []
    for a in range(0, len(items), chunk):
        part = items[a:a + chunk]
        x = np.stack([channels(it["raw"], mc["inputs"]) for it in part])
        probs = predict(model, x, vis_ch)
        out += [to_window(p, it) | it["visible_win"] for p, it in zip(probs, part)]
    return out


def score(items, masks, class_names) -> dict:
    """full / occluded mIoU overall, per occlusion-rate bin and per class (+ instance counts)."""
    full, occ, rate, labels = [], [], [], []
    for it, p in zip(items, masks):
        g, v = it["amodal_win"], it["visible_win"]
        full.append((p & g).sum() / max((p | g).sum(), 1))
        go, po = g & ~v, p & ~v
        occ.append((po & go).sum() / max((po | go).sum(), 1) if go.any() else np.nan)
        rate.append(1 - v.sum() / max(g.sum(), 1))
        labels.append(it["label"])
    full, occ, rate, labels = (np.asarray(a, np.float64) for a in (full, occ, rate, labels))

    def agg(sel):
        o = occ[sel & ~np.isnan(occ)]
        return {"n": int(sel.sum()), "n_occluded": int(o.size), "full": float(full[sel].mean()) if sel.any() else None,
                "occluded": float(o.mean()) if o.size else None}

    everything = np.ones(len(full), bool)
    return {"all": agg(everything),
            "bins": {name: agg((rate >= lo) & (rate < hi)) for lo, hi, name in BINS},
            "classes": {c: agg(labels == k + 1) for k, c in enumerate(class_names)}}


def load_model(path: str):
    from trainer import checkpoint
    from trainer.completion_model import build_completion
    try:
        ck = checkpoint.load(path, kind="completion")
    except checkpoint.CheckpointError as exc:
        raise InputError(str(exc)) from None
    model = build_completion(**ck["model_config"])
    model.load_state_dict(ck["model"])
    return model.eval(), ck["model_config"]


def evaluate(ckpt: str, scene_urls, out_dir: str, *, max_scenes: int = 200, degrade: float = 0.0,
             min_visible_area: int = 32, seed: int = 0) -> dict:
    from trainer.amodal_data import DataError
    from trainer.completion_data import SampleConfig
    model, mc = load_model(ckpt)
    cfg = SampleConfig.from_model(mc, min_visible_area=min_visible_area)
    try:
        items, n_scenes = extract(scene_urls, cfg, max_scenes, degrade, seed, depth_too=False)
    except DataError as exc:
        raise InputError(str(exc)) from None
    if not items:
        raise InputError(f"no instances of {','.join(mc['classes'])} with >= {min_visible_area} visible pixels")
    rows = {"model": score(items, model_masks(model, mc, items), mc["classes"])}
    for kind in ("visible", "hull"):
        rows[kind] = score(items, baseline_masks(items, kind), mc["classes"])
    report = {"checkpoint": str(ckpt), "scenes": list(scene_urls), "n_scenes": n_scenes, "n_instances": len(items),
              "model_config": mc, "depth_degrade": degrade, "min_visible_area": min_visible_area, "rows": rows,
              "mask_rcnn_amodal_head": "not run (needs a trained gen train amodal checkpoint and its detections)"}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "report.json", json.dumps(report, indent=2))
    write_text(out / "report.md", markdown(report))
    return report


def _f(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def markdown(report: dict) -> str:
    rows, mc = report["rows"], report["model_config"]
    first = next(iter(rows.values()))
    bins, classes = list(first["bins"]), list(first["classes"])
    lines = [f"# Amodal completion: {report['checkpoint']}", "",
             (f"{report['n_scenes']} scenes, {report['n_instances']} instances (>= {report['min_visible_area']} visible "
              f"pixels) of {', '.join(report['scenes'])}; inputs {'+'.join(mc['inputs'])}, crop {mc['size']}x{mc['size']}, "
              f"factor {mc['factor']}; depth degradation {report['depth_degrade']}."), "",
             "mIoU (%) full / occluded part, C2F-Seg's definitions:", "",
             "| method | all | " + " | ".join(f"occl. {b}" for b in bins) + " |", "|---|" + "---:|" * (len(bins) + 1)]
    for name, r in rows.items():
        cells = [f"{_f(r['all']['full'])} / {_f(r['all']['occluded'])}"]
        cells += [f"{_f(r['bins'][b]['full'])} / {_f(r['bins'][b]['occluded'])}" for b in bins]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| instances | " + " | ".join([str(first["all"]["n"])] + [str(first["bins"][b]["n"]) for b in bins]) + " |")
    lines += ["", "| method | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{_f(r['classes'][c]['full'])} / {_f(r['classes'][c]['occluded'])}"
                                                  for c in classes) + " |")
    lines.append("| instances | " + " | ".join(str(first["classes"][c]["n"]) for c in classes) + " |")
    lines += ["", f"Mask R-CNN amodal head: {report['mask_rcnn_amodal_head']}.", ""]
    return "\n".join(lines)
