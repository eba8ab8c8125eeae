"""``gen export instaorder`` and ``gen eval order``: occlusion and depth orders in the JSON
structure of InstaOrder's release, and the supplement's metrics (§A1) against a store.

One entry per image under "annotations" (InstaOrder's ``InstaOrder_{split}.json``):
  image_id      the scene index (the image id of ``gen export kins/coco``)
  instance_ids  annotation ids of that image's instances, the ids the KINS/COCO exports
                give them (scene * max_instances + slot + 1); orders below index this list
  occlusion     [{"order": "A<B"}] for occluder A of occludee B, one entry per pair that
                occludes, "A<B & B<A" when both occlude each other (bidirectional)
  depth         [{"order": "A<B" | "A=B", "overlap": bool, "count": 2}] for every pair:
                A closer than B, or equally far
Mapping from the store: ``occlusion[a, b]`` (a is visible inside b's amodal mask) gives
"a<b"; both directions give the bidirectional entry.  ``depth_order[a, b]`` = -1 gives
"a<b", +1 "b<a", 0 "a=b".  Rendered stores call two instances equally far when their
camera-space centre depths differ by at most max(0.5 m, 5 % of the nearer one)
(scenes/annotations.py ``depth_order``); imported RGB-D stores compare median depths.
"overlap" is whether either occludes the other (InstaOrder's overlap vs distinct pairs).
"count" is the number of annotators InstaOrder needed for agreement; WHDR weighs a pair by
2 / count, and rendered orders are exact, so every pair gets the minimum, 2 (weight 1).
"""
from __future__ import annotations

import json
import sys

import numpy as np

from pipelines.export_common import (
    AtomicText,
    ExportError,
    categories,
    check_output,
    open_scenes,
    select_scenes,
)

READ = ["num_instances", "instance_class", "occlusion", "depth_order"]


def order_entries(occ: np.ndarray, depth: np.ndarray) -> tuple[list[dict], list[dict]]:
    """InstaOrder occlusion and depth entries for the (n, n) sub-matrices of one image."""
    n = len(occ)
    occlusion, depth_out = [], []
    for a in range(n):
        for b in range(a + 1, n):
            ab, ba = bool(occ[a, b]), bool(occ[b, a])
            if ab and ba:
                occlusion.append({"order": f"{a}<{b} & {b}<{a}"})
            elif ab:
                occlusion.append({"order": f"{a}<{b}"})
            elif ba:
                occlusion.append({"order": f"{b}<{a}"})
            d = int(depth[a, b])
            order = f"{a}<{b}" if d < 0 else f"{b}<{a}" if d > 0 else f"{a}={b}"
            depth_out.append({"order": order, "overlap": ab or ba, "count": 2})
    return occlusion, depth_out


def parse_entry(entry: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(occ bool (n, n), depth int8 (n, n) with -1/0/+1 and -2 = no order given, overlap
    bool (n, n)) from one InstaOrder entry, as InstaOrder's reader builds its matrices."""
    n = len(entry["instance_ids"])
    occ = np.zeros((n, n), bool)
    depth = np.full((n, n), -2, np.int8)
    np.fill_diagonal(depth, 0)
    overlap = np.zeros((n, n), bool)

    def pair(text, sep):
        a, b = (int(v) for v in text.split(sep))
        if not (0 <= a < n and 0 <= b < n) or a == b:
            raise ValueError(f"order '{text}' does not name two of the {n} instances")
        return a, b
    for o in entry.get("occlusion", []):
        a, b = pair(o["order"].split("&")[0].strip(), "<")
        occ[a, b] = True
        if "&" in o["order"]:
            occ[b, a] = True
    for o in entry.get("depth", []):
        text = o["order"]
        if "<" in text:
            a, b = pair(text, "<")
            depth[a, b], depth[b, a] = -1, 1
        else:
            a, b = pair(text, "=")
            depth[a, b] = depth[b, a] = 0
        overlap[a, b] = overlap[b, a] = bool(o.get("overlap", False))
    return occ, depth, overlap


def export(url: str, out: str, *, classes: str | None = None, scenes: str | None = None,
           overwrite: bool = False) -> dict:
    from tqdm import tqdm

    st = open_scenes(url)
    check_output(out, overwrite)
    cats = categories(st, classes)
    todo, skipped = select_scenes(st, scenes)
    keep = {c["id"] - 1 for c in cats}
    kmax = st.max_instances
    info = {"description": f"rgsd InstaOrder export of {url}", "store": url,
            "instance_ids": "annotation ids of gen export kins/coco: scene * max_instances + slot + 1",
            "depth_equal": "rendered stores: centre depths within max(0.5 m, 5% of the nearer); "
                           "imported RGB-D stores: median depths, same rule",
            "overlap": "either instance occludes the other", "count": "2 for every pair (exact orders)"}
    counts = {"images": 0, "occlusion": 0, "depth": 0, "skipped": skipped}
    with AtomicText(out) as f:
        f.write(json.dumps({"info": info, "categories": cats}, separators=(",", ":"))[:-1])
        f.write(',"annotations":[')
        for n, i in enumerate(tqdm(todo, unit="scene", desc="export-instaorder", file=sys.stderr, leave=False,
                                   dynamic_ncols=True)):
            s = st.read_scene(i, READ)
            k = int(s["num_instances"])
            slots = np.array([j for j in range(k) if int(s["instance_class"][j]) in keep], np.int64)
            occ, dep = order_entries(s["occlusion"][np.ix_(slots, slots)], s["depth_order"][np.ix_(slots, slots)])
            entry = {"image_id": i, "instance_ids": [int(i * kmax + j + 1) for j in slots],
                     "occlusion": occ, "depth": dep}
            f.write(("," if n else "") + json.dumps(entry, separators=(",", ":")))
            counts["images"] += 1
            counts["occlusion"] += len(occ)
            counts["depth"] += len(dep)
        f.write("]}")
    print(f"{out}: {counts['images']} images, {counts['occlusion']} occlusion and {counts['depth']} depth orders"
          + (f" ({skipped} unfinished scenes skipped)" if skipped else ""), file=sys.stderr)
    return counts


def occlusion_scores(pred: np.ndarray, gt: np.ndarray) -> dict:
    """The counts behind recall and precision (supplement eqs. A1-A2) over the ordered pairs
    AB of one image: correct occluder predictions, true ones, predicted ones."""
    off = ~np.eye(len(gt), dtype=bool)
    tp = int((pred & gt & off).sum())
    return {"tp": tp, "gt": int((gt & off).sum()), "pred": int((pred & off).sum())}


def whdr_terms(pred: np.ndarray, gt: np.ndarray, overlap: np.ndarray, count: np.ndarray) -> dict:
    """Weighted disagreements and weights (supplement eq. A4, w = 2 / count) over the
    unordered pairs a < b, split into distinct (no overlap), overlap and all."""
    iu = np.triu_indices(len(gt), 1)
    wrong = pred[iu] != gt[iu]
    w = 2.0 / count[iu]
    ov = overlap[iu]
    out = {}
    for name, m in (("distinct", ~ov), ("overlap", ov), ("all", np.ones_like(ov))):
        out[name] = (float((w * wrong)[m].sum()), float(w[m].sum()))
    return out


def finish(occ_counts: dict, whdr: dict) -> dict:
    def ratio(a, b):
        return 100.0 * a / b if b else float("nan")
    r, p = ratio(occ_counts["tp"], occ_counts["gt"]), ratio(occ_counts["tp"], occ_counts["pred"])
    f1 = 2 * p * r / (p + r) if p + r > 0 else (0.0 if occ_counts["gt"] and occ_counts["pred"] else float("nan"))
    out = {"occlusion": {"recall": r, "precision": p, "f1": f1, **occ_counts}, "depth_whdr": {}}
    for name, (bad, tot) in whdr.items():
        out["depth_whdr"][name] = ratio(bad, tot)
        out["depth_whdr"][f"{name}_pairs_weight"] = tot
    return out


def evaluate(pred_path: str, url: str) -> dict:
    """Score an InstaOrder-format prediction against the store's occlusion and depth orders.

    Each predicted entry names a finished scene (image_id) and its instances (instance_ids,
    as the export writes them); pairs are those among the listed instances.  A pair whose
    depth order the prediction leaves out counts as a disagreement.  Sums run over all
    pairs of all images (eqs. A1-A4), not per image."""
    st = open_scenes(url)
    try:
        with open(pred_path, encoding="utf-8") as fh:
            pred = json.load(fh)
        entries = pred["annotations"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise TypeError("'annotations' must be a list of objects")
    except FileNotFoundError:
        raise ExportError(f"no prediction file {pred_path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{pred_path} is not InstaOrder JSON with an 'annotations' list ({exc})") from None
    done = st.done()
    kmax = st.max_instances
    occ_tot = {"tp": 0, "gt": 0, "pred": 0}
    whdr_tot = {k: [0.0, 0.0] for k in ("distinct", "overlap", "all")}
    for e in entries:
        try:
            i = int(e["image_id"])
            ids = [int(v) for v in e["instance_ids"]]
            p_occ, p_depth, _ = parse_entry(e)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise ExportError(f"{pred_path}: malformed entry for image {e.get('image_id')!r} ({exc})") from None
        if not (0 <= i < st.n and done[i]):
            raise ExportError(f"{pred_path}: image {i} is not a finished scene of {url}")
        s = st.read_scene(i, READ)
        k = int(s["num_instances"])
        slots = np.array(ids, np.int64) - 1 - i * kmax
        bad = [ids[n] for n, j in enumerate(slots) if not 0 <= j < k]
        if bad:
            raise ExportError(f"{pred_path}: instance id {bad[0]} is not an instance of scene {i}")
        gt_occ = s["occlusion"][np.ix_(slots, slots)]
        gt_depth = s["depth_order"][np.ix_(slots, slots)]
        overlap = gt_occ | gt_occ.T
        c = occlusion_scores(p_occ, gt_occ)
        for key in occ_tot:
            occ_tot[key] += c[key]
        for key, (bad_w, tot_w) in whdr_terms(p_depth, gt_depth, overlap, np.full(gt_depth.shape, 2.0)).items():
            whdr_tot[key][0] += bad_w
            whdr_tot[key][1] += tot_w
    out = finish(occ_tot, {k: tuple(v) for k, v in whdr_tot.items()})
    out["images"] = len(entries)
    return out


def report_text(m: dict) -> str:
    o, d = m["occlusion"], m["depth_whdr"]
    return (f"images: {m['images']}\n"
            f"occlusion order  recall {o['recall']:.2f}  precision {o['precision']:.2f}  F1 {o['f1']:.2f}  "
            f"({o['tp']} correct of {o['gt']} true, {o['pred']} predicted)\n"
            f"depth order WHDR (%)  distinct {d['distinct']:.2f}  overlap {d['overlap']:.2f}  all {d['all']:.2f}")
