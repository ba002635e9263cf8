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


@pytest.mark.mpi
def test_checksums_verified_in_parallel_and_corruption_found(tmp_path_factory):
    """Each rank verifies a share of the blocks; a flipped byte in any rank's block is seen
    by all (one allgather), and ``latest`` falls back to the previous checkpoint."""
    import hmmpar  # noqa: F401 - Debian's MPI h5py
    import h5py

    from hmmpar.core.checkpoint import verify_checkpoint
    d = shared_dir(tmp_path_factory)
    lo, hi = NU * comm.rank // comm.size, NU * (comm.rank + 1) // comm.size
    ck = Checkpointer(comm, d, keep=2)
    for step in (1, 2):
        ck.write(step, 0.1 * step, app="t", seed=1, config_text="x = 1\n",
                 fields={"U": Block(np.arange(lo, hi, dtype=float) * step, lo, NU)})
    newest = d / "ckpt_00000002.h5"
    problem, info = verify_checkpoint(comm, newest)
    assert problem is None and info["version"] == 2
    assert info["blocks"] == comm.size + 1 and info["bytes"] == NU * 8 + 6  # U's blocks and the config
    if comm.rank == 0:  # flip one byte of the last row (the last rank's block)
        with h5py.File(newest, "r") as f:
            offset = f["fields/U"].id.get_offset() + (NU - 1) * 8
        with open(newest, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0x01]))
    comm.Barrier()
    problem, _ = verify_checkpoint(comm, newest)
    assert problem.startswith(f"checksum mismatch in /fields/U rows [{NU * (comm.size - 1) // comm.size}, {NU})")
    assert resolve_restart(comm, "latest", d) == d / "ckpt_00000001.h5"
