"""``gen complete``: amodal masks for a photo's visible masks, from any segmenter.

Visible masks come as a COCO JSON (the annotations of the image whose ``file_name`` has the
photo's name, or all of them when the file holds one image; KINS-2020 files' ``inmodal_seg``
is the visible mask, else ``segmentation``: RLE, uncompressed RLE or polygons) or as an
instance-id PNG (0 = background, every other value one instance).  The output is COCO JSON in
the KINS-2020 layout -- ``segmentation`` the amodal RLE, ``inmodal_seg`` the visible RLE given --
plus an overlay PNG beside it (visible masks filled, amodal outlines drawn).  Every input is
checked before anything is written, and both files are written whole or not at all.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from scenes.atomic import write_rgb, write_text
from trainer.completion_crops import channels, crop_for, needs_depth, paste_back, raw_crop, visible_box
from trainer.completion_eval import InputError, load_model


def _decode(seg, h: int, w: int, where: str) -> np.ndarray:
    from pycocotools import mask as mu
    try:
        if isinstance(seg, list):  # polygons
            rles = mu.frPyObjects(seg, h, w)
            return mu.decode(mu.merge(rles)).astype(bool)
        if isinstance(seg, dict) and isinstance(seg.get("counts"), list):  # uncompressed RLE
            seg = mu.frPyObjects(seg, *seg["size"])
        elif isinstance(seg, dict):
            seg = {"size": seg["size"], "counts": seg["counts"].encode("ascii") if isinstance(seg["counts"], str)
                   else seg["counts"]}
        else:
            raise ValueError("not a polygon list or an RLE")
        m = mu.decode(seg).astype(bool)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{where}: unreadable segmentation ({str(exc).splitlines()[0][:100]})") from None
    return m


def read_visible(path: str, photo: str, shape) -> tuple[list[np.ndarray], list[dict]]:
    """(masks, their annotation dicts -- category, id) of the photo from a COCO JSON or an id PNG."""
    p = Path(path)
    h, w = shape
    if not p.is_file():
        raise InputError(f"no visible masks at {path}")
    if p.suffix.lower() == ".json":
        try:
            coco = json.loads(p.read_text())
            images, anns = coco["images"], coco["annotations"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a COCO JSON ({str(exc)[:80]})") from None
        cat_list = coco.get("categories", [])
        for key, rows in (("images", images), ("annotations", anns), ("categories", cat_list)):
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise InputError(f"{path} is not a COCO JSON ('{key}' must be a list of objects)")
        named = [im for im in images if Path(str(im.get("file_name", ""))).name == Path(photo).name]
        if len(named) != 1 and len(images) != 1:
            raise InputError(f"{path} has no image named {Path(photo).name} (and holds {len(images)} images)")
        image = named[0] if named else images[0]
        if (image.get("height"), image.get("width")) not in ((h, w), (None, None)):
            raise InputError(f"{path}: image {image.get('file_name')} is {image.get('width')}x{image.get('height')}, "
                             f"the photo is {w}x{h}")
        cats = {c.get("id"): c.get("name", str(c.get("id"))) for c in cat_list}
        masks, meta = [], []
        for a in (a for a in anns if a.get("image_id") == image.get("id")):
            seg = a.get("inmodal_seg", a.get("segmentation"))
            m = _decode(seg, h, w, f"{path} annotation {a.get('id')}")
            if m.shape != (h, w):
                raise InputError(f"{path} annotation {a.get('id')}: mask is {m.shape[1]}x{m.shape[0]}, the photo is {w}x{h}")
            masks.append(m)
            meta.append({"id": a.get("id"), "category_id": a.get("category_id"),
                         "category": cats.get(a.get("category_id"), "object")})
    else:
        ids = cv2.imread(str(p), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE)
        if ids is None:
            raise InputError(f"cannot read instance-id image {path}")
        if ids.shape != (h, w):
            raise InputError(f"{path} is {ids.shape[1]}x{ids.shape[0]}, the photo is {w}x{h}")
        values = [int(v) for v in np.unique(ids) if v]
        masks = [ids == v for v in values]
        meta = [{"id": v, "category_id": None, "category": "object"} for v in values]
    if not masks:
        raise InputError(f"{path} holds no visible masks for {Path(photo).name}")
    for m, a in zip(masks, meta):
        if not m.any():
            raise InputError(f"{path}: instance {a['id']} has an empty mask")
    return masks, meta


def complete(rgb: np.ndarray, depth: np.ndarray | None, masks, model, mc: dict) -> list[np.ndarray]:
    """Amodal masks (full image, bool) for visible masks on one photo."""
    from trainer.completion_model import predict
    if not masks:
        return []
    raws, crops = [], []
    for m in masks:
        c = crop_for(visible_box(m), mc["factor"], mc["min_side"])
        raws.append(raw_crop(rgb, depth, m, c, mc["size"]))
        crops.append(c)
    x = np.stack([channels(r, mc["inputs"]) for r in raws])
    import torch
    threads = torch.get_num_threads()
    # A photo's few crops are a small batch: more OpenMP threads mostly spin (3x slower on a busy machine).
    torch.set_num_threads(1)
    try:
        probs = predict(model, x, mc["inputs"].index("visible") if "visible" in mc["inputs"] else None)
    finally:
        torch.set_num_threads(threads)
    out = []
    for p, c, m in zip(probs, crops, masks):
        full = np.zeros(m.shape, bool)
        region, (x0, y0) = paste_back(p, c, m.shape)
        full[y0:y0 + region.shape[0], x0:x0 + region.shape[1]] = region
        out.append(full | m)
    return out


def overlay(rgb: np.ndarray, visible, amodal) -> np.ndarray:
    """Visible masks blended in, amodal outlines drawn; each mask handled within its box."""
    img = rgb.copy()
    colours = [tuple(int(v) for v in np.random.default_rng(k + 7).integers(60, 255, 3)) for k in range(len(visible))]
    for v, c in zip(visible, colours):
        x0, y0, x1, y1 = visible_box(v)
        win, m = img[y0:y1, x0:x1], v[y0:y1, x0:x1]
        win[m] = (0.55 * win[m] + 0.45 * np.array(c, np.float32)).astype(np.uint8)
    for a, c in zip(amodal, colours):
        x0, y0, x1, y1 = visible_box(a)
        cnts, _ = cv2.findContours(a[y0:y1, x0:x1].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE,
                                   offset=(x0, y0))
        cv2.drawContours(img, cnts, -1, c, 1)
    return img


def overlay_path(out) -> Path:
    """The overlay PNG ``gen complete`` writes beside its JSON ``out``."""
    return Path(out).with_suffix(".png")


def complete_files(photo: str, visible: str, ckpt: str, out: str, *, depth: str | None = None,
                   depth_kind: str = "depth") -> tuple[Path, Path]:
    """Complete one photo's visible masks: ``out`` (JSON) and the overlay PNG beside it.  The
    caller checks the output paths first (``gen complete``: pipelines.cli_checks.check_outputs)."""
    from trainer.amodal_coco import mask_box, rle
    from trainer.amodal_eval import read_rgb
    from trainer.infer import InputError as DepthError
    from trainer.infer import read_depth

    out_p, png = Path(out), overlay_path(out)
    if out_p.suffix.lower() != ".json":
        raise InputError(f"--out {out} must end in .json (the overlay goes beside it as .png)")
    model, mc = load_model(ckpt)
    rgb = read_rgb(photo)
    h, w = rgb.shape[:2]
    d = None
    if needs_depth(mc["inputs"]):
        if depth is None:
            raise InputError(f"{ckpt} was trained with depth inputs ({','.join(mc['inputs'])}); give --depth")
        try:
            d = read_depth(depth)
        except DepthError as exc:
            raise InputError(str(exc)) from None
        if d.shape != (h, w):
            raise InputError(f"depth {depth} is {d.shape[1]}x{d.shape[0]}, the photo is {w}x{h}")
        d = np.where(d > 0, 1.0 / np.maximum(d, 1e-12) if depth_kind == "inverse" else d, np.inf).astype(np.float32)
    masks, meta = read_visible(visible, photo, (h, w))
    amodal = complete(rgb, d, masks, model, mc)
    anns = []
    for n, (a, v, m) in enumerate(zip(amodal, masks, meta)):
        anns.append({"id": n + 1, "image_id": 1, "source_id": m["id"], "category_id": m["category_id"],
                     "category": m["category"], "segmentation": rle(a), "area": int(a.sum()), "bbox": mask_box(a),
                     "inmodal_seg": rle(v), "inmodal_bbox": mask_box(v), "occlude_rate": round(1 - v.sum() / a.sum(), 4),
                     "iscrowd": 0})
    doc = {"images": [{"id": 1, "file_name": Path(photo).name, "width": w, "height": h}], "annotations": anns,
           "info": {"checkpoint": str(ckpt), "inputs": mc["inputs"],
                    "masks": "amodal (segmentation), visible as given (inmodal_seg)"}}
    write_rgb(png, overlay(rgb, masks, amodal))
    try:
        write_text(out_p, json.dumps(doc))
    except BaseException:
        png.unlink(missing_ok=True)  # the two come as a pair
        raise
    return out_p, png
