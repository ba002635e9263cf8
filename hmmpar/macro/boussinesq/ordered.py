"""Column-ordered gathers and sums: the same numbers, in the same order, on any rank count.

Ranks own contiguous, ascending blocks of macro columns (the x-split of the DMDA), so a
rank-order concatenation of the blocks is the natural x order. Floating-point sums are
formed only over such gathered arrays (one NumPy reduction of the same contiguous array on
every rank), never as sums of per-rank partial sums, whose rounding depends on the split.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mpi4py import MPI

__all__ = ["ColumnGather"]


class ColumnGather:
    """Allgather of per-column data in natural column order.

    Parameters
    ----------
    comm
        mpi4py communicator of the model.
    counts
        Columns of each rank, in rank order (ascending x).
    """

    def __init__(self, comm, counts: Sequence[int]) -> None:
        self.comm = comm
        self.counts = np.asarray(counts, dtype=np.int64)
        self.nx = int(self.counts.sum())
        self.start = np.concatenate([[0], np.cumsum(self.counts)[:-1]])

    def all(self, local: np.ndarray) -> np.ndarray:
        """``local`` of shape ``(nc, ...)`` (this rank's columns first) -> ``(nx, ...)`` on
        every rank, a bitwise copy of every rank's values."""
        local = np.ascontiguousarray(local, dtype=float)
        tail = local.shape[1:]
        per = int(np.prod(tail)) if tail else 1
        out = np.empty((self.nx,) + tail)
        if self.comm.size == 1:
            out[...] = local
            return out
        self.comm.Allgatherv(local, [out, self.counts * per, self.start * per, MPI.DOUBLE])
        return out

    def sum(self, local: np.ndarray) -> float:
        """The sum over all columns of ``local`` ``(nc, ...)``, rank-independent."""
        return float(np.sum(self.all(local).reshape(-1)))
