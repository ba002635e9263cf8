"""xoshiro256** random numbers inside numba kernels, seeded from a NumPy ``SeedSequence``.

Blackman & Vigna, "Scrambled linear pseudorandom number generators", ACM Trans. Math.
Softw. 47 (2021) 36; reference code https://prng.di.unimi.it/xoshiro256starstar.c.

The generator state is a ``uint64[4]`` array, so a stream is a plain array: it can be
seeded per task, saved, and continued. Seeding goes through
:class:`numpy.random.SeedSequence` (``generate_state(4, uint64)``), the same key derivation
as the rest of hmmpar (:mod:`hmmpar.core.rng`), so a stream depends only on its keys, never
on the rank or on numba's global generator.

Two calling conventions. The array functions (:func:`next_u64`, :func:`uniform`,
:func:`uniform_open0`, :func:`exponential`) advance a ``uint64[4]`` in place. Hot loops
use the *local* forms instead (:func:`step`, :func:`exponential_local`), which take and
return the four state words as values: the state then lives in registers for a whole
loop and is written back once, instead of a store and a dependent reload per draw.
Both produce the same stream.

Exponential variates: the ziggurat method of Marsaglia & Tsang ("The ziggurat method for
generating random variables", J. Stat. Softw. 5(8) (2000) 1-7) with 256 layers for
f(x) = exp(-x), in the 64-bit form of NumPy's ``random_standard_exponential``: one 64-bit
output gives the layer (8 bits) and a 53-bit uniform; 97.8 % of draws cost one
output, a multiplication and an integer comparison, without ``log`` or ``exp``. The rest
are the exact corrections of the method (wedge test against exp(-x), the tail r + Exp(1)
beyond r = 7.697...), so the variates follow Exp(1) exactly up to the 53-bit resolution of
the uniforms, as -log(u) does. The tables are computed at import from (r, v) below
(~15 ms). :func:`exponential_local` is the whole draw on a local state; a kernel that
wants only the common branch inline (as :func:`hmmpar.micro.ssa.direct.ssa_kernel` does) calls
:func:`ziggurat_exp_fast` on one output and, when it declines, :func:`exponential_rare`
with the state stored in an array. Tests: ``tests/unit/micro/rng/test_xoshiro.py``.
"""
from __future__ import annotations

import math

import numba
import numpy as np

_S5, _S7, _S9 = np.uint64(5), np.uint64(7), np.uint64(9)
_S3, _S8 = np.uint64(3), np.uint64(8)
_S11, _S17, _S45, _S64 = np.uint64(11), np.uint64(17), np.uint64(45), np.uint64(64)
_M255 = np.uint64(255)
_TWO_M53 = 2.0 ** -53

#: ziggurat for Exp(1), 256 layers: the start of the tail r and the area v of every layer,
#: to 40 digits: r is the root of "the recursion below closes at x_0 = 0" and v = (r + 1) e^-r
#: (layer 0 = rectangle [0, r] x [0, e^-r] + tail); Marsaglia & Tsang give r = 7.69711747013104972
_R_DIGITS = "7.697117470131049714044628048015215481841"
_V_DIGITS = "0.003949659822581557219977571956814861152291"
ZIGGURAT_EXP_R = float(_R_DIGITS)
ZIGGURAT_EXP_V = float(_V_DIGITS)


def ziggurat_exp_tables(r: str = _R_DIGITS, v: str = _V_DIGITS, n: int = 256):
    """(ke, we, fe) for the 53-bit ziggurat of Exp(1) (Marsaglia & Tsang 2000, ``zigset``).

    Layer i >= 1 is the rectangle [0, x_i] x [f(x_i), f(x_{i-1})] with x_0 = 0 < x_1 < ...
    < x_{n-1} = r, each of area v (x_{i-1} = -ln(v / x_i + f(x_i))); layer 0 is
    [0, r] x [0, f(r)] plus the tail beyond r (also area v), drawn as the rectangle
    [0, v/f(r)]. For a 53-bit uniform integer u, x = u we[i]; u < ke[i] means x < x_{i-1}
    (under the curve; ke is rounded down, so points at the edge take the exact wedge
    test); fe[i] = f(x_i). ``r`` and ``v`` are decimal strings: the recursion runs in
    40-digit decimal arithmetic and only the table entries are rounded to double, so the
    top layer closes at x_0 = 0 to ~1e-38 and every layer has area v to double precision.
    """
    from decimal import Decimal, ROUND_FLOOR, localcontext
    with localcontext() as ctx:
        ctx.prec = 40
        rd, vd, m = Decimal(r), Decimal(v), Decimal(2) ** 53
        xs = [rd]  # x_{n-1}, x_{n-2}, ..., x_1
        for _ in range(n - 2):
            xs.append(-(vd / xs[-1] + (-xs[-1]).exp()).ln())
        xs = xs[::-1]  # x_1 .. x_{n-1}
        q = vd / (-rd).exp()
        ke = np.zeros(n, np.uint64)
        we = np.zeros(n)
        fe = np.zeros(n)
        ke[0] = int((rd / q * m).to_integral_value(ROUND_FLOOR))
        we[0] = float(q / m)
        fe[0] = 1.0
        for i in range(1, n):
            xi = xs[i - 1]
            prev = xs[i - 2] if i >= 2 else Decimal(0)
            ke[i] = int((prev / xi * m).to_integral_value(ROUND_FLOOR))
            we[i] = float(xi / m)
            fe[i] = float((-xi).exp())
    return ke, we, fe


_ZKE, _ZWE, _ZFE = ziggurat_exp_tables()
for _a in (_ZKE, _ZWE, _ZFE):
    _a.setflags(write=False)


def seed_state(seed_sequence: np.random.SeedSequence) -> np.ndarray:
    """The ``uint64[4]`` xoshiro256** state of a seed sequence (never all zero)."""
    state = seed_sequence.generate_state(4, np.uint64)
    if not state.any():  # the one forbidden state; probability 2^-256
        state[0] = np.uint64(1)
    return state


@numba.njit(cache=True)
def _rotl(x, k):
    return (x << k) | (x >> (_S64 - k))


@numba.njit(cache=True)
def step(s0, s1, s2, s3):
    """One xoshiro256** step on a state held in four values: (output, s0, s1, s2, s3)."""
    result = _rotl(s1 * _S5, _S7) * _S9
    t = s1 << _S17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, _S45)
    return result, s0, s1, s2, s3


@numba.njit(cache=True)
def to_uniform(r):
    """A 64-bit output as a double in [0, 1) (its top 53 bits)."""
    return float(r >> _S11) * _TWO_M53


@numba.njit(cache=True)
def to_uniform_open0(r):
    """A 64-bit output as a double in (0, 1]."""
    return (float(r >> _S11) + 1.0) * _TWO_M53


@numba.njit(cache=True)
def _exponential_slow(idx, x, s0, s1, s2, s3):
    """The rare branches of :func:`exponential_local` (tail, wedge, rejection)."""
    while True:
        if idx == 0:  # the tail beyond r: r + Exp(1), memoryless
            r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
            return ZIGGURAT_EXP_R - math.log(to_uniform_open0(r)), s0, s1, s2, s3
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        if (_ZFE[idx - 1] - _ZFE[idx]) * to_uniform(r) + _ZFE[idx] < math.exp(-x):
            return x, s0, s1, s2, s3  # in the wedge under the curve
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)  # rejected: a fresh draw
        ri = r >> _S3
        idx = np.intp(ri & _M255)
        ri >>= _S8
        x = float(ri) * _ZWE[idx]
        if ri < _ZKE[idx]:
            return x, s0, s1, s2, s3


@numba.njit(cache=True)
def ziggurat_exp_fast(r):
    """The common branch of the ziggurat for the 64-bit output ``r``: (x, accepted).

    Bits 3-10 of r pick the layer i, bits 11-63 a 53-bit integer u; x = u we[i] is the
    variate if u < ke[i] (97.8 % of draws), else :func:`exponential_rare` finishes it."""
    ri = r >> _S3
    idx = np.intp(ri & _M255)
    ri >>= _S8
    return float(ri) * _ZWE[idx], ri < _ZKE[idx]


@numba.njit(cache=True)
def exponential_rare(r, x, s):
    """Finish a draw that :func:`ziggurat_exp_fast` did not accept, with the state in ``s``
    (uint64[4], advanced in place): the tail, the wedge test, or a fresh draw."""
    x, s[0], s[1], s[2], s[3] = _exponential_slow(np.intp((r >> _S3) & _M255), x, s[0], s[1], s[2], s[3])
    return x


@numba.njit(cache=True, inline="always")
def exponential_local(s0, s1, s2, s3):
    """An Exp(1) variate by the ziggurat (module docstring): (x, s0, s1, s2, s3)."""
    r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
    x, ok = ziggurat_exp_fast(r)
    if ok:
        return x, s0, s1, s2, s3
    return _exponential_slow(np.intp((r >> _S3) & _M255), x, s0, s1, s2, s3)


@numba.njit(cache=True)
def next_u64(s: np.ndarray) -> np.uint64:
    """Advance the state ``s`` (uint64[4]) and return the next 64-bit output."""
    r, s[0], s[1], s[2], s[3] = step(s[0], s[1], s[2], s[3])
    return r


@numba.njit(cache=True)
def uniform(s: np.ndarray) -> float:
    """A uniform double in [0, 1) from the top 53 bits."""
    return to_uniform(next_u64(s))


@numba.njit(cache=True)
def uniform_open0(s: np.ndarray) -> float:
    """A uniform double in (0, 1], safe for ``-log(u)``."""
    return to_uniform_open0(next_u64(s))


@numba.njit(cache=True)
def exponential(s: np.ndarray) -> float:
    """An Exp(1) variate (ziggurat) from the state ``s`` (uint64[4]), advanced in place."""
    x, s[0], s[1], s[2], s[3] = exponential_local(s[0], s[1], s[2], s[3])
    return x


@numba.njit(cache=True)
def exponentials(s: np.ndarray, n: int) -> np.ndarray:
    """``n`` Exp(1) variates from the state ``s`` (advanced in place); for tests."""
    out = np.empty(n)
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    for i in range(n):
        out[i], s0, s1, s2, s3 = exponential_local(s0, s1, s2, s3)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    return out
