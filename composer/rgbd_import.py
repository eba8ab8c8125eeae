"""``gen import rgbd``: folders of RGB + depth (+ instance masks) into a scene store.

Pure numpy/PIL, no bpy or torch, so users without Blender can make shards from their own
RGB-D data.  Layout of the source folder (files pair by stem NAME)::

    DIR/rgb/NAME.png|jpg|jpeg
    DIR/depth/NAME.png|tif|tiff|npy|pfm   integer data / depth_scale, float data in metres
    DIR/instance/NAME.png                  optional; ids (0 = background) or colours

Real data lacks most of what the renderer knows, so the store says so in its ``imported``
attribute: amodal masks equal the visible ones, every instance is class "unlabeled", normals
are 0, box3d is NaN, occlusion is all False and the intrinsics are a guess.
"""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from scenes import safety
from scenes import store as scene_store
from scenes.annotations import boxes, depth_order, pad_instances
from scenes.classes import CLASS_IDS

MAX_INSTANCES = 64
RGB_EXTS = (".png", ".jpg", ".jpeg")
DEPTH_EXTS = (".png", ".tif", ".tiff", ".npy", ".pfm")
UNSUPPORTED_DEPTH = (".exr",)  # named in an error rather than silently ignored
INSTANCE_EXTS = (".png",)
ASSUMED_HFOV_DEG = 60.0  # no calibration comes with the images; a typical phone/webcam field of view

NOTES = [
    "amodal masks equal the visible (modal) masks: hidden parts of real objects are unknown",
    "every instance has class 'unlabeled'; semantic is 'unlabeled' on surfaces and 'sky' where depth is +inf",
    "depth 0 (or --sky-value) is stored as +inf / sky, so sensor holes count as sky",
    "normals are 0 (unknown), box3d is NaN, occlusion is all False, visible_fraction is 1",
    "distance is the median depth of each instance's pixels; depth_order compares those medians",
    f"intrinsics are approximate (assumed {ASSUMED_HFOV_DEG:g} degree horizontal field of view)",
]


class RGBDImportError(ValueError):
    """A source folder that cannot be imported as asked; the message is one line."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _natural_key(name: str):
    # frame_2 before frame_10, as users number their frames
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _index(folder: Path, exts: tuple[str, ...], what: str) -> dict[str, Path]:
    """stem -> file among ``exts``; two files with one stem are ambiguous, so refused."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in exts:
            continue
        if p.stem in out:
            raise RGBDImportError(f"{out[p.stem]} and {p} are both {what} for '{p.stem}'; keep one")
        out[p.stem] = p
    return out


def pair_files(src: Path) -> list[tuple[str, Path, Path, Path | None]]:
    """(NAME, rgb, depth, instance or None) per rgb image, in natural name order."""
    if not src.is_dir():
        raise RGBDImportError(f"{src} is not a folder")
    for sub in ("rgb", "depth"):
        if not (src / sub).is_dir():
            raise RGBDImportError(f"{src} has no {sub}/ folder (expected {src}/rgb/NAME.png and "
                                  f"{src}/depth/NAME.png)")
    rgb = _index(src / "rgb", RGB_EXTS, "RGB images")
    if not rgb:
        raise RGBDImportError(f"{src / 'rgb'} holds no .png/.jpg/.jpeg images")
    depth = _index(src / "depth", DEPTH_EXTS + UNSUPPORTED_DEPTH, "depth maps")
    inst_dir = src / "instance"
    inst = _index(inst_dir, INSTANCE_EXTS, "instance masks") if inst_dir.is_dir() else {}
    out = []
    for name in sorted(rgb, key=_natural_key):
        d = depth.get(name)
        if d is None:
            raise RGBDImportError(f"{rgb[name]} has no depth map (expected {src / 'depth' / name}.png, "
                                  f".npy, .pfm or .tif)")
        if d.suffix.lower() in UNSUPPORTED_DEPTH:
            raise RGBDImportError(f"{d}: {d.suffix} depth is not supported; save it as float .npy, .pfm "
                                  f"or 16-bit .png")
        out.append((name, rgb[name], d, inst.get(name)))
    return out


# --- readers -------------------------------------------------------------------------

def _pfm_header(f) -> tuple[int, int, int, str]:
    """Width, height, channels and byte order from a PFM header (image_size reads no more)."""
    kind = f.readline().strip()
    if kind not in (b"PF", b"Pf"):
        raise ValueError("not a PFM file")
    dims = f.readline().split()
    w, h = int(dims[0]), int(dims[1])
    scale = float(f.readline().strip())
    # A negative scale marks little-endian data (the PFM convention).
    return w, h, 3 if kind == b"PF" else 1, "<f4" if scale < 0 else ">f4"


def _read_pfm(path: Path) -> np.ndarray:
    """OpenCV's PFM reader (rows bottom to top and either byte order handled), colour as RGB.
    (For a header scale other than +-1 OpenCV divides the values by it.)"""
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("not a readable PFM file")
    return np.ascontiguousarray(img[..., ::-1]) if img.ndim == 3 else img


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only, so a first pass over many files stays cheap."""
    try:
        suffix = path.suffix.lower()
        if suffix == ".npy":
            a = np.load(path, mmap_mode="r", allow_pickle=False)
            return int(a.shape[1]), int(a.shape[0])
        if suffix == ".pfm":
            with open(path, "rb") as f:
                w, h, _, _ = _pfm_header(f)
            return w, h
        from PIL import Image
        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # noqa: BLE001 - any failure means the file cannot be used
        raise RGBDImportError(f"cannot read {path}: {_first_line(exc)}") from None


def _load(path: Path, mode: str | None = None) -> np.ndarray:
    try:
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".pfm":
            return _read_pfm(path)
        from PIL import Image
        with Image.open(path) as im:
            if mode:
                im = im.convert(mode)
            # 'P' keeps palette indices (instance ids), 'I;16' keeps 16-bit values.
            return np.array(im)
    except Exception as exc:  # noqa: BLE001
        raise RGBDImportError(f"cannot read {path}: {_first_line(exc)}") from None


def read_depth(path: Path, *, depth_scale: float, depth_kind: str, sky_value: float | None) -> np.ndarray:
    """Depth in metres (float32), +inf where there is no surface."""
    raw = _load(path)
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    if raw.ndim != 2 or raw.dtype.kind not in "uif":
        raise RGBDImportError(f"{path}: depth must be one channel of numbers, got shape {raw.shape} "
                              f"dtype {raw.dtype}")
    integer = raw.dtype.kind in "ui"
    raw = raw.astype(np.float64)
    if np.isnan(raw).any():
        raise RGBDImportError(f"{path}: depth has NaN values (use 0 for 'no surface')")
    sky = raw == 0
    if sky_value is not None:
        sky |= raw == sky_value
    if (raw[~sky] < 0).any():
        raise RGBDImportError(f"{path}: depth has negative values (min {raw[~sky].min():g})")
    # Integer files hold depth * scale (millimetres by default); float files hold metres.
    value = raw / depth_scale if integer else raw
    if depth_kind == "inverse":
        if np.isinf(value[~sky]).any():
            raise RGBDImportError(f"{path}: inverse depth has infinite values (depth 0)")
        with np.errstate(divide="ignore"):
            depth = np.where(sky, np.inf, 1.0 / np.where(sky, 1.0, value))
    else:
        depth = np.where(sky, np.inf, value)  # float +inf already means no surface
    return depth.astype(np.float32)


def read_instances(path: Path, max_instances: int) -> tuple[np.ndarray, int]:
    """(instance map uint16 with ids 1..K, ids dropped).  Ids are renumbered in ascending order
    of the original id (a colour-coded mask counts 0xRRGGBB as the id); beyond ``max_instances``
    the smallest instances are dropped, as the store holds a fixed number of slots."""
    a = _load(path)
    if a.ndim == 3:
        if a.shape[2] == 4:
            a = np.where(a[..., 3:4] > 0, a[..., :3], 0)  # transparent pixels are background
        rgb = a[..., :3].astype(np.int64)
        a = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    if a.ndim != 2 or a.dtype.kind not in "uib":
        raise RGBDImportError(f"{path}: instance masks must hold integer ids, got shape {a.shape} dtype {a.dtype}")
    a = a.astype(np.int64)
    ids, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(a.shape)
    fg = ids != 0
    keep = np.zeros(len(ids), bool)
    order = np.flatnonzero(fg)
    # Largest first; a stable sort keeps the lower id among equal areas.
    order = order[np.argsort(-counts[order], kind="stable")][:max_instances]
    keep[order] = True
    remap = np.zeros(len(ids), np.uint16)
    remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint16)  # ids ascend with the original id
    return remap[inverse], int(fg.sum() - keep.sum())


# --- annotations -----------------------------------------------------------------------

def scene_arrays(rgb: np.ndarray, depth: np.ndarray, instance: np.ndarray, kmax: int) -> dict:
    """Every stored annotation (store.ANNOTATIONS) of one imported image."""
    h, w = depth.shape
    k = int(instance.max()) if instance.size else 0
    modal = instance[None] == np.arange(1, k + 1, dtype=np.uint16)[:, None, None]
    area = modal.reshape(k, h * w).sum(1).astype(np.int32)
    dist = np.full(k, np.nan, np.float32)
    for j in range(k):
        z = depth[modal[j] & np.isfinite(depth)]
        if z.size:
            dist[j] = np.median(z)
    order = np.zeros((kmax, kmax), np.int8)
    order[:k, :k] = depth_order(dist)  # NaN (instance only on sky) compares as 'equal'
    semantic = np.full((h, w), CLASS_IDS["unlabeled"], np.uint8)
    semantic[~np.isfinite(depth)] = CLASS_IDS["sky"]
    box = boxes(modal)
    return {
        "rgb": rgb, "depth": depth, "instance": instance, "semantic": semantic,
        "normals": np.zeros((h, w, 3), np.float16),
        "amodal": pad_instances(modal, kmax, False),
        "num_instances": np.uint16(k),
        "instance_class": np.full(kmax, CLASS_IDS["unlabeled"], np.uint8),
        "instance_object": np.full(kmax, -1, np.int32),
        "modal_box": pad_instances(box, kmax, -1), "amodal_box": pad_instances(box, kmax, -1),
        "modal_area": pad_instances(area, kmax, 0), "amodal_area": pad_instances(area, kmax, 0),
        "visible_fraction": pad_instances(np.ones(k, np.float32), kmax, 0.0),
        "distance": pad_instances(dist, kmax, np.nan),
        "box3d": np.full((kmax, 7), np.nan, np.float32),
        "occlusion": np.zeros((kmax, kmax), bool),
        "depth_order": order,
    }


def approximate_intrinsics(w: int, h: int) -> dict:
    fx = w / 2.0 / math.tan(math.radians(ASSUMED_HFOV_DEG) / 2.0)
    return {"fx": fx, "fy": fx, "cx": w / 2.0, "cy": h / 2.0, "width": w, "height": h, "approximate": True}


# --- driver ----------------------------------------------------------------------------

def _check_sizes(pairs, want: tuple[int, int], first: Path) -> None:
    for _, *paths in pairs:
        for p in paths:
            if p is None:
                continue
            got = image_size(p)
            if got != want:
                raise RGBDImportError(f"{p} is {got[0]}x{got[1]} but {first} is {want[0]}x{want[1]}; "
                                      f"all images must have one resolution")


def import_rgbd(src_dir, out_url: str, *, overwrite: bool = False, depth_scale: float = 1000.0,
                depth_kind: str = "depth", sky_value: float | None = None) -> int:
    """Write one scene per RGB image of ``src_dir`` to a new scene store; returns the count."""
    from tqdm import tqdm

    if depth_kind not in ("depth", "inverse"):
        raise RGBDImportError(f"depth_kind must be 'depth' or 'inverse', not {depth_kind!r}")
    if not depth_scale > 0 or not math.isfinite(depth_scale):
        raise RGBDImportError(f"depth scale must be a positive number, not {depth_scale}")
    src = Path(src_dir)
    pairs = pair_files(src)
    # Checked before the first pass so a mistyped --out costs no reading.
    safety.check_replaceable(out_url, overwrite, hint="")
    # Headers only: a resolution mismatch is found before anything is written.
    w, h = image_size(pairs[0][1])
    _check_sizes(pairs, (w, h), pairs[0][1])
    kmax = MAX_INSTANCES
    cfg = {
        "imported_from": str(src.resolve()), "depth_scale": float(depth_scale), "depth_kind": depth_kind,
        "sky_value": sky_value, "render": {"width": w, "height": h}, "scene": {"max_instances": kmax},
    }
    has_inst = sum(p[3] is not None for p in pairs)
    extra = {"imported": {"kind": "rgbd", "source": str(src.resolve()), "scenes": len(pairs),
                          "with_instance_masks": has_inst, "notes": NOTES}}
    st = scene_store.create(out_url, len(pairs), cfg, 0, approximate_intrinsics(w, h),
                            overwrite=overwrite, extra_attrs=extra, hint="")
    dropped = 0
    meta = scene_store.MetaBuffer(st)  # the small per-scene data goes in batches of chunks
    try:
        with tqdm(total=len(pairs), unit="scene", desc="import", file=sys.stderr, delay=1.0,
                  dynamic_ncols=True) as bar:
            for i, (name, rgb_p, depth_p, inst_p) in enumerate(pairs):
                rgb = _load(rgb_p, "RGB")
                depth = read_depth(depth_p, depth_scale=depth_scale, depth_kind=depth_kind, sky_value=sky_value)
                if inst_p is not None:
                    instance, d = read_instances(inst_p, kmax)
                    dropped += d
                else:
                    instance = np.zeros((h, w), np.uint16)
                for p, a in ((rgb_p, rgb), (depth_p, depth), (inst_p, instance)):
                    if a.shape[:2] != (h, w):  # headers agreed; this guards against a lying header
                        raise RGBDImportError(f"{p} is {a.shape[1]}x{a.shape[0]} but the images are {w}x{h}")
                spec = {"scenario": "imported", "imported": name, "rgb": rgb_p.name, "depth": depth_p.name,
                        "instance": inst_p.name if inst_p else None}
                arrays = scene_arrays(rgb, depth, instance, kmax)
                st.write_pixels(i, arrays)
                meta.add(i, scene_store.tables_of(arrays), json.dumps(spec))
                bar.update(1)
        meta.flush()
    except BaseException:
        # A half-written import is of no use and would block a rerun without --overwrite.
        scene_store.remove(out_url)
        raise
    if dropped:
        st.group.attrs["imported"] = {**extra["imported"], "instances_dropped": dropped}
        print(f"warning: dropped {dropped} smallest instances beyond {kmax} per image", file=sys.stderr)
    return len(pairs)
