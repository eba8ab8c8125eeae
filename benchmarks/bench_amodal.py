"""Amodal model: loader images/s at the tiny input size against what the tiny model consumes
in training (floor: 5x), and inference ms per 1280x720 image for tiny and r50.

    python benchmarks/bench_amodal.py                       # renders 4 `small` scenes (640x360) first
    python benchmarks/bench_amodal.py --scenes street.zarr  # any scene store

The loader and the training step use the heaviest input set (rgb, rdn, tangent; depth RoI
pooling; occlusion-edge head).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

MODEL = dict(inputs=["rgb", "rdn", "tangent"], occlusion_edge=True, depth_roi=True)


def render(folder: str) -> str:
    url = os.path.join(folder, "small.zarr")
    subprocess.run([sys.executable, "-m", "pipelines.cli", "scenes", "--n", "4", "--preset", "small", "--workers", "0",
                    "--seed", "3", "--out", url], check=True)
    return url


def loader_rate(url: str, workers: int, batches: int) -> float:
    from torch.utils.data import DataLoader

    from trainer.amodal_data import SampleConfig, torch_dataset
    from trainer.amodal_model import default_config
    cfg = SampleConfig.from_model(default_config("tiny", **MODEL))
    ds = torch_dataset([url], cfg, 0, 2)
    n, t0, epoch = 0, None, 0
    while True:
        ds.set_epoch(epoch)
        for images, _ in DataLoader(ds, batch_size=None, num_workers=workers):
            if t0 is None:  # from the second batch: worker start-up is not throughput
                t0 = time.perf_counter()
                continue
            n += len(images)
            if n >= 2 * batches:
                return n / (time.perf_counter() - t0)
        epoch += 1


def train_rate(url: str, steps: int) -> float:
    import torch

    from trainer.amodal_data import SampleConfig, torch_dataset
    from trainer.amodal_model import build_amodal
    torch.manual_seed(0)
    model = build_amodal(size="tiny", **MODEL)
    images, targets = next(iter(torch_dataset([url], SampleConfig.from_model(model.cfg), 0, 2)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return 2 / float(np.median(times[1:]))


def inference_ms(size: str, runs: int) -> float:
    import torch

    from trainer.amodal_model import build_amodal
    torch.manual_seed(0)
    model = build_amodal(size=size, **MODEL).eval()
    c = model.n_backbone + 1
    x = torch.rand(c, 720, 1280)
    times = []
    with torch.no_grad():
        for _ in range(runs + 1):
            t = time.perf_counter()
            model([x])
            times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times[1:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", default=None, help="scene store (default: render 4 small scenes)")
    ap.add_argument("--batches", type=int, default=10, help="loader batches (of 2) to time")
    ap.add_argument("--steps", type=int, default=3, help="training steps to time")
    ap.add_argument("--runs", type=int, default=2, help="inference runs per model")
    a = ap.parse_args()
    import torch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        url = a.scenes or render(tmp)
        l0 = loader_rate(url, 0, a.batches)
        print(f"loader, 1 process:   {l0:.2f} images/s at 640x360 (rgb+rdn+tangent+depth channel, targets, edges)")
        l2 = loader_rate(url, 2, a.batches)
        print(f"loader, 2 workers:   {l2:.2f} images/s")
        tr = train_rate(url, a.steps)
        print(f"tiny model training: {tr:.3f} images/s (batch 2, 640x360, median step {2 / tr:.2f} s)")
        print(f"loader / model:      {l0 / tr:.1f}x with one loader process (floor 5x)")
    for size in ("tiny", "r50"):
        ms = inference_ms(size, a.runs)
        print(f"inference {size}: {ms:.0f} ms per 1280x720 image (the model's own input size: "
              f"{'640x360' if size == 'tiny' else '1280x720'})")


if __name__ == "__main__":
    main()
