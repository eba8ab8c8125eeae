"""Seeded generators and bounded draws shared by scene sampling and the layouts (a leaf
module, so scenes.sampling can import scenes.layouts without a cycle).

Scene ``i`` of a run depends only on ``(seed, i, config)``: its generator is seeded from
``SeedSequence([seed, i])`` so any scene can be regenerated alone, in any worker.
"""
from __future__ import annotations

import numpy as np


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index)])))


def uniform(rng: np.random.Generator, bounds) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def integer(rng: np.random.Generator, bounds) -> int:
    lo, hi = bounds
    return int(rng.integers(lo, hi + 1))
