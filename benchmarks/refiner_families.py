"""Issue 27's tables: every method on P(.) and on each held-out degradation family, Ours and
Direct-composite with two seeds each, and which differences exceed the seeds' spread.

    python benchmarks/refiner_families.py RUNS SCENES OUT [--families perturb,edge_bleed,misalign,smooth] [--max-scenes 16]

RUNS holds layered-s0, layered-s1, direct-s0, direct-s1 (gen train refiner run folders, their
last.pt is evaluated); SCENES is the held-out scene store.  For each family and seed it runs
``gen eval refiner RUNS/layered-sK/last.pt --direct RUNS/direct-sK/last.pt --initial FAMILY``
into OUT/FAMILY-sK (skipped when its report.csv exists: the script resumes), then prints the
Markdown tables that benchmarks/RESULTS.md holds.  The initial depths are seeded by scene, not
by model seed, so both seeds refine the same inputs and the baseline rows are identical.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

KEYS = ("R3@0.5", "R3@0.05", "MBE", "eps_acc", "eps_comp", "WHDR", "RMSE")
HIGHER_BETTER = {"R3@0.5", "R3@0.05"}
BASELINES = ("Initial depth", "Layered-propagation", "Guided filter")


def run_evals(runs: Path, scenes: str, out: Path, families: list[str], max_scenes: int, seeds=(0, 1)) -> None:
    for fam in families:
        for seed in seeds:
            dest = out / f"{fam}-s{seed}"
            if (dest / "report.csv").exists():
                continue
            t0 = time.perf_counter()
            cmd = [sys.executable, "-m", "pipelines.cli", "eval", "refiner", str(runs / f"layered-s{seed}" / "last.pt"),
                   "--direct", str(runs / f"direct-s{seed}" / "last.pt"), "--scenes", scenes, "--out", str(dest),
                   "--initial", fam, "--max-scenes", str(max_scenes)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            print(f"eval {fam} seed {seed}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def read(out: Path, fam: str, seed: int) -> dict:
    with open(out / f"{fam}-s{seed}" / "report.csv") as f:
        return {r["method"]: {k: float(r[k]) for k in KEYS} | {"scenes": int(r["scenes"])} for r in csv.DictReader(f)}


def rows_of(out: Path, fam: str) -> dict[str, list[dict]]:
    """method (seed-named for the two networks) -> its values per seed."""
    a, b = read(out, fam, 0), read(out, fam, 1)
    rows = {m: [a[m]] for m in BASELINES}
    for m in ("Direct-composite", "Ours"):
        rows[f"{m} s0"], rows[f"{m} s1"] = [a[m]], [b[m]]
    return rows


def fmt(v: float) -> str:
    if v != v:
        return "no change > t"
    return "inf" if v == float("inf") else f"{v:.4f}"


def spread_note(ours: list[float], other: list[float], key: str) -> str:
    """Compare Ours' two seeds with another row (one or two values): 'better'/'worse' when
    the ranges do not overlap and the gap exceeds the larger range, else 'within spread'."""
    lo, hi = min(ours), max(ours)
    olo, ohi = min(other), max(other)
    width = max(hi - lo, ohi - olo)
    up = key in HIGHER_BETTER
    if lo > ohi and lo - ohi > width:
        return "better" if up else "worse"
    if hi < olo and olo - hi > width:
        return "worse" if up else "better"
    return "within spread"


def tables(out: Path, families: list[str], held_out: set[str]) -> str:
    lines = []
    for fam in families:
        rows = rows_of(out, fam)
        tag = "held out" if fam in held_out else "seen in training"
        n = rows["Ours s0"][0]["scenes"]
        lines += [f"Initial depth `{fam}` ({tag}), {n} scenes:", "",
                  "| method | " + " | ".join(KEYS) + " |", "|---|" + "---|" * len(KEYS)]
        for m, vals in rows.items():
            cells = ["n/a" if m == "Initial depth" and k.startswith("R3") else fmt(vals[0][k]) for k in KEYS]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
        ours = [rows["Ours s0"][0], rows["Ours s1"][0]]
        notes = []
        for other in ("Initial depth", "Guided filter", "Layered-propagation", "Direct-composite"):
            vals = rows[other] if other in rows else [rows["Direct-composite s0"][0], rows["Direct-composite s1"][0]]
            parts = []
            for k in ("MBE", "R3@0.5", "eps_acc", "RMSE"):
                if other == "Initial depth" and k.startswith("R3"):
                    continue
                ov = [v[k] for v in vals]
                if any(x != x for x in ov + [o[k] for o in ours]):
                    continue
                parts.append(f"{k} {spread_note([o[k] for o in ours], ov, k)}")
            notes.append(f"vs {other}: " + ", ".join(parts))
        lines += ["Ours (both seeds) " + "; ".join(notes) + ".", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("scenes")
    ap.add_argument("out")
    ap.add_argument("--families", default="perturb,edge_bleed,misalign,smooth")
    ap.add_argument("--held-out", default="edge_bleed,misalign,smooth")
    ap.add_argument("--max-scenes", type=int, default=16)
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--seeds", default="0,1", help="evaluate these seeds now (the tables need both)")
    a = ap.parse_args()
    fams = a.families.split(",")
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    if not a.tables_only:
        run_evals(Path(a.runs), a.scenes, Path(a.out), fams, a.max_scenes, [int(x) for x in a.seeds.split(",")])
    print(tables(Path(a.out), [f for f in fams if (Path(a.out) / f"{f}-s1" / "report.csv").exists()],
                 set(a.held_out.split(","))))


if __name__ == "__main__":
    main()
