"""Counter-based seeding of xoshiro256** streams inside numba: SplitMix64 of integer keys.

The Nested SSA needs one random stream per (trajectory, window, outer step, replica):
millions of short streams, created inside a compiled loop, where a NumPy
``SeedSequence`` per stream would cost more than the stream's work. A stream is instead
keyed by a 64-bit ``key`` (one per trajectory and window, from
:func:`hmmpar.core.rng.task_seeds`, i.e. ``SeedSequence([seed, window, 0, trajectory,
attempt])``) and two integer counters, hashed with the SplitMix64 finalizer (Steele, Lea
& Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014; the seeding
recommended for xoshiro by Blackman & Vigna, ACM TOMS 47 (2021) 36):

.. code-block:: text

    mix(z)  = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^ (z >> 31)
    g       = 0x9E3779B97F4A7C15                      (all arithmetic mod 2^64)
    h       = mix(mix(mix(key + g) + (n + 1) g) + (r + 1) g)
    state_i = mix(h + (i + 1) g),  i = 0..3           (the SplitMix64 sequence from h)

``n`` is the outer step within the window, ``r`` the replica, or one of the reserved
stream ids below. Distinct ``(key, n, r)`` give unrelated 256-bit states (a collision of
two 64-bit ``h`` has probability ~2^-64 per pair), so a stream depends only on its keys,
never on the rank, the schedule or how many streams were drawn before.

**Sub-keys** (the three-level Nested SSA): a middle replica r of outer step n runs a whole
Nested SSA of its own, with its own outer stream and inner replicas. It gets a new 64-bit
key, the fifth output of the SplitMix64 sequence from the same ``h``,

.. code-block:: text

    sub_key(key, n, r) = mix(h + 5 g)

and keys its own streams ``(sub_key, m, r2)`` exactly as a window key does. The four state
words of stream ``(key, n, r)`` are outputs 1..4 of that sequence, so the sub-key is
distinct from them (and that stream is never used for a three-level replica).
"""
from __future__ import annotations

import numba
import numpy as np

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S27, _S30, _S31 = np.uint64(27), np.uint64(30), np.uint64(31)
_ONE = np.uint64(1)

#: reserved stream ids (``r``): the outer SSA of a window (with n = 0), the continuation
#: of an inner replica (see :mod:`hmmpar.micro.ssa.nested`), and the direct SSA of a window.
#: Under a sub-key they mean the same for the middle process: its SSA (n = 0) and the
#: continuation of its inner replicas; ``sub_key(key, n, CONTINUATION_STREAM)`` is the key
#: of the middle process that continues a three-level outer step.
OUTER_STREAM = np.uint64(2**64 - 1)
CONTINUATION_STREAM = np.uint64(2**64 - 2)
DIRECT_STREAM = np.uint64(2**64 - 3)


@numba.njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """The SplitMix64 finalizer (a bijection of 64-bit words with full avalanche)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True, inline="always")
def _stream_hash(key: np.uint64, n: np.uint64, r: np.uint64) -> np.uint64:
    """h of the module docstring."""
    return mix64(mix64(mix64(key + GOLDEN_GAMMA) + (n + _ONE) * GOLDEN_GAMMA) + (r + _ONE) * GOLDEN_GAMMA)


@numba.njit(cache=True)
def sub_key(key: np.uint64, n: np.uint64, r: np.uint64) -> np.uint64:
    """The key of the nested process ``(key, n, r)``: mix(h + 5 g) (module docstring)."""
    return mix64(_stream_hash(key, n, r) + np.uint64(5) * GOLDEN_GAMMA)


@numba.njit(cache=True)
def seed_stream(key: np.uint64, n: np.uint64, r: np.uint64, state: np.ndarray) -> None:
    """Write the xoshiro256** state of stream ``(key, n, r)`` into ``state`` (uint64[4])."""
    h = _stream_hash(key, n, r)
    nonzero = np.uint64(0)
    for i in range(4):
        state[i] = mix64(h + np.uint64(i + 1) * GOLDEN_GAMMA)
        nonzero |= state[i]
    if nonzero == np.uint64(0):  # the one forbidden xoshiro state; probability 2^-256
        state[0] = _ONE


def stream_state(key: int, n: int, r: int) -> np.ndarray:
    """The xoshiro256** state of stream ``(key, n, r)`` from Python (tests, tools)."""
    state = np.empty(4, dtype=np.uint64)
    seed_stream(np.uint64(key), np.uint64(n % 2**64), np.uint64(r % 2**64), state)
    return state


def stream_sub_key(key: int, n: int, r: int) -> int:
    """:func:`sub_key` from Python (tests, tools)."""
    return int(sub_key(np.uint64(key), np.uint64(n % 2**64), np.uint64(r % 2**64)))
