"""Time of day and weather (issue 16): render cost and noise of each look against the clear day
of the same layout, and a contact sheet.

    python benchmarks/bench_night.py                          # small (640x360, 8 spp), 3 scenarios
    python benchmarks/bench_night.py --seeds 1 2 --noise      # + PSNR against a 64-spp render
    python benchmarks/bench_night.py --sheet docs/issue16/night_sheet.png
    python benchmarks/bench_night.py --looks day night --noise --quiet-sensor --night-scales 1 2 3

Every look renders the same layout (the time-of-day and weather draws never touch the
scene's generator): ``day`` is the scene with the knobs off, the others force one look.
Cost is CPU time (getrusage user+sys of this process, all Cycles threads) of the whole
render_scene call (build, RGB, annotation pass), the median of ``--repeat`` runs.  Noise is
the PSNR of the stored 8-bit RGB against the same look rendered at 64 spp (another Cycles
seed, denoised), so the figure measures what 8 spp leaves, day against night.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_scenes import cpu_s  # noqa: E402

OFF = ["lighting.night_fraction=0", "lighting.dusk_fraction=0", "weather.cloudy_fraction=0", "weather.wet_fraction=0"]
LOOKS = {
    "day": OFF,
    "overcast": OFF[:3] + ["weather.cloudy_fraction=1", "weather.cloud_cover=[0.9,0.9]"],
    "wet": OFF[:2] + ["weather.cloudy_fraction=0", "weather.wet_fraction=1", "weather.rain_fraction=1",
                      "weather.puddles=[0.7,0.7]"],
    "dusk": ["lighting.night_fraction=0", "lighting.dusk_fraction=1"] + OFF[2:],
    "night": ["lighting.night_fraction=1", "lighting.dusk_fraction=0"] + OFF[2:],
    "night_wet": ["lighting.night_fraction=1", "lighting.dusk_fraction=0", "weather.cloudy_fraction=0",
                  "weather.wet_fraction=1", "weather.rain_fraction=0", "weather.puddles=[0.7,0.7]"],
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--scenarios", nargs="+", default=["street", "city", "openroad"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--looks", nargs="+", default=list(LOOKS))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--noise", action="store_true", help="PSNR against a 64-spp render of the same look")
    ap.add_argument("--quiet-sensor", action="store_true",
                    help="synthetic sensor noise off (it would count as render error in --noise)")
    ap.add_argument("--night-scales", nargs="+", type=float, default=[],
                    help="render night looks once per render.night_samples_scale given (default: the preset's)")
    ap.add_argument("--sheet", default="", help="PNG contact sheet: a row per scene, a column per look")
    ap.add_argument("--out", default="benchmarks/.cache/night/results.json")
    args = ap.parse_args()

    from generator.render import render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene

    rows, tiles, labels = [], [], []
    for scenario in args.scenarios:
        for seed in args.seeds:
            row = []
            quiet = ["camera_pipeline.noise_shot=[0,0]", "camera_pipeline.noise_read=[0,0]"] if args.quiet_sensor else []
            runs = [(look, []) for look in args.looks if not (look.startswith("night") and args.night_scales)]
            runs += [(look, [f"render.night_samples_scale={x:g}"]) for look in args.looks
                     if look.startswith("night") for x in args.night_scales]
            for look, scale in runs:
                cfg = build_config(args.preset, overrides=[f"scene.scenario={scenario}", *LOOKS[look], *quiet, *scale])
                spec = sample_scene(cfg, seed, 0)
                times, lights = [], 0
                for _ in range(args.repeat):
                    t0 = cpu_s()
                    arrays, timings = render_scene(spec, cfg)
                    times.append(cpu_s() - t0)
                import bpy
                lights = len(bpy.data.lights)  # the sun stays; the scene's lamps were removed
                rec = {"scenario": scenario, "seed": seed, "look": look, "cpu_s": float(np.median(times)),
                       "night_samples_scale": cfg["render"]["night_samples_scale"],
                       "wall_rgb_s": timings["rgb"], "mean_luma": float((arrays["rgb"] @ [0.2126, 0.7152, 0.0722]).mean() / 255),
                       "time_of_day": spec.lighting.get("time_of_day", "day"), "weather": spec.weather,
                       "lamps": sum(1 for o in spec.objects if o.kind == "street_light"), "lights_left": lights}
                if args.noise:
                    ref_cfg = build_config(args.preset, overrides=[f"scene.scenario={scenario}", *LOOKS[look], *quiet,
                                                                   "render.samples=64", "render.adaptive_threshold=0",
                                                                   "render.night_samples_scale=1"])
                    ref_spec = sample_scene(ref_cfg, seed, 0)
                    ref_spec.index += 7919  # another Cycles seed: the reference's noise is its own
                    ref = render_scene(ref_spec, ref_cfg)[0]["rgb"]
                    rec["psnr_db"] = psnr(arrays["rgb"], ref)
                rows.append(rec)
                print(json.dumps(rec), flush=True)
                row.append(arrays["rgb"])
                labels = [*labels, look + (f" x{cfg['render']['night_samples_scale']:g}" if scale else "")][-len(runs):]
            tiles.append(row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    if args.sheet:
        from PIL import Image, ImageDraw
        h, w = tiles[0][0].shape[:2]
        s = 2 if w >= 640 else 1
        sheet = Image.new("RGB", (len(labels) * w // s, len(tiles) * h // s + 14), "white")
        d = ImageDraw.Draw(sheet)
        for j, look in enumerate(labels):
            d.text((j * w // s + 4, 1), look, fill="black")
        for i, row in enumerate(tiles):
            for j, rgb in enumerate(row):
                sheet.paste(Image.fromarray(rgb).resize((w // s, h // s)), (j * w // s, 14 + i * h // s))
        Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.sheet)


if __name__ == "__main__":
    main()
