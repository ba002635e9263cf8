"""Checkpoint files on one rank: round trip, atomic naming, pruning, bad files."""
import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core.checkpoint import (Block, Checkpointer, list_checkpoints, open_checkpoint,
                                    resolve_restart)
from hmmpar.core.errors import CheckpointError

comm = MPI.COMM_SELF
INST = np.dtype([("y", "f8", (3,)), ("n", "i4")])


def write(ck, step):
    inst = np.zeros(4, dtype=INST)
    inst["y"] = np.arange(12.0).reshape(4, 3) * step
    inst["n"] = step
    return ck.write(step, 0.1 * step, app="demo", seed=9, config_text='[run]\napp = "demo"\n# é\n',
                    fields={"U": Block(np.linspace(0, 1, 7) * step, 0, 7)},
                    instances={"ssa": Block(inst, 0, 4)}, attrs={"counter": step + 1})


def test_round_trip_and_keep(tmp_path):
    ck = Checkpointer(comm, tmp_path, keep=2)
    for step in (1, 2, 3):
        write(ck, step)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]
    assert not list(tmp_path.glob(".*tmp"))
    with open_checkpoint(comm, resolve_restart(comm, "latest", tmp_path)) as r:
        assert (r.step, r.time, r.seed, r.app, r.ranks) == (3, 0.30000000000000004, 9, "demo", 1)
        assert r.config_text.endswith("# é\n")
        assert np.array_equal(r.read_block("fields", "U", 2, 5), np.linspace(0, 1, 7)[2:5] * 3)
        inst = r.read_block("instances", "ssa", 0, 4)
        assert inst.dtype == INST and np.all(inst["n"] == 3)
        assert r.attrs["counter"] == 4
        with pytest.raises(CheckpointError, match="no dataset /fields/V"):
            r.read_block("fields", "V", 0, 1)


def test_due_by_steps(tmp_path):
    ck = Checkpointer(comm, tmp_path, every_steps=3)
    assert [ck.due(s)[0] for s in range(1, 7)] == [False, False, True, False, False, True]


def test_leftover_tmp_is_ignored_and_removed(tmp_path):
    ck = Checkpointer(comm, tmp_path, keep=3)
    write(ck, 1)
    (tmp_path / ".ckpt_00000002.h5.tmp").write_bytes(b"partial")
    assert resolve_restart(comm, "latest", tmp_path).name == "ckpt_00000001.h5"
    write(ck, 2)
    assert not (tmp_path / ".ckpt_00000002.h5.tmp").exists()


def test_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        resolve_restart(comm, "latest", tmp_path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        resolve_restart(comm, str(tmp_path / "x.h5"), tmp_path)
    ck = Checkpointer(comm, tmp_path)
    good = write(ck, 4)
    bad = tmp_path / "ckpt_00000005.h5"
    bad.write_bytes(good.read_bytes()[:2048])  # truncated newest
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        resolve_restart(comm, str(bad), tmp_path)
    assert resolve_restart(comm, "latest", tmp_path) == good  # falls back


def test_due_by_wall_time_and_signal(tmp_path):
    import time

    from hmmpar.core.checkpoint import SignalFlag
    flag = SignalFlag()
    ck = Checkpointer(comm, tmp_path, every_seconds=0.2, signals=flag)
    assert ck.due(1) == (False, False)
    time.sleep(0.25)
    assert ck.due(2) == (True, False)
    write(ck, 2)  # writing restarts the clock
    assert ck.due(3) == (False, False)
    flag.received = 10  # SIGUSR1 seen
    assert ck.due(4) == (True, True)
