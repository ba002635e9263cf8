"""Parallel HDF5 checkpoints written by N ranks hold rows in global order.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi`` (N = 1, 2, 3).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core.checkpoint import Block, Checkpointer, open_checkpoint, resolve_restart
from hmmpar.core.instances import InstancePool

comm = MPI.COMM_WORLD
STATE = np.dtype([("y", "f8", (2,)), ("k", "i8")])
M, NU = 13, 29


def shared_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ck") if comm.rank == 0 else None
    return Path(comm.bcast(str(d) if d else None, root=0))


def init(ids):
    s = np.zeros(ids.size, dtype=STATE)
    s["y"] = ids[:, None] * np.array([1.0, -1.0])
    s["k"] = ids * 10
    return s


@pytest.mark.mpi
def test_fields_and_instances_in_global_order(tmp_path_factory):
    d = shared_dir(tmp_path_factory)
    lo, hi = NU * comm.rank // comm.size, NU * (comm.rank + 1) // comm.size  # a block layout
    u = np.arange(lo, hi, dtype=float) ** 2
    pool = InstancePool(comm, STATE, 1.0 + np.arange(M) % 4, init=init)  # LPT: interleaved owners
    first, rows = pool.global_block()
    ck = Checkpointer(comm, d, keep=1)
    path = ck.write(3, 0.3, app="t", seed=1, config_text="x = 1\n",
                    fields={"U": Block(u, lo, NU)}, instances={"pool": Block(rows, first, M)})
    assert path == resolve_restart(comm, "latest", d)
    with open_checkpoint(comm, path) as r:
        whole_u = r.read_block("fields", "U", 0, NU)
        whole_s = r.read_block("instances", "pool", 0, M)
        assert r.ranks == comm.size
        # read back into a pool with another placement
        other = InstancePool(comm, STATE, 1.0 + np.arange(M)[::-1] ** 2)
        b0, b1 = other.block_range()
        other.load_block(b0, r.read_block("instances", "pool", b0, b1))
    assert np.array_equal(whole_u, np.arange(NU, dtype=float) ** 2)
    assert whole_s.tobytes() == init(np.arange(M)).tobytes()
    assert other.states.tobytes() == init(other.ids).tobytes()
