"""What portable spec sampling costs (issue 23): ms per spec with scenes.portable_math, and
the same run with its functions swapped for the C library's / numpy's (the CPU-dependent
kernels of before), in one process, alternating rounds.

    python benchmarks/bench_specs.py --preset tiny --scenes 8 --rounds 3
"""
from __future__ import annotations

import argparse
import contextlib
import math
import time

import numpy as np

from scenes import portable_math as pm
from scenes.config import build_config
from scenes.sampling import sample_scene


@contextlib.contextmanager
def libm_kernels():
    """portable_math's functions replaced by numpy's (SIMD) and BLAS's, for the baseline."""
    def elementwise(f_np, f_math):
        return lambda x: f_math(float(x)) if np.ndim(x) == 0 else f_np(np.asarray(x, np.float64))
    swap = {"sin": elementwise(np.sin, math.sin), "cos": elementwise(np.cos, math.cos),
            "tan": elementwise(np.tan, math.tan), "exp": elementwise(np.exp, math.exp),
            "log": elementwise(np.log, math.log), "atan": elementwise(np.arctan, math.atan),
            "atan2": lambda y, x: math.atan2(y, x) if np.ndim(y) == 0 else np.arctan2(y, x),
            "matmul": lambda a, b: np.asarray(a) @ np.asarray(b),
            "norm": lambda v, axis=-1: np.linalg.norm(v, axis=axis)}
    saved = {k: getattr(pm, k) for k in swap}
    for k, f in swap.items():
        setattr(pm, k, f)
    try:
        yield
    finally:
        for k, f in saved.items():
            setattr(pm, k, f)


def ms_per_spec(cfg: dict, scenes: int) -> float:
    t = time.perf_counter()
    for i in range(scenes):
        sample_scene(cfg, 11, i)
    return (time.perf_counter() - t) / scenes * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print(f"preset {a.preset}, {a.scenes} specs per scenario and round, {a.rounds} rounds (best of)")
    print(f"{'scenario':10s} {'portable ms':>12s} {'libm ms':>10s} {'ratio':>7s}")
    for scenario in ("street", "city", "openroad"):
        cfg = build_config(a.preset, overrides=[f"scene.scenario={scenario}"])
        sample_scene(cfg, 11, 0)  # imports and caches
        port, libm = [], []
        for _ in range(a.rounds):
            port.append(ms_per_spec(cfg, a.scenes))
            with libm_kernels():
                libm.append(ms_per_spec(cfg, a.scenes))
        print(f"{scenario:10s} {min(port):12.1f} {min(libm):10.1f} {min(port) / min(libm):7.2f}")


if __name__ == "__main__":
    main()
