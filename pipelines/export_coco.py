"""``gen export kins`` and ``gen export coco``: a scene store as KINS / COCO instance JSON.

Ids (stable whatever the scene range, class filter or worker count):
  image id       = scene index; file_name = f"{scene:06d}.png" (or .jpg), the names
                   ``--images-dir`` writes
  annotation id  = scene * max_instances + slot + 1 (slot = the instance's index in the store)
  category id    = 1..K in the order of ``--classes`` (default: the store's instance classes,
                   in its class table's order), so a K-class detector trains on it as is; each
                   category carries ``rgsd_class``, the class's index in the store's table.
                   ``--table-ids``: 1 + that index instead (sparse, the same in every export).
  images         carry ``intrinsics`` (fx, fy, cx, cy in pixels, OpenCV pixel-centre convention)
                 and ``lens`` (the radial distortion model and k1..k3; {} for a pinhole), and with
                 ``--depth`` / ``--normals`` the names of those files beside the RGB (see
                 ``write_extras``).

KINS (both generations of its layout in every annotation):
  original keys  a_segm / i_segm (amodal / visible mask), a_bbox / i_bbox, a_area / i_area,
                 oco_id / ico_id (layer order from the occlusion graph, see ``kins_layers``)
  2020 update    segmentation / bbox / area = amodal, inmodal_seg / inmodal_bbox = visible
  and            occlude_rate = 1 - visible fraction, category_id, iscrowd = 0
Masks are COCO compressed RLE from ``pycocotools.mask.encode``.  ``--polygons`` writes
OpenCV contour polygons (see ``polygons``) for every mask key except ``inmodal_seg``, which KINS's 2020 files
keep as RLE and its readers decode with ``mask.decode``.  Boxes are [x, y, w, h]; a wholly
hidden instance has an empty visible mask, i_bbox [0, 0, 0, 0] and i_area 0.

COCO: plain instance JSON with the chosen masks (visible: wholly hidden instances are left
out; amodal: every instance).
"""
from __future__ import annotations

import json
import sys

import numpy as np

from pipelines.export_common import (
    AtomicText,
    ExportError,
    batches,
    categories,
    check_images_dir,
    check_output,
    open_scenes,
    run_ordered,
    select_scenes,
)

FILE_NAME = "{scene:06d}.{ext}"
READ = ["num_instances", "instance", "amodal", "instance_class", "modal_box", "amodal_box", "modal_area",
        "amodal_area", "visible_fraction", "occlusion"]


def closure(adj: np.ndarray) -> np.ndarray:
    """Reflexive-transitive closure of a boolean adjacency matrix (repeated squaring)."""
    r = adj | np.eye(len(adj), dtype=bool)
    for _ in range(max(1, int(np.ceil(np.log2(max(len(adj), 2)))))):
        r2 = (r.astype(np.int32) @ r.astype(np.int32)) > 0
        if (r2 == r).all():
            break
        r = r2
    return r


def kins_layers(occ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(oco_id, ico_id) per instance from ``occ[a, b]`` = a occludes b, as KINS defines them:
    instances are split into clusters connected by occlusion; oco_id numbers the clusters
    1.. (by their lowest slot) and ico_id is the layer inside one: 1 for an instance nothing
    occludes, +1 for each occluder above it (1 + the deepest occluder's layer).  Instances
    that overlap no other instance get 0 for both.  Mutual occluders (a cycle) share a layer."""
    k = len(occ)
    occ = occ.astype(bool) & ~np.eye(k, dtype=bool)
    und = closure(occ | occ.T)
    oco = np.zeros(k, np.int64)
    ico = np.zeros(k, np.int64)
    alone = ~(occ | occ.T).any(1)
    cluster = 0
    for a in range(k):
        if alone[a] or oco[a]:
            continue
        cluster += 1
        oco[und[a]] = cluster
    reach = closure(occ)
    same = reach & reach.T
    # a counts above b when it occludes some member of b's cycle and is not in that cycle.
    above = ((occ.astype(np.int32) @ same.astype(np.int32)) > 0) & ~same
    layer = np.ones(k, np.int64)
    for _ in range(k):
        new = 1 + np.where(above, layer[:, None], 0).max(0, initial=0)
        if (new == layer).all():
            break
        layer = new
    ico[~alone] = layer[~alone]
    return oco, ico


def rle(masks: np.ndarray) -> list[dict]:
    """COCO compressed RLE of (K, H, W) boolean masks, counts as text (JSON-ready)."""
    import cv2
    from pycocotools import mask as mask_util
    if len(masks) == 0:
        return []
    # encode() wants (H, W, K) in Fortran order, i.e. each mask transposed in C order:
    # cv2.transpose per mask is ~2x faster than np.asfortranarray on the stack.
    k, h, w = masks.shape
    buf = np.empty((k, w, h), np.uint8)
    for j in range(k):
        cv2.transpose(masks[j].view(np.uint8), buf[j])
    enc = mask_util.encode(buf.transpose(2, 1, 0))
    return [{"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")} for r in enc]


def polygons(mask: np.ndarray, up: int = 4) -> list[list[float]]:
    """Outer contours of a mask as COCO polygons [[x0, y0, x1, y1, ...], ...] in pixel-edge
    coordinates (pycocotools fills the pixels a polygon encloses).  Contours through pixel
    centres would shave half a pixel off every side, so they are traced on the mask
    upsampled ``up`` times and mapped back: a boundary error of 1 / (2 up) pixels."""
    import cv2
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return []
    y0, x0 = ys.min(), xs.min()
    crop = mask[y0:ys.max() + 1, x0:xs.max() + 1].astype(np.uint8)
    big = np.pad(np.kron(crop, np.ones((up, up), np.uint8)), 1)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        c = c.reshape(-1, 2).astype(np.float64)
        if len(c) < 3:
            continue
        pts = (c - 1 + 0.5) / up + (x0, y0)
        out.append([round(float(v), 3) for v in pts.ravel()])
    return out


def xywh(box) -> list[int]:
    x0, y0, x1, y1 = (int(v) for v in box)
    return [0, 0, 0, 0] if x0 < 0 else [x0, y0, x1 - x0, y1 - y0]


def scene_annotations(s: dict, scene: int, kmax: int, opts: dict) -> list[dict]:
    """The annotations of one scene (read with ``READ``) for opts["kind"] kins / coco."""
    k = int(s["num_instances"])
    cat_of = {int(c): i for c, i in opts["cat_of"]}
    cats = set(cat_of)
    slots = [j for j in range(k) if int(s["instance_class"][j]) in cats]
    if opts["kind"] == "coco" and opts["masks"] == "visible":
        slots = [j for j in slots if int(s["modal_area"][j]) > 0]
    if not slots:
        return []
    sel = np.array(slots)
    amodal = s["amodal"][sel]
    modal = s["instance"][None] == (sel + 1).astype(s["instance"].dtype)[:, None, None]
    poly = opts["polygons"]

    def seg(masks):
        return [polygons(m) for m in masks] if poly else rle(masks)

    if opts["kind"] == "coco":
        masks, boxes, areas = ((modal, s["modal_box"], s["modal_area"]) if opts["masks"] == "visible"
                               else (amodal, s["amodal_box"], s["amodal_area"]))
        segs = seg(masks)
        return [{"id": scene * kmax + j + 1, "image_id": scene, "category_id": cat_of[int(s["instance_class"][j])],
                 "segmentation": segs[n], "area": int(areas[j]), "bbox": xywh(boxes[j]), "iscrowd": 0}
                for n, j in enumerate(slots)]
    oco, ico = kins_layers(s["occlusion"][:k, :k])
    a_seg, i_seg = seg(amodal), seg(modal)
    i_rle = rle(modal) if poly else i_seg
    out = []
    for n, j in enumerate(slots):
        a_box, i_box = xywh(s["amodal_box"][j]), xywh(s["modal_box"][j])
        a_area, i_area = int(s["amodal_area"][j]), int(s["modal_area"][j])
        out.append({
            "id": scene * kmax + j + 1, "image_id": scene, "category_id": cat_of[int(s["instance_class"][j])],
            "iscrowd": 0,
            "segmentation": a_seg[n], "bbox": a_box, "area": a_area,
            "inmodal_seg": i_rle[n], "inmodal_bbox": i_box,
            "a_segm": a_seg[n], "a_bbox": a_box, "a_area": a_area,
            "i_segm": i_seg[n], "i_bbox": i_box, "i_area": i_area,
            "oco_id": int(oco[j]), "ico_id": int(ico[j]),
            "occlude_rate": round(float(1.0 - s["visible_fraction"][j]), 6),
        })
    return out


def export_task(job: tuple) -> list[tuple[str, int, str]]:
    """Runs in a worker: per scene of the batch, the JSON text of its annotations (comma-joined),
    how many, and its image entry; the scene's image files when asked for."""
    url, scenes, opts = job
    st = open_scenes(url)
    kmax = st.max_instances
    extra = [n for n in ("depth", "normals") if opts.get(n)]
    out = []
    for i in scenes:
        s = st.read_scene(i, READ + (["rgb"] + extra if opts["images_dir"] else []))
        image = image_entry(st, i, opts)
        if opts["images_dir"]:
            _write_image(s["rgb"], opts["images_dir"], i, opts["image_format"])
            image.update(write_extras(s, opts["images_dir"], i, opts))
        anns = scene_annotations(s, i, kmax, opts)
        out.append((",".join(json.dumps(a, separators=(",", ":")) for a in anns), len(anns),
                    json.dumps(image, separators=(",", ":"))))
    return out


def image_entry(st, i: int, opts: dict) -> dict:
    k = st.intrinsics(i)
    return {"id": i, "file_name": FILE_NAME.format(scene=i, ext=opts["image_format"]),
            "width": opts["width"], "height": opts["height"],
            "intrinsics": {key: k[key] for key in ("fx", "fy", "cx", "cy")}, "lens": k["lens"]}


def write_extras(s: dict, folder: str, i: int, opts: dict) -> dict:
    """Depth and normals beside the RGB; returns the image entry's keys naming them.

    depth png: uint16 millimetres of planar depth, 0 = no surface (sky) or farther than 65.535 m;
    depth exr: float32 metres in channel Z, +inf = no surface;
    normals png: uint16 RGB = round((n + 1) / 2 * 65535) of the unit camera-space normal
    (OpenCV axes), 0 in every channel = no surface; normals exr: float32 channel RGB = n."""
    import os
    out = {}
    for name in ("depth", "normals"):
        fmt = opts.get(name)
        if not fmt:
            continue
        file = f"{i:06d}.{name}.{fmt}"
        path = os.path.join(folder, file)
        a = np.asarray(s[name], np.float32)
        if fmt == "exr":
            _write_exr(path, {"Z" if name == "depth" else "RGB": a})
        elif name == "depth":
            mm = np.where(np.isfinite(a) & (a * 1000 < 65535.5), np.rint(a * 1000), 0)
            _write_png(path, mm.astype(np.uint16))
        else:
            none = ~np.any(a != 0, axis=-1, keepdims=True)
            enc = np.where(none, 0, np.rint((np.clip(a, -1, 1) + 1) / 2 * 65535)).astype(np.uint16)
            _write_png(path, np.ascontiguousarray(enc[..., ::-1]))  # OpenCV writes BGR
        out[f"{name}_file"] = file
    return out


def _write_png(path: str, a: np.ndarray) -> None:
    import cv2

    from scenes.atomic import write_image
    write_image(path, a, [cv2.IMWRITE_PNG_COMPRESSION, 1])


def _write_exr(path: str, channels: dict) -> None:
    import OpenEXR

    from scenes.atomic import replacing
    with replacing(path) as tmp:
        with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels) as f:
            f.write(str(tmp))


def _write_image(rgb: np.ndarray, folder: str, i: int, ext: str) -> None:
    import os

    import cv2

    from scenes.atomic import write_image
    path = os.path.join(folder, FILE_NAME.format(scene=i, ext=ext))
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    write_image(path, rgb[..., ::-1], params)


def export(url: str, out: str, *, kind: str, masks: str = "amodal", classes: str | None = None,
           scenes: str | None = None, images_dir: str | None = None, image_format: str = "png",
           polygons: bool = False, workers: int | None = None, scheduler: str | None = None,
           overwrite: bool = False, batch: int = 4, table_ids: bool = False, depth: str | None = None,
           normals: str | None = None) -> dict:
    """Write the KINS or COCO JSON of a store's finished scenes; returns counts."""
    import os

    st = open_scenes(url)
    check_output(out, overwrite)
    check_images_dir(images_dir, overwrite)
    if (depth or normals) and not images_dir:
        raise ExportError("--depth and --normals write files beside the RGB: give --images-dir too")
    if "exr" in (depth, normals):
        try:
            import OpenEXR  # noqa: F401
        except ImportError:
            raise ExportError("EXR output needs the OpenEXR package (pip install OpenEXR, or the render extra)") from None
    cats = categories(st, classes)
    if not table_ids:
        cats = contiguous(cats, classes)
    todo, skipped = select_scenes(st, scenes)
    res = st.attrs["resolution"]
    opts = {"kind": kind, "masks": masks, "polygons": polygons,
            "cat_of": [(c.get("rgsd_class", c["id"] - 1), c["id"]) for c in cats],
            "images_dir": os.path.abspath(images_dir) if images_dir else None, "image_format": image_format,
            "depth": depth, "normals": normals, "width": res["width"], "height": res["height"]}
    if images_dir:
        os.makedirs(images_dir, exist_ok=True)
    info = {"description": f"rgsd {kind} export of {url}", "store": url, "seed": st.attrs.get("seed"),
            "masks": "amodal (segmentation), visible (inmodal_seg)" if kind == "kins" else masks,
            "mask_format": "polygon" if polygons else "rle",
            "file_name": FILE_NAME.replace("{ext}", image_format),
            "ids": "image id = scene index; annotation id = scene * max_instances + slot + 1; category id = "
                   + ("1 + class index in the store's class table" if table_ids
                      else "1..K in the order of --classes (rgsd_class: the index in the store's class table)"),
            "intrinsics": "per image: fx, fy, cx, cy in pixels, pixel (row i, col j) centred at (j + 0.5, i + 0.5); "
                          "lens: radial distortion (OpenCV k1, k2, k3 on the normalised radius), {} for a pinhole",
            "max_instances": st.max_instances}
    counts = {"images": len(todo), "annotations": 0, "skipped": skipped}
    with AtomicText(out) as f:
        head = {"info": info, "licenses": [], "categories": cats}
        f.write(json.dumps(head, separators=(",", ":"))[:-1])
        # Images after the annotations: each image's entry (its intrinsics) comes from its task.
        f.write(',"annotations":[')
        first = [True]
        images = []

        def write(job, texts):
            for t, n, image in texts:
                images.append(image)
                if not n:
                    continue
                f.write(t if first[0] else "," + t)
                first[0] = False
                counts["annotations"] += n

        jobs = [(url, b, opts) for b in batches(todo, batch)]
        run_ordered(export_task, jobs, workers=workers, scheduler=scheduler, on_result=write, desc=f"export-{kind}",
                    unit_count=lambda j: len(j[1]))
        f.write('],"images":[' + ",".join(images) + "]}")
    print(f"{out}: {counts['images']} images, {counts['annotations']} annotations"
          + (f" ({skipped} unfinished scenes skipped)" if skipped else ""), file=sys.stderr)
    return counts


def contiguous(cats: list[dict], classes: str | None) -> list[dict]:
    """Categories renumbered 1..K in the order ``--classes`` names them (else the table's
    order), each keeping its index in the store's class table as ``rgsd_class``."""
    by_name = {c["name"]: c for c in cats}
    order = [n.strip() for n in classes.split(",") if n.strip()] if classes else [c["name"] for c in cats]
    order = list(dict.fromkeys(order))
    return [{"id": k + 1, "name": n, "supercategory": "thing", "rgsd_class": by_name[n]["id"] - 1}
            for k, n in enumerate(order)]


def check_masks(kind: str, masks: str | None) -> str:
    if kind == "kins" and masks not in (None, "amodal"):
        raise ExportError("--masks applies to gen export coco (KINS holds both masks)")
    return masks or "amodal"
