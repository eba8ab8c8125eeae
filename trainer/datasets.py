"""rgsd's stores as PyTorch datasets, for your own models: the public, documented Python API
(README "Using rgsd from Python").

* :class:`SceneDataset` -- the scenes of one or more scene stores (``gen scenes``, ``gen import
  rgbd``), one sample per finished scene, with everything a detection, amodal, depth or
  ordering model needs, already cut to the scene's instances;
* :class:`ShardDataset` -- the composited samples of a shard store (``gen shards``).

Both are map-style ``torch.utils.data.Dataset`` s that open their stores lazily in each
process, so they work in ``DataLoader`` workers.  Scenes hold a varying number of instances:
batch them with ``collate_fn=collate`` (a list of samples, as torchvision's detection models
take them).  The conventions (``scenes.store``): camera axes are OpenCV's (x right, y down,
z forward), pixel (row i, col j) is centred at (j + 0.5, i + 0.5), depth is planar metres.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

PIXEL_FIELDS = ("rgb", "depth", "normals", "semantic", "masks", "amodal")
DEFAULT_FIELDS = ("rgb", "depth", "masks", "amodal")
_TABLES = ["num_instances", "instance_class", "modal_box", "amodal_box", "occlusion", "depth_order",
           "visible_fraction", "distance"]


def collate(samples: list) -> list:
    """``DataLoader(..., collate_fn=collate)``: the batch as the list of its samples."""
    return list(samples)


class SceneDataset(Dataset):
    """The finished scenes of ``urls`` (a store URL or a list; local paths or fsspec URLs).

    ``fields``: the per-pixel arrays to read (any of ``PIXEL_FIELDS``; fewer is faster).
    ``classes``: class names to keep, labelled 1..K in this order (0 is background); instances
    of other classes are left out.  Default: the first store's instance classes.

    A sample is a dict of tensors (N = the scene's kept instances, H x W its size):

    ========================  ==========================================================
    ``rgb``                   (3, H, W) float32 in [0, 1]
    ``depth``                 (H, W) float32 planar depth in metres, ``+inf`` where no surface (sky)
    ``normals``               (H, W, 3) float32 unit camera-space normals, 0 where no surface
    ``semantic``              (H, W) uint8 index into ``store_classes``
    ``masks``                 (N, H, W) bool visible masks (empty for a wholly hidden instance)
    ``amodal``                (N, H, W) bool whole silhouettes, hidden parts included
    ``labels``                (N,) int64 in 1..K (``classes`` order)
    ``boxes``                 (N, 4) float32 visible box x0, y0, x1, y1 (pixel edges); 0 if hidden
    ``amodal_boxes``          (N, 4) float32 the amodal box
    ``visible_fraction``      (N,) float32 visible / amodal area
    ``occlusion``             (N, N) bool, [a, b] = a occludes b
    ``depth_order``           (N, N) int8, [a, b] = -1 a closer than b, 0 equal, +1 a farther
    ``K``                     (3, 3) float64 the scene's camera matrix (per scene: field of view varies)
    ``lens``                  dict, {} for a pinhole, else {"model": "radial", "k1", "k2", "k3"}
                              (OpenCV's radial model on the normalised radius)
    ``store``, ``scene``      which store (index into ``urls``) and scene this is
    ========================  ==========================================================
    """

    def __init__(self, urls, fields=DEFAULT_FIELDS, classes=None):
        from scenes.store import open_store
        self.urls = [urls] if isinstance(urls, str) else [str(u) for u in urls]
        unknown = [f for f in fields if f not in PIXEL_FIELDS]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} (choose from {', '.join(PIXEL_FIELDS)})")
        self.fields = tuple(fields)
        stores = [open_store(u) for u in self.urls]
        self.store_classes = list(stores[0].attrs["classes"])
        if classes is None:
            classes = stores[0].attrs.get("config", {}).get("scene", {}).get("instance_classes") or self.store_classes
        self.classes = list(classes)
        bad = [c for c in self.classes if c not in self.store_classes]
        if bad:
            raise ValueError(f"class {bad[0]!r} is not in the store's class table ({', '.join(self.store_classes)})")
        for st in stores[1:]:
            if list(st.attrs["classes"]) != self.store_classes:
                raise ValueError(f"{st.url} has another class table than {self.urls[0]}")
        # store class index -> label 1..K (0: not kept)
        self.label_of = np.zeros(max(256, len(self.store_classes)), np.int64)
        for k, c in enumerate(self.classes):
            self.label_of[self.store_classes.index(c)] = k + 1
        self.index = [(s, int(i)) for s, st in enumerate(stores) for i in np.flatnonzero(st.done())]
        self._stores = None  # opened again in each process (DataLoader workers)

    def __len__(self) -> int:
        return len(self.index)

    def _store(self, s: int):
        if self._stores is None:
            from scenes.store import open_store
            self._stores = [open_store(u) for u in self.urls]
        return self._stores[s]

    def __getitem__(self, n: int) -> dict:
        s, i = self.index[n]
        st = self._store(s)
        read = [f for f in ("rgb", "depth", "normals", "semantic") if f in self.fields]
        if "masks" in self.fields:
            read.append("instance")
        if "amodal" in self.fields:
            read.append("amodal")
        a = st.read_scene(i, read + _TABLES)
        k = int(a["num_instances"])
        labels = self.label_of[a["instance_class"][:k].astype(np.int64)]
        keep = np.flatnonzero(labels > 0)
        out = {"store": s, "scene": i, "labels": torch.from_numpy(labels[keep])}
        if "rgb" in a:
            out["rgb"] = torch.from_numpy(np.ascontiguousarray(a["rgb"].transpose(2, 0, 1))).float().div_(255)
        for f in ("depth", "normals"):
            if f in a:
                out[f] = torch.from_numpy(np.asarray(a[f], np.float32))
        if "semantic" in a:
            out["semantic"] = torch.from_numpy(a["semantic"])
        if "instance" in a:  # the visible mask of slot j is instance == j + 1
            out["masks"] = torch.from_numpy(a["instance"][None] == (keep + 1).astype(a["instance"].dtype)[:, None, None])
        if "amodal" in a:
            out["amodal"] = torch.from_numpy(np.ascontiguousarray(a["amodal"][:k][keep]))
        for key, name in (("boxes", "modal_box"), ("amodal_boxes", "amodal_box")):
            b = a[name][keep].astype(np.float32)
            out[key] = torch.from_numpy(np.where(b < 0, 0, b))
        out["visible_fraction"] = torch.from_numpy(a["visible_fraction"][keep].astype(np.float32))
        out["occlusion"] = torch.from_numpy(a["occlusion"][np.ix_(keep, keep)])
        out["depth_order"] = torch.from_numpy(a["depth_order"][np.ix_(keep, keep)])
        cam = st.intrinsics(i)
        out["K"] = torch.tensor([[cam["fx"], 0.0, cam["cx"]], [0.0, cam["fy"], cam["cy"]], [0.0, 0.0, 1.0]],
                                dtype=torch.float64)
        out["lens"] = cam["lens"]
        return out


class ShardDataset(Dataset):
    """The samples of a shard store's finished shards, one at a time (the refiner's trainer
    reads whole chunks instead, trainer/data.py; this is for your own loops).

    A sample: ``rgb`` (3, H, W) float32 in [0, 1]; ``mask`` (H, W) float32 {0, 1} (the
    composited region M); ``depth`` D', ``depth1`` D1 (inside M), ``depth2`` D2 (outside),
    ``perturbed`` P(D'), each (H, W) float32 in the store's depth space (attribute
    ``depth_space``: inverse depth, 10 / z metres); ``mask_kind`` (object, sky, human, ...).
    """

    FIELDS = ("rgb", "mask", "depth", "depth1", "depth2", "perturbed", "mask_kind")

    def __init__(self, url):
        from composer.shard_store import open_shards
        self.url = str(url)
        st = open_shards(self.url)
        size = st.shard_size
        self.index = np.concatenate([np.arange(j * size, (j + 1) * size) for j in np.flatnonzero(st.done())]
                                    or [np.zeros(0, np.int64)])
        self.depth_space = st.attrs.get("depth_space")
        self._st = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, n: int) -> dict:
        from composer.shard_store import MASK_KINDS, open_shards
        if self._st is None:
            self._st = open_shards(self.url)
        i = int(self.index[n])
        a = self._st.read(i, i + 1, list(self.FIELDS))
        out = {"rgb": torch.from_numpy(a["rgb"][0]).float().div_(255), "mask_kind": MASK_KINDS[int(a["mask_kind"][0])]}
        for f in ("mask", "depth", "depth1", "depth2", "perturbed"):
            out[f] = torch.from_numpy(a[f][0].astype(np.float32))
        return out
