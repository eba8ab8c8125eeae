"""``gen scenes``: create or reopen a scene store and render the scenes it still lacks."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from scenes import store as scene_store
from scenes.spec import pinhole_intrinsics


class RunError(ValueError):
    """A user-facing problem with the run as asked."""


def index_assets(cfg: dict) -> dict:
    """Scan ``assets.dir`` with Blender and put the usable assets into the config."""
    import copy
    from pathlib import Path

    root = cfg["assets"]["dir"]
    if not Path(root).is_dir():
        raise RunError(f"--assets: {root} is not a folder")
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


@dataclass
class ClusterOptions:
    scheduler: str | None = None
    workers: int | None = None  # None: fill the cores (cluster.default_layout); 0: in this process, no Dask
    threads_per_worker: int | None = None  # Cycles threads per worker process
    blender: str = "worker"  # worker: bpy imported once per worker; subprocess: one per task
    recycle_after: int = 200  # restart a worker after this many scenes (0 = never)
    max_rss_mib: float = 3072.0  # ... or once it grows past this
    retries: int = 2  # retries of a task that raised (a broken asset, say)
    stall_timeout_s: float = 600.0  # give up when the cluster has had no worker this long


def _groups(todo: list, frames: int) -> list[list]:
    """Scenes of one layout go to one task, so the layout is built once."""
    groups: dict[int, list] = {}
    for i, spec_json in todo:
        groups.setdefault(i // frames, []).append((i, spec_json))
    return list(groups.values())


def _open_or_create(url, n, cfg, seed, overwrite, resume, only):
    if only is not None:
        st = scene_store.open_store(url, mode="r+")
        bad = [i for i in only if not 0 <= i < st.n]
        if bad:
            raise RunError(f"--only: scene {bad[0]} is outside 0..{st.n - 1} of {url}")
        done = st.done()
        if done[only].any() and not overwrite:
            raise RunError(f"scene {int(np.asarray(only)[done[only]][0])} of {url} is already done "
                           "(add --overwrite to re-render it)")
        return st, st.attrs["config"], st.attrs["seed"], [(i, st.spec(i) or None) for i in only]
    if resume:
        st = scene_store.open_store(url, mode="r+")
        diff = scene_store.config_diff(st.attrs["config"], cfg)
        if diff:
            raise RunError(f"--resume: config key '{diff}' differs from the store's; rerun with the store's settings")
        if st.attrs["seed"] != seed:
            raise RunError(f"--resume: seed {seed} differs from the store's seed {st.attrs['seed']}")
        if st.n != n:
            raise RunError(f"--resume: --n {n} differs from the store's {st.n} scenes")
        return st, cfg, seed, [(int(i), None) for i in np.flatnonzero(~st.done())]
    r = cfg["render"]
    st = scene_store.create(url, n, cfg, seed, pinhole_intrinsics(r["width"], r["height"], r["hfov_deg"]),
                            overwrite=overwrite)
    return st, cfg, seed, [(i, None) for i in range(n)]


def run(url: str, *, n: int, cfg: dict, seed: int, overwrite=False, resume=False, only=None,
        cluster: ClusterOptions | None = None) -> int:
    from tqdm import tqdm

    cluster = cluster or ClusterOptions()
    _check_gpu(cfg, cluster)
    if cluster.scheduler:
        from pipelines.cluster import reachable
        reachable(cluster.scheduler)
    if scene_store.safety.writable(url):
        raise RunError(f"cannot write to {scene_store.safety.writable(url)} (read-only)")
    try:
        st, cfg, seed, todo = _open_or_create(url, n, cfg, seed, overwrite, resume, only)
    except scene_store.StoreError as exc:
        raise RunError(str(exc)) from None
    if not todo:
        print(f"{url}: all {st.n} scenes already done", file=sys.stderr)
        return 0
    groups = _groups(todo, cfg["scene"]["frames_per_layout"])
    rerender = only is not None
    # Shown after the cluster is up, so its dashboard line does not cut through the bar.
    bar = tqdm(total=len(todo), unit="scene", desc="scenes", dynamic_ncols=True, file=sys.stderr, smoothing=0.05,
               delay=1e9 if cluster.workers != 0 or cluster.scheduler else 0)
    timings: list[dict] = []
    failures: dict[int, str] = {}
    t_start = time.perf_counter()
    try:
        if cluster.workers == 0 and not cluster.scheduler:
            from pipelines.scenes_dask import render_group
            for g in groups:
                for t in render_group(url, g, cfg, seed, cluster.threads_per_worker or 0, rerender):
                    timings.append(t)
                    bar.update(1)
        else:
            _run_on_dask(url, groups, cfg, seed, rerender, cluster, bar, timings, failures)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted: {int(st.done().sum())}/{st.n} scenes done; continue with --resume", file=sys.stderr)
        return 130
    finally:
        bar.close()
        _record_failures(st, failures, [i for i, _ in todo])
    wall = time.perf_counter() - t_start
    run.last_timings = timings  # for benchmarks: per-scene phase timings
    done = int(st.done().sum())
    size = st.bytes_stored()
    per = f", {size / max(done, 1) / 1e6:.2f} MB per scene" if size else ""
    m = max(len(timings), 1)
    phases = ", ".join(f"{k} {sum(t.get(k, 0.0) for t in timings) / m:.2f}"
                       for k in ("build", "rgb", "annotations", "write"))
    print(f"{url}: {done}/{st.n} scenes done{per}; {len(timings) / wall:.3f} scenes/s; "
          f"mean s/scene: {phases}", file=sys.stderr)
    if failures:
        first = next(iter(failures.items()))
        print(f"error: {len(failures)} scene(s) failed (scene {first[0]}: {first[1]}); "
              f"see 'gen info {url}', fix, then --resume", file=sys.stderr)
        return 1
    return 0


def _check_gpu(cfg: dict, cluster: ClusterOptions) -> None:
    """render.device=gpu with this machine's renderers: find out before a store is made.
    (A --scheduler's workers are elsewhere; theirs fail on the worker.)"""
    if cfg["render"]["device"] != "gpu" or cluster.scheduler:
        return
    from generator.blender import gpu_kind
    if gpu_kind() is None:
        raise RunError("render.device=gpu but Cycles finds no GPU on this machine (OptiX/CUDA/HIP/oneAPI/Metal); "
                       "use render.device=auto or cpu")


def _run_on_dask(url, groups, cfg, seed, rerender, opts: ClusterOptions, bar, timings, failures):
    from pipelines import scenes_dask
    from pipelines.cluster import connect, default_layout

    if opts.scheduler:  # an existing cluster's cores are not ours to count: --threads-per-worker
        workers, threads = None, opts.threads_per_worker or 1
    else:
        workers, threads = default_layout(cfg["render"], workers=opts.workers, threads=opts.threads_per_worker)
    fn = scenes_dask.render_group_subprocess if opts.blender == "subprocess" else scenes_dask.render_group_task
    with connect(opts.scheduler, workers, threads) as client:
        bar.delay = 0
        bar.refresh()
        futures = {}
        for g in groups:
            f = client.submit(fn, url, g, cfg, seed, threads, rerender, recycle_after=opts.recycle_after,
                              max_rss_mib=opts.max_rss_mib, resources={"render": 1}, retries=opts.retries,
                              pure=False, key=f"render-scenes-{g[0][0]}-{g[-1][0]}-{os.getpid()}")
            futures[f] = g
        try:
            for f in _completed(client, futures, opts.stall_timeout_s):
                g = futures.pop(f)
                if f.status == "error":
                    err = f.exception()
                    msg = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
                    for i, _ in g:
                        failures[i] = msg
                    bar.update(len(g))
                    continue
                result = f.result()
                timings.extend(result)
                bar.update(len(g))
                f.release()
        except BaseException:
            client.cancel(list(futures))
            raise


def _completed(client, futures, stall_timeout_s: float, poll_s: float = 0.2):
    """Futures as they finish, like ``as_completed``, but raise RunError once the cluster
    has had no worker for ``stall_timeout_s`` (every worker lost and none restarted), where
    ``as_completed`` would wait forever.  Finished scenes are in the store: --resume."""
    from distributed import as_completed

    ac = as_completed(futures)
    workerless_since, checked = None, 0.0
    while not ac.is_empty():
        batch = ac.next_batch(block=False)
        if batch:
            workerless_since = None
            yield from batch
            continue
        now = time.monotonic()
        if now - checked > 5.0:
            checked = now
            if client.scheduler_info().get("workers"):
                workerless_since = None
            elif workerless_since is None:
                workerless_since = now
            elif now - workerless_since > stall_timeout_s:
                raise RunError(f"the Dask cluster has had no workers for {stall_timeout_s:.0f} s; "
                               "finished scenes are saved, continue with --resume")
        time.sleep(poll_s)


def _record_failures(st, failures: dict, attempted: list) -> None:
    """The store's failure log (group attribute, written by the driver only)."""
    log = dict(st.group.attrs.get("failures", {}))
    for i in attempted:
        log.pop(str(i), None)
    for i, msg in failures.items():
        log[str(i)] = msg
    if log or "failures" in st.group.attrs:
        st.group.attrs["failures"] = log
