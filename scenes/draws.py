"""Seeded generators and bounded draws shared by scene sampling and the layouts (a leaf
module, so scenes.sampling can import scenes.layouts without a cycle).

Scene ``i`` of a run depends only on ``(seed, i, config)``: its generator is seeded from
``SeedSequence([seed, i])`` so any scene can be regenerated alone, in any worker.

**The portability rule.**  A spec must be the same bits on every CPU, so every float on the
sampling path (scenes/, and the geometry generator/ builds from a spec) comes from:

- the Generator's ``random``, ``uniform``, ``integers`` and ``choice`` (integer and IEEE
  arithmetic on the bit stream, identical everywhere); never its ``normal``, ``poisson``,
  ``gamma``, ... which call the C library's ``exp``/``log1p`` (use :func:`normal` and
  :func:`poisson` here);
- IEEE-754 ``+ - * /``, ``sqrt``, comparisons, ``floor``/``rint`` and ``sum``/``cumsum``
  (numpy's reductions add in a fixed order): correctly rounded in every SIMD kernel;
- scenes.portable_math for ``sin cos tan exp log atan atan2 hypot``, vector norms and
  matrix products, never ``np.sin``/``math.sin``/... (numpy picks AVX-512, AVX2 or scalar
  kernels at run time and the C library picks FMA or not, and they differ in the last bit),
  nor ``@``/``np.dot``/``np.linalg.norm``/``np.einsum`` (the CPU's BLAS kernel) or
  ``x ** y`` with a non-integer or large ``y`` (``pow``).  ``math.radians``/``degrees`` are one
  multiplication and stay.

tests/test_portable_specs.py samples every scenario under each NPY_DISABLE_CPU_FEATURES
setting the machine can switch off and checks that the digests agree, and
tests/test_no_simd_math.py keeps the forbidden calls out of the sampling modules.
"""
from __future__ import annotations

import numpy as np

from scenes import portable_math as pm


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index)])))


def uniform(rng: np.random.Generator, bounds) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def integer(rng: np.random.Generator, bounds) -> int:
    lo, hi = bounds
    return int(rng.integers(lo, hi + 1))


def normal(rng: np.random.Generator, loc=0.0, scale=1.0, size=None):
    """Normal draws (Box-Muller on two uniforms each), a float or an array of ``size``."""
    n = 1 if size is None else int(np.prod(size))
    u1 = 1.0 - rng.random(n)  # (0, 1]: log stays finite
    u2 = rng.random(n)
    z = np.sqrt(-2.0 * pm.log(u1)) * pm.cos((2.0 * pm.PI) * u2)
    out = loc + scale * z
    return float(out[0]) if size is None else out.reshape(size)


def lognormal_factor(rng: np.random.Generator, sigma: float, size=None):
    """``exp(N(0, sigma))``: a multiplicative jitter around 1."""
    return pm.exp(normal(rng, 0.0, sigma, size))


def poisson(rng: np.random.Generator, lam: float) -> int:
    """A Poisson count by Knuth's product of uniforms (O(lam) draws; lam up to 500)."""
    lam = float(lam)
    if lam <= 0.0:
        return 0
    if lam > 500.0:
        raise ValueError(f"poisson rate {lam} above 500")
    limit, k, p = pm.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
