"""The scene store: the one module that reads and writes rendered scenes on disk.

A Zarr v3 group.  Every per-scene array has the scene as its first dimension and one
chunk (or shard) per scene, so a worker writing scene ``i`` touches no chunk another
scene uses; ``done[i]`` is written last.  Only the driver creates arrays or changes
metadata.  Coordinates: camera space is OpenCV's (x right, y down, z forward); pixel
(row i, col j) is a point sample at image position (u, v) = (j + 0.5, i + 0.5).
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scenes import safety

FORMAT_VERSION = 1
KIND = "rgsd.scenes"

# name -> (dimension names after "scene", dtype, fill value)
PER_SCENE = {
    "rgb": (("y", "x", "channel"), "uint8", 0),
    "depth": (("y", "x"), "float32", float("inf")),
    "instance": (("y", "x"), "uint16", 0),
    "semantic": (("y", "x"), "uint8", 0),
    "normals": (("y", "x", "channel"), "float16", 0.0),
    "amodal": (("instance", "y", "x"), "bool", False),
    "num_instances": ((), "uint16", 0),
    "instance_class": (("instance",), "uint8", 0),
    "instance_object": (("instance",), "int32", -1),
    "modal_box": (("instance", "box"), "int32", -1),
    "amodal_box": (("instance", "box"), "int32", -1),
    "modal_area": (("instance",), "int32", 0),
    "amodal_area": (("instance",), "int32", 0),
    "visible_fraction": (("instance",), "float32", 0.0),
    "distance": (("instance",), "float32", float("nan")),
    "box3d": (("instance", "box3d"), "float32", float("nan")),
    "occlusion": (("instance", "other"), "bool", False),
    "depth_order": (("instance", "other"), "int8", 0),
    "spec": ((), "str", ""),
    "done": ((), "bool", False),
}
ANNOTATIONS = [k for k in PER_SCENE if k not in ("spec", "done")]
PIXEL_ARRAYS = ["rgb", "depth", "instance", "semantic", "normals", "amodal"]


StoreError = safety.StoreError  # defined there so that the guards need not import this module


class ChunkError(StoreError):
    """A chunk of a finished scene or shard is missing or fails its checksum."""


@dataclass
class SceneStore:
    group: object  # zarr.Group
    url: str

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs)

    @property
    def n(self) -> int:
        return int(self.group["done"].shape[0])

    @property
    def max_instances(self) -> int:
        return int(self.group["amodal"].shape[1])

    def done(self) -> np.ndarray:
        try:
            return self.group["done"][:]
        except Exception as exc:  # noqa: BLE001 - a damaged chunk of the flags themselves
            raise ChunkError(f"{self.url}: array 'done' is damaged ({safety.describe(exc)})") from None

    def is_done(self, i: int) -> bool:
        """One scene's flag: a single chunk read, where done() reads one chunk per scene."""
        return bool(self.group["done"][i])

    def write_scene(self, i: int, arrays: dict, spec_json: str) -> None:
        """Write every array of scene ``i``, then mark it done (a crash leaves done[i] False)."""
        g = self.group
        for name in ANNOTATIONS:
            # Fill-valued chunks are written too, so a missing chunk always means damage.
            g[name].with_config({"write_empty_chunks": True})[i] = arrays[name]
        _write_str(g["spec"], i, spec_json)
        g["done"][i] = True

    def column(self, name: str) -> np.ndarray:
        """One array for every scene (small per-scene tables: counts, classes)."""
        try:
            return self.group[name][:]
        except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
            raise ChunkError(f"{self.url}: array '{name}' is damaged ({safety.describe(exc)}); "
                             f"see gen verify {self.url}") from None

    def spec(self, i: int) -> str:
        return str(self._read("spec", i))

    def _read(self, name: str, i: int):
        try:
            return self.group[name][i]
        except IndexError:
            raise
        except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
            raise ChunkError(f"{self.url}: array '{name}' of scene {i} is damaged ({safety.describe(exc)}); "
                             f"see gen verify {self.url}") from None

    def table(self, name: str, start: int, stop: int) -> np.ndarray:
        """Scenes ``start..stop-1`` of one table (``num_instances``, a per-instance array such
        as ``modal_area`` or ``occlusion``, or ``done``) as one array, scene first: a bulk read
        for readers that stream a whole store (``gen stats``).  Rows of scenes not done hold
        fill values or stale data; mask them with ``done()``.  Per-pixel arrays are refused
        (read them scene by scene with :meth:`read_scene`)."""
        if name not in PER_SCENE or name in PIXEL_ARRAYS or name == "spec":
            raise StoreError(f"table() reads num_instances, done and the per-instance tables, not '{name}'")
        try:
            return self.group[name][start:stop]
        except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
            raise ChunkError(f"{self.url}: array '{name}' of scenes {start}..{stop - 1} is damaged "
                             f"({safety.describe(exc)}); see gen verify {self.url}") from None

    def read_scene(self, i: int, names=None) -> dict:
        """Arrays of scene ``i``; a ChunkError (one line naming the array and scene) for a
        chunk that fails its checksum, or is missing although the scene is done."""
        names = list(names or ANNOTATIONS)
        out = {n: self._read(n, i) for n in names}
        if safety.checked(self.group):
            gone = safety.missing_chunks(self.group, names, i)
            if gone and self.is_done(i):
                raise ChunkError(f"{self.url}: array '{gone[0]}' of scene {i} has no stored chunk although "
                                 f"the scene is done; see gen verify {self.url}")
        if "amodal" in out:
            k = int(self.group["num_instances"][i])
            out["amodal"] = out["amodal"][:k]
        return out

    def bytes_stored(self) -> int:
        return bytes_stored(self.url)


def bytes_stored(url: str) -> int:
    """Total bytes of a local store (0 for object stores, where listing costs requests)."""
    p = Path(url)
    if not p.exists():
        return 0
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _write_str(array, i: int, text: str) -> None:
    # zarr 3.1 only accepts variable-length strings as an object array, not a scalar.
    array.with_config({"write_empty_chunks": True})[i:i + 1] = np.array([text], dtype=object)


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def exists(url: str) -> bool:
    """Anything at ``url`` (a file, a folder, any object under the prefix)."""
    return safety.contents(url) is not None


def remove(url: str) -> None:
    """Delete a store rgsd made (a local folder is emptied, then removed unless it is the
    working directory or holds it)."""
    safety.clear(url)
    if _is_local(url):
        p = Path(url.removeprefix("file://"))
        if p.is_dir() and not Path.cwd().resolve().is_relative_to(p.resolve()):
            p.rmdir()


def create(url: str, n: int, cfg: dict, seed: int, intrinsics: dict, overwrite: bool = False,
           extra_attrs: dict | None = None, hint: str = " or --resume to continue it") -> SceneStore:
    """Create an empty store for ``n`` scenes (driver only)."""
    import zarr

    from scenes.classes import CLASSES

    safety.prepare_output(url, overwrite, hint)
    h, w = cfg["render"]["height"], cfg["render"]["width"]
    kmax = cfg["scene"]["max_instances"]
    sizes = {"y": h, "x": w, "channel": 3, "instance": kmax, "other": kmax, "box": 4, "box3d": 7}
    g = new_group(url, KIND)
    checksummed = safety.codecs(zarr.codecs.ZstdCodec(level=0, checksum=False))
    for name, (dims, dtype, fill) in PER_SCENE.items():
        shape = (n,) + tuple(sizes[d] for d in dims)
        kwargs = {}
        if name == "amodal":
            # One inner chunk per instance inside one shard per scene: empty instance slots
            # cost nothing and a reader can fetch one instance's mask alone.
            kwargs = {"chunks": (1, 1, h, w), "shards": (1, kmax, h, w)}
        else:
            kwargs = {"chunks": (1,) + shape[1:]}
        g.create_array(name, shape=shape, dtype=str if dtype == "str" else dtype, fill_value=fill,
                       dimension_names=("scene",) + dims, compressors=checksummed, **kwargs)
    g.attrs.update({
        "kind": KIND, "format_version": FORMAT_VERSION,
        "resolution": {"width": w, "height": h}, "intrinsics": intrinsics,
        "classes": list(CLASSES), "config": cfg, "seed": int(seed), "n_scenes": int(n),
        "integrity": safety.INTEGRITY,
        "software": software_versions(),
        "conventions": {
            "camera": "OpenCV: x right, y down, z forward; metres",
            "pixel": "row i, col j sampled at the pixel centre (u, v) = (j + 0.5, i + 0.5)",
            "depth": "planar depth along the camera z axis in metres; +inf where no surface",
            "normals": "unit geometric normals in camera coordinates, facing the camera; 0 where no surface",
            "instance": "0 = none; k in 1..num_instances indexes slot k-1 of the per-instance arrays",
            "box": "[x0, y0, x1, y1] pixel indices, inclusive-exclusive; -1 if empty",
            "box3d": "[cx, cy, cz, length, width, height, yaw] in camera coordinates; yaw about camera -y",
            "occlusion": "occlusion[a, b] = a occludes b (a visible where b's amodal mask is)",
            "depth_order": "depth_order[a, b]: -1 a closer than b, 0 equal, +1 a farther",
        },
        **(extra_attrs or {}),
    })
    return SceneStore(g, url)


def new_group(url: str, kind: str):
    """A new empty Zarr v3 group (mode w-: never clears what is there), its kind recorded
    first so that an interrupted creation is still replaceable; or a one-line StoreError."""
    import zarr
    try:
        return zarr.open_group(url, mode="w-", zarr_format=3, attributes={"kind": kind})
    except Exception as exc:  # noqa: BLE001 - permissions, full disks, unreachable object stores
        raise StoreError(f"cannot create a store at {url}: {safety.first_line(exc)}") from None


def open_group_of_kind(url: str, kind: str, version: int, required, label: str, mode: str = "r"):
    """The Zarr group at ``url`` if it is a complete store of ``kind`` and ``version``;
    otherwise a StoreError whose one line says what is wrong."""
    import zarr
    if not exists(url):
        raise StoreError(f"no store at {url}")
    try:
        g = zarr.open_group(url, mode=mode)
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{url} is not a readable Zarr group: {safety.first_line(exc)}") from None
    found = g.attrs.get("kind")
    if found != kind:
        raise StoreError(f"{url} is a store of kind {found!r}, not a {label} ({kind!r})")
    found = g.attrs.get("format_version")
    if found != version:
        raise StoreError(f"{url} has {label} format version {found}, this rgsd reads version {version}")
    for name in required:
        try:
            g[name]
        except KeyError:
            raise StoreError(f"{url} is an incomplete {label}: array '{name}' is missing") from None
        except Exception as exc:  # noqa: BLE001 - a truncated or edited zarr.json
            raise StoreError(f"{url}: the metadata of array '{name}' is damaged ({safety.first_line(exc)})") from None
    return g


def open_store(url: str, mode: str = "r") -> SceneStore:
    return SceneStore(open_group_of_kind(url, KIND, FORMAT_VERSION, PER_SCENE, "scene store", mode), url)


def scene_array(st: SceneStore, name: str, create: dict | None = None):
    """An extra per-scene array beside the format's fixed set (derived annotations such as
    region support), one chunk per scene so a worker writing ``arr[i]`` touches only scene
    i's chunk; read it back with ``st.read_scene(i, [name])``.

    ``create`` (driver only; the store opened with mode "r+") is ``{"dims": ("y", "x"),
    "dtype": "float32", "fill": nan, "attrs": {...}, "overwrite": False}``: the array is
    made if missing (or replaced with ``overwrite``); an existing one must have the same
    dims and dtype.  Without ``create`` the array must exist.  Returns the Zarr array.
    """
    g = st.group
    if create is None:
        if name not in g or name in PER_SCENE:
            raise StoreError(f"{st.url} has no extra array '{name}'")
        return g[name]
    if name in PER_SCENE:
        raise StoreError(f"'{name}' is one of the store's own arrays")
    dims = tuple(create["dims"])
    sizes = {"y": g["depth"].shape[1], "x": g["depth"].shape[2], "channel": 3,
             "instance": g["amodal"].shape[1], "other": g["amodal"].shape[1]}
    shape = (st.n,) + tuple(sizes[d] for d in dims)
    dtype = np.dtype(create["dtype"])
    if name in g and not create.get("overwrite"):
        arr = g[name]
        if tuple(arr.shape) != shape or arr.dtype != dtype:
            raise StoreError(f"{st.url} already has '{name}' of shape {tuple(arr.shape)} {arr.dtype}, "
                             f"not {shape} {dtype} (use --overwrite to replace it)")
        return arr
    return g.create_array(name, shape=shape, dtype=dtype, fill_value=create["fill"], chunks=(1,) + shape[1:],
                          dimension_names=("scene",) + dims, attributes=dict(create.get("attrs") or {}),
                          overwrite=True)


def software_versions() -> dict:
    import zarr
    out = {"python": platform.python_version(), "zarr": zarr.__version__, "numpy": np.__version__}
    from importlib.metadata import PackageNotFoundError, version
    for dist in ("rgsd", "bpy", "dask", "OpenEXR"):  # bpy's wheel version is Blender's version
        try:
            out[dist.lower()] = version(dist)
        except PackageNotFoundError:
            out[dist.lower()] = "source" if dist == "rgsd" else None
    return out


def config_diff(a: dict, b: dict, path: str = "") -> str | None:
    """The first dotted key whose value differs between two configs, or None."""
    for key in sorted(set(a) | set(b)):
        where = f"{path}{key}"
        if key not in a or key not in b:
            return where
        if isinstance(a[key], dict) and isinstance(b[key], dict):
            d = config_diff(a[key], b[key], where + ".")
            if d:
                return d
        elif json.dumps(a[key]) != json.dumps(b[key]):
            return where
    return None
