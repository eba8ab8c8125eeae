"""``gen export region-support``: RSN region support (composer/region_support.py) for every
finished scene, added to the scene store as two per-scene arrays through the store module:
``region_support`` (float32 metres, scene/y/x) and ``region_id`` (int32, 0 = no region).

Resumable without extra metadata: ``region_id`` is written after ``region_support`` and its
fill value (-1) never occurs in a written map, so a scene whose ``region_id`` reads as -1 is
not done yet; a task skips scenes already written.
"""
from __future__ import annotations

import sys

import numpy as np

from pipelines.export_common import (
    ExportError,
    batches,
    open_scenes,
    run_ordered,
    select_scenes,
)
from scenes import store as scene_store

NAMES = ("region_support", "region_id")


def _arrays(st, params: dict, overwrite: bool = False):
    attrs = {"algorithm": "RSN Algorithm 1 (composer/region_support.py)", **params}
    try:
        found = [n for n in NAMES if n in st.group]
        if found and not overwrite:
            have = dict(st.group[found[0]].attrs)
            if any(have.get(k) != v for k, v in params.items()):
                raise ExportError(f"{st.url} already has region support made with {have.get('bins')} bins and "
                                  f"{have.get('connectivity')}-connectivity (use --overwrite to recompute it)")
        rs = scene_store.scene_array(st, "region_support", {
            "dims": ("y", "x"), "dtype": "float32", "fill": float("nan"), "overwrite": overwrite,
            "attrs": {**attrs, "units": "metres; +inf where no surface, NaN on unlabeled pixels"}})
        ri = scene_store.scene_array(st, "region_id", {
            "dims": ("y", "x"), "dtype": "int32", "fill": -1, "overwrite": overwrite,
            "attrs": {**attrs, "meaning": "1.. regions, 0 = no region; -1 = not computed yet"}})
    except scene_store.StoreError as exc:
        raise ExportError(str(exc)) from None
    return rs, ri


def region_task(job: tuple) -> int:
    """Runs in a worker: region support of a batch of scenes, each written to its own chunk
    (support first, ids last); returns how many it computed."""
    from composer.region_support import region_support
    url, scenes, params = job
    st = scene_store.open_store(url, mode="r+")
    rs_arr, id_arr = (scene_store.scene_array(st, n) for n in NAMES)
    made = 0
    for i in scenes:
        if int(id_arr[i, 0, 0]) != -1:
            continue
        s = st.read_scene(i, ["semantic", "depth"])
        rs, ids = region_support(s["semantic"], s["depth"], bins=params["bins"], connectivity=params["connectivity"])
        rs_arr[i] = rs
        id_arr[i] = ids
        made += 1
    return made


def run(url: str, *, scenes: str | None = None, bins: int = 10, connectivity: int = 8, workers: int | None = None,
        scheduler: str | None = None, overwrite: bool = False, batch: int = 8) -> dict:
    from scenes.safety import writable
    if scheduler:  # refused before the store gets its new arrays
        from pipelines.cluster import reachable
        reachable(scheduler)
    st = open_scenes(url, mode="r+")
    if writable(url):
        raise ExportError(f"cannot write region support into {url}: {writable(url)} is read-only")
    todo, skipped = select_scenes(st, scenes)
    params = {"bins": int(bins), "connectivity": int(connectivity)}
    _arrays(st, params, overwrite)
    made = [0]
    run_ordered(region_task, [(url, b, params) for b in batches(todo, batch)], workers=workers, scheduler=scheduler,
                on_result=lambda job, n: made.__setitem__(0, made[0] + n), desc="region-support",
                unit_count=lambda j: len(j[1]))
    print(f"{url}: region support of {len(todo)} scenes ({made[0]} computed now, {len(todo) - made[0]} already "
          f"there)" + (f"; {skipped} unfinished scenes skipped" if skipped else ""), file=sys.stderr)
    return {"scenes": len(todo), "computed": made[0], "skipped": skipped}


def read(st, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(region_support, region_id) of scene i from a store that has them."""
    s = st.read_scene(i, list(NAMES))
    return s["region_support"], s["region_id"]
