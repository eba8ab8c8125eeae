"""COCO scoring of amodal and visible masks with stock pycocotools (no torch).

The ground truth is built in memory from the store (the KINS/COCO export writes the same
structures to disk).  Per image:

    gt   = {"labels": (N,), "amodal": (N, H, W) bool, "visible": (N, H, W) bool,
            "visible_fraction": (N,)}
    pred = {"labels": (M,), "scores": (M,), "amodal": (M, H, W) bool, "visible": (M, H, W) bool,
            optional "boxes": (M, 4) xyxy amodal boxes (else the amodal masks' boxes)}

Amodal tasks score every ground-truth instance (fully hidden ones included).  Visible tasks
score only instances whose visible area is >= ``min_visible_area`` pixels, on both sides: a
prediction whose visible mask is smaller is left out, as the ground truth below the threshold is.
Occluded-only AP (visible fraction < 0.9, < 0.5): the other ground-truth instances become
COCO "iscrowd" regions, so detections of them count neither as hits nor as false positives.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
OCCLUDED = (0.9, 0.5)


def rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mu
    r = mu.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}


def mask_box(mask: np.ndarray) -> list[float]:
    """[x, y, w, h] of a mask (COCO's bbox), zeros if empty."""
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(xs):
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs[0]), float(ys[0]), float(xs[-1] + 1 - xs[0]), float(ys[-1] + 1 - ys[0])]


def _datasets(gts, preds, classes, task: str, min_visible_area: int, occluded_below: float | None):
    images, anns, dets = [], [], []
    for img_id, (g, p) in enumerate(zip(gts, preds), start=1):
        h, w = g["amodal"].shape[1:] if len(g["amodal"]) else g["size"]
        images.append({"id": img_id, "height": int(h), "width": int(w)})
        masks = g[task]
        for n in range(len(masks)):
            area = int(masks[n].sum())
            if task == "visible" and area < min_visible_area:
                continue
            if task == "amodal" and area == 0:
                continue
            crowd = occluded_below is not None and g["visible_fraction"][n] >= occluded_below
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": int(g["labels"][n]),
                         "segmentation": rle(masks[n]), "area": float(area), "bbox": mask_box(masks[n]),
                         "iscrowd": int(crowd)})
        pm = p[task]
        for n in range(len(pm)):
            area = int(pm[n].sum())
            if area == 0 or (task == "visible" and area < min_visible_area):
                continue
            if task == "amodal" and p.get("boxes") is not None:
                x0, y0, x1, y1 = (float(v) for v in p["boxes"][n])
                box = [x0, y0, x1 - x0, y1 - y0]
            else:
                box = mask_box(pm[n])
            dets.append({"image_id": img_id, "category_id": int(p["labels"][n]), "score": float(p["scores"][n]),
                         "segmentation": rle(pm[n]), "bbox": box})
    cats = [{"id": k + 1, "name": c} for k, c in enumerate(classes)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def coco_eval(gts, preds, classes, task: str = "amodal", iou_type: str = "segm", min_visible_area: int = 16,
              occluded_below: float | None = None) -> dict:
    """Stock COCOeval on one task: {"stats": {AP...ARl}, "per_class": {name: AP}, "n_gt", "n_det"}."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ds, dets = _datasets(gts, preds, classes, task, min_visible_area, occluded_below)
    n_gt = sum(1 for a in ds["annotations"] if not a["iscrowd"])
    empty = {"stats": {k: 0.0 if n_gt else -1.0 for k in STAT_NAMES}, "per_class": {c: -1.0 for c in classes},
             "n_gt": n_gt, "n_det": len(dets)}
    if not dets or not n_gt:
        return empty
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = ds
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [IoU, recall, class, area, maxDets]
    per_class = {}
    for k, c in enumerate(classes):
        p = prec[:, :, k, 0, -1]
        per_class[c] = float(p[p > -1].mean()) if (p > -1).any() else -1.0
    return {"stats": {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}, "per_class": per_class,
            "n_gt": n_gt, "n_det": len(dets)}


def score_all(gts, preds, classes, min_visible_area: int = 16) -> dict:
    """Every table of ``gen eval amodal``: amodal and visible, segm and bbox, and amodal segm
    on the occluded-only subsets."""
    out = {}
    for task in ("amodal", "visible"):
        for iou in ("segm", "bbox"):
            out[f"{task}_{iou}"] = coco_eval(gts, preds, classes, task, iou, min_visible_area)
    for thr in OCCLUDED:
        out[f"amodal_segm_occluded_lt{thr}"] = coco_eval(gts, preds, classes, "amodal", "segm", min_visible_area, thr)
    return out
