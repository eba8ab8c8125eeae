"""Specs are the same bits on every CPU (issue 23; the rule is in scenes/draws.py).

numpy picks its SIMD kernels at run time; NPY_DISABLE_CPU_FEATURES switches the higher
ones off, so one machine can sample as an AVX2-only or a baseline x86-64 CPU would, and
OPENBLAS_CORETYPE picks another BLAS kernel.  Before the fix the digests differed between
the AVX-512 and the AVX2 kernels; on a CPU without AVX-512 that setting is not offered
(nothing to switch off) and the others still run.  A static check keeps the calls that
depend on the kernel out of the sampling modules."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every scenario, the variety knobs on, fog and lens distortion more often than by default.
SAMPLE = r"""
import hashlib, json
import numpy as np
from numpy._core._multiarray_umath import __cpu_features__
from scenes.config import build_config
from scenes.sampling import sample_scene
out = {"features": sorted(k for k, v in __cpu_features__.items() if v)}
for scenario in ("street", "city", "openroad", "mix"):
    cfg = build_config("tiny", overrides=[f"scene.scenario={scenario}", "fog.fraction=0.5",
                                          "camera.distortion_fraction=0.6", "lighting.night_fraction=0.3"])
    h = hashlib.sha256()
    for i in range(2):
        h.update(sample_scene(cfg, 5, i).to_json().encode())
    out[scenario] = h.hexdigest()
print(json.dumps(out))
"""


def _settings():
    """Environments to sample under: as is, then each dispatch level this CPU has switched
    off together with every level above it, then a generic BLAS kernel."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    levels = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    envs = {"as is": {}}
    for i in range(len(levels) - 1, -1, -1):
        envs["without " + ",".join(levels[i:])] = {"NPY_DISABLE_CPU_FEATURES": " ".join(levels[i:])}
    envs["OpenBLAS Prescott"] = {"OPENBLAS_CORETYPE": "Prescott"}
    return envs


@pytest.mark.slow
def test_specs_are_the_same_under_every_simd_level():
    envs = _settings()
    assert len(envs) >= 3, envs  # x86-64 numpy wheels dispatch to AVX2 at least
    procs = {}
    for name, extra in envs.items():
        env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
        env.update(PYTHONPATH=str(ROOT), **extra)
        procs[name] = subprocess.Popen([sys.executable, "-c", SAMPLE], env=env, cwd=ROOT, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, (name, err[-2000:])
        results[name] = json.loads(out.strip().splitlines()[-1])
    for name, extra in envs.items():  # the switch took: those kernels were really off
        off = extra.get("NPY_DISABLE_CPU_FEATURES", "").split()
        assert not set(off) & set(results[name]["features"]), (name, results[name]["features"])
    digests = {name: {k: v for k, v in r.items() if k != "features"} for name, r in results.items()}
    first = digests["as is"]
    assert all(d == first for d in digests.values()), json.dumps(digests, indent=1)


# Calls whose result depends on the CPU's SIMD level, its BLAS kernel or its C library.
_NUMPY = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "arcsin", "arccos",
          "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "power", "float_power",
          "hypot", "cbrt", "dot", "vdot", "inner", "matmul", "tensordot", "einsum", "linalg"}
_MATH = {"exp", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "atan2",
         "sinh", "cosh", "tanh", "hypot", "pow", "erf", "erfc", "gamma", "lgamma", "dist", "cbrt", "exp2"}
_RNG = {"normal", "standard_normal", "lognormal", "poisson", "gamma", "standard_gamma", "beta", "exponential",
        "standard_exponential", "vonmises", "weibull", "binomial", "multivariate_normal", "laplace", "logistic",
        "chisquare", "standard_t", "pareto", "rayleigh", "wald", "triangular", "geometric", "hypergeometric"}
# The sampling path: scenes/ (but the portable functions themselves, and modules that never
# sample), and the generator files that turn a spec into geometry.
_SKIP = {"portable_math.py", "store.py", "zarr_chunks.py", "safety.py"}
_FILES = sorted(p for p in (ROOT / "scenes").glob("*.py") if p.name not in _SKIP) + \
    [ROOT / "generator" / n for n in ("build.py", "blender_assets.py")]


def _kernel_dependent_calls(path: Path) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            bad.append(f"{where} @")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if not (isinstance(node.right, ast.Constant) and isinstance(node.right.value, int)):
                bad.append(f"{where} ** {ast.unparse(node.right)}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, attr = node.value.id, node.attr
            if (owner == "np" and attr in _NUMPY) or (owner == "math" and attr in _MATH) or \
                    (owner.endswith("rng") and attr in _RNG):
                bad.append(f"{where} {owner}.{attr}")
    return bad


def test_the_sampling_path_makes_no_kernel_dependent_call():
    bad = [b for p in _FILES for b in _kernel_dependent_calls(p)]
    assert not bad, "use scenes.portable_math / scenes.draws instead:\n" + "\n".join(bad)


def test_portable_functions_are_within_an_ulp_or_two_of_the_c_library():
    import math

    from scenes import portable_math as pm
    rng = np.random.default_rng(0)
    cases = [(pm.sin, math.sin, rng.uniform(-60, 60, 3000)), (pm.cos, math.cos, rng.uniform(-60, 60, 3000)),
             (pm.tan, math.tan, rng.uniform(-1.5, 1.5, 3000)), (pm.exp, math.exp, rng.uniform(-740, 705, 3000)),
             (pm.log, math.log, np.exp(rng.uniform(-700, 700, 3000))), (pm.atan, math.atan, rng.normal(0, 4, 3000))]
    for f, ref, xs in cases:
        got, want = f(xs), np.array([ref(x) for x in xs])
        ulps = np.abs(got - want) / np.spacing(np.abs(want))
        assert ulps.max() <= 2, (f.__name__, ulps.max())
        assert [f(float(x)) for x in xs[:50]] == got[:50].tolist()  # scalars and arrays agree
    ys, xs = rng.normal(size=500), rng.normal(size=500)
    assert np.allclose(pm.atan2(ys, xs), np.arctan2(ys, xs), rtol=4e-16, atol=0)
    for y, x in ((0.0, 1.0), (0.0, -1.0), (-0.0, -1.0), (1.0, 0.0), (-1.0, 0.0), (0.0, 0.0), (-1.0, -1.0)):
        assert pm.atan2(y, x) == math.atan2(y, x), (y, x)
    assert (pm.exp(0.0), pm.log(1.0), pm.exp(800.0), pm.exp(-800.0), pm.log(0.0)) == (1.0, 0.0, math.inf, 0.0, -math.inf)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
    assert np.allclose(pm.matmul(a, b), a @ b, rtol=1e-15) and np.allclose(pm.matmul(b, a[0]), b @ a[0], rtol=1e-15)


def test_portable_normal_and_poisson_have_their_distributions():
    from scenes import draws
    rng = np.random.default_rng(1)
    z = draws.normal(rng, 2.0, 3.0, 200_000)
    assert abs(z.mean() - 2.0) < 0.03 and abs(z.std() - 3.0) < 0.03
    assert abs(np.mean(np.abs(z - 2.0) > 3.0) - 0.3173) < 0.005  # the share outside one sigma
    k = np.array([draws.poisson(rng, 4.5) for _ in range(20_000)])
    assert abs(k.mean() - 4.5) < 0.06 and abs(k.var() - 4.5) < 0.15
    assert draws.poisson(rng, 0.0) == 0 and isinstance(draws.normal(rng), float)
