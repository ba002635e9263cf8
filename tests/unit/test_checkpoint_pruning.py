"""Pruning and retiring checkpoints by validity and run identity (one rank, in process)."""
import os

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core import runner
from hmmpar.core.checkpoint import (Block, Checkpointer, checkpoint_run_id, describe, list_checkpoints,
                                    open_checkpoint, resolve_restart)
from hmmpar.core.errors import ConfigError
from hmmpar.core.runner import retire_previous_checkpoints, set_aside_checkpoints

comm = MPI.COMM_SELF


def writer(directory, run_id, keep=3):
    ck = Checkpointer(comm, directory, keep=keep)
    ck.run_id = run_id
    return ck


def write(ck, step):
    return ck.write(step, 0.1 * step, app="demo", seed=9, config_text='[run]\napp = "demo"\n',
                    fields={"U": Block(np.linspace(0, 1, 7) * step, 0, 7)})


def steps(directory):
    return [s for s, _ in list_checkpoints(directory)]


def flip_data(path):
    """Flip 4 bytes of /fields/U's data: the metadata stay valid, the checksum does not."""
    with h5py.File(path, "r") as f:
        offset = f["fields/U"].id.get_offset()
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(4)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def test_run_id_is_stored_and_read(tmp_path):
    path = write(writer(tmp_path, "a1b2"), 1)
    assert checkpoint_run_id(path) == "a1b2"
    with open_checkpoint(comm, path) as r:
        assert r.run_id == "a1b2"
    assert "run_id          a1b2" in describe(path)[0]


def test_unreadable_newer_file_is_deleted_not_the_good_older_ones(tmp_path):
    (tmp_path / "ckpt_00000009.h5").write_bytes(b"garbage" * 100)  # newer, metadata unreadable
    assert checkpoint_run_id(tmp_path / "ckpt_00000009.h5") is None
    ck = writer(tmp_path, "A", keep=2)
    for step in (1, 2, 3):
        write(ck, step)
    # by step number alone, 9 would be kept and 1, 2 deleted after the first write
    assert steps(tmp_path) == [2, 3]


def test_restart_past_a_corrupt_newest_sets_it_aside_and_keeps_the_good_ones(tmp_path, capfd):
    """Checkpoints 2, 4, 6 of run A, 6 with flipped data; --restart latest takes 4. Then 6
    goes to set-aside/ and the continued run (keep 2) keeps 4 and 5, its valid files."""
    ck = writer(tmp_path, "A", keep=3)
    for step in (2, 4, 6):
        write(ck, step)
    flip_data(tmp_path / "ckpt_00000006.h5")
    chosen = resolve_restart(comm, "latest", tmp_path)
    assert chosen.name == "ckpt_00000004.h5" and "skipping" in capfd.readouterr().err
    assert set_aside_checkpoints(comm, tmp_path, "A", 4) == 1
    assert (tmp_path / "set-aside" / "ckpt_00000006.h5").is_file()
    write(writer(tmp_path, "A", keep=2), 5)
    assert steps(tmp_path) == [4, 5]  # by step number: 5 and the corrupt 6
    assert resolve_restart(comm, "latest", tmp_path).name == "ckpt_00000005.h5"


def test_restart_from_an_older_file_sets_the_newer_ones_aside(tmp_path):
    """Run A left 10, 15, 20; a shorter re-run restarts from 10 and ends at 12. Then
    --restart latest must find 12, not the stale 20 (which it would refuse: past the end)."""
    ck = writer(tmp_path, "A", keep=3)
    for step in (10, 15, 20):
        write(ck, step)
    assert set_aside_checkpoints(comm, tmp_path, "A", 10) == 2
    write(writer(tmp_path, "A", keep=3), 12)
    assert steps(tmp_path) == [10, 12]
    assert steps(tmp_path / "set-aside") == [15, 20]
    assert resolve_restart(comm, "latest", tmp_path).name == "ckpt_00000012.h5"


def test_other_runs_files_are_never_deleted_and_set_aside_at_restart(tmp_path):
    other = writer(tmp_path, "B", keep=5)
    for step in (1, 2):
        write(other, step)
    ck = writer(tmp_path, "A", keep=1)
    for step in (3, 4, 5):
        write(ck, step)
    assert steps(tmp_path) == [1, 2, 5]  # B's files left alone, A keeps its newest one
    assert set_aside_checkpoints(comm, tmp_path, "A", 5) == 2  # a restart of A moves B's aside
    assert steps(tmp_path) == [5] and steps(tmp_path / "set-aside") == [1, 2]


def test_a_newer_format_version_is_left_alone(tmp_path):
    """A readable checkpoint of a format this hmmpar does not read (a newer hmmpar's) is
    not taken for a damaged one: pruning keeps it."""
    newer = write(writer(tmp_path, "A", keep=5), 1)
    with h5py.File(newer, "r+") as f:
        f["meta"].attrs["format_version"] = 99
    assert checkpoint_run_id(newer).startswith("format version 99")
    ck = writer(tmp_path, "A", keep=1)
    for step in (2, 3):
        write(ck, step)
    assert steps(tmp_path) == [1, 3]


def test_files_without_run_id_belong_to_this_run(tmp_path):
    """Checkpoints written before run identities (no run_id attribute) count as this run's."""
    old = write(writer(tmp_path, "x", keep=5), 1)
    with h5py.File(old, "r+") as f:
        del f["meta"].attrs["run_id"]
    assert checkpoint_run_id(old) == ""
    with open_checkpoint(comm, old) as r:
        assert r.run_id == ""
    assert set_aside_checkpoints(comm, tmp_path, "A", 1) == 0
    ck = writer(tmp_path, "A", keep=1)
    write(ck, 2)
    assert steps(tmp_path) == [2]


def test_non_files_named_like_checkpoints_are_ignored(tmp_path):
    (tmp_path / "ckpt_00000007.h5").mkdir()
    (tmp_path / "ckpt_00000008.h5").symlink_to(tmp_path / "missing")
    ck = writer(tmp_path, "A", keep=1)
    for step in (1, 2):
        write(ck, step)
    assert steps(tmp_path) == [2]
    assert (tmp_path / "ckpt_00000007.h5").is_dir() and (tmp_path / "ckpt_00000008.h5").is_symlink()
    assert resolve_restart(comm, "latest", tmp_path).name == "ckpt_00000002.h5"
    assert set_aside_checkpoints(comm, tmp_path, "A", 1) == 1  # step 2 > 1; the others stay
    assert retire_previous_checkpoints(comm, tmp_path) == 0
    assert (tmp_path / "ckpt_00000007.h5").is_dir()


def test_unmovable_or_undeletable_files_are_clean_errors_or_warnings(tmp_path, monkeypatch, capfd):
    """A read-only checkpoint directory: retiring and setting aside are one ConfigError
    (exit 2) naming the directory; pruning warns and the run goes on."""
    ck = writer(tmp_path, "A", keep=2)
    write(ck, 1)
    write(ck, 5)

    def read_only(*args, **kwargs):
        raise OSError(30, os.strerror(30))  # EROFS
    monkeypatch.setattr(runner.os, "replace", read_only)
    with pytest.raises(ConfigError, match=rf"^checkpoint directory {tmp_path} is not writable: "
                                          r"Read-only file system \(moving the 2 checkpoint"):
        retire_previous_checkpoints(comm, tmp_path)
    with pytest.raises(ConfigError, match=rf"^checkpoint directory {tmp_path} is not writable: "
                                          r"Read-only file system \(moving 1 checkpoint"):
        set_aside_checkpoints(comm, tmp_path, "A", 2)
    monkeypatch.undo()
    monkeypatch.setattr(type(tmp_path), "unlink", read_only)
    write(ck, 6)
    assert steps(tmp_path) == [1, 5, 6]
    err = capfd.readouterr().err
    assert f"hmmpar: warning: could not delete old checkpoint {tmp_path / 'ckpt_00000001.h5'}: " \
           "Read-only file system\n" in err
