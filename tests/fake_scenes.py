"""Scenes without Blender, for tests and benchmarks of everything around rendering.

``make_scenes`` is a stand-in for pipelines/scenes_dask.blender_scenes (the ``make`` hook of
scenes_run.run): each scene's arrays are a deterministic function of (seed, index), so
any worker count must give identical stores.  ``RGSD_FAKE_DELAY_S`` (environment, inherited
by LocalCluster workers) makes each scene take that long, for interrupt tests;
``RGSD_FAKE_MARK`` names a file the first task to start creates, holding ``time.time()``
(benchmarks/bench_scale.py: time from the command's start to the first task running).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from scenes import store as scene_store
from scenes.classes import CLASS_IDS

MAKE = "tests.fake_scenes:make_scenes"


def fake_arrays(cfg: dict, seed: int, i: int) -> dict:
    h, w = cfg["render"]["height"], cfg["render"]["width"]
    kmax = cfg["scene"]["max_instances"]
    rng = np.random.default_rng([seed, i])
    k = int(1 + i % 3)
    out = {name: np.full(_shape(name, h, w, kmax), fill, dtype) for name, (_, dtype, fill) in
           scene_store.PER_SCENE.items() if name not in ("spec", "done")}
    out["rgb"][:] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out["depth"][:] = rng.uniform(1, 50, (h, w)).astype(np.float32)
    out["depth"][: h // 4] = np.inf  # sky
    out["semantic"][: h // 4] = CLASS_IDS["sky"]
    out["normals"][..., 2] = 1
    for j in range(k):
        y0, x0 = int(rng.integers(h // 4, h - 4)), int(rng.integers(0, w - 4))
        box = (x0, y0, min(w, x0 + 4 + j), min(h, y0 + 3 + j))
        out["instance"][box[1]:box[3], box[0]:box[2]] = j + 1
        out["amodal"][j, box[1]:box[3], box[0]:box[2]] = True
        out["instance_class"][j] = CLASS_IDS[("car", "pedestrian", "bus")[j]]
        out["instance_object"][j] = j
        out["modal_box"][j] = out["amodal_box"][j] = box
        out["modal_area"][j] = out["amodal_area"][j] = (box[2] - box[0]) * (box[3] - box[1])
        out["visible_fraction"][j] = 1.0
        out["distance"][j] = float(rng.uniform(2, 40))
        out["box3d"][j] = rng.uniform(-5, 5, 7)
        out["depth_order"][j, :k] = np.sign(np.arange(k) - j)
    out["num_instances"] = np.uint16(k)
    out["occlusion"][:k, :k] = rng.random((k, k)) < 0.3
    return out


def _shape(name, h, w, kmax):
    dims = scene_store.PER_SCENE[name][0]
    sizes = {"y": h, "x": w, "channel": 3, "instance": kmax, "other": kmax, "box": 4, "box3d": 7}
    return tuple(sizes[d] for d in dims)


def fake_spec(seed: int, i: int) -> str:
    return json.dumps({"scenario": ("street", "city", "openroad")[i % 3], "index": i, "seed": seed})


def make_scenes(group, cfg, seed, threads=0):
    """The ``make`` hook: (index, spec_json, arrays, timings) per scene, no rendering."""
    delay = float(os.environ.get("RGSD_FAKE_DELAY_S", "0") or 0)
    mark = os.environ.get("RGSD_FAKE_MARK")
    if mark and not os.path.exists(mark):
        try:
            fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            os.write(fd, repr(time.time()).encode())
            os.close(fd)
        except FileExistsError:
            pass
    for i, spec in group:
        t0 = time.perf_counter()
        if delay:
            time.sleep(delay)
        arrays = fake_arrays(cfg, seed, i)
        yield i, spec or fake_spec(seed, i), arrays, {"build": time.perf_counter() - t0, "rgb": 0.0,
                                                       "annotations": 0.0}


def fake_store(url, n: int, done, cfg: dict, seed: int = 0) -> scene_store.SceneStore:
    """A scene store of ``n`` scenes whose scenes ``done`` (indices) are written, through the
    store module as a run would (pixels per scene, metadata in driver batches)."""
    st = scene_store.create(url, n, cfg, seed, {"fx": 1.0, "fy": 1.0, "cx": 0.5, "cy": 0.5}, overwrite=True)
    meta = scene_store.MetaBuffer(st, max_rows=1024, max_age_s=1e9)
    for i in done:
        arrays = fake_arrays(cfg, seed, int(i))
        st.write_pixels(int(i), arrays)
        meta.add(int(i), scene_store.tables_of(arrays), fake_spec(seed, int(i)))
    meta.flush()
    return st
