"""`gen shards` end to end (read source scenes -> composite/perturb -> write shards), 320x320.

    python benchmarks/bench_shards.py --shards 8

Makes (once, cached in /tmp) a source scene store at 1280x720 with cheap RGB (2 spp: the
pixel content does not matter here), then builds shards with 1 and 2 Dask workers, and
profiles one shard in this process to say where the time goes.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

SOURCE = "/tmp/rgsd-bench-sources.zarr"
KEEP = "/tmp/rgsd-bench-shards.zarr"  # the 2-worker output, kept for benchmarks/bench_loader.py


def ensure_sources(n: int) -> str:
    from pipelines import scenes_run
    from scenes import store as scene_store
    from scenes.config import build_config
    try:
        if scene_store.open_store(SOURCE).done().sum() >= n:
            return SOURCE
    except scene_store.StoreError:
        pass
    cfg = build_config("default", overrides=["render.samples=1", "render.denoise=false", "render.max_bounces=0",
                                             "scene.scenario=mix"])
    scenes_run.run(SOURCE, n=n, cfg=cfg, seed=5, overwrite=True, cluster=scenes_run.ClusterOptions(workers=2))
    return SOURCE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--shard-size", type=int, default=256)
    ap.add_argument("--sources", type=int, default=24)
    args = ap.parse_args()
    from pipelines import shards_run
    from scenes import store as scene_store

    src = ensure_sources(args.sources)
    cfg = shards_run.shard_config(320, {"shard_size": args.shard_size})
    n = args.shards * args.shard_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (0, 1, 2):
            out = KEEP if workers == 2 else os.path.join(tmp, f"w{workers}.zarr")
            shutil.rmtree(out, ignore_errors=True)  # deleting an earlier, bigger store is not the run
            t0 = time.perf_counter()
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            result = shards_run.run(out, [src], samples=n, cfg=cfg, seed=1, overwrite=True,
                                    cluster=shards_run.ClusterOptions(workers=workers))
            assert result.code == 0
            wall = time.perf_counter() - t0
            if workers == 0:  # this process did all the work, writer thread included
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu_s = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
            res = result.results
            peak = max(r.get("peak_rss_mib", 0) for r in res)
            # Per core, steady state: samples over the seconds tasks ran (each task holds one
            # core), which leaves out starting the cluster and the workers.
            task_s = sum(r["build"] + r["write"] for r in res)
            rows.append((workers, n / wall, peak, sum(r["samples"] for r in res) / task_s))
        # Where the time goes: one shard in this process.
        st = scene_store.open_store(src)
        refs = [(0, int(i)) for i in range(st.n) if st.done()[i]]
        from composer.sampler import build_shard
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        build_shard([st], refs, 0, cfg, 1)
        prof.disable()
        one = time.perf_counter() - t0
    print(f"patch 320, shard {args.shard_size} samples, {args.shards} shards per row, sources {args.sources} "
          f"scenes at 1280x720, {os.cpu_count()} cores")
    for workers, rate, peak, per_task in rows:
        label = "in-process loop (no Dask)" if workers == 0 else f"dask {workers} worker(s) x 1 thread"
        print(f"  {label:32s} {rate:7.1f} samples/s wall ({rate / max(workers, 1):.1f} per core incl. start-up), "
              f"{per_task:.1f} samples/s per busy core, peak RSS {peak:.0f} MiB")
    print(f"  in-process CPU time: {cpu_s:.2f} s user+sys for {n} samples -> {n / cpu_s:.0f} samples per CPU-second")
    print(f"profile of one shard in-process ({one:.2f} s, {args.shard_size / one:.0f} samples/s), top by own time:")
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]
    for (file, line, fn), (_cc, _nc, tt, _ct, _callers) in rows:
        print(f"  {tt / one * 100:5.1f} %  {fn} ({os.path.basename(file)}:{line})")


if __name__ == "__main__":
    main()
