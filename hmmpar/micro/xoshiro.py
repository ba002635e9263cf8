"""xoshiro256** random numbers inside numba kernels, seeded from a NumPy ``SeedSequence``.

Blackman & Vigna, "Scrambled linear pseudorandom number generators", ACM Trans. Math.
Softw. 47 (2021) 36; reference code https://prng.di.unimi.it/xoshiro256starstar.c.

The generator state is a ``uint64[4]`` array that the kernel advances in place, so a
stream is a plain array: it can be seeded per task, saved, and continued. Seeding goes
through :class:`numpy.random.SeedSequence` (``generate_state(4, uint64)``), the same key
derivation as the rest of hmmpar (:mod:`hmmpar.core.rng`), so a stream depends only on
its keys, never on the rank or on numba's global generator.
"""
from __future__ import annotations

import numba
import numpy as np

_S5, _S7, _S9 = np.uint64(5), np.uint64(7), np.uint64(9)
_S11, _S17, _S45, _S64 = np.uint64(11), np.uint64(17), np.uint64(45), np.uint64(64)
_TWO_M53 = 2.0 ** -53


def seed_state(seed_sequence: np.random.SeedSequence) -> np.ndarray:
    """The ``uint64[4]`` xoshiro256** state of a seed sequence (never all zero)."""
    state = seed_sequence.generate_state(4, np.uint64)
    if not state.any():  # the one forbidden state; probability 2^-256
        state[0] = np.uint64(1)
    return state


@numba.njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << k) | (x >> (_S64 - k))


@numba.njit(cache=True)
def next_u64(s: np.ndarray) -> np.uint64:
    """Advance the state ``s`` (uint64[4]) and return the next 64-bit output."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    result = _rotl(s1 * _S5, _S7) * _S9
    t = s1 << _S17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, _S45)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    return result


@numba.njit(cache=True)
def uniform(s: np.ndarray) -> float:
    """A uniform double in [0, 1) from the top 53 bits."""
    return float(next_u64(s) >> _S11) * _TWO_M53


@numba.njit(cache=True)
def uniform_open0(s: np.ndarray) -> float:
    """A uniform double in (0, 1], safe for ``-log(u)``."""
    return (float(next_u64(s) >> _S11) + 1.0) * _TWO_M53
