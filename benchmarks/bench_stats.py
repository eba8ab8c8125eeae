"""`gen stats` on a big fake scene store (issue 16: 40,000 scenes in <= 10 s).

The store is written through scenes/store.py: small frames (32x16 by default) that are
never read, but per-instance tables shaped like rendered ones (about 14 instances of 64
slots a scene, the class mix of a street/city/openroad run, sparse occlusion graphs) and
real scene specs (sample_scene, cycled).  On a store layout with batched metadata writes
(``SceneStore.write_meta``, format v2) the tables go in batches and the per-pixel arrays
stay unwritten; otherwise every scene is written whole with ``write_scene``.

    python benchmarks/bench_stats.py --n 40000 --store /tmp/bench_stats.zarr
    python benchmarks/bench_stats.py --store /tmp/bench_stats.zarr --reuse   # time only
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scenes import store as scene_store  # noqa: E402
from scenes.classes import CLASS_IDS  # noqa: E402
from scenes.config import build_config  # noqa: E402

MIX = {"car": 0.40, "van": 0.06, "truck": 0.04, "bus": 0.04, "pedestrian": 0.30, "traffic_sign": 0.06,
       "traffic_light": 0.04, "pole": 0.06}


def fake_tables(rng, b: int, kmax: int, w: int, h: int) -> dict:
    k = np.minimum(rng.poisson(14, b), kmax)
    valid = np.arange(kmax)[None] < k[:, None]
    names = list(MIX)
    cls = np.array([CLASS_IDS[c] for c in names], np.uint8)[rng.choice(len(names), (b, kmax), p=list(MIX.values()))]
    amodal = np.clip(rng.lognormal(5.5, 1.6, (b, kmax)), 1, 640 * 360).astype(np.int32)
    vis = np.where(rng.random((b, kmax)) < 0.12, 0.0, rng.beta(2, 0.8, (b, kmax)))
    modal = np.floor(amodal * vis).astype(np.int32)
    x0, y0 = rng.integers(0, w - 1, (b, kmax)), rng.integers(0, h - 1, (b, kmax))
    x1, y1 = np.minimum(x0 + rng.integers(1, w, (b, kmax)), w), np.minimum(y0 + rng.integers(1, h, (b, kmax)), h)
    box = np.stack([x0, y0, x1, y1], -1).astype(np.int32)
    occ = (rng.random((b, kmax, kmax)) < 0.04) & valid[:, :, None] & valid[:, None, :]
    occ[:, np.arange(kmax), np.arange(kmax)] = False

    def pad(a, fill):
        return np.where(valid.reshape(valid.shape + (1,) * (a.ndim - 2)), a, fill).astype(a.dtype)
    return {
        "num_instances": k.astype(np.uint16), "instance_class": pad(cls, 0),
        "instance_object": pad(np.broadcast_to(np.arange(kmax, dtype=np.int32), (b, kmax)), -1),
        "modal_box": pad(np.where((modal > 0)[..., None], box, -1).astype(np.int32), -1), "amodal_box": pad(box, -1),
        "modal_area": pad(modal, 0), "amodal_area": pad(amodal, 0),
        "visible_fraction": pad((modal / amodal).astype(np.float32), 0.0),
        "distance": pad(rng.uniform(3, 120, (b, kmax)).astype(np.float32), np.nan),
        "box3d": np.full((b, kmax, 7), np.nan, np.float32), "occlusion": occ,
        "depth_order": np.zeros((b, kmax, kmax), np.int8),
    }


def write_store(url: str, n: int, w: int, h: int, kmax: int, seed: int = 0) -> float:
    from scenes.sampling import sample_scene
    cfg = build_config("small", overrides=[f"render.width={w}", f"render.height={h}", f"scene.max_instances={kmax}",
                                           "scene.scenario=mix"])
    specs = [sample_scene(cfg, seed, i).to_json() for i in range(16)]
    t0 = time.perf_counter()
    st = scene_store.create(url, n, cfg, seed, {"fx": w / 2, "fy": w / 2, "cx": w / 2, "cy": h / 2}, overwrite=True)
    rng = np.random.default_rng(seed)
    batch = 1024
    pixels = {"rgb": np.zeros((h, w, 3), np.uint8), "depth": np.full((h, w), np.inf, np.float32),
              "instance": np.zeros((h, w), np.uint16), "semantic": np.zeros((h, w), np.uint8),
              "normals": np.zeros((h, w, 3), np.float16), "amodal": np.zeros((kmax, h, w), bool)}
    for lo in range(0, n, batch):
        hi = min(lo + batch, n)
        t = fake_tables(rng, hi - lo, kmax, w, h)
        rows = [(i, {name: v[i - lo] for name, v in t.items()}, specs[i % len(specs)]) for i in range(lo, hi)]
        if hasattr(st, "write_meta"):  # format v2: tables in chunks of many scenes, written in batches
            st.write_meta(rows)
        else:
            for i, tab, sp in rows:
                st.write_scene(i, {**pixels, **tab}, sp)
        print(f"  wrote {hi}/{n} scenes, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40000)
    ap.add_argument("--store", default=os.path.join(tempfile.gettempdir(), "bench_stats.zarr"))
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--height", type=int, default=16)
    ap.add_argument("--kmax", type=int, default=64)
    ap.add_argument("--reuse", action="store_true", help="Time an existing store; do not write one.")
    args = ap.parse_args()
    if not args.reuse:
        wt = write_store(args.store, args.n, args.width, args.height, args.kmax)
        print(f"write                  {wt:.1f} s through scenes/store.py")
    st = scene_store.open_store(args.store)
    layout = "v2 (metadata in chunks of many scenes)" if hasattr(st, "write_meta") else "v1 (one chunk per scene)"
    n = st.n
    from pipelines.stats import summarise
    t0 = time.perf_counter()
    s = summarise(args.store, progress=False)
    t_sum = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pipelines.cli", "stats", args.store, "--out", tmp + "/r"],
                           env=env, capture_output=True, text=True)
        t_cmd = time.perf_counter() - t0
        if r.returncode:
            sys.exit(r.stderr)
        size = sum(f.stat().st_size for f in Path(tmp, "r").iterdir())
    t = s["tables"]
    print(f"store                  {n} scenes, {args.width}x{args.height}, max_instances {st.max_instances}, layout {layout}")
    print(f"instances              {t['instances']} ({t['instances_per_image']:.1f} per image)")
    print(f"summarise (in process) {t_sum:.2f} s  ({1e6 * t_sum / n:.0f} us/scene; specs sampled {s['specs']['sampled']})")
    print(f"gen stats (new process, JSON + MD + 8 PNGs) {t_cmd:.2f} s, report {size / 1e3:.0f} kB")
    print(json.dumps({"n": n, "summarise_s": round(t_sum, 3), "command_s": round(t_cmd, 3)}))


if __name__ == "__main__":
    main()
