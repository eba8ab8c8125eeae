"""Render cost against RGB quality (issue 18): Cycles CPU core-seconds per megapixel, PSNR and
SSIM of the stored 8-bit RGB against a converged reference, and the Pareto front.

    python benchmarks/bench_render_quality.py                      # 640x360 grid, 6 scenes
    python benchmarks/bench_render_quality.py --size tiny          # 160x90 grid (the tiny preset)
    python benchmarks/bench_render_quality.py --convergence        # + reference at 2x its samples
    python benchmarks/bench_render_quality.py --only C-s8-fast     # some settings only
    python benchmarks/bench_render_quality.py --size default --cost-only --only today-default,C-s8-fast

Cost is CPU time (getrusage RUSAGE_SELF user+sys, every Cycles and OIDN thread) around the
render call alone, not wall time: on a shared machine wall time measures the neighbours.  Each
render syncs the scene from scratch (persistent data off), as a worker's RGB render of a new
scene does.  References and results are cached under benchmarks/.cache/ (gitignored): a
rerun resumes, ``--fresh`` re-measures the grid (never the references).

The reference uses another Cycles seed than the settings under test, so its noise is
independent of theirs, and more bounces (8 diffuse/glossy) than any of them.  It clamps
direct light at 10: unclamped, sub-pixel sun glints on glass never converge in display space
(two independent 128-spp references differed by 34 dB on a glinty crop, 128 vs 256 spp the
same), so an unclamped reference measures its own noise, not the settings'.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "render_quality"
SCENES = [(sc, seed) for sc in ("street", "city", "openroad") for seed in (1, 2)]
SIZES = {"small": (640, 360), "tiny": (160, 90), "default": (1280, 720)}
REF = {"samples": 128, "adaptive_threshold": 0.0, "denoise": True, "denoise_prefilter": "accurate",
       "denoise_quality": "high", "max_bounces": 8, "light_tree": True, "path_guiding": False,
       "world_map_resolution": 0, "clamp_direct": 10.0}
REF_SEED_OFFSET = 7919  # the reference's Cycles seed is this far from the one under test
CHECK_SEED_OFFSET = 15331  # a second, independent reference for --convergence

# Every quality key of the `default` preset's render block as it was before issue 18; a grid
# entry overrides some.  "C" settings add the two cheap changes this benchmark found:
# a 256-px sky importance map and a direct-light clamp of 10 (see RESULTS.md, issue 18).
TODAY = {"samples": 16, "adaptive_threshold": 0.05, "denoise": True, "denoise_prefilter": "accurate",
         "denoise_quality": "high", "max_bounces": 4, "light_tree": True, "path_guiding": False,
         "world_map_resolution": 0, "clamp_direct": 0.0}
C = {"world_map_resolution": 256, "clamp_direct": 10.0}
FAST = {"denoise_prefilter": "fast"}
RAW = {"denoise": False, "adaptive_threshold": 0.0}
GRIDS = {
    "small": {
        "today-default": {},
        "today-small": {"samples": 8, "max_bounces": 3},
        "today-high": {"samples": 64, "max_bounces": 8, "adaptive_threshold": 0.01},
        "clamp10": {"clamp_direct": 10.0},
        "C-s16": {**C},
        "C-s16-fast": {**C, **FAST},
        "C-s12-fast": {**C, "samples": 12, **FAST},
        "C-s8-fast": {**C, "samples": 8, **FAST},
        "C-s8-none": {**C, "samples": 8, "denoise_prefilter": "none"},
        "C-s8-fast-bal": {**C, "samples": 8, **FAST, "denoise_quality": "balanced"},
        "C-s4-fast": {**C, "samples": 4, **FAST},
        # adaptive sampling: a high cap where the noise is (edges, glints), early stops elsewhere
        "C-a32-t0.1-fast": {**C, "samples": 32, "adaptive_threshold": 0.1, **FAST},
        "C-a32-t0.05-fast": {**C, "samples": 32, **FAST},
        "C-a64-t0.1-fast": {**C, "samples": 64, "adaptive_threshold": 0.1, **FAST},
        # features, measured on the seed-1 scenes only (--scenes street:1,city:1,openroad:1)
        "C-s8-fast-b2": {**C, "samples": 8, **FAST, "max_bounces": 2},
        "C-s8-fast-noadapt": {**C, "samples": 8, **FAST, "adaptive_threshold": 0.0},
        "C-s8-fast-nolighttree": {**C, "samples": 8, **FAST, "light_tree": False},
        "C-s8-fast-guiding": {**C, "samples": 8, **FAST, "path_guiding": True},
        "C-s32": {**C, "samples": 32},
        "C-s32-b8": {**C, "samples": 32, "max_bounces": 8, "adaptive_threshold": 0.01},
        "C-s64-b8": {**C, "samples": 64, "max_bounces": 8, "adaptive_threshold": 0.01},
    },
    "tiny": {
        "today-tiny": {"samples": 2, "max_bounces": 1, **RAW},
        "C-s2-raw-b1": {**C, "samples": 2, "max_bounces": 1, **RAW},
        "C-s1-raw-b1": {**C, "samples": 1, "max_bounces": 1, **RAW},
        "C-s4-raw-b1": {**C, "samples": 4, "max_bounces": 1, **RAW},
        "C-s2-fast-fast-b1": {**C, "samples": 2, "max_bounces": 1, **RAW, "denoise": True, **FAST,
                              "denoise_quality": "fast"},
        "C-s4-fast-fast-b2": {**C, "samples": 4, "max_bounces": 2, **RAW, "denoise": True, **FAST,
                              "denoise_quality": "fast"},
        "C-s4-fast-bal-b2": {**C, "samples": 4, "max_bounces": 2, **RAW, "denoise": True, **FAST,
                             "denoise_quality": "balanced"},
        "C-s8-fast": {**C, "samples": 8, **FAST},
    },
}


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


class Renderer:
    """One bpy process: builds a benchmark scene once, renders it under many settings."""

    def __init__(self, width: int, height: int, threads: int):
        from generator import blender
        from scenes.config import build_config
        self.blender = blender
        self.base = build_config("default", overrides=[f"render.width={width}", f"render.height={height}",
                                                       f"render.threads={threads}", "render.device=cpu"])
        self.scene = blender.setup(self.base["render"])
        self.scene.render.use_persistent_data = False
        self.key = None
        self.built = None

    def digest(self, scenario: str, seed: int) -> str:
        """Names a benchmark scene's content in the cache, so a changed scene sampler misses it."""
        import hashlib

        from scenes.config import merge
        from scenes.sampling import sample_scene
        spec = sample_scene(merge(self.base, {"scene": {"scenario": scenario}}), seed, 0)
        return hashlib.sha256(spec.to_json().encode()).hexdigest()[:10]

    def load(self, scenario: str, seed: int):
        from generator import build
        from scenes.config import merge
        from scenes.sampling import sample_scene
        if self.key == (scenario, seed):
            return
        if self.built is not None:
            build.clear_scene(self.built)
        self.cfg = merge(self.base, {"scene": {"scenario": scenario}})
        self.spec = sample_scene(self.cfg, seed, 0)
        self.built = build.build_scene(self.scene, self.spec, self.cfg)
        self.key = (scenario, seed)

    def render(self, settings: dict, seed_offset: int = 0) -> tuple[np.ndarray, float]:
        """(stored uint8 RGB, CPU seconds of the render call)."""
        from PIL import Image

        from generator.render import _render, _set_main_settings
        r = {**self.base["render"], **settings}
        seed = (self.spec.seed * 1_000_003 + self.spec.index) % (2**31 - 1)  # what a worker uses
        _set_main_settings(self.scene, r, seed + seed_offset)
        if seed_offset:  # a reference
            c = self.scene.cycles
            c.diffuse_bounces = c.glossy_bounces = r["max_bounces"]
        path = os.path.join(self.blender.scratch_dir(), "bench.png")
        t0 = cpu_seconds()
        _render(self.scene, self.blender.MAIN, path)
        t = cpu_seconds() - t0
        rgb = np.asarray(Image.open(path).convert("RGB"))
        os.unlink(path)
        return rgb, t


def quality(img: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    return (float(peak_signal_noise_ratio(ref, img, data_range=255)),
            float(structural_similarity(ref, img, channel_axis=2, data_range=255)))


def reference(rend: Renderer, scenario: str, seed: int, size: tuple[int, int], samples: int,
              offset: int = REF_SEED_OFFSET) -> np.ndarray:
    from PIL import Image
    CACHE.mkdir(parents=True, exist_ok=True)
    tag = "" if offset == REF_SEED_OFFSET else f"_seed+{offset}"
    name = f"ref_{scenario}_{seed}_{rend.digest(scenario, seed)}_{size[0]}x{size[1]}_{samples}spp"
    path = CACHE / f"{name}_clamp{REF['clamp_direct']:g}{tag}.png"
    if path.exists():
        return np.asarray(Image.open(path).convert("RGB"))
    rend.load(scenario, seed)
    rgb, t = rend.render({**REF, "samples": samples}, seed_offset=offset)
    Image.fromarray(rgb).save(path)
    print(f"  reference {scenario} seed {seed} {samples} spp: {t:.0f} core-s", file=sys.stderr, flush=True)
    return rgb


def pareto(rows: list[dict]) -> set[str]:
    """Settings no other setting beats on both mean cost and worst-scene PSNR."""
    front = set()
    for a in rows:
        if not any(b["cost"] <= a["cost"] and b["psnr_min"] >= a["psnr_min"]
                   and (b["cost"] < a["cost"] or b["psnr_min"] > a["psnr_min"]) for b in rows):
            front.add(a["name"])
    return front


def plot(rows: list[dict], front: set[str], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=90)
    for r in rows:
        on = r["name"] in front
        ax.errorbar(r["cost"], r["psnr_mean"], yerr=[[r["psnr_mean"] - r["psnr_min"]], [r["psnr_max"] - r["psnr_mean"]]],
                    fmt="o", color="C1" if r["name"].startswith("today") else ("C0" if on else "0.6"), capsize=2, ms=4)
        ax.annotate(r["name"], (r["cost"], r["psnr_mean"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    f = sorted((r for r in rows if r["name"] in front), key=lambda r: r["cost"])
    ax.plot([r["cost"] for r in f], [r["psnr_min"] for r in f], "C0--", lw=1, label="Pareto front (worst scene)")
    ax.axhline(42, color="C3", lw=0.8, ls=":", label="42 dB")
    ax.set_xscale("log")
    ax.set_xlabel("Cycles CPU core-seconds per megapixel (mean over scenes)")
    ax.set_ylabel("PSNR vs reference, dB (mean, min..max)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--ref-samples", type=int, default=REF["samples"])
    ap.add_argument("--threads", type=int, default=0, help="Cycles threads (0 = all cores)")
    ap.add_argument("--only", default="", help="comma-separated setting names")
    ap.add_argument("--scenes", default="", help="comma-separated scenario:seed, default all six")
    ap.add_argument("--convergence", action="store_true",
                    help="render the first scene's reference again with another seed and compare the two")
    ap.add_argument("--cost-only", action="store_true", help="no references, no PSNR: CPU time only")
    ap.add_argument("--fresh", action="store_true", help="re-measure the grid (references stay cached)")
    ap.add_argument("--plot", default="", help="PNG path for the plot")
    args = ap.parse_args()

    size = SIZES[args.size]
    grid = GRIDS["small" if args.size == "default" else args.size]
    names = args.only.split(",") if args.only else list(grid)
    scenes = [(s.split(":")[0], int(s.split(":")[1])) for s in args.scenes.split(",")] if args.scenes else SCENES
    mp = size[0] * size[1] / 1e6
    rend = Renderer(*size, args.threads)
    rend.load(*scenes[0])
    rend.render({**TODAY, "samples": 1})  # one-off kernel and denoiser start-up, not measured
    CACHE.mkdir(parents=True, exist_ok=True)
    kind = "cost" if args.cost_only else f"ref{args.ref_samples}_clamp{REF['clamp_direct']:g}"
    results_path = CACHE / f"results_{size[0]}x{size[1]}_{kind}.json"
    cache = json.loads(results_path.read_text()) if results_path.exists() and not args.fresh else {}

    refs = {s: None if args.cost_only else reference(rend, *s, size, args.ref_samples) for s in scenes}
    if args.convergence and not args.cost_only:
        s = scenes[0]
        other = reference(rend, *s, size, args.ref_samples, offset=CHECK_SEED_OFFSET)
        p, q = quality(refs[s], other)
        # Independent noise: each reference's own error is half the MSE between the two.
        print(f"reference noise {s[0]} seed {s[1]}: two independent {args.ref_samples}-spp references differ by "
              f"PSNR {p:.2f} dB (SSIM {q:.5f}), so each is ~{p + 3.01:.1f} dB from converged")

    rows = []
    for name in names:
        settings = {**TODAY, **grid[name]}
        per = []
        for s in scenes:
            key = f"{s[0]}:{s[1]}:{rend.digest(*s)}|" + json.dumps(settings, sort_keys=True)
            if key not in cache and results_path.exists():  # runs in parallel share the cache
                cache = {**json.loads(results_path.read_text()), **cache}
            if key not in cache:
                rend.load(*s)
                rgb, t = rend.render(settings)
                p, q = (float("nan"),) * 2 if refs[s] is None else quality(rgb, refs[s])
                cache[key] = {"cpu_s": t, "psnr": p, "ssim": q}
                if results_path.exists():  # another run may have added results meanwhile
                    cache = {**json.loads(results_path.read_text()), **cache}
                results_path.write_text(json.dumps(cache, indent=1))
                print(f"  {name:22s} {s[0]:8s} {s[1]}  {t:6.1f} core-s  {p:5.2f} dB", file=sys.stderr, flush=True)
            per.append(cache[key])
        psnr = [c["psnr"] for c in per]
        rows.append({"name": name, "settings": grid[name], "cost": float(np.mean([c["cpu_s"] for c in per])) / mp,
                     "psnr_mean": float(np.mean(psnr)), "psnr_min": min(psnr), "psnr_max": max(psnr),
                     "ssim_min": min(c["ssim"] for c in per), "ssim_mean": float(np.mean([c["ssim"] for c in per])),
                     "per_scene": [round(x, 1) for x in psnr]})

    front = pareto(rows)
    base = next((r for r in rows if r["name"].startswith("today-")), rows[0])
    print(f"\n{size[0]}x{size[1]}, {len(scenes)} scenes ({', '.join(f'{a}:{b}' for a, b in scenes)}), "
          f"reference {args.ref_samples} spp, {os.cpu_count()} cores; * = Pareto front (cost, worst-scene PSNR)")
    print(f"| setting | changes from today's default | core-s/MP | x {base['name']} | PSNR min / mean dB "
          "| SSIM min / mean | PSNR per scene |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["cost"]):
        star = " *" if r["name"] in front else ""
        ch = ", ".join(f"{k}={json.dumps(v)}" for k, v in r["settings"].items()) or "-"
        print(f"| {r['name']}{star} | {ch} | {r['cost']:.1f} | {r['cost'] / base['cost']:.2f} | "
              f"{r['psnr_min']:.1f} / {r['psnr_mean']:.1f} | {r['ssim_min']:.4f} / {r['ssim_mean']:.4f} | "
              f"{' '.join(str(x) for x in r['per_scene'])} |")
    if args.plot:
        plot(rows, front, Path(args.plot), f"{size[0]}x{size[1]}, {len(scenes)} scenes, reference {args.ref_samples} spp")
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
