"""Watching a training run: TensorBoard, and ``--val STORE``, each model's own evaluation on
held-out scenes during training (``best.pt`` is chosen on it instead of the training loss).

* refiner: ``gen eval refiner``'s "Ours" row -- the same initial depth (P(D'), seeded), one
  refinement per instance, merged by the argmax rule, scored after scale-shift alignment;
  ``best.pt`` at the lowest RMSE.
* amodal: ``gen eval amodal``'s amodal mask AP (COCO segm, 0.5:0.95); ``best.pt`` at the highest.

Both read the first ``max_scenes`` finished scenes, with a fixed seed: every validation of a
run sees the same inputs, so the scores are comparable step to step and on --resume.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch


def tensorboard(out: Path):
    """A SummaryWriter on ``out/tb`` (``tensorboard --logdir out/tb``); None, said once on
    stderr, when the train extra's tensorboard is not installed (log.csv is always written)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - missing tensorboard or a broken install: the CSV log still works
        print("note: tensorboard is not installed (pip install 'rgsd[train]'); logging to log.csv only",
              file=sys.stderr)
        return None
    return SummaryWriter(str(Path(out) / "tb"))


@torch.no_grad()
def refiner_score(model, mode: str, urls, max_scenes: int = 16, seed: int = 0) -> dict:
    """The "Ours" row of gen eval refiner on ``urls``: {"RMSE", "MBE", ..., "scenes"}."""
    from trainer import metrics
    from trainer.evaluate import scene_cases, scene_jobs, score, summarise
    from trainer.infer import refine
    was_training = model.training
    model.eval()
    rows = []
    try:
        for _n, _st, _i, s, gt, masks, initial, _rec in scene_cases(scene_jobs(urls, max_scenes), "perturb", seed):
            pred = metrics.merge_instances(initial, [refine(model, mode, initial, m, s["rgb"]) for m in masks])
            rows.append(score(pred, gt, metrics.align_scale_shift(initial, gt), masks))
    finally:
        model.train(was_training)
    return summarise("Ours", rows) if rows else {"scenes": 0, "RMSE": float("nan")}


@torch.no_grad()
def amodal_score(model, urls, max_scenes: int = 16, seed: int = 0, min_visible_area: int = 16) -> dict:
    """gen eval amodal's amodal segm AP (and AP50) on ``urls``: {"AP", "AP50", "scenes"}."""
    from trainer.amodal_coco import coco_eval
    from trainer.amodal_data import SampleConfig, class_labels, make_sample
    from trainer.amodal_eval import predict
    from trainer.evaluate import scene_jobs
    mc = model.cfg
    cfg = SampleConfig.from_model(mc, degrade=0.0, min_visible_area=min_visible_area, min_amodal_area=1)
    was_training = model.training
    model.eval()
    gts, preds, luts = [], [], {}
    try:
        for n, (st, i) in enumerate(scene_jobs(urls, max_scenes)):
            lut = luts.setdefault(st.url, class_labels(st, mc["classes"]))
            x, t, _ = make_sample(st, i, lut, cfg, np.random.default_rng([seed, n]), train=False)
            gts.append({"labels": t["labels"], "amodal": t["amodal_masks"].astype(bool),
                        "visible": t["masks"].astype(bool), "visible_fraction": t["visible_fraction"],
                        "size": t["size"]})
            preds.append(predict(model, x))
    finally:
        model.train(was_training)
    if not gts:
        return {"scenes": 0, "AP": float("nan"), "AP50": float("nan")}
    stats = coco_eval(gts, preds, mc["classes"], "amodal", "segm", min_visible_area)["stats"]
    return {"scenes": len(gts), "AP": max(stats["AP"], 0.0), "AP50": max(stats["AP50"], 0.0)}


def val_problem(urls: str) -> str | None:
    """What is wrong with ``--val`` (comma-separated scene stores), in one line; None if fine."""
    from scenes.store import StoreError, open_store
    for u in urls.split(","):
        try:
            if not open_store(u).done().any():
                return f"--val: {u} has no finished scenes"
        except StoreError as exc:
            return f"--val: {exc}"
    return None


