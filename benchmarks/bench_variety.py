"""Issue 16: what scene variety costs and how bright its frames are, knob by knob.

    python benchmarks/bench_variety.py --preset small --scenes 6 --sheet docs/images/variety_small.png
    python benchmarks/bench_variety.py --preset tiny --scenes 48 --only off,mix     # brightness shares

Renders the same scenes (``--scenario``, ``--seed``, indices 0..n-1) under each setting in
this one process, interleaved scene by scene so a change in the machine's load hits every
setting alike.  Per setting: CPU seconds per scene (Cycles' threads included; the whole
scene: build, RGB, annotations, post-processing) and its ratio to ``off`` (the scenes of
before issue 16, ``variety.enabled=false``), and the mean display luminance of each frame
(Rec. 709 weights on the stored 8-bit sRGB values / 255, the figure the issue quotes),
split by time of day; with ``--sheet``, one row of thumbnails per setting.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_scenes import cpu_s  # noqa: E402

# name -> overrides on top of the preset (variety on unless said otherwise)
SETTINGS = {
    "off": ["variety.enabled=false"],
    "mix": [],  # the default variety mix
    "night": ["lighting.night_fraction=1.0", "lighting.dusk_fraction=0.0"],
    "dusk": ["lighting.night_fraction=0.0", "lighting.dusk_fraction=1.0"],
    "overcast": ["weather.cloudy_fraction=1.0"],
    "rain": ["weather.wet_fraction=1.0", "weather.rain_fraction=1.0"],
    "fog": ["fog.fraction=1.0"],
    "lens": ["camera.distortion_fraction=1.0"],
    "blur": ["camera.shutter_s=[0.01,0.01]"],
}


def luminance(rgb: np.ndarray) -> float:
    x = rgb.astype(np.float32) / 255.0
    return float((x[..., 0] * 0.2126 + x[..., 1] * 0.7152 + x[..., 2] * 0.0722).mean())


def time_of_day(spec) -> str:
    return str(spec.lighting.get("time_of_day", "day"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--scenario", default="mix")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--only", default=",".join(SETTINGS), help="comma-separated subset of " + ",".join(SETTINGS))
    ap.add_argument("--sheet", default=None, help="PNG: one row of thumbnails per setting")
    args = ap.parse_args()

    from generator.render import render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene

    names = args.only.split(",")
    cfgs = {n: build_config(args.preset, overrides=[f"scene.scenario={args.scenario}", *SETTINGS[n]]) for n in names}
    rows = {n: [] for n in names}
    thumbs = {n: [] for n in names}
    for i in range(args.scenes):
        for n in names:
            spec = sample_scene(cfgs[n], args.seed, i)
            c0, t0 = cpu_s(), time.perf_counter()
            arrays, _ = render_scene(spec, cfgs[n])
            rows[n].append({"cpu": cpu_s() - c0, "wall": time.perf_counter() - t0, "lum": luminance(arrays["rgb"]),
                            "tod": time_of_day(spec), "scenario": spec.scenario})
            thumbs[n].append(arrays["rgb"])
            print(f"scene {i} {n:9s} cpu {rows[n][-1]['cpu']:6.2f} s  lum {rows[n][-1]['lum']:.3f}  "
                  f"{rows[n][-1]['tod']} {spec.scenario}", file=sys.stderr, flush=True)
    r = cfgs[names[0]]["render"]
    print(f"preset {args.preset} ({r['width']}x{r['height']}, {r['samples']} spp), scenario {args.scenario}, "
          f"seed {args.seed}, {args.scenes} scenes per setting, load average {os.getloadavg()[0]:.1f}")
    base = np.mean([x["cpu"] for x in rows["off"][1:] or rows["off"]]) if "off" in rows else None
    print("| setting | CPU s/scene | × off | mean luminance day / dusk / night | day frames < 0.12 |")
    print("|---|---:|---:|---|---:|")
    for n in names:
        steady = rows[n][1:] or rows[n]  # the first scene pays one-off set-up
        cpu = float(np.mean([x["cpu"] for x in steady]))
        by = {t: [x["lum"] for x in rows[n] if x["tod"] == t] for t in ("day", "dusk", "night")}
        lum = " / ".join(f"{np.mean(v):.3f} ({len(v)})" if v else "-" for v in by.values())
        dark = f"{sum(v < 0.12 for v in by['day'])}/{len(by['day'])}" if by["day"] else "-"
        ratio = f"{cpu / base:.2f}" if base else "-"
        print(f"| {n} | {cpu:.1f} | {ratio} | {lum} | {dark} |")
    if args.sheet:
        _sheet(args.sheet, names, thumbs)


def _sheet(path: str, names, thumbs, width: int = 240) -> None:
    from PIL import Image, ImageDraw
    h0, w0 = thumbs[names[0]][0].shape[:2]
    th = int(round(width * h0 / w0))
    cols = max(len(v) for v in thumbs.values())
    label = 80
    sheet = Image.new("RGB", (label + cols * (width + 4), len(names) * (th + 4)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, n in enumerate(names):
        draw.text((4, r * (th + 4) + th // 2 - 6), n, fill=(0, 0, 0))
        for c, rgb in enumerate(thumbs[n]):
            sheet.paste(Image.fromarray(rgb).resize((width, th), Image.BILINEAR), (label + c * (width + 4), r * (th + 4)))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sheet.save(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
