"""`gen scenes` on Dask: scaling over worker processes x Cycles threads, Dask overhead against a
plain in-process loop, frames per layout, and in-worker bpy against a subprocess per task.

    python benchmarks/bench_dask_scenes.py --preset tiny --scenes 16
    python benchmarks/bench_dask_scenes.py --preset default --scenes 4 --skip-frames --skip-subprocess

Each row gives scenes/s over the whole command into a fresh store (starting the cluster and
Blender in every worker included, and the tail where one worker is idle), and the
steady-state rate: scenes over the seconds spent rendering and writing them, summed over
tasks and divided by the workers — what a long run (40,000 scenes) approaches.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def run_timed(cfg, n, opts, tmp, name) -> tuple[float, float]:
    """(scenes/s over the whole command, steady-state scenes/s)."""
    from pipelines import scenes_run
    url = os.path.join(tmp, f"{name}.zarr")
    t0 = time.perf_counter()
    result = scenes_run.run(url, n=n, cfg=cfg, seed=11, overwrite=True, cluster=opts)
    wall = time.perf_counter() - t0
    assert result.code == 0, name
    busy = sum(result.stats[k] for k in scenes_run.PHASES)
    return n / wall, n / (busy / max(opts.workers, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--scenes", type=int, default=16)
    ap.add_argument("--skip-frames", action="store_true")
    ap.add_argument("--skip-subprocess", action="store_true")
    ap.add_argument("--rows", default="loop1,loop2,d11,d12,d21",
                    help="which of loop1, loop2, d11, d12, d21 to run (plus subprocess/frames rows)")
    args = ap.parse_args()
    from pipelines.scenes_run import ClusterOptions
    from scenes.config import build_config

    cfg = build_config(args.preset, overrides=["scene.scenario=street"])
    n = args.scenes
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm the OS file cache and Python bytecode once, so the first row is not penalised.
        run_timed(cfg, 1, ClusterOptions(workers=0), tmp, "warm")
        want = set(args.rows.split(","))
        plan = [("loop1", "plain loop, 1 process x 1 thread (no Dask)", ClusterOptions(workers=0, threads_per_worker=1)),
                ("loop2", "plain loop, 1 process x 2 threads (no Dask)", ClusterOptions(workers=0, threads_per_worker=2)),
                ("d11", "dask 1 worker x 1 thread", ClusterOptions(workers=1, threads_per_worker=1)),
                ("d12", "dask 1 worker x 2 threads", ClusterOptions(workers=1, threads_per_worker=2)),
                ("d21", "dask 2 workers x 1 thread", ClusterOptions(workers=2, threads_per_worker=1))]
        got = {}
        for key, label, opts in plan:
            if key in want:
                got[key] = run_timed(cfg, n, opts, tmp, key)
                rows.append((label, got[key]))
        if not args.skip_subprocess:
            sub = run_timed(cfg, n, ClusterOptions(workers=2, threads_per_worker=1, blender="subprocess"), tmp, "sub")
            rows.append(("dask 2 workers x 1 thread, Blender subprocess per task", sub))
        if not args.skip_frames:
            f8 = dict(cfg, scene=dict(cfg["scene"], frames_per_layout=8))
            fr = run_timed(f8, n, ClusterOptions(workers=2, threads_per_worker=1), tmp, "frames8")
            rows.append(("dask 2 workers x 1 thread, 8 frames per layout", fr))
    r = cfg["render"]
    print(f"preset {args.preset} ({r['width']}x{r['height']}, {r['samples']} spp), street, {n} scenes per row, "
          f"{os.cpu_count()} cores")
    for name, (rate, steady) in rows:
        print(f"  {name:58s} {rate:7.3f} scenes/s  (steady state {steady:.3f})")
    if "d11" in got and ({"d12", "d21"} & set(got)):
        best = max(("d12", "d21"), key=lambda k: got.get(k, (0.0, 0.0))[0])
        print(f"scaling 1 -> 2 cores (best 2-core split {best} / dask 1x1): {got[best][0] / got['d11'][0]:.2f}x "
              f"whole command, {got[best][1] / got['d11'][1]:.2f}x steady state")
    if "loop1" in got and "d11" in got:
        print(f"dask overhead vs plain loop at 1x1: {(1 - got['d11'][0] / got['loop1'][0]) * 100:+.1f} % of wall time")
    if "loop2" in got and "d12" in got:
        print(f"dask overhead vs plain loop at 1x2: {(1 - got['d12'][0] / got['loop2'][0]) * 100:+.1f} % of wall time")


if __name__ == "__main__":
    main()
