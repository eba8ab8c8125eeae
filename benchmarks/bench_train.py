"""Refiner training and inference speed on this CPU, per model size, at 320x320.

    python benchmarks/bench_train.py
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main() -> None:
    import torch

    from trainer.losses import refine_loss
    from trainer.model import build_refiner, layered_forward

    torch.set_num_threads(2)
    p = 320
    print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, {p}x{p}")
    for name, batch, steps in (("tiny", 8, 5), ("small", 4, 4), ("b0", 4, 3), ("b3", 2, 2)):
        torch.manual_seed(0)
        m = build_refiner(name)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
        d, mk, rgb = torch.rand(batch, 1, p, p) * 10, (torch.rand(batch, 1, p, p) > 0.5).float(), torch.randn(batch, 3, p, p)
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            d1, d2, merged = layered_forward(m, d, mk, rgb)
            loss = refine_loss(d1, d) + refine_loss(d2, d) + refine_loss(merged, d)
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - t0)
        train_rate = batch / float(np.median(times[1:]))
        m.eval()
        with torch.no_grad():
            x = (d[:1], mk[:1], rgb[:1])
            layered_forward(m, *x)
            inf = []
            for _ in range(5):
                t0 = time.perf_counter()
                layered_forward(m, *x)  # both passes (M and 1-M): one refinement
                inf.append(time.perf_counter() - t0)
        n_par = sum(q.numel() for q in m.parameters()) / 1e6
        print(f"  {name:5s} {n_par:6.2f} M params  train (stage II, batch {batch}) {train_rate:6.2f} samples/s  "
              f"inference {np.median(inf) * 1e3:7.0f} ms per 320x320 (layered, 2 passes)")


if __name__ == "__main__":
    main()
