"""The scene store: the one module that reads and writes rendered scenes on disk.

A Zarr v3 group; every array has the scene as its first dimension.  Format version 2:

* per-pixel arrays (``PIXEL_ARRAYS``: rgb, depth, ..., amodal) have one chunk (amodal: one
  shard) per scene, written by the worker that renders the scene (:meth:`SceneStore.write_pixels`);
* everything else (``META_ARRAYS``: ``spec``, ``num_instances``, the per-instance tables,
  and ``done``) has chunks of ``META_CHUNK`` scenes (``spec``: ``SPEC_CHUNK``; ``done`` and
  ``num_instances``: ``DONE_CHUNK``), written only
  by the driver, in batches, from the small results tasks return (:meth:`SceneStore.write_meta`),
  ``done`` after the rest.

So no two processes ever write one chunk, a finished scene costs one object per per-pixel
array plus a small share of the metadata chunks, and reading ``done`` or a table of a
40,000-scene store is tens of requests, not 40,000.  A crash between a worker's write and the
driver's flag leaves ``done[i]`` False: ``--resume`` renders that scene again.  Version-1
stores (one chunk per scene for every array) read and resume through the same code.

Coordinates: camera space is OpenCV's (x right, y down, z forward); pixel (row i, col j)
is a point sample at image position (u, v) = (j + 0.5, i + 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scenes import safety
from scenes.groups import (  # noqa: F401 - re-exported: the scene store's public API
    bytes_stored,
    exists,
    new_group,
    open_group_of_kind,
    remove,
    software_versions,
)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
KIND = "rgsd.scenes"
META_CHUNK = 1024  # scenes per chunk of the driver-written arrays
DONE_CHUNK = 65536  # done and num_instances, read whole by info and --resume: 1-2 bytes a scene
SPEC_CHUNK = 256  # specs are ~40 kB of JSON each: 10 MB per chunk uncompressed

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
# Arrays a store may lack (stores written before them still open, read and resume): each
# scene's camera as numbers, [fx, fy, cx, cy, k1, k2, k3] (pixels; OpenCV radial distortion
# on the normalised radius, 0 for a pinhole), written by the driver from the spec.
OPTIONAL = {"intrinsics": (("intrinsic",), "float64", float("nan"))}
INTRINSICS = ("fx", "fy", "cx", "cy", "k1", "k2", "k3")
# Dimension names on disk: "instance" and "box3d" are also array names, so xarray would demote
# those arrays to coordinates; stores written before this keep the old names (open_xarray).
DIM_ON_DISK = {"instance": "slot", "box3d": "box3d_value"}
ANNOTATIONS = [k for k in PER_SCENE if k not in ("spec", "done")]
PIXEL_ARRAYS = ["rgb", "depth", "instance", "semantic", "normals", "amodal"]
TABLES = [k for k in ANNOTATIONS if k not in PIXEL_ARRAYS]  # num_instances and the per-instance tables
META_ARRAYS = TABLES + ["spec", "done"]


StoreError = safety.StoreError  # defined there so that the guards need not import this module


class ChunkError(StoreError):
    """A chunk of a finished scene or shard is missing or fails its checksum."""


def _damaged(url, name: str, where: str, exc: BaseException) -> ChunkError:
    return ChunkError(f"{url}: array '{name}'{where} is damaged ({safety.describe(exc)}); see gen verify {url}")


def tables_of(arrays: dict) -> dict:
    """The driver-written part of a rendered scene's arrays (what a task sends back)."""
    return {k: np.asarray(arrays[k]) for k in TABLES}


@dataclass
class SceneStore:
    group: object  # zarr.Group
    url: str
    _arrays: dict = field(default_factory=dict, repr=False)
    _absent: set = field(default_factory=set, repr=False)
    _chunks: dict = field(default_factory=dict, repr=False)  # name -> (chunk index, done snapshot, rows)

    def array(self, name: str):
        """The zarr array ``name``, opened once (each open is a metadata read; on S3, a GET)."""
        a = self._arrays.get(name)
        if a is None:
            a = self._arrays[name] = self.group[name]
        return a

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs)

    @property
    def format_version(self) -> int:
        return int(self.group.attrs.get("format_version", 0))

    @property
    def n(self) -> int:
        return int(self.array("done").shape[0])

    @property
    def max_instances(self) -> int:
        return int(self.array("amodal").shape[1])

    def done(self) -> np.ndarray:
        try:
            return self.array("done")[:]
        except Exception as exc:  # noqa: BLE001 - a damaged chunk of the flags themselves
            raise ChunkError(f"{self.url}: array 'done' is damaged ({safety.describe(exc)}); "
                             f"run 'gen verify {self.url} --repair'") from None

    def is_done(self, i: int) -> bool:
        """One scene's flag (one chunk read)."""
        return bool(self.array("done")[i])

    def _writable(self, name: str):
        # Fill-valued chunks are written too, so a missing chunk always means damage.
        return self.array(name).with_config({"write_empty_chunks": True})

    def write_pixels(self, i: int, arrays: dict) -> None:
        """The per-pixel arrays of scene ``i`` (its own chunks: the rendering worker's part)."""
        for name in PIXEL_ARRAYS:
            self._writable(name)[i] = arrays[name]

    def write_meta(self, rows: list) -> None:
        """Driver only: ``rows`` = [(i, tables_of(arrays), spec_json), ...] written in one batch,
        chunk by chunk, every table and the specs first and then ``done`` for those scenes."""
        if not rows:
            return
        from concurrent.futures import ThreadPoolExecutor
        rows = sorted(rows, key=lambda r: r[0])
        idx = np.array([r[0] for r in rows], dtype=np.int64)

        def put(name):
            a = self.array(name)
            if name == "spec":
                value = np.array([r[2] for r in rows], dtype=object)
            elif name == "done":
                value = np.ones(len(idx), bool)
            elif name == "intrinsics":
                from scenes.intrinsics import intrinsics_row
                nominal = self.attrs.get("intrinsics") or {}
                value = np.stack([intrinsics_row(r[2], nominal) for r in rows])
            else:
                value = np.stack([np.asarray(r[1][name], a.dtype) for r in rows])
            try:  # a partial chunk is read, merged and written back: its stored bytes must decode
                self._writable(name).oindex[(idx,) + (slice(None),) * (a.ndim - 1)] = value
            except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
                if "checksum" not in str(exc).lower() and not isinstance(exc, ValueError):
                    raise
                raise ChunkError(f"{self.url}: array '{name}' of scenes {idx[0]}..{idx[-1]} cannot be updated: a "
                                 f"stored chunk is damaged ({safety.describe(exc)}); run 'gen verify {self.url} "
                                 "--repair', then --resume") from None

        # Arrays written concurrently: on an object store each chunk is a GET and a PUT.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, TABLES + ["spec"]))
        if self.has("intrinsics"):  # stores made before it have none: their specs hold K
            put("intrinsics")
        put("done")
        self._chunks.clear()

    def set_done(self, indices, value: bool) -> None:
        """Driver only: flag scenes (``--only`` clears them before re-rendering)."""
        idx = np.asarray(sorted(int(i) for i in indices), dtype=np.int64)
        if len(idx):
            self._writable("done").oindex[idx] = np.full(len(idx), value)
            self._chunks.clear()

    def write_scene(self, i: int, arrays: dict, spec_json: str) -> None:
        """Every array of scene ``i``, then its done flag: for single-process writers; a run
        of many scenes batches the metadata with :class:`MetaBuffer`."""
        self.write_pixels(i, arrays)
        self.write_meta([(i, tables_of(arrays), spec_json)])

    def _meta_row(self, name: str, i: int):
        """Scene ``i`` of a driver-written array, through a one-chunk cache per array: a
        chunk holds up to 1024 scenes, and readers go scene by scene.  A cached chunk serves
        scene ``i`` only if ``i`` was done when it was read (``done`` is read first), so a
        store still being written never hands out a scene's stale rows."""
        a = self.array(name)
        c = a.chunks[0]
        k = i // c
        hit = self._chunks.get(name)
        if hit is None or hit[0] != k or not hit[1][i - k * c]:
            lo, hi = k * c, min((k + 1) * c, a.shape[0])
            try:
                done = self.array("done")[lo:hi]
                hit = self._chunks[name] = (k, done, a[lo:hi])
            except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
                raise _damaged(self.url, name, f" of scene {i}", exc) from None
        return hit[2][i - k * c]

    def column(self, name: str) -> np.ndarray:
        """One array for every scene (small per-scene tables: counts, classes)."""
        try:
            return self.array(name)[:]
        except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
            raise ChunkError(f"{self.url}: array '{name}' is damaged ({safety.describe(exc)}); "
                             f"see gen verify {self.url}") from None

    def rows(self, name: str, indices) -> np.ndarray:
        """Scenes ``indices`` of a driver-written array, reading only the chunks that hold them."""
        try:
            return self.array(name).oindex[np.asarray(indices, dtype=np.int64)]
        except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
            raise _damaged(self.url, name, "", exc) from None

    def spec(self, i: int) -> str:
        return str(self._meta_row("spec", i))

    def has(self, name: str) -> bool:
        """Whether the store holds array ``name`` (the OPTIONAL ones may be missing).  A miss
        is remembered: on an object store each lookup is a request, and an older store
        without ``intrinsics`` is asked once per scene."""
        if name in self._arrays:
            return True
        if name in self._absent:
            return False
        try:
            self.array(name)
        except KeyError:
            self._absent.add(name)
            return False
        return True

    def intrinsics(self, i: int) -> dict:
        """Scene ``i``'s camera: fx, fy, cx, cy (pixels) and lens ({} for a pinhole, else
        {"model": "radial", "k1", "k2", "k3"}), from the ``intrinsics`` array, or for stores
        without it from the spec (the store's nominal intrinsics where the spec has no camera)."""
        from scenes.intrinsics import intrinsics_dict, intrinsics_row
        row = self._meta_row("intrinsics", i) if self.has("intrinsics") else None
        if row is None or not np.isfinite(row).all():
            row = intrinsics_row(self.spec(i), self.attrs.get("intrinsics") or {})
        return intrinsics_dict(row)

    def read_scene(self, i: int, names=None) -> dict:
        """Arrays of scene ``i``; a ChunkError (one line naming the array and scene) for a
        chunk that fails its checksum, or is missing although the scene is done."""
        names = list(names or ANNOTATIONS)
        out = {n: (self._meta_row(n, i) if n in TABLES else self._read(n, i)) for n in names}
        if safety.checked(self.group):
            gone = safety.missing_chunks(self.group, names, i)
            if gone and self.is_done(i):
                raise ChunkError(f"{self.url}: array '{gone[0]}' of scene {i} has no stored chunk although "
                                 f"the scene is done; see gen verify {self.url}")
        if "amodal" in out:
            k = int(self._meta_row("num_instances", i))
            out["amodal"] = out["amodal"][:k]
        return out

    def _read(self, name: str, i: int):
        try:
            return self.array(name)[i]
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

    def bytes_stored(self) -> int:
        return bytes_stored(self.url)


class MetaBuffer:
    """Driver-side batching of finished scenes' metadata: :meth:`add` rows as results come
    in; they are written (``SceneStore.write_meta``) once ``max_rows`` are waiting or the
    oldest has waited ``max_age_s``, and by :meth:`flush`."""

    def __init__(self, store: SceneStore, max_rows: int = 256, max_age_s: float = 2.0):
        self.store, self.max_rows, self.max_age_s = store, max_rows, max_age_s
        self.rows: list = []
        self.since = 0.0
        self.written = 0

    def add(self, i: int, tables: dict, spec_json: str) -> None:
        import time
        if not self.rows:
            self.since = time.monotonic()
        self.rows.append((int(i), tables, spec_json))
        self.maybe_flush()

    def maybe_flush(self) -> None:
        import time
        if self.rows and (len(self.rows) >= self.max_rows or time.monotonic() - self.since >= self.max_age_s):
            self.flush()

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        self.store.write_meta(rows)
        self.written += len(rows)


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
        elif name in PIXEL_ARRAYS:
            kwargs = {"chunks": (1,) + shape[1:]}
        else:  # driver-written metadata: many scenes per chunk
            per = {"spec": SPEC_CHUNK, "done": DONE_CHUNK, "num_instances": DONE_CHUNK}.get(name, META_CHUNK)
            kwargs = {"chunks": (min(n, per),) + shape[1:]}
        g.create_array(name, shape=shape, dtype=str if dtype == "str" else dtype, fill_value=fill,
                       dimension_names=("scene",) + tuple(DIM_ON_DISK.get(d, d) for d in dims),
                       compressors=checksummed, **kwargs)
    for name, (dims, dtype, fill) in OPTIONAL.items():
        g.create_array(name, shape=(n, len(INTRINSICS)), dtype=dtype, fill_value=fill, chunks=(min(n, META_CHUNK), 7),
                       dimension_names=("scene",) + dims, compressors=checksummed)
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
            "intrinsics": "per scene [fx, fy, cx, cy, k1, k2, k3]: K in pixels and OpenCV radial distortion "
                          "(0 = pinhole); the attribute 'intrinsics' is the nominal pinhole",
        },
        **(extra_attrs or {}),
    })
    consolidate(g.store)
    return SceneStore(g, url)


def consolidate(zarr_store) -> None:
    """Consolidated metadata (every array's zarr.json inside the root's): xarray and zarr open
    the store with one read.  Written again whenever an array is added (scene_array)."""
    import warnings

    import zarr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not part of the Zarr format 3 specification"
        zarr.consolidate_metadata(zarr_store)


def open_store(url, mode: str = "r") -> SceneStore:
    """A scene store (format version 1 or 2) at ``url``: a path, an fsspec URL, or a zarr
    Store object (tests wrap one to count requests)."""
    arrays: dict = {}
    g = open_group_of_kind(url, KIND, READABLE_VERSIONS, PER_SCENE, "scene store", mode, arrays)
    return SceneStore(g, url if isinstance(url, str) else str(url), arrays)


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
    on_disk = tuple(DIM_ON_DISK.get(d, d) for d in dims)
    shape = (st.n,) + tuple(sizes[d] for d in dims)
    dtype = np.dtype(create["dtype"])
    if name in g and not create.get("overwrite"):
        arr = g[name]
        if tuple(arr.shape) != shape or arr.dtype != dtype:
            raise StoreError(f"{st.url} already has '{name}' of shape {tuple(arr.shape)} {arr.dtype}, "
                             f"not {shape} {dtype} (use --overwrite to replace it)")
        return arr
    arr = g.create_array(name, shape=shape, dtype=dtype, fill_value=create["fill"], chunks=(1,) + shape[1:],
                         dimension_names=("scene",) + on_disk, attributes=dict(create.get("attrs") or {}),
                         overwrite=True)
    st._absent.discard(name)
    consolidate(g.store)
    return arr

