"""Cost of the real camera (issue 16): lens distortion and motion blur vs a pinhole camera
with an instant shutter, on the same scenes (same seeds), rendered in this one process.

    python benchmarks/bench_camera.py --preset small --scenes 4 --scenario mix

Each scene is sampled with the camera knobs off, then rendered three ways in turn (so a
change of machine load hits all three alike): as drawn, with a lens (k1, k2, k3 =
--lens), with a shutter of --shutter seconds.  Prints wall and CPU seconds per variant.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_scenes import cpu_s  # noqa: E402

OFF = ["camera.hfov_offset_deg=[0,0]", "camera.roll_deg=[0,0]", "camera.pitch_offset_deg=[0,0]",
       "camera.height_offset_m=[0,0]", "camera.distortion_fraction=0", "camera.shutter_s=[0,0]"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--scenario", default="mix")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--lens", default="-0.2,0.08,0", help="k1,k2,k3 of the distorted variant")
    ap.add_argument("--shutter", type=float, default=0.01, help="seconds, the motion-blurred variant")
    args = ap.parse_args()

    from generator.render import render_scene
    from scenes.camera import radial_lens
    from scenes.config import build_config
    from scenes.sampling import sample_scene

    cfg = build_config(args.preset, overrides=[f"scene.scenario={args.scenario}", *OFF])
    k = [float(x) for x in args.lens.split(",")]
    render_scene(sample_scene(cfg, args.seed + 1, 0), cfg)  # one-off kernel and material set-up
    sums: dict = {}
    for i in range(args.scenes):
        base = sample_scene(cfg, args.seed, i)
        lens = copy.deepcopy(base)
        lens.camera.lens = radial_lens(*k, base.camera.hfov_deg, base.camera.width, base.camera.height)
        blur = copy.deepcopy(base)
        blur.camera.shutter_s = args.shutter
        for name, spec in (("off", base), ("lens", lens), ("blur", blur)):
            t0, c0 = time.perf_counter(), cpu_s()
            _, t = render_scene(spec, cfg)
            row = {"total": time.perf_counter() - t0, "cpu": cpu_s() - c0, "rgb": t["rgb"], "annotations": t["annotations"]}
            for key, v in row.items():
                sums.setdefault(name, {}).setdefault(key, 0.0)
                sums[name][key] += v
            print(f"scene {i} {base.scenario:8s} {name:4s} " + "  ".join(f"{key} {v:6.2f}" for key, v in row.items()),
                  file=sys.stderr)
    r = cfg["render"]
    print(f"preset {args.preset} ({r['width']}x{r['height']}, {r['samples']} spp), scenario {args.scenario}, "
          f"seed {args.seed}, {args.scenes} scenes, {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
    print("| variant | total s/scene | CPU s/scene | RGB s | annotations s | total vs off |")
    print("|---|---|---|---|---|---|")
    for name, s in sums.items():
        m = {key: v / args.scenes for key, v in s.items()}
        print(f"| {name} | {m['total']:.2f} | {m['cpu']:.2f} | {m['rgb']:.2f} | {m['annotations']:.2f} | "
              f"{s['total'] / sums['off']['total']:.2f}x |")


if __name__ == "__main__":
    main()
