"""Amodal completion throughput (issue 25's floors).

1. Loader vs model: instances per CPU-second the loader makes (scene read, crops, depth
   degradation, channels) and the model consumes (forward + backward + AdamW step), one
   thread each, for the RGB inputs and for all inputs.  Floor: loader >= 5x the model.
2. ``gen complete`` on a 1280x720 photo with 20 instances (synthetic ellipses, partly
   overlapping, with a depth map): wall and CPU time of the call in-process (torch imported,
   model loaded once before), and of the whole command in a fresh process.  Floor: <= 1 s on
   2 cores.

  python benchmarks/bench_completion.py --scenes DATA/train.zarr
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS = {"RGB": ["visible", "rgb"], "all": ["visible", "rgb", "depth", "rdn", "tangent", "infront"]}


def cpu() -> float:
    return time.process_time()


def loader_vs_model(url: str, n_scenes: int) -> None:
    import torch

    from trainer.amodal_data import class_labels, open_stores
    from trainer.completion_data import SampleConfig, make_batch, scene_index
    from trainer.completion_model import build_completion, loss_fn
    torch.set_num_threads(1)
    stores = open_stores([url])
    index = scene_index(stores)[:n_scenes]
    warm = SampleConfig(inputs=ROWS["all"])  # first reads pay for imports and zarr's metadata
    make_batch(stores, [class_labels(st, warm.classes) for st in stores], index, np.arange(4), warm, 0, 0, 64)
    for name, inputs in ROWS.items():
        cfg = SampleConfig(inputs=inputs)
        luts = [class_labels(st, cfg.classes) for st in stores]
        t, n, batches = cpu(), 0, []
        for g in range(0, len(index) - 3, 4):
            b = make_batch(stores, luts, index, np.arange(g, g + 4), cfg, 0, 0, 64)
            if b is not None:
                n += len(b[0])
                batches.append(b)
        load_rate = n / (cpu() - t)
        model = build_completion(inputs, 64)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        t, m = cpu(), 0
        for x, y in batches[:8]:
            loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            m += len(x)
        model_rate = m / (cpu() - t)
        print(f"{name:4s}: loader {load_rate:7.0f} instances/CPU-s ({n} instances of {len(index)} scenes), "
              f"model {model_rate:5.0f} instances/CPU-s; ratio {load_rate / model_rate:.1f}x")


def complete_timing(checkpoint: str | None) -> None:
    import cv2

    from trainer import checkpoint as ck
    from trainer.completion_infer import complete_files
    from trainer.completion_model import build_completion
    rng = np.random.default_rng(0)
    h, w = 720, 1280
    tmp = Path(tempfile.mkdtemp(prefix="bench_complete_"))
    rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    depth = np.full((h, w), 40_000, np.uint16)
    ids = np.zeros((h, w), np.uint16)
    yy, xx = np.mgrid[:h, :w]
    for k in range(20):  # far to near, so nearer ellipses hide farther ones
        cx, cy, ax, ay = rng.uniform(100, w - 100), rng.uniform(200, h - 100), rng.uniform(30, 150), rng.uniform(20, 80)
        inside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 < 1
        ids[inside] = k + 1
        depth[inside] = int(30_000 - 1_000 * k)
    cv2.imwrite(str(tmp / "photo.png"), rgb)
    cv2.imwrite(str(tmp / "depth.png"), depth)
    cv2.imwrite(str(tmp / "ids.png"), ids)
    if checkpoint is None:
        from trainer.completion_train import CompletionTrainConfig, model_config
        mc = model_config(CompletionTrainConfig(inputs=ROWS["all"]))
        checkpoint = str(tmp / "all.pt")
        ck.save(checkpoint, kind="completion", model_config=mc, model=build_completion(**mc).state_dict())
    args = (str(tmp / "photo.png"), str(tmp / "ids.png"), checkpoint, str(tmp / "out.json"))
    complete_files(*args, depth=str(tmp / "depth.png"))  # warm-up
    best_wall, best_cpu = 1e9, 1e9
    for _ in range(5):
        t, c = time.perf_counter(), cpu()
        complete_files(*args, depth=str(tmp / "depth.png"))
        best_wall, best_cpu = min(best_wall, time.perf_counter() - t), min(best_cpu, cpu() - c)
    print(f"gen complete 1280x720, {int(ids.max())} instances (all inputs): in-process {best_wall:.3f} s wall, "
          f"{best_cpu:.3f} s CPU (best of 5)")
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "complete", args[0], "--visible", args[1], "--depth",
                        str(tmp / "depth.png"), "--checkpoint", checkpoint, "--out", args[3], "--overwrite"],
                       capture_output=True, text=True)
    print(f"whole command in a fresh process (imports included): {time.perf_counter() - t:.2f} s wall, rc {r.returncode}")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", required=True, help="a scene store (e.g. the ablation's train.zarr)")
    ap.add_argument("--n-scenes", type=int, default=40)
    ap.add_argument("--checkpoint", default=None, help="completion checkpoint (default: untrained, all inputs)")
    args = ap.parse_args()
    loader_vs_model(args.scenes, args.n_scenes)
    complete_timing(args.checkpoint)


if __name__ == "__main__":
    main()
