"""``gen eval refiner``: a Table-1-style report on held-out scene stores (maskdepth §4.2-4.3).

Per scene: ground truth D in the refiner's space (inverse depth, DEPTH_SCALE * min(1, 1 m / z),
i.e. 10/z with z in metres: one unit is 0.1 m^-1), an initial depth to refine, and every
instance with > 1 % of the pixels as a mask.  Each method refines once per instance; the
per-instance results merge by the paper's argmax rule (largest change from the initial
depth wins).  Predictions are aligned to D by least-squares scale and shift before scoring.

Scale: MBE and RMSE are in this space's units, 10x the same errors in 1/m (the MiDaS
protocol MaskDepth follows).  R3's threshold t is absolute, so it is reported at two:
``R3@0.5`` (t = 0.5 here = 0.05 m^-1, the MiDaS/MaskDepth value if, as in MiDaS, the paper's
inverse depth is in 1/m -- the tables lead with it) and ``R3@0.05`` (t = 0.05 here, the
column of this project's earlier tables).
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from composer import degrade, ops
from composer.depth_space import DEPTH_SCALE
from scenes.atomic import write_image
from trainer import metrics

# R3 thresholds in this space: 0.05 m^-1 (MiDaS/MaskDepth, first: the tables lead with it) and 0.05.
R3_THRESHOLDS = {"R3@0.5": 0.05 * DEPTH_SCALE, "R3@0.05": 0.05}
METRICS = ("MBE", "eps_acc", "eps_comp", "WHDR", "RMSE")

# The classical edge-aware baseline: guided filter (He et al.) of the initial depth by the
# RGB in [0, 1], radius 8 px, eps 1e-3, applied only within 8 px of the mask's edge.
GUIDED_RADIUS, GUIDED_EPS, GUIDED_BAND = 8, 1e-3, 8


def guided_band(initial: np.ndarray, rgb: np.ndarray, mask: np.ndarray, filtered: np.ndarray | None = None,
                r: int = GUIDED_RADIUS, eps: float = GUIDED_EPS, band: int = GUIDED_BAND) -> np.ndarray:
    """The initial depth, replaced inside the mask band (pixels within ``band`` px of the
    mask's edge, either side) by its guided filter with the RGB as guide.  ``filtered``:
    that filter's output when the caller already has it (it does not depend on the mask)."""
    if filtered is None:
        filtered = degrade.guided_filter(rgb.astype(np.float32) / 255.0, initial, r, eps)
    m = mask.astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    zone = cv2.dilate(m, k) != cv2.erode(m, k)
    return np.where(zone, filtered, initial).astype(np.float32)


def layered_propagation(initial: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The paper's Layered-propagation baseline: the foreground layer keeps the initial depth
    inside the 5x5-eroded mask and Telea-outpaints the rest; the background layer keeps it
    outside the 5x5-dilated mask and inpaints the rest; the mask merges the two."""
    k = np.ones((5, 5), np.uint8)
    m = mask.astype(np.uint8)
    inner, outer = cv2.erode(m, k), cv2.dilate(m, k)
    src = initial.astype(np.float32)  # cv2.inpaint takes float32 single-channel images as is
    fg = cv2.inpaint(src, (1 - inner).astype(np.uint8), 3, cv2.INPAINT_TELEA) if inner.any() else src
    bg = cv2.inpaint(src, outer, 3, cv2.INPAINT_TELEA)
    return np.where(m > 0, fg, bg)


def score(pred, gt, initial_aligned, masks) -> dict:
    """Metrics of ``pred`` after scale-and-shift alignment; R3 compares it with the aligned
    initial depth (so the initial row itself has no R3).  WHDR pairs only pixels with a
    surface (gt > 0: no sky) and drops pairs tied in gt (both on the <= 1 m plateau); see
    :func:`trainer.metrics.whdr`.  eps_comp is the iBims script's symmetric capped form."""
    a = metrics.align_scale_shift(pred, gt)
    acc, comp = metrics.depth_boundary_errors(a, gt, completeness="symmetric")
    out = {"MBE": metrics.mbe(a, gt, masks), "eps_acc": acc, "eps_comp": comp,
           "WHDR": metrics.whdr(a, gt, gt > 0, exclude_gt_ties=True), "RMSE": metrics.rmse(a, gt)}
    for name, t in R3_THRESHOLDS.items():
        out[name] = metrics.r3_counts(a, gt, initial_aligned, t=t)  # (improved, worsened)
    return out


def trained_families(ck: dict) -> list[str] | None:
    """The degradation families a checkpoint was trained on, None if it does not say
    (checkpoints from before issue 27: their shards were P(.) alone)."""
    t = ck.get("trained_on")
    return list(t["families"]) if isinstance(t, dict) and isinstance(t.get("families"), list) else None


def scene_jobs(urls, max_scenes: int) -> list:
    """(store, scene index) of the first ``max_scenes`` finished scenes of ``urls`` (one or a list)."""
    from scenes.store import open_store
    jobs = []
    for url in [urls] if isinstance(urls, str) else urls:
        st = open_store(url)
        jobs += [(st, int(i)) for i in np.flatnonzero(st.done())]
    return jobs[:max_scenes]


def scene_cases(jobs, family: str, seed: int):
    """Per scene with instances: (n, store, index, arrays, inverse-depth truth, instance masks,
    initial depth, its degradation record).  One generator per scene: a scene's initial depth
    does not depend on the ones before it (nor on which scenes were skipped)."""
    for n, (st, i) in enumerate(jobs):
        s = st.read_scene(i, ["rgb", "depth", "instance"])
        gt = ops.to_inverse(s["depth"])
        masks = metrics.instance_masks(s["instance"])
        if not masks:
            continue
        initial, record = degrade.degrade(family, gt, s["rgb"], np.any(masks, axis=0), np.random.default_rng([seed, n]))
        yield n, st, i, s, gt, masks, initial, record


def evaluate(checkpoint: str, scene_urls: list[str], out_dir: str, *, direct: str | None = None,
             degradation: str = "perturb", max_scenes: int = 50, seed: int = 0, progress: bool = True) -> list[dict]:
    from tqdm import tqdm

    from trainer.checkpoint import load
    from trainer.infer import refine, refiner_from_checkpoint

    degrade.check_family(degradation)
    # Both checkpoints are read (weights only, once each) before anything is written.
    ck = load(checkpoint, kind="refiner")
    ours, mode = refiner_from_checkpoint(ck, checkpoint)
    seen = {"Ours": trained_families(ck)}
    methods = {"Initial depth": None, "Layered-propagation": "prop", "Guided filter": "guided"}
    if direct:
        ck = load(direct, kind="refiner")
        methods["Direct-composite"] = refiner_from_checkpoint(ck, direct)
        seen["Direct-composite"] = trained_families(ck)
    methods["Ours"] = (ours, mode)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = {name: [] for name in methods}
    jobs = scene_jobs(scene_urls, max_scenes)
    records = []
    for n, st, i, s, gt, masks, initial, record in scene_cases(
            tqdm(jobs, desc="eval", unit="scene", disable=not progress), degradation, seed):
        records.append({"store": st.url, "scene": i, **record})
        filtered = degrade.guided_filter(s["rgb"].astype(np.float32) / 255.0, initial, GUIDED_RADIUS, GUIDED_EPS)
        preds = {}
        for name, method in methods.items():
            if method is None:
                preds[name] = initial
                continue
            if method == "prop":
                per = [layered_propagation(initial, m) for m in masks]
            elif method == "guided":
                per = [guided_band(initial, s["rgb"], m, filtered) for m in masks]
            else:
                per = [refine(method[0], method[1], initial, m, s["rgb"]) for m in masks]
            preds[name] = metrics.merge_instances(initial, per)
        initial_aligned = metrics.align_scale_shift(initial, gt)
        for name, pred in preds.items():
            rows[name].append(score(pred, gt, initial_aligned, masks))
        if n < 4:  # relative-improvement maps: green where Ours beats the initial depth
            e0 = np.abs(initial_aligned - gt)
            e1 = np.abs(metrics.align_scale_shift(preds["Ours"], gt) - gt)
            gain = np.clip((e0 - e1) / 0.5, -1, 1)
            img = np.zeros(gain.shape + (3,), np.uint8)
            img[..., 1] = np.clip(gain, 0, 1) * 255
            img[..., 2] = np.clip(-gain, 0, 1) * 255
            write_image(out / f"improvement_{n:02d}.png", img)
    table = [summarise(name, rs) for name, rs in rows.items() if rs]
    _write_records(out, records)
    _write(out, table, degradation, checkpoint, seen)
    return table


def _write_records(out: Path, records: list[dict]) -> None:
    """degradations.csv: each scene's initial-depth family and parameters, to replay it."""
    import io

    from scenes.atomic import write_text
    keys = list(dict.fromkeys(k for r in records for k in r))
    f = io.StringIO(newline="")
    w = csv.DictWriter(f, keys)
    w.writeheader()
    w.writerows(records)
    write_text(out / "degradations.csv", f.getvalue())


def seen_line(degradation: str, seen: dict) -> str:
    """Which families each network was trained on, and whether this initial depth is among them."""
    parts = []
    for name, fams in seen.items():
        if fams is None:
            parts.append(f"{name}: not recorded in the checkpoint (made before issue 27, so P(.) = perturb alone); "
                         f"'{degradation}' is {'seen' if degradation == 'perturb' else 'held out'}")
        else:
            parts.append(f"{name}: trained on {', '.join(fams)}; '{degradation}' is "
                         f"{'seen in training' if degradation in fams else 'HELD OUT (never seen in training)'}")
    return "Training families -- " + ("; ".join(parts) or "not given") + "."


def pooled_r3(improved: int, worsened: int) -> float:
    """R3 pooled over scenes: +inf when pixels improved and none got worse, NaN when no
    pixel changed by more than t (the initial depth's own row)."""
    if worsened:
        return improved / worsened
    return float("inf") if improved else float("nan")


def summarise(name: str, rs: list[dict]) -> dict:
    """One table row: R3 pooled over all scenes' pixels, the other metrics averaged over the
    scenes where they are defined."""
    row = {"method": name, "scenes": len(rs)}
    for key in R3_THRESHOLDS:
        row[key] = pooled_r3(sum(r[key][0] for r in rs), sum(r[key][1] for r in rs))
    for key in METRICS:
        vals = np.array([r[key] for r in rs], float)
        vals = vals[np.isfinite(vals)]
        row[key] = float(vals.mean()) if len(vals) else float("nan")
    return row


def _cell(row: dict, key: str) -> str:
    v = row[key]
    if key in R3_THRESHOLDS:
        if v == float("inf"):
            return "inf (no pixel worse)"
        if v != v:  # NaN
            return "n/a" if row["method"] == "Initial depth" else "no change > t"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _write(out: Path, table: list[dict], degradation: str, checkpoint: str, seen: dict | None = None) -> None:
    import io

    from scenes.atomic import write_text
    keys = ["method", "scenes", *R3_THRESHOLDS, *METRICS]
    f = io.StringIO(newline="")
    w = csv.DictWriter(f, keys)
    w.writeheader()
    w.writerows(table)
    write_text(out / "report.csv", f.getvalue())
    lines = [f"# Refiner evaluation ({checkpoint}, initial depth: {degradation})", "",
             f"Depth space: inverse depth {DEPTH_SCALE:g} * min(1, 1 m / z), i.e. {DEPTH_SCALE:g}/z: MBE and RMSE "
             f"are in its units, {DEPTH_SCALE:g}x the same errors in 1/m (MiDaS/MaskDepth scale).  R3 higher is "
             "better: pixels improved / worsened by more than t against the aligned initial depth, pooled over "
             f"scenes; R3@{R3_THRESHOLDS['R3@0.5']:g} has t = 0.05 1/m (the MiDaS/MaskDepth threshold, leading), "
             f"R3@0.05 t = 0.05 here = {0.05 / DEPTH_SCALE:g} 1/m (earlier tables).  The rest lower is better: "
             "eps_acc / eps_comp in pixels (eps_comp: iBims' symmetric capped form), WHDR over non-sky pairs "
             "not tied in ground truth.", "", seen_line(degradation, seen or {}),
             "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in table:
        lines.append("| " + " | ".join(_cell(r, k) for k in keys) + " |")
    write_text(out / "report.md", "\n".join(lines) + "\n")
