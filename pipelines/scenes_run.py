"""``gen scenes``: create or reopen a scene store and render the scenes it still lacks."""
from __future__ import annotations

import sys
import time

import numpy as np

from scenes import store as scene_store
from scenes.spec import SceneSpec, sample_scene


class RunError(ValueError):
    """A user-facing problem with the run as asked."""


def scene_spec(cfg: dict, seed: int, index: int) -> SceneSpec:
    return sample_scene(cfg, seed, index)


def render_one(url: str, index: int, cfg: dict, seed: int, spec_json: str | None = None) -> dict:
    """Render scene ``index`` and write it into the store at ``url``: the unit of work a
    worker process runs.  Returns its timings and stored byte estimate."""
    from generator.render import render_scene

    spec = SceneSpec.from_json(spec_json) if spec_json else scene_spec(cfg, seed, index)
    arrays, timings = render_scene(spec, cfg)
    t = time.perf_counter()
    st = scene_store.open_store(url, mode="r+")
    st.write_scene(index, arrays, spec.to_json())
    timings["write"] = time.perf_counter() - t
    timings["instances"] = int(arrays["num_instances"])
    return timings


def index_assets(cfg: dict) -> dict:
    """Scan ``assets.dir`` with Blender and put the usable assets into the config."""
    import copy
    from pathlib import Path

    root = cfg["assets"]["dir"]
    if not Path(root).is_dir():
        raise RunError(f"--assets: {root} is not a folder")
    from generator.blender import setup
    from generator.user_assets import scan
    setup(cfg["render"])
    index, problems = scan(str(Path(root).resolve()))
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    if not index:
        print(f"warning: no usable assets in {root}; using procedural ones only", file=sys.stderr)
    cfg = copy.deepcopy(cfg)
    cfg["assets"]["dir"] = str(Path(root).resolve())
    cfg["assets"]["index"] = index
    return cfg


def _intrinsics(cfg: dict, seed: int) -> dict:
    return scene_spec(cfg, seed, 0).camera.intrinsics()


def run(url: str, *, n: int, cfg: dict, seed: int, overwrite=False, resume=False, only=None) -> int:
    from tqdm import tqdm

    try:
        if only is not None:
            st = scene_store.open_store(url, mode="r+")
            cfg, seed = st.attrs["config"], st.attrs["seed"]
            bad = [i for i in only if not 0 <= i < st.n]
            if bad:
                raise RunError(f"--only: scene {bad[0]} is outside 0..{st.n - 1} of {url}")
            done = st.done()
            if done[only].any() and not overwrite:
                raise RunError(f"scene {int(np.asarray(only)[done[only]][0])} of {url} is already done "
                               "(add --overwrite to re-render it)")
            todo = [(i, st.spec(i) or None) for i in only]
        elif resume:
            st = scene_store.open_store(url, mode="r+")
            diff = scene_store.config_diff(st.attrs["config"], cfg)
            if diff:
                raise RunError(f"--resume: config key '{diff}' differs from the store's "
                               f"({st.attrs['config'] if '.' not in diff else ''}".rstrip(" (") +
                               "; rerun with the store's settings")
            if st.attrs["seed"] != seed:
                raise RunError(f"--resume: seed {seed} differs from the store's seed {st.attrs['seed']}")
            if st.n != n:
                raise RunError(f"--resume: --n {n} differs from the store's {st.n} scenes")
            todo = [(int(i), None) for i in np.flatnonzero(~st.done())]
        else:
            st = scene_store.create(url, n, cfg, seed, _intrinsics(cfg, seed), overwrite=overwrite)
            todo = [(i, None) for i in range(n)]
    except scene_store.StoreError as exc:
        raise RunError(str(exc)) from None

    if not todo:
        print(f"{url}: all {st.n} scenes already done", file=sys.stderr)
        return 0
    totals: dict[str, float] = {}
    bar = tqdm(total=len(todo), unit="scene", desc="scenes", dynamic_ncols=True, file=sys.stderr)
    try:
        for i, spec_json in todo:
            t = render_one(url, i, cfg, seed, spec_json)
            for k, v in t.items():
                totals[k] = totals.get(k, 0.0) + v
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted: {int(st.done().sum())}/{st.n} scenes done; continue with --resume",
              file=sys.stderr)
        return 130
    bar.close()
    done = int(st.done().sum())
    size = st.bytes_stored()
    per = f", {size / max(done, 1) / 1e6:.2f} MB per scene" if size else ""
    m = len(todo)
    print(f"{url}: {done}/{st.n} scenes done{per}; mean s/scene: build {totals['build'] / m:.2f}, "
          f"rgb {totals['rgb'] / m:.2f}, annotations {totals['annotations'] / m:.2f}, write {totals['write'] / m:.2f}",
          file=sys.stderr)
    return 0
