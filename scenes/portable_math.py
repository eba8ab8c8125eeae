"""Elementary functions that give the same bits on every CPU, for the scene-sampling path.

numpy dispatches ``np.exp/log/sin/cos/arctan2/power`` to SIMD kernels chosen at run time
(AVX-512 where the CPU has it), ``@``/``np.dot``/``np.linalg.norm`` to the BLAS kernel of
the CPU, and ``math.*`` to the C library, which picks FMA or non-FMA code by CPU.  Those
results may differ in the last bit from machine to machine, and a spec keeps every float,
so the specs (and, near a placement boundary, the layouts) differed between CPUs.

The functions here are Python-float code built from IEEE-754 ``+ - * /``, ``sqrt``,
``round`` (half to even), ``frexp``/``ldexp`` and comparisons, each correctly rounded or exact
on every machine, so a result is a function of its input alone.  The polynomials are
fdlibm's (Sun, 1993; FreeBSD's msun today): within 1 ulp of the true value (tan: 3), which
is all sampling needs.  Each takes a float or an array (mapped element by element: the
sampling path's arrays are a few values long) and returns the same kind.  ``norm`` and
``matmul`` are numpy products and sums, whose order numpy fixes.

See scenes/draws.py for the rule that keeps the sampling path portable.
"""
from __future__ import annotations

import math

import numpy as np

PI = 3.14159265358979311600e+00
_PI_LO = 1.2246467991473531772e-16  # pi - PI

_INVPIO2 = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00  # the first 33 bits of pi/2: k * _PIO2_1 is exact for k < 2**20
_PIO2_2 = 6.07710050630396597660e-11  # the next 33 bits
_PIO2_3 = 2.02226624879595063154e-21  # pi/2 - _PIO2_1 - _PIO2_2

_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)

_LN2_HI = 6.93147180369123816490e-01  # trailing zeros: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INVLN2 = 1.44269504088896338700e+00
_P = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
      -1.65339022054652515390e-06, 4.13813679705723846039e-08)
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
       1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)

_ATANHI = (4.63647609000806093515e-01, 7.85398163397448278999e-01, 9.82793723247329054082e-01,
                    1.57079632679489655800e+00)
_ATANLO = (2.26987774529616870924e-17, 3.06161699786838301793e-17, 1.39033110312309984516e-17,
                    6.12323399573676603587e-17)
_AT = (3.33333333333329318027e-01, -1.99999999998764832476e-01, 1.42857142725034663711e-01,
       -1.11111104054623557880e-01, 9.09088713343650656196e-02, -7.69187620504482999495e-02,
       6.66107313738753120669e-02, -5.83357013379057348645e-02, 4.97687799461593236017e-02,
       -3.65315727442169155270e-02, 1.62858201153657823623e-02)


def _elementwise(f):
    """``f`` of a float, mapped over an array (or a list) element by element."""
    def g(x):
        if isinstance(x, (float, int, np.floating, np.integer)):
            return f(float(x))
        a = np.asarray(x, np.float64)
        return np.array([f(v) for v in a.ravel().tolist()], np.float64).reshape(a.shape)
    g.__name__, g.__doc__ = f.__name__, f.__doc__
    return g


def _horner(z, coeffs):
    acc = coeffs[-1]
    for c in coeffs[-2::-1]:
        acc = c + z * acc
    return acc


def _reduce_pio2(x):
    """x = k*pi/2 + r, |r| <= ~pi/4, and k mod 4 (accurate for |x| below ~1e6 rad)."""
    k = round(x * _INVPIO2)
    return ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3, k & 3


def _sin_kernel(r):
    z = r * r
    return r + (z * r) * (_S[0] + z * _horner(z, _S[1:]))


def _cos_kernel(r):
    z = r * r
    hz = 0.5 * z
    w = 1.0 - hz
    return w + (((1.0 - w) - hz) + z * (z * _horner(z, _C)))


@_elementwise
def sin(x):
    if not math.isfinite(x):
        return math.nan
    r, q = _reduce_pio2(x)
    v = _sin_kernel(r) if q % 2 == 0 else _cos_kernel(r)
    return v if q < 2 else -v


@_elementwise
def cos(x):
    if not math.isfinite(x):
        return math.nan
    r, q = _reduce_pio2(x)
    v = _cos_kernel(r) if q % 2 == 0 else _sin_kernel(r)
    return -v if q in (1, 2) else v


@_elementwise
def tan(x):
    if not math.isfinite(x):
        return math.nan
    r, q = _reduce_pio2(x)
    s, c = _sin_kernel(r), _cos_kernel(r)
    return s / c if q % 2 == 0 else -c / s


@_elementwise
def exp(x):
    if x != x:
        return math.nan
    if x > 709.782712893383973096:
        return math.inf
    if x < -745.13321910194110842:
        return 0.0
    k = round(x * _INVLN2)
    hi = x - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * _horner(t, _P)
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    try:
        return math.ldexp(y, k)
    except OverflowError:
        return math.inf


@_elementwise
def log(x):
    if x != x or x < 0.0:
        return math.nan
    if x == 0.0:
        return -math.inf
    if x == math.inf:
        return math.inf
    m, e = math.frexp(x)  # x = m * 2**e, m in [0.5, 1)
    if m < 0.70710678118654752440:
        m, e = m * 2.0, e - 1
    k = float(e)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    big_r = w * _horner(w, _LG[1::2]) + z * _horner(w, _LG[0::2])
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + big_r) + k * _LN2_LO)) - f)


@_elementwise
def atan(x):
    if x != x:
        return math.nan
    t = abs(x)
    if t == math.inf:
        res = _ATANHI[3]
    else:
        if t < 0.4375:
            band, u = -1, t
        elif t < 0.6875:
            band, u = 0, (2.0 * t - 1.0) / (2.0 + t)
        elif t < 1.1875:
            band, u = 1, (t - 1.0) / (t + 1.0)
        elif t < 2.4375:
            band, u = 2, (t - 1.5) / (1.0 + 1.5 * t)
        else:
            band, u = 3, -1.0 / t
        z = u * u
        w = z * z
        s = z * _horner(w, _AT[0::2]) + w * _horner(w, _AT[1::2])
        res = u - u * s if band < 0 else _ATANHI[band] - ((u * s - _ATANLO[band]) - u)
    return -res if x < 0 else res


def _atan2(y, x):
    if x == 0.0 and y == 0.0:
        z = PI if math.copysign(1.0, x) < 0 else 0.0
    elif x == 0.0:
        z = 0.5 * PI
    else:
        z = atan(abs(y / x)) if y != 0.0 else 0.0
        if x < 0:
            z = PI - (z - _PI_LO)
    return -z if math.copysign(1.0, y) < 0 else z


def atan2(y, x):
    """The angle of (x, y) in [-pi, pi], with atan2's quadrants (finite inputs)."""
    if isinstance(y, (float, int, np.floating, np.integer)) and isinstance(x, (float, int, np.floating, np.integer)):
        return _atan2(float(y), float(x))
    yy, xx = np.broadcast_arrays(np.asarray(y, np.float64), np.asarray(x, np.float64))
    return np.array([_atan2(a, b) for a, b in zip(yy.ravel().tolist(), xx.ravel().tolist())]).reshape(yy.shape)


def hypot(x, y):
    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    r = np.sqrt(a * a + b * b)
    return float(r) if r.ndim == 0 else r


def norm(v, axis=-1):
    """Euclidean length along ``axis`` (numpy's linalg.norm of a 1-D array goes through BLAS)."""
    a = np.asarray(v, np.float64)
    r = np.sqrt((a * a).sum(axis=axis))
    return float(r) if r.ndim == 0 else r


def matmul(a, b):
    """``a @ b`` (b a vector, a matrix or a stack of them) as products added in a fixed order:
    BLAS kernels, chosen per CPU, accumulate in their own order, with or without FMA."""
    a, b = np.asarray(a), np.asarray(b)
    if b.ndim == 1:
        out = a[..., 0] * b[0]
        for k in range(1, b.shape[0]):
            out = out + a[..., k] * b[k]
        return out
    if b.ndim == 2:
        out = a[..., 0, None] * b[0]
        for k in range(1, b.shape[0]):
            out = out + a[..., k, None] * b[k]
        return out
    return (a[..., :, :, None] * b[..., None, :, :]).sum(axis=-2)
