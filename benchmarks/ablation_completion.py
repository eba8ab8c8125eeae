"""Does depth help to see what is hidden?  The amodal-completion ablation (issue 25).

Rows (input channels of trainer.completion_crops; every row also sees the visible mask):
  RGB            visible, rgb
  RGB+depth      + relative log depth
  RGB+in-front   + the in-front map
  RGB+tangent    + tangent normals
  RGB+all        + relative log depth, RDN, tangent normals, in-front map
  depth-only     visible + relative log depth, RDN, tangent normals, in-front map (no RGB)
Each row trains with 3 seeds at an equal budget of CPU time (this process, loader in-process,
one torch thread), with train-time depth degradation 1.0, then is scored (C2F-Seg's full and
occluded-part mIoU, trainer.completion_eval) on three test splits -- another seed of the
training scenario, openroad (cross-scenario), night + fog -- with exact depth and depth
degraded at two strengths (trainer.amodal_inputs.degrade_depth: multiplicative log-normal
noise, a blur of up to 2 x strength pixels and down/up-sampling by 1, 2 or 4, the kinds of
error a monocular estimator makes: smeared occlusion edges, lost detail, noise).

Data (tiny preset at 320x180, ~1.5 s a scene on 2 cores):
  G="gen scenes --preset tiny --set render.width=320 --set render.height=180 --workers 2"
  $G --n 160 --scenario street --seed 100 --out DATA/train.zarr
  $G --n 40 --scenario street --seed 200 --out DATA/test_street.zarr
  $G --n 40 --scenario openroad --seed 300 --out DATA/test_openroad.zarr
  $G --n 40 --scenario street --seed 400 --set lighting.night_fraction=0.6 --set lighting.dusk_fraction=0 \\
     --set fog.fraction=0.6 --out DATA/test_nightfog.zarr

Run (this machine, 2 shared cores: 18 x 1 CPU-minute of training + ~3 CPU-minutes of scoring):
  nice -n 15 python benchmarks/ablation_completion.py --data DATA --out /tmp/ablation --cpu-minutes 1 \
     --steps 150 --widths 8,16,32,64 --max-test-scenes 30
Full scale (a GPU machine; render 20x the scenes with the small preset first):
  python benchmarks/ablation_completion.py --data DATA --out runs/ablation --minutes 20 --device-threads 0 \\
     --steps 20000 --max-test-scenes 500
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS = {
    "RGB": ["visible", "rgb"],
    "RGB+depth": ["visible", "rgb", "depth"],
    "RGB+in-front": ["visible", "rgb", "infront"],
    "RGB+tangent": ["visible", "rgb", "tangent"],
    "RGB+all": ["visible", "rgb", "depth", "rdn", "tangent", "infront"],
    "depth-only": ["visible", "depth", "rdn", "tangent", "infront"],
}
SPLITS = {"street (seed 200)": "test_street.zarr", "openroad": "test_openroad.zarr", "night+fog": "test_nightfog.zarr"}
DEGRADE = {"exact": 0.0, "degraded 1": 1.0, "degraded 3": 3.0}


def train_all(args, data: Path, out: Path) -> dict:
    from trainer.completion_train import CompletionTrainConfig, train
    runs = {}
    for seed in range(args.seeds):
        for row, inputs in ROWS.items():
            run = out / f"{row.replace('+', '_')}_s{seed}"
            cfg = CompletionTrainConfig(inputs=inputs, seed=seed, steps=args.steps, loader_workers=0,
                                        widths=args.widths, log_every=20, ckpt_every=10_000)
            if (run / "last.pt").exists():
                from trainer import checkpoint
                ck = checkpoint.load(run / "last.pt", kind="completion")
                runs[(row, seed)] = {"dir": str(run), "steps": ck["step"], "cpu_s": ck["cpu_seconds"]}
                continue
            t = time.perf_counter()
            r = train([str(data / "train.zarr")], str(run), cfg, progress=False, cpu_minutes=args.cpu_minutes,
                      minutes=args.minutes)
            runs[(row, seed)] = {"dir": str(run), "steps": r["steps"], "cpu_s": r["cpu_seconds"]}
            print(f"trained {row} seed {seed}: {r['steps']} steps, {r['cpu_seconds']:.0f} CPU s, "
                  f"{time.perf_counter() - t:.0f} s wall", flush=True)
    return runs


def evaluate_all(args, data: Path, runs: dict) -> dict:
    from trainer.completion_data import SampleConfig
    from trainer.completion_eval import baseline_masks, extract, load_model, model_masks, score
    models = {k: load_model(str(Path(v["dir"]) / "last.pt")) for k, v in runs.items()}
    mc0 = next(iter(models.values()))[1]
    cfg = SampleConfig.from_model(mc0)
    results, counts = {}, {}
    for split, name in SPLITS.items():
        for dname, strength in DEGRADE.items():
            items, n_scenes = extract([str(data / name)], cfg, args.max_test_scenes, strength, seed=0, depth_too=True)
            counts[split] = {"scenes": n_scenes, "instances": len(items),
                             "occluded": int(sum((it["amodal_win"] & ~it["visible_win"]).any() for it in items))}
            if dname == "exact":
                for kind in ("visible", "hull"):
                    results[(kind, 0, split, dname)] = score(items, baseline_masks(items, kind), mc0["classes"])
            for (row, seed), (model, mc) in models.items():
                results[(row, seed, split, dname)] = score(items, model_masks(model, mc, items), mc["classes"])
            print(f"scored {split} / {dname}: {len(items)} instances", flush=True)
    return {"results": results, "counts": counts}


def summarise(args, runs, ev) -> str:
    res, counts = ev["results"], ev["counts"]

    def cell(row, split, dname, key):
        vals = [res[(row, s, split, dname)]["all"][key] for s in range(args.seeds) if (row, s, split, dname) in res]
        return np.mean(vals), (np.std(vals, ddof=1) if len(vals) > 1 else 0.0)

    cols = [(sp, d) for sp in SPLITS for d in DEGRADE]

    def cells(row, metric):
        """A row's table cells: the baselines' one value (no seeds, no depth), else mean ± std."""
        if row in ("visible", "hull"):
            return [f"{100 * res[(row, 0, sp, 'exact')]['all'][metric]:.1f}" for sp, _ in cols]
        return [f"{100 * m:.1f} ± {100 * sd:.1f}" for m, sd in (cell(row, sp, d, metric) for sp, d in cols)]

    lines = ["Occluded-part mIoU (%), mean ± std over seeds:", "",
             "| row | steps | " + " | ".join(f"{sp}, {d}" for sp, d in cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for row in ["visible", "hull"] + list(ROWS):
        steps = "-" if row in ("visible", "hull") else f"{np.mean([runs[(row, s)]['steps'] for s in range(args.seeds)]):.0f}"
        lines.append(f"| {row} | {steps} | " + " | ".join(cells(row, "occluded")) + " |")
    lines += ["", "Full mIoU (%), mean ± std over seeds:", "",
              "| row | " + " | ".join(f"{sp}, {d}" for sp, d in cols) + " |", "|---|" + "---:|" * len(cols)]
    for row in ["visible", "hull"] + list(ROWS):
        lines.append(f"| {row} | " + " | ".join(cells(row, "full")) + " |")
    lines += ["", "Gaps to the RGB row, occluded-part mIoU (points); * = |gap| > 2 x the larger seed std of the two:", "",
              "| row | " + " | ".join(f"{sp}, {d}" for sp, d in cols) + " |", "|---|" + "---:|" * len(cols)]
    for row in list(ROWS)[1:]:
        gaps = []
        for sp, d in cols:
            m, sd = cell(row, sp, d, "occluded")
            m0, sd0 = cell("RGB", sp, d, "occluded")
            gap = 100 * (m - m0)
            gaps.append(f"{gap:+.1f}{' *' if abs(gap) > 2 * 100 * max(sd, sd0) else ''}")
        lines.append(f"| {row} | " + " | ".join(gaps) + " |")
    cpu = [v["cpu_s"] for v in runs.values()]
    lines += ["", "Test splits: " + "; ".join(f"{sp}: {c['scenes']} scenes, {c['instances']} instances "
                                                f"({c['occluded']} occluded)" for sp, c in counts.items()),
              f"Training CPU time per run: {np.mean(cpu):.0f} s mean (min {np.min(cpu):.0f}, max {np.max(cpu):.0f})."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="folder with the four stores (see above)")
    ap.add_argument("--out", required=True, type=Path, help="run folder (reruns reuse finished runs)")
    ap.add_argument("--cpu-minutes", type=float, default=1.0, help="CPU-time budget per training run")
    ap.add_argument("--minutes", type=float, default=None, help="wall-time budget per run instead (GPU)")
    ap.add_argument("--steps", type=int, default=100_000, help="step cap (the budget usually stops first)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--widths", default="16,32,64,96")
    ap.add_argument("--max-test-scenes", type=int, default=40)
    ap.add_argument("--device-threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    args.widths = [int(v) for v in args.widths.split(",")]
    import torch
    if args.device_threads:
        torch.set_num_threads(args.device_threads)
    if args.minutes is not None:
        args.cpu_minutes = None
    args.out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    runs = train_all(args, args.data, args.out)
    ev = evaluate_all(args, args.data, runs)
    table = summarise(args, runs, ev)
    (args.out / "table.md").write_text(table + "\n")
    flat = {" | ".join(map(str, k)): v for k, v in ev["results"].items()}
    (args.out / "results.json").write_text(json.dumps({"runs": {f"{r} s{s}": v for (r, s), v in runs.items()},
                                                       "counts": ev["counts"], "results": flat}, indent=1))
    print(table)
    print(f"\ntotal wall {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
