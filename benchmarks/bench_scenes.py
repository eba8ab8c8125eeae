"""Seconds per scene split into build / RGB render / annotation passes / store write, plus RSS.

    python benchmarks/bench_scenes.py --preset tiny --scenes 100
    python benchmarks/bench_scenes.py --preset default --scenes 3

Renders in this one process, as a worker does, and writes into a temporary scene store.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    """CPU seconds of this process, Cycles' threads included: unlike wall time, barely moved
    by other work on a shared machine."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--scenario", default="street")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from generator import render
    from generator.render import render_scene
    from scenes import store as scene_store
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    from scenes.spec import pinhole_intrinsics

    cfg = build_config(args.preset, overrides=[f"scene.scenario={args.scenario}"])
    # CPU seconds of the Cycles renders by view layer: on a shared machine their ratio moves
    # far less than the wall-time one.
    render_cpu = {"main": [], "annot": []}
    cycles_render = render._render

    def timed_render(scene, layer, path):
        c0 = cpu_s()
        cycles_render(scene, layer, path)
        render_cpu[layer].append(cpu_s() - c0)

    render._render = timed_render
    with tempfile.TemporaryDirectory() as tmp:
        url = os.path.join(tmp, "bench.zarr")
        r = cfg["render"]
        st = scene_store.create(url, args.scenes, cfg, args.seed,
                                pinhole_intrinsics(r["width"], r["height"], r["hfov_deg"]))
        rows, rss = [], {}
        for i in range(args.scenes):
            t0, c0 = time.perf_counter(), cpu_s()
            spec = sample_scene(cfg, args.seed, i)
            t_spec = time.perf_counter() - t0
            arrays, t = render_scene(spec, cfg)
            w0 = time.perf_counter()
            st.write_scene(i, arrays, spec.to_json())
            t["write"] = time.perf_counter() - w0
            t["build"] += t_spec
            t["total"] = time.perf_counter() - t0
            t["cpu"] = cpu_s() - c0
            rows.append(t)
            if i + 1 in (1, 10, args.scenes):
                rss[i + 1] = rss_mib()
            print(f"scene {i:4d}  " + "  ".join(f"{k} {v:6.2f}" for k, v in t.items()), file=sys.stderr)
        size = st.bytes_stored()
    n = len(rows)
    # The first scene pays one-off costs (kernel and material set-up); report both.
    steady = rows[1:] or rows
    mean = {k: sum(r[k] for r in steady) / len(steady) for k in rows[0]}
    r = cfg["render"]
    print(f"preset {args.preset} ({r['width']}x{r['height']}, {r['samples']} spp), scenario {args.scenario}, "
          f"{n} scenes, {os.cpu_count()} cores")
    print(f"first scene total s      {rows[0]['total']:.2f}")
    print("mean s/scene (after 1st) " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    print(f"annotations / rgb render {mean['annotations'] / mean['rgb']:.3f}")
    main_cpu, annot_cpu = (sum(render_cpu[k][1:] or render_cpu[k]) for k in ("main", "annot"))
    print(f"Cycles CPU s (after 1st) rgb {main_cpu:.2f}, annotation pass {annot_cpu:.2f}, ratio {annot_cpu / main_cpu:.3f}")
    print(f"stored MB/scene          {size / n / 1e6:.3f}")
    print("RSS MiB after scenes     " + ", ".join(f"{k}: {v:.0f}" for k, v in rss.items()))
    print(f"peak RSS MiB             {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
