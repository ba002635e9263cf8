"""Reproducible random streams keyed by (run seed, step, task_id, attempt).

Every micro task draws from its own stream, so results do not depend on which rank ran
the task, in what chunk or in what order: the same run on 1, 2 or 64 ranks is bitwise
identical. Streams come from :class:`numpy.random.SeedSequence` with the entropy
``[seed, step, family, id, attempt]``; the generator is PCG64DXSM. ``family`` keeps
stateless farm tasks (:data:`TASKS`) and persistent instances (:data:`INSTANCES`) apart,
so a task and an instance with the same id never share a stream.
"""
from __future__ import annotations

import numpy as np


#: stream families
TASKS, INSTANCES = 0, 1


def task_seed_sequence(seed: int, step: int, task_id: int, attempt: int = 0,
                       family: int = TASKS) -> np.random.SeedSequence:
    """The seed sequence of one task's stream (all keys must be non-negative integers)."""
    return np.random.SeedSequence([int(seed), int(step), int(family), int(task_id), int(attempt)])


def task_rng(seed: int, step: int, task_id: int, attempt: int = 0,
             family: int = TASKS) -> np.random.Generator:
    """A fresh generator for one task; the same keys always give the same stream."""
    return np.random.Generator(np.random.PCG64DXSM(task_seed_sequence(seed, step, task_id, attempt, family)))


def task_seeds(seed: int, step: int, task_ids: np.ndarray, attempt: int = 0,
               family: int = TASKS) -> np.ndarray:
    """One 64-bit seed per task, for numba kernels that seed their own generator.

    Returns
    -------
    numpy.ndarray of uint64, same length as ``task_ids``.
    """
    ids = np.asarray(task_ids, dtype=np.int64).ravel()
    out = np.empty(ids.size, dtype=np.uint64)
    for i, tid in enumerate(ids):
        out[i] = task_seed_sequence(seed, step, tid, attempt, family).generate_state(1, np.uint64)[0]
    return out


def substream(parent: np.random.SeedSequence, *keys: int) -> np.random.SeedSequence:
    """The child of ``parent`` keyed by ``keys`` (e.g. a trajectory, then a replica).

    It is ``SeedSequence(parent.entropy, spawn_key=parent.spawn_key + keys)``, the same
    child that ``parent.spawn`` would give, but chosen by key rather than by how many
    children were spawned before, so it is the same on any rank and in any order:
    ``substream(task_seed_sequence(seed, step, task_id), replica)``.
    """
    return np.random.SeedSequence(parent.entropy,
                                  spawn_key=tuple(parent.spawn_key) + tuple(int(k) for k in keys),
                                  pool_size=parent.pool_size)
