"""``gen eval amodal`` (COCO AP/AR on scene stores) and ``gen segment`` (one photo + depth)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from scenes.atomic import write_rgb, write_text
from trainer import checkpoint
from trainer.amodal_coco import STAT_NAMES, mask_box, rle, score_all


class InputError(ValueError):
    """A user mistake in eval/segment inputs (one line, exit 2)."""


def load_model(path: str, device="cpu"):
    from trainer.amodal_model import build_amodal
    try:
        ck = checkpoint.load(path, kind="amodal", device=device)
    except checkpoint.CheckpointError as exc:
        raise InputError(str(exc)) from None
    model = build_amodal(**ck["model_config"])
    model.load_state_dict(ck["model"])
    return model.to(device).eval()


@torch.no_grad()
def predict(model, x: np.ndarray, threshold: float = 0.5) -> dict:
    """Detections of one (C, H, W) input, masks binarised at ``threshold``."""
    dev = next(model.parameters()).device
    r = model([torch.from_numpy(x).to(dev)])[0]
    return {"boxes": r["boxes"].cpu().numpy(), "labels": r["labels"].cpu().numpy(), "scores": r["scores"].cpu().numpy(),
            "visible": (r["masks"][:, 0] > threshold).cpu().numpy(),
            "amodal": (r["amodal_masks"][:, 0] > threshold).cpu().numpy()}


def _colour(k: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(k + 7)
    return tuple(int(v) for v in rng.integers(60, 255, 3))


def draw(rgb: np.ndarray, inst: dict, classes, min_score: float = 0.5) -> np.ndarray:
    """Visible masks filled, amodal outlines drawn, class names at the boxes (RGB in, RGB out)."""
    img = rgb.astype(np.float32).copy()
    scores = inst.get("scores", np.ones(len(inst["labels"])))
    lines = []
    for n in np.flatnonzero(scores >= min_score):
        c = np.array(_colour(int(n)), np.float32)
        v = inst["visible"][n]
        img[v] = 0.55 * img[v] + 0.45 * c
        lines.append((n, c))
    img = img.astype(np.uint8)
    for n, c in lines:
        cnts, _ = cv2.findContours(inst["amodal"][n].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, cnts, -1, tuple(int(v) for v in c), 1)
        x, y, _, _ = mask_box(inst["amodal"][n])
        label = classes[int(inst["labels"][n]) - 1]
        cv2.putText(img, label, (int(x), max(int(y) - 2, 8)), cv2.FONT_HERSHEY_PLAIN, 0.7, tuple(int(v) for v in c))
    return img


def evaluate(ckpt: str, scene_urls, out_dir: str, *, max_scenes: int = 200, degrade: float = 0.0,
             overlays: int = 4, min_visible_area: int = 16, seed: int = 0, progress: bool = True) -> dict:
    from tqdm import tqdm

    from trainer.amodal_data import (
        DataError,
        SampleConfig,
        class_labels,
        make_sample,
        open_stores,
    )

    model = load_model(ckpt)
    mc = model.cfg
    cfg = SampleConfig.from_model(mc, degrade=degrade, min_visible_area=min_visible_area, min_amodal_area=1)
    try:
        stores = open_stores(scene_urls)
        luts = [class_labels(st, mc["classes"]) for st in stores]
    except DataError as exc:
        raise InputError(str(exc)) from None
    jobs = [(s, int(i)) for s, st in enumerate(stores) for i in np.flatnonzero(st.done())][:max_scenes]
    if not jobs:
        raise InputError("no finished scenes in " + ", ".join(scene_urls))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gts, preds = [], []
    for n, (s, i) in enumerate(tqdm(jobs, desc="eval amodal", unit="scene", disable=not progress)):
        rng = np.random.default_rng([seed, s, i])
        x, t, raw = make_sample(stores[s], i, luts[s], cfg, rng, train=False)
        if degrade > 0:  # evaluate on estimated-looking depth: rebuild the inputs from degraded depth
            from trainer.amodal_inputs import build_inputs, degrade_depth
            x = build_inputs(raw["rgb"], degrade_depth(raw["depth"], rng, degrade), raw["normals"], cfg.inputs,
                             cfg.ds, cfg.dm, cfg.soft_floor, cfg.sobel, cfg.dz, cfg.depth_roi)
        g = {"labels": t["labels"], "amodal": t["amodal_masks"].astype(bool), "visible": t["masks"].astype(bool),
             "visible_fraction": t["visible_fraction"], "size": t["size"]}
        p = predict(model, x)
        gts.append(g)
        preds.append(p)
        if n < overlays:
            sheet = np.concatenate([draw(raw["rgb"], g, mc["classes"]), draw(raw["rgb"], p, mc["classes"])], 1)
            write_rgb(out / f"overlay_{n}.png", sheet)
    res = score_all(gts, preds, mc["classes"], min_visible_area)
    report = {"checkpoint": str(ckpt), "scenes": list(scene_urls), "n_scenes": len(jobs), "model_config": mc,
              "depth_degrade": degrade, "min_visible_area": min_visible_area, "results": res}
    write_text(out / "report.json", json.dumps(report, indent=2))
    write_text(out / "report.md", markdown(report))
    return report


def _pct(v: float) -> str:
    return "-" if v < 0 else f"{100 * v:.2f}"


def markdown(report: dict) -> str:
    res, mc = report["results"], report["model_config"]
    cols = STAT_NAMES[:9]
    lines = [f"# Amodal evaluation: {report['checkpoint']}", "",
             (f"{report['n_scenes']} scenes of {', '.join(report['scenes'])}; model {mc['size']}, inputs "
              f"{'+'.join(mc['inputs'])}{', occlusion edge' if mc['occlusion_edge'] else ''}"
              f"{', depth RoI pooling' if mc['depth_roi'] else ''}; depth degradation {report['depth_degrade']}."), "",
             "| task | GT | det | " + " | ".join(cols) + " |", "|---|---:|---:|" + "---:|" * len(cols)]
    for name, r in res.items():
        lines.append(f"| {name} | {r['n_gt']} | {r['n_det']} | " + " | ".join(_pct(r["stats"][c]) for c in cols) + " |")
    lines += ["", "Per-class AP (%, IoU 0.50:0.95):", "", "| task | " + " | ".join(mc["classes"]) + " |",
              "|---|" + "---:|" * len(mc["classes"])]
    for name in ("amodal_segm", "visible_segm", "amodal_bbox", "visible_bbox"):
        pc = res[name]["per_class"]
        lines.append(f"| {name} | " + " | ".join(_pct(pc[c]) for c in mc["classes"]) + " |")
    lines += ["", ("'-' = no ground truth of that kind (COCO's -1).  Stock pycocotools COCOeval; visible tasks count "
                   f"instances with >= {report['min_visible_area']} visible pixels; occluded-only rows treat the "
                   "other instances as iscrowd regions."), ""]
    return "\n".join(lines)


def read_rgb(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise InputError(f"no image at {path}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def segment_files(image: str, depth: str, ckpt: str, out: str, *, normals: str | None = None,
                  depth_kind: str = "depth", min_score: float = 0.5) -> tuple[Path, Path]:
    """Segment one photo with its depth map: ``out`` (JSON, COCO RLE masks) and an overlay PNG beside it."""
    from trainer.amodal_inputs import build_inputs
    from trainer.infer import InputError as DepthError
    from trainer.infer import read_depth

    rgb = read_rgb(image)
    try:
        d = read_depth(depth)
    except DepthError as exc:
        raise InputError(str(exc)) from None
    if d.shape != rgb.shape[:2]:
        raise InputError(f"depth {depth} is {d.shape[1]}x{d.shape[0]}, the image is {rgb.shape[1]}x{rgb.shape[0]}")
    d = np.where(d > 0, 1.0 / np.maximum(d, 1e-12) if depth_kind == "inverse" else d, np.inf).astype(np.float32)
    model = load_model(ckpt)
    mc = model.cfg
    n = None
    if "normals" in mc["inputs"]:
        if not normals:
            raise InputError(f"{ckpt} was trained with true normals as input; give --normals FILE.npy (H x W x 3)")
        n = np.load(normals)
        if n.shape != rgb.shape[:2] + (3,):
            raise InputError(f"normals {normals} have shape {n.shape}, expected {rgb.shape[:2] + (3,)}")
    x = build_inputs(rgb, d, n, mc["inputs"], mc["ds"], mc["dm"], mc["soft_floor"], mc["sobel"], mc["dz"],
                     depth_channel=mc["depth_roi"])
    p = predict(model, x)
    keep = np.flatnonzero(p["scores"] >= min_score)
    insts = [{"class": mc["classes"][int(p["labels"][k]) - 1], "score": round(float(p["scores"][k]), 4),
              "box": [round(float(v), 1) for v in p["boxes"][k]], "amodal": rle(p["amodal"][k]),
              "visible": rle(p["visible"][k]), "amodal_area": int(p["amodal"][k].sum()),
              "visible_area": int(p["visible"][k].sum())} for k in keep]
    out_p, png = Path(out), overlay_path(out)
    text = json.dumps({"image": str(image), "width": rgb.shape[1], "height": rgb.shape[0],
                       "checkpoint": str(ckpt), "instances": insts}, indent=1)
    write_rgb(png, draw(rgb, p, mc["classes"], min_score))
    try:
        write_text(out_p, text)
    except BaseException:
        png.unlink(missing_ok=True)  # the two come as a pair
        raise
    return out_p, png


def overlay_path(out) -> Path:
    """The overlay PNG ``gen segment`` writes beside its JSON ``out``."""
    return Path(out).with_suffix(".png")
