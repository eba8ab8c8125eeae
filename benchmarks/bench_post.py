"""Issue 16's camera pipeline: cost per effect, brightness with and without auto exposure,
and a Cycles fog volume beside Koschmieder's law.

    python benchmarks/bench_post.py cost --preset small --scenes 3
    python benchmarks/bench_post.py brightness --preset small --scenes 12 --scenario mix --seed 11
    python benchmarks/bench_post.py volume --preset small --visibility 150 --out docs/issue16
    python benchmarks/bench_post.py sheet --preset small --out docs/issue16

``cost``: the same scenes (same seeds) rendered with each effect alone and all on; seconds of
the RGB render, of the post-processes and of the whole scene.  ``brightness``: mean Rec. 709
luma of the stored sRGB (as ``gen stats --pixels``) per frame, auto exposure on vs off.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

LUMA = np.array([0.2126, 0.7152, 0.0722])
EFFECTS = {
    "exposure": {"exposure": {"key": 0.18, "min_gain_ev": -8.0, "max_gain_ev": 8.0}},
    "sigmoid": {"response": {"curve": "sigmoid", "contrast": 0.65}},
    "noise": {"noise": {"shot": 2e-4, "read": 3e-4}},
    "bloom": {"bloom": {"intensity": 0.05, "threshold": 1.0}},
    "vignetting": {"vignetting": 0.25},
}
FOG = {"fog_visibility_m": 150.0}
RAIN = {"rain": 0.8}
RAIN_POST = {"rain_streaks": {"length": 0.08, "tilt_deg": 8.0}}


def variants() -> dict:
    allpost = {k: v for e in EFFECTS.values() for k, v in e.items()}
    out = {"off (PNG path)": ({}, {}), "linear, no effect": ({"vignetting": 0.0}, {})}
    out.update({name: (p, {}) for name, p in EFFECTS.items()})
    out["fog"] = ({}, FOG)
    out["rain streaks"] = (RAIN_POST, RAIN)
    out["all on"] = ({**allpost, **RAIN_POST}, {**FOG, **RAIN})
    out["all on, AgX"] = ({**{k: v for k, v in allpost.items() if k != "response"}, **RAIN_POST}, {**FOG, **RAIN})
    return out


def luma(rgb) -> float:
    return float((np.asarray(rgb, np.float64)[..., :3] @ LUMA).mean() / 255.0)


def _variant(spec, post, weather):
    s = copy.deepcopy(spec)
    s.post, s.weather = copy.deepcopy(post), {**s.weather, **weather}
    return s


def cost(args) -> None:
    from generator.render import render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    cfg = build_config(args.preset, overrides=[f"scene.scenario={args.scenario}", "variety.enabled=false"])
    render_scene(sample_scene(cfg, args.seed, 99), cfg)  # warm-up: kernels, materials
    rows: dict = {}
    for i in range(args.scenes):
        base = sample_scene(cfg, args.seed, i)
        for name, (p, w) in variants().items():
            t0 = time.perf_counter()
            _, t = render_scene(_variant(base, p, w), cfg)
            t["total"] = time.perf_counter() - t0
            rows.setdefault(name, []).append(t)
    r = cfg["render"]
    print(f"preset {args.preset} ({r['width']}x{r['height']}, {r['samples']} spp), {args.scenario}, "
          f"{args.scenes} scenes, seed {args.seed}, load {os.getloadavg()[0]:.2f}")
    print("| variant | RGB render s | post s | scene total s | total vs off |")
    print("|---|---|---|---|---|")
    off = np.mean([t["total"] for t in rows["off (PNG path)"]])
    for name, ts in rows.items():
        m = {k: np.mean([t.get(k, 0.0) for t in ts]) for k in ("rgb", "post", "total")}
        print(f"| {name} | {m['rgb']:.3f} | {m['post']:.3f} | {m['total']:.3f} | {m['total'] / off:.2f}x |")


def brightness(args) -> None:
    from generator.render import render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    over = [f"scene.scenario={args.scenario}"]
    configs = {"variety off (today)": over + ["variety.enabled=false"],
               "auto exposure only": over + list(ONLY_AE),
               "variety on (defaults)": over}
    print(f"preset {args.preset}, {args.scenario}, seed {args.seed}, {args.scenes} scenes, "
          f"load {os.getloadavg()[0]:.2f}")
    print("| config | scene | scenario | sun elev | mean luma | gain EV |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for label, o in configs.items():
        cfg = build_config(args.preset, overrides=o)
        lum, t = [], []
        for i in range(args.scenes):
            spec = sample_scene(cfg, args.seed, i)
            t0 = time.perf_counter()
            arrays, _ = render_scene(spec, cfg)
            t.append(time.perf_counter() - t0)
            y = luma(arrays["rgb"])
            lum.append((y, spec.lighting["sun_elevation_deg"] > 0))
            ev = spec.post.get("applied", {}).get("gain_ev", "")
            print(f"| {label} | {i} | {spec.scenario} | {spec.lighting['sun_elevation_deg']:.0f} | {y:.3f} | {ev} |")
        day = [y for y, d in lum if d]
        summary[label] = (np.mean([y for y, _ in lum]), np.mean([y < 0.12 for y in day]) if day else float("nan"),
                          min(y for y, _ in lum), np.mean(t))
    print("\n| config | mean luma | daylight frames < 0.12 | darkest | s/scene |")
    print("|---|---|---|---|---|")
    for label, (m, share, lo, s) in summary.items():
        print(f"| {label} | {m:.3f} | {share:.0%} | {lo:.3f} | {s:.2f} |")


ONLY_AE = ('camera_pipeline.response={"sigmoid":0,"gamma":0}', "camera_pipeline.noise_shot=[0,0]",
           "camera_pipeline.noise_read=[0,0]", "camera_pipeline.bloom_intensity=[0,0]",
           "camera_pipeline.vignetting=[0,0]", "fog.fraction=0",
           # the people knobs draw from the scene's generator: off, so these are today's scenes
           "people.natural=false", "people.child_fraction=0", "people.group_fraction=0")


def volume(args) -> None:
    """One scene: Koschmieder fog (the path) vs a Cycles fog layer (a 60 m Principled Volume
    box, 4 km wide), same visibility; RGB render seconds and the two pictures."""
    import bpy
    from PIL import Image

    from generator import post
    from generator.render import render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    cfg = build_config(args.preset, overrides=[f"scene.scenario={args.scenario}", "variety.enabled=false"])
    spec = sample_scene(cfg, args.seed, 0)
    render_scene(spec, cfg)  # warm-up
    pics, secs = {}, {}
    for name, p, w in (("clear", {}, {}), ("koschmieder", {}, {"fog_visibility_m": args.visibility})):
        t0 = time.perf_counter()
        a, t = render_scene(_variant(spec, p, w), cfg)
        secs[name] = (t["rgb"] + t.get("post", 0.0), time.perf_counter() - t0)
        pics[name] = a["rgb"]
    beta = post.beta_of(args.visibility)
    mat = bpy.data.materials.new("bench.fog")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.clear()
    vol = nt.nodes.new("ShaderNodeVolumePrincipled")
    vol.inputs["Density"].default_value = beta  # Cycles' density is the extinction per metre
    vol.inputs["Color"].default_value = (1, 1, 1, 1)  # white: scattering only, no absorption
    outn = nt.nodes.new("ShaderNodeOutputMaterial")
    nt.links.new(vol.outputs["Volume"], outn.inputs["Volume"])
    bpy.ops.mesh.primitive_cube_add(size=1.0)
    box = bpy.context.object
    box.scale = (4000.0, 4000.0, 60.0)
    box.location = (0.0, 0.0, 29.0)
    box.data.materials.append(mat)
    bounces = bpy.context.scene.cycles.volume_bounces
    bpy.context.scene.cycles.volume_bounces = cfg["render"]["max_bounces"]  # Cycles' default 0: no in-scatter
    try:
        t0 = time.perf_counter()
        a, t = render_scene(spec, cfg)
        secs["cycles volume"] = (t["rgb"], time.perf_counter() - t0)
        pics["cycles volume"] = a["rgb"]
    finally:
        bpy.context.scene.cycles.volume_bounces = bounces
        bpy.data.objects.remove(box)
        bpy.data.materials.remove(mat)
    print(f"preset {args.preset}, visibility {args.visibility} m (beta {beta:.4f}/m), {spec.scenario}, "
          f"seed {args.seed}, load {os.getloadavg()[0]:.2f}")
    print("| fog | RGB (+ post) s | scene total s | mean luma |")
    print("|---|---|---|---|")
    for name, (s, tot) in secs.items():
        print(f"| {name} | {s:.2f} | {tot:.2f} | {luma(pics[name]):.3f} |")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "post_fog_volume_vs_koschmieder.jpg")
        Image.fromarray(np.concatenate(list(pics.values()), 1)).save(path, quality=85)
        print("wrote", path)


SHEET = {  # on top of auto exposure, at the top of each default range, so each shows
    "auto exposure": {}, "sigmoid curve": {"response": {"curve": "sigmoid", "contrast": 0.65}},
    "gamma curve": {"response": {"curve": "gamma", "gamma": 2.2}},
    "noise": {"noise": {"shot": 2e-4, "read": 3e-4}}, "bloom": {"bloom": {"intensity": 0.06, "threshold": 0.8}},
    "vignetting": {"vignetting": 0.3}, "fog 150 m": {}, "rain 0.8": RAIN_POST,
}


def sheet(args) -> None:
    """A contact sheet per scene: off, then each effect on top of auto exposure, then all on.
    Renders each scene once (the linear path) and applies the effects to that render."""
    import bpy
    from PIL import Image, ImageDraw

    import generator.render as R
    from generator import post
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    over = [f"scene.scenario={args.scenario}", "variety.enabled=false"]
    if args.size:
        w, h = args.size.split("x")
        over += [f"render.width={w}", f"render.height={h}"]
    cfg = build_config(args.preset, overrides=over)
    grabbed, keep = {}, R._camera_pipeline

    def grab(scene, spec, combined, depth, png):
        grabbed.update(combined=combined, depth=depth)
        return keep(scene, spec, combined, depth, png)

    ae = EFFECTS["exposure"]
    allon = {**ae, **SHEET["sigmoid curve"], **SHEET["noise"], **SHEET["bloom"], **SHEET["vignetting"], **RAIN_POST}
    cols = [("off", {}, {})] + [(n, {**ae, **p}, FOG if n.startswith("fog") else RAIN if n.startswith("rain") else {})
                                for n, p in SHEET.items()] + [("all on", allon, {**FOG, **RAIN})]
    R._camera_pipeline = grab
    blocks = []
    try:
        for i in range(args.scenes):
            base = sample_scene(cfg, args.seed, i)
            off = R.render_scene(_variant(base, {"vignetting": 0.0}, {}), cfg)[0]["rgb"]
            tiles = []
            for name, p, wt in cols:
                img, _, display = post.process(grabbed["combined"], grabbed["depth"], _variant(base, p, wt))
                rgb = off if name == "off" else img if display else R.view_transform(bpy.context.scene, img,
                                                                                     "/dev/shm/rgsd-sheet.png")
                im = Image.fromarray(rgb)
                ImageDraw.Draw(im).text((4, 4), name, fill=(255, 255, 0))
                tiles.append(np.asarray(im))
            blocks.append(np.concatenate([np.concatenate(tiles[:5], 1), np.concatenate(tiles[5:], 1)], 0))
    finally:
        R._camera_pipeline = keep
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "post_effects.jpg")
    Image.fromarray(np.concatenate(blocks, 0)).save(path, quality=85)
    print("wrote", path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("cost", "brightness", "volume", "sheet"))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--scenario", default="street")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--visibility", type=float, default=150.0)
    ap.add_argument("--out", default="")
    ap.add_argument("--size", default="", help="WxH instead of the preset's, e.g. 320x180")
    args = ap.parse_args()
    {"cost": cost, "brightness": brightness, "volume": volume, "sheet": sheet}[args.what](args)


if __name__ == "__main__":
    main()
