"""Reproducible random streams keyed by (run seed, step, task_id, attempt).

Every micro task draws from its own stream, so results do not depend on which rank ran
the task, in what chunk or in what order: the same run on 1, 2 or 64 ranks is bitwise
identical. Streams come from :class:`numpy.random.SeedSequence` with the entropy
``[seed, step, task_id, attempt]``; the generator is PCG64DXSM.
"""
from __future__ import annotations

import numpy as np


def task_seed_sequence(seed: int, step: int, task_id: int, attempt: int = 0) -> np.random.SeedSequence:
    """The seed sequence of one task's stream (all keys must be non-negative integers)."""
    return np.random.SeedSequence([int(seed), int(step), int(task_id), int(attempt)])


def task_rng(seed: int, step: int, task_id: int, attempt: int = 0) -> np.random.Generator:
    """A fresh generator for one task; the same keys always give the same stream."""
    return np.random.Generator(np.random.PCG64DXSM(task_seed_sequence(seed, step, task_id, attempt)))


def task_seeds(seed: int, step: int, task_ids: np.ndarray, attempt: int = 0) -> np.ndarray:
    """One 64-bit seed per task, for numba kernels that seed their own generator.

    Returns
    -------
    numpy.ndarray of uint64, same length as ``task_ids``.
    """
    ids = np.asarray(task_ids, dtype=np.int64).ravel()
    out = np.empty(ids.size, dtype=np.uint64)
    for i, tid in enumerate(ids):
        out[i] = task_seed_sequence(seed, step, tid, attempt).generate_state(1, np.uint64)[0]
    return out
