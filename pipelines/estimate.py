"""``gen scenes --n N --estimate``: render a few scenes of the config in this process and
project the run's cost -- core-hours (or GPU-hours when Cycles renders on a GPU) and disk --
before any of it is spent."""
from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time

SAMPLE = 3  # scenes rendered for the estimate


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def estimate(n: int, cfg: dict, seed: int, threads: int | None = None, sample: int = SAMPLE) -> dict:
    """Render ``min(n, sample)`` scenes (0, 1, ...) of ``cfg`` into a scratch store and scale up.

    Per scene: the wall time of its phases (build, rgb, annotations, write; Blender's start
    is left out), CPU = that wall time x the run's measured CPU/wall ratio (all Cycles
    threads count), disk = the scratch store's bytes / scenes."""
    from pipelines.runner import ClusterOptions
    from pipelines.scenes_run import PHASES, RunError, run
    from scenes.groups import bytes_stored
    k = max(1, min(n, sample))
    tmp = tempfile.mkdtemp(prefix="rgsd-estimate-")
    try:
        url = os.path.join(tmp, "sample.zarr")
        c0, t0 = _cpu_s(), time.perf_counter()
        res = run(url, n=k, cfg=cfg, seed=seed, cluster=ClusterOptions(workers=0, threads_per_worker=threads))
        cpu, wall = _cpu_s() - c0, time.perf_counter() - t0
        if res.code:
            raise RunError(f"--estimate: the sample scenes failed to render (exit {res.code})")
        size = bytes_stored(url)
        from generator.blender import device
        dev = device()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per_wall = sum(res.stats.get(p, 0.0) for p in PHASES) / k
    per_cpu = per_wall * cpu / max(wall, 1e-9)
    return {"scenes": n, "sampled": k, "device": dev, "wall_s_per_scene": per_wall, "cpu_s_per_scene": per_cpu,
            "bytes_per_scene": size / k, "core_hours": n * per_cpu / 3600, "gpu_hours": n * per_wall / 3600
            if dev != "CPU" else 0.0, "disk_bytes": n * size / k}


def report(e: dict, cfg: dict) -> str:
    r = cfg["render"]
    what = (f"{cfg['scene']['scenario']}, {r['width']}x{r['height']}, {r['samples']} spp; "
            f"from {e['sampled']} scene(s) rendered here on {e['device']}")
    gb = e["disk_bytes"] / 1e9
    lines = [f"estimate for {e['scenes']:,} scenes ({what}):",
             f"  per scene: {e['wall_s_per_scene']:.2f} s wall, {e['cpu_s_per_scene']:.2f} CPU-s, "
             f"{e['bytes_per_scene'] / 1e6:.2f} MB",
             f"  compute:   {e['core_hours']:,.1f} core-hours"
             + (f", {e['gpu_hours']:,.1f} GPU-hours (one GPU per worker)" if e["gpu_hours"] else ""),
             f"  disk:      {gb:,.2f} GB" if gb >= 0.1 else f"  disk:      {e['disk_bytes'] / 1e6:,.1f} MB",
             "  (scenes vary: more sampled scenes, --set of the real config and the target machine give a "
             "truer figure; wall time = core-hours / cores in use)"]
    return "\n".join(lines)


def main_estimate(n: int, cfg: dict, seed: int, threads: int | None) -> None:
    print(report(estimate(n, cfg, seed, threads), cfg), file=sys.stdout)
