"""``gen scenes``: create or reopen a scene store and render the scenes it still lacks."""
from __future__ import annotations

import copy
import os
import sys
import time
import uuid

import numpy as np

from pipelines import runner
from pipelines.runner import ClusterOptions, RunError, RunResult  # noqa: F401 - the runner's options are ours
from scenes import config_upgrade, store_lock
from scenes import store as scene_store
from scenes.camera import store_intrinsics
from scenes.spec import pinhole_intrinsics


def index_assets(cfg: dict) -> dict:
    """Scan ``assets.dir`` with Blender and put the usable assets into the config."""
    from pathlib import Path

    root = cfg["assets"]["dir"]
    if not Path(root).is_dir():
        raise RunError(f"--assets: {root} is not a folder")
    from scenes.assets import ASSETS
    from scenes.user_assets import CUTOUT_DIR, AssetPathError, list_files, unknown_kinds
    try:
        list_files(root)  # before Blender opens anything: no link out of the folder
    except AssetPathError as exc:
        raise RunError(str(exc)) from None
    bad = unknown_kinds(root)
    if bad:
        raise RunError(f"--assets: {Path(root) / bad[0]} holds models of '{bad[0]}', which is not a kind rgsd places "
                       f"(folders: {', '.join(ASSETS)}, {CUTOUT_DIR}); the class table is fixed, so put them in the "
                       f"folder of the kind they stand in for (they take its class and placement)")
    from generator.blender import setup
    from generator.blender_assets import scan
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


PHASES = ("build", "rgb", "annotations", "write")


def _tasks(todo, frames: int, specs: dict | None = None):
    """Scenes of one layout go to one task, so the layout is built once; generated lazily
    (a 40,000-scene run holds no list of 40,000 tasks).  ``todo``: ascending indices."""
    group: list = []
    for i in todo:
        i = int(i)
        if group and i // frames != group[0][0] // frames:
            yield _task(group)
            group = []
        group.append((i, specs.get(i) if specs else None))
    if group:
        yield _task(group)


def _task(group) -> runner.Task:
    return runner.Task(key=f"render-scenes-{group[0][0]}-{group[-1][0]}-{os.getpid()}",
                       items=[i for i, _ in group], arg=group)


def check_blender(st, allow_change: bool = False) -> None:
    """RunError when the store was rendered by another Blender than the installed one: its
    RGB would differ from the scenes added now (annotations would not)."""
    from importlib.metadata import PackageNotFoundError, version
    stored = (st.attrs.get("software") or {}).get("bpy")
    try:
        here = version("bpy")
    except PackageNotFoundError:
        return  # --scheduler: Blender lives on the workers, checked there
    if stored and stored != here and not allow_change:
        raise RunError(f"{st.url} was rendered with Blender {stored}, this is Blender {here}: its RGB would "
                       "differ (annotations would not); pass --allow-blender-change to continue anyway")


def recorded_config(st) -> dict:
    """The store's config, completed for this rgsd (scenes/config_upgrade.py), with its note."""
    recorded, filled = config_upgrade.complete_recorded(st.attrs["config"])
    if filled:
        print(config_upgrade.filled_note(st.url, filled), file=sys.stderr)
    return recorded


def check_asset_paths(cfg: dict, specs: dict | None = None) -> None:
    """RunError (one line) unless every asset the config's index or ``specs`` names lies in
    the declared asset folder: checked before any scene is built (scenes/user_assets.py)."""
    from scenes.user_assets import AssetPathError, check_index, check_spec
    try:
        check_index(cfg)
        for i, text in (specs or {}).items():
            check_spec(cfg, text or "", f"scene {i}'s stored spec: asset")
    except AssetPathError as exc:
        raise RunError(str(exc)) from None


def open_run(url, n, cfg, seed, overwrite=False, resume=False, only=None, allow_blender_change=False):
    """Create or reopen the store of a run: (store, config, seed, the scenes to render as an
    index array, stored specs for --only).  Reads the store's attributes and ``done``."""
    if only is not None:
        st = scene_store.open_store(url, mode="r+")
        check_blender(st, allow_blender_change)
        bad = [i for i in only if not 0 <= i < st.n]
        if bad:
            raise RunError(f"--only: scene {bad[0]} is outside 0..{st.n - 1} of {url}")
        done = st.done()
        if done[only].any() and not overwrite:
            raise RunError(f"scene {int(np.asarray(only)[done[only]][0])} of {url} is already done "
                           "(add --overwrite to re-render it)")
        todo = np.unique(np.asarray(only, dtype=np.int64))
        recorded = recorded_config(st)
        specs = {int(i): st.spec(int(i)) or None for i in todo}
        check_asset_paths(recorded, specs)  # re-rendered from the stored specs: same rule
        st.set_done(todo, False)  # an interrupted re-render leaves them to --resume
        return st, recorded, st.attrs["seed"], todo, specs
    if resume:
        st = scene_store.open_store(url, mode="r+")
        check_blender(st, allow_blender_change)
        recorded, filled = config_upgrade.complete_recorded(st.attrs["config"])
        asked = copy.deepcopy(cfg)
        for key, value in filled.items():  # the store's own values, not today's defaults
            config_upgrade.set_key(asked, key, value)
        runner.check_resume({"config": recorded, "seed": st.attrs["seed"], "n": st.n},
                            {"config": asked, "seed": seed, "n": n})
        if filled:
            print(config_upgrade.filled_note(url, filled), file=sys.stderr)
        return st, recorded, seed, np.flatnonzero(~st.done()), None
    r = cfg["render"]
    st = scene_store.create(url, n, cfg, seed, store_intrinsics(cfg, pinhole_intrinsics(r["width"], r["height"], r["hfov_deg"])),
                            overwrite=overwrite)
    return st, cfg, seed, np.arange(n), None


@store_lock.one_writer("gen scenes")
def run(url: str, *, n: int, cfg: dict, seed: int, overwrite=False, resume=False, only=None,
        cluster: ClusterOptions | None = None, make: str | None = None,
        allow_blender_change: bool = False) -> RunResult:
    """Render the scenes the store at ``url`` lacks.  ``make``: the test/benchmark hook of
    pipelines/scenes_dask.py ("module:function" that makes scenes instead of Blender)."""
    from tqdm import tqdm

    opts = cluster or ClusterOptions()
    t_start = time.perf_counter()
    _check_gpu(cfg, opts)
    if opts.scheduler:
        from pipelines.cluster import reachable
        reachable(opts.scheduler)
    if scene_store.safety.writable(url):
        raise RunError(f"cannot write to {scene_store.safety.writable(url)} (read-only)")
    check_asset_paths(cfg)
    try:
        st, cfg, seed, todo, specs = open_run(url, n, cfg, seed, overwrite, resume, only, allow_blender_change)
    except scene_store.StoreError as exc:
        raise RunError(str(exc)) from None
    if not len(todo):
        print(f"{url}: all {st.n} scenes already done", file=sys.stderr)
        return RunResult(0, st.n, st.n)
    if opts.scheduler:  # an existing cluster's cores are not ours to count: --threads-per-worker
        layout = (None, opts.threads_per_worker or 1)
    elif opts.workers == 0:
        layout = (0, opts.threads_per_worker or 0)
    else:
        from pipelines.cluster import default_layout
        layout = default_layout(cfg["render"], workers=opts.workers, threads=opts.threads_per_worker)
    job = {"url": url, "cfg": cfg, "seed": seed, "threads": layout[1], "make": make, "token": uuid.uuid4().hex,
           "recycle_after": opts.recycle_after, "max_rss_mib": opts.max_rss_mib, "gpus_per_worker": opts.gpus_per_worker}
    from pipelines import scenes_dask
    fn = scenes_dask.render_group_subprocess if opts.blender == "subprocess" else scenes_dask.render_group_task
    # Shown after the cluster is up, so its dashboard line does not cut through the bar.
    bar = tqdm(total=len(todo), unit="scene", desc="scenes", dynamic_ncols=True, file=sys.stderr, smoothing=0.05,
               delay=0 if opts.in_process else 1e9)
    meta = scene_store.MetaBuffer(st)
    sums = dict.fromkeys(PHASES, 0.0)
    count = [0]
    failures: dict[int, str] = {}

    def on_result(task, result):
        for r in result:
            meta.add(r["index"], r["tables"], r["spec"])
            for k in PHASES:
                sums[k] += r["timing"].get(k, 0.0)
        count[0] += len(result)
        bar.update(len(task.items))

    def on_failure(task, msg):
        failures.update(dict.fromkeys(task.items, msg))
        bar.update(len(task.items))

    def on_cluster():
        bar.delay = 0
        bar.refresh()

    code = 0
    try:
        runner.execute(fn, _tasks(todo, cfg["scene"]["frames_per_layout"], specs), (job,), opts,
                       on_result=on_result, on_failure=on_failure, tick=meta.maybe_flush, layout=layout,
                       resources={"render": 1}, local_fn=scenes_dask.render_group, on_cluster=on_cluster)
    except KeyboardInterrupt:
        code = 130
    finally:
        bar.close()
        meta.flush()
        done = st.done()
        log_error = runner.update_failure_log(st.group, failures, done, tolerate=True)
        runner.disarm()  # after the flags are written: a second Ctrl-C until then exits at once
    nd = int(done.sum())
    if code == 130:
        runner.print_err(f"\n{runner.interrupted_line(nd, st.n, 'scenes')}")
        return RunResult(130, nd, st.n, time.perf_counter() - t_start, failures)
    wall = time.perf_counter() - t_start
    size = st.bytes_stored()
    per = f", {size / max(nd, 1) / 1e6:.2f} MB per scene" if size else ""
    m = max(count[0], 1)
    phases = ", ".join(f"{k} {sums[k] / m:.2f}" for k in PHASES)
    print(f"{url}: {nd}/{st.n} scenes done{per}; {count[0] / wall:.3f} scenes/s; "
          f"mean s/scene: {phases}", file=sys.stderr)
    if failures:
        first = next(iter(failures.items()))
        where = f"see 'gen info {url}'" if log_error is None else f"failure log not written: {log_error}"
        print(f"error: {len(failures)} scene(s) failed (scene {first[0]}: {first[1]}); "
              f"{where}, fix, then --resume", file=sys.stderr)
        code = 1
    return RunResult(code, nd, st.n, wall, failures, stats={"scenes": count[0], **sums})


def _check_gpu(cfg: dict, cluster: ClusterOptions) -> None:
    """render.device=gpu with this machine's renderers: find out before a store is made.
    (A --scheduler's workers are elsewhere; theirs fail on the worker.)"""
    if cfg["render"]["device"] != "gpu" or cluster.scheduler:
        return
    from generator.blender import gpu_kind
    if gpu_kind() is None:
        raise RunError("render.device=gpu but Cycles finds no GPU on this machine (OptiX/CUDA/HIP/oneAPI/Metal); "
                       "use render.device=auto or cpu")
