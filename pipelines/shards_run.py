"""``gen shards``: composited, perturbed training shards from scene stores, on Dask."""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time

import numpy as np

from composer import shard_store
from composer.shard_config import ShardConfig, ShardConfigError
from pipelines import runner
from pipelines.runner import ClusterOptions, RunError, RunResult  # noqa: F401 - re-exported for callers
from scenes import store as scene_store
from scenes import store_lock


def shard_config(patch: int, overrides: dict | None = None) -> ShardConfig:
    try:
        return ShardConfig.build(patch, overrides)
    except ShardConfigError as exc:
        raise RunError(str(exc)) from None


def _open_sources(urls: list[str], patch: int):
    stores, refs = [], []
    for si, url in enumerate(urls):
        try:
            st = scene_store.open_store(url)
        except scene_store.StoreError as exc:
            raise RunError(str(exc)) from None
        r = st.attrs["resolution"]
        if patch > min(r["width"], r["height"]):
            raise RunError(f"--patch {patch} is larger than the {r['width']}x{r['height']} scenes of {url}")
        done = np.flatnonzero(st.done())
        if len(done) == 0:
            raise RunError(f"{url} has no finished scenes")
        stores.append(st)
        refs += [(si, int(i)) for i in done]
    if len({tuple(s.attrs["classes"]) for s in stores}) > 1:
        raise RunError("source stores have different class tables")
    return stores, refs


def _check_mask_kinds(stores, refs, cfg, mix_given: bool = True):
    """The config to build with, after a look at a sample of the sources' scenes for each
    requested mask kind.  A kind they cannot give is refused when the user named it
    (``--mask-mix``); from the default mix it is dropped, the other weights renormalised and
    the change said in one line (the store's config records the mix it was built with)."""
    from composer.sampler import load_scene, mask_candidates
    rng = np.random.default_rng(0)
    found = {k: 0 for k in shard_store.MASK_KINDS}
    for p in rng.permutation(len(refs))[:64]:
        si, i = refs[int(p)]
        c = mask_candidates([load_scene(stores[si], i, cfg.near_m)], stores[0].attrs["classes"], cfg)
        for k, v in c.items():
            found[k] += len(v)
        if all(found[k] for k, w in cfg.mask_mix.items() if w > 0):
            return cfg
    missing = [k for k, w in cfg.mask_mix.items() if w > 0 and not found[k]]
    if len(missing) == len([k for k, w in cfg.mask_mix.items() if w > 0]):
        raise RunError(f"the sources have no masks of any requested kind ({', '.join(missing)})")
    if mix_given:
        raise RunError(f"the sources have no '{missing[0]}' masks (objects >= {cfg.min_fraction:.0%} of "
                       f"the image); set its weight to 0 with --mask-mix")
    kept = {k: w for k, w in cfg.mask_mix.items() if w > 0 and found[k]}
    total = sum(kept.values())
    mix = {k: w / total for k, w in kept.items()}
    print(f"note: the sources have no {', '.join(repr(k) for k in missing)} masks (objects >= {cfg.min_fraction:.0%} "
          f"of the image); building with the default mix's other kinds, renormalised: "
          f"{json.dumps({k: round(w, 4) for k, w in mix.items()})}", file=sys.stderr)
    return dataclasses.replace(cfg, mask_mix=mix)


def build_shard_task(job: dict, j: int) -> dict:
    """Runs in a worker: build shard j and write it (whole chunks), then done[j] (its own chunk).
    ``job``: {"out", "sources", "refs", "cfg", "seed"}, shared by every task of a run."""
    from concurrent.futures import ThreadPoolExecutor

    from composer.sampler import build_shard
    t0 = time.perf_counter()
    cfg = job["cfg"]
    stores = [scene_store.open_store(u) for u in job["sources"]]
    out = shard_store.open_shards(job["out"], mode="r+")
    if out.is_done(j):
        return {"shard": j, "skipped": True}
    # Chunks are written from a second thread while the next ones are built: compression and
    # file writes release the GIL, so the two overlap.
    with ThreadPoolExecutor(1) as writer:
        pending = []
        try:
            build_shard(stores, job["refs"], j, cfg, job["seed"],
                        on_chunk=lambda arrays, a, b: pending.append(writer.submit(out.write_samples, j, arrays, a, b)))
        except scene_store.ChunkError as exc:  # a damaged source: returned, not raised, so that
            return {"shard": j, "error": str(exc)}  # Dask neither retries nor logs a traceback
        t1 = time.perf_counter()
        for f in pending:
            f.result()
    out.mark_done(j)
    import resource
    return {"shard": j, "build": t1 - t0, "write": time.perf_counter() - t1, "samples": cfg.shard_size,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


@store_lock.one_writer("gen shards")
def run(out_url: str, sources: list[str], *, samples: int, cfg: ShardConfig, seed: int, overwrite=False,
        resume=False, cluster: ClusterOptions | None = None, mix_given: bool = True) -> RunResult:
    """Build the shards the store at ``out_url`` lacks.  ``result.results``: one dict per
    shard built (timings, the worker's peak memory), for benchmarks.  ``mix_given``: the
    mask mix is the user's (kinds the sources lack are refused), not the default (dropped)."""
    from tqdm import tqdm

    opts = cluster or ClusterOptions()
    if opts.scheduler:
        from pipelines.cluster import reachable
        reachable(opts.scheduler)
    if scene_store.safety.writable(out_url):
        raise RunError(f"cannot write to {scene_store.safety.writable(out_url)} (read-only)")
    stores, refs = _open_sources(sources, cfg.patch)
    n_shards = math.ceil(samples / cfg.shard_size)
    try:
        if resume:
            st = shard_store.open_shards(out_url, mode="r+")
            if not mix_given:  # the default mix as this store realised it
                cfg = dataclasses.replace(cfg, mask_mix=st.attrs["config"].get("mask_mix", cfg.mask_mix))
            # a store begun before a setting existed was built with what is now its default
            recorded = {**ShardConfig().to_dict(), **st.attrs["config"]}
            runner.check_resume({"config": recorded, "seed": st.attrs["seed"],
                                 "sources": st.attrs["sources"], "shards": st.n_shards},
                                {"config": cfg.to_dict(), "seed": seed, "sources": list(sources), "shards": n_shards})
        else:
            cfg = _check_mask_kinds(stores, refs, cfg, mix_given)
            st = shard_store.create(out_url, n_shards, cfg.shard_size, cfg.patch, cfg.to_dict(), sources, seed,
                                    overwrite=overwrite, chunk_size=cfg.chunk_size)
    except shard_store.StoreError as exc:
        raise RunError(str(exc)) from None
    todo = np.flatnonzero(~st.done())
    if not len(todo):
        print(f"{out_url}: all {n_shards} shards already done", file=sys.stderr)
        return RunResult(0, n_shards, n_shards)
    bar = tqdm(total=len(todo) * cfg.shard_size, unit="sample", desc="samples", dynamic_ncols=True,
               file=sys.stderr, delay=0 if opts.in_process else 1e9, smoothing=0.05)
    t0 = time.perf_counter()
    results: list[dict] = []
    failures: dict[int, str] = {}
    job = {"out": out_url, "sources": list(sources), "refs": refs, "cfg": cfg, "seed": seed}
    tasks = (runner.Task(key=f"shard-{int(j)}-{t0:.6f}", items=[int(j)], arg=int(j)) for j in todo)

    def on_result(task, result):
        if "error" in result:  # a damaged source spoils every shard drawing from it: stop
            bar.leave = False  # the error line alone, not a stalled bar above it
            raise RunError(f"{result['error']} (shards written so far are kept: --resume once it is repaired)")
        results.append(result)
        bar.update(cfg.shard_size)

    def on_failure(task, msg):
        failures[task.items[0]] = msg
        bar.update(cfg.shard_size)

    def on_cluster():
        bar.delay = 0
        bar.refresh()

    code = 0
    try:
        # Shards are CPU-bound numpy/OpenCV work: one single-threaded worker per core.
        runner.execute(build_shard_task, tasks, (job,), opts, on_result=on_result, on_failure=on_failure,
                       layout=(opts.workers, 1), on_cluster=on_cluster)
    except KeyboardInterrupt:
        code = 130
    finally:
        bar.close()
        done = st.done()
        log_error = runner.update_failure_log(st.group, failures, done, tolerate=True)
        runner.disarm()  # after the flags are written: a second Ctrl-C until then exits at once
    nd = int(done.sum())
    wall = time.perf_counter() - t0
    if code == 130:
        runner.print_err(f"\n{runner.interrupted_line(nd, n_shards, 'shards')}")
        return RunResult(130, nd, n_shards, wall, failures, results)
    n = sum(r.get("samples", 0) for r in results)
    if failures:  # one line: the failures and what was done
        first = next(iter(failures.items()))
        where = f"see 'gen info {out_url}'" if log_error is None else f"failure log not written: {log_error}"
        print(f"error: {len(failures)} shard(s) failed (shard {first[0]}: {first[1]}), {nd}/{n_shards} done; "
              f"{where}, fix, then --resume", file=sys.stderr)
        code = 1
    else:
        print(f"{out_url}: {nd}/{n_shards} shards ({st.n_samples} samples) done; "
              f"{n / wall:.0f} samples/s", file=sys.stderr)
    return RunResult(code, nd, n_shards, wall, failures, results)
