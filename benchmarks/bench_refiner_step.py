"""CPU cost of one refiner training step (stage II: two passes, three losses, AdamW) under
each free speed-up: channels_last, torch.compile, bf16 autocast, alone and as the trainer
would combine them.

    python benchmarks/bench_refiner_step.py [--model tiny] [--patch 128] [--batch 8] [--steps 6] [--rounds 3]

Variants run in alternating rounds (so a change in machine load hits all of them) and each
figure is the median step time over its rounds; compile time is printed separately.  The
same seed and inputs for every variant; the loss after the timed steps is printed too, so a
variant that changes the numbers is visible.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

VARIANTS = ("fp32", "channels_last", "compile", "bf16_autocast", "channels_last+bf16")


def make(variant: str, model_name: str):
    import torch

    from trainer.model import build_refiner
    torch.manual_seed(0)
    m = build_refiner(model_name)
    if "channels_last" in variant:
        m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    net = torch.compile(m) if variant == "compile" else m
    return m, net, opt


def step(variant: str, net, opt, batch) -> float:
    import torch

    from trainer.contract import layered_forward
    from trainer.losses import refine_loss
    d, mk, rgb, tgt = batch
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in variant)
    with amp:
        d1, d2, merged = layered_forward(net, d, mk, rgb)
        loss = refine_loss(d1.float(), tgt) + refine_loss(d2.float(), tgt) + refine_loss(merged.float(), tgt)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss)


def main() -> None:
    import torch
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    variants = a.variants.split(",")
    p, b = a.patch, a.batch
    print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, model {a.model}, "
          f"{p}x{p}, batch {b}, stage II step")
    g = torch.Generator().manual_seed(1)
    batch = (torch.rand(b, 1, p, p, generator=g) * 10, (torch.rand(b, 1, p, p, generator=g) > 0.5).float(),
             torch.randn(b, 3, p, p, generator=g))
    batch += (batch[0] + torch.randn(b, 1, p, p, generator=g),)  # a target the identity does not meet
    cl = tuple(x.contiguous(memory_format=torch.channels_last) for x in batch)
    state, times, first = {}, {v: [] for v in variants}, {}
    for v in variants:
        state[v] = make(v, a.model)
        t0 = time.perf_counter()
        step(v, state[v][1], state[v][2], cl if "channels_last" in v else batch)  # warm-up / compile
        first[v] = time.perf_counter() - t0
    losses = {}
    for _ in range(a.rounds):
        for v in variants:
            _, net, opt = state[v]
            for _ in range(a.steps):
                t0 = time.perf_counter()
                losses[v] = step(v, net, opt, cl if "channels_last" in v else batch)
                times[v].append(time.perf_counter() - t0)
    base = float(np.median(times[variants[0]]))
    for v in variants:
        med = float(np.median(times[v]))
        print(f"  {v:20s} {b / med:7.2f} samples/s  ({med * 1e3:7.1f} ms/step, {base / med:4.2f}x {variants[0]}; "
              f"first step {first[v]:6.1f} s; loss after {len(times[v]) + 1} steps {losses[v]:.4f})")


if __name__ == "__main__":
    main()
