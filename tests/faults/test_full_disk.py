"""An unwritable or full output location is reported before any micro work starts.

The free-space check compares ``statvfs`` of the checkpoint directory with the size of
this run's checkpoints, estimated from the application's ``checkpoint_data()`` right after
``initialize``/restart. Unit tests fake ``statvfs``; system tests use a real 1 MB tmpfs
(mounting needs root: skipped otherwise).
"""
from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from faults_helpers import SCRIPTS
from faults_helpers import hmmpar as run_hmmpar
from faults_helpers import hmmpar_lines, kill_session, launch, ou_config, run_mpi
from hmmpar.core.checkpoint import Block, Checkpointer
from hmmpar.core.config import load_config
from hmmpar.core.errors import CheckpointError
from hmmpar.core.runner import check_checkpoint_space, checkpoint_size, planned_checkpoints

comm = MPI.COMM_SELF
StatVFS = namedtuple("StatVFS", "f_bavail f_frsize")


def test_free_space_check_with_a_simulated_statvfs(tmp_path):
    est = 3_000_000
    ok = lambda d: StatVFS(4 * est // 4096 + 1, 4096)  # noqa: E731 - room for 4 files
    check_checkpoint_space(comm, tmp_path, est, 3, 10, statvfs=ok)
    tight = lambda d: StatVFS(4 * est // 4096 - 1, 4096)  # noqa: E731
    with pytest.raises(CheckpointError) as info:
        check_checkpoint_space(comm, tmp_path, est, 3, 10, statvfs=tight)
    assert str(info.value) == (f"checkpoint directory {tmp_path} has 12.0 MB free; this run's checkpoints need "
                               "about 12.0 MB (4 file(s) of 3.0 MB, checkpoint.keep = 3); free space, lower "
                               "checkpoint.keep or set checkpoint.directory")
    # only as many files as the run writes: one (at the end) fits
    check_checkpoint_space(comm, tmp_path, est, 3, 1, statvfs=tight)
    # a restart next to 3 existing checkpoints needs room for one more (before pruning)
    for step in (1, 2, 3):
        (tmp_path / f"ckpt_{step:08d}.h5").write_bytes(b"")
    check_checkpoint_space(comm, tmp_path, est, 3, None, statvfs=lambda d: StatVFS(est // 4096 + 1, 4096))
    with pytest.raises(CheckpointError, match=r"need about 3.0 MB \(1 file\(s\)"):
        check_checkpoint_space(comm, tmp_path, est, 3, None, statvfs=lambda d: StatVFS(1, 4096))


def test_planned_checkpoints():
    cfg = load_config('[run]\napp = "ou_averaging"\n[checkpoint]\nevery_steps = 10\n', is_text=True)
    assert planned_checkpoints(cfg, 0, 50) == 5  # 10, 20, 30, 40 and at the end
    assert planned_checkpoints(cfg, 45, 50) == 1
    assert planned_checkpoints(cfg, 50, 50) == 1  # nothing to write; a signal may still ask for one
    cfg = load_config('[run]\napp = "ou_averaging"\n[checkpoint]\nevery_seconds = 60.0\n', is_text=True)
    assert planned_checkpoints(cfg, 0, 50) is None


def test_size_estimate_bounds_the_real_file(tmp_path):
    x = np.random.default_rng(1).random(250_000)  # 2 MB
    rec = np.zeros(1000, dtype=[("a", "f8", (3,)), ("n", "i4")])
    data = {"fields": {"X": Block(x, 0, x.size)}, "instances": {"r": Block(rec, 0, rec.size)}}
    text = "[run]\napp = 'x'\n" * 10
    path = Checkpointer(comm, tmp_path).write(1, 0.0, app="x", seed=1, config_text=text, **data)
    real, est = path.stat().st_size, checkpoint_size(data, text, 1)
    assert real <= est <= real + 100_000, (real, est)


# ------------------------------------------------------------------ a real full file system
@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MB tmpfs at tmp_path/fs, unmounted afterwards."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {p.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_checkpoints_too_big_for_the_disk_refused_before_micro_work(tmpfs, tmp_path):
    out = tmpfs / "out"
    # 200 000 points: X is 1.6 MB; one checkpoint does not fit on the 1 MB file system
    cfg = ou_config(tmp_path / "big.toml", out, points=200_000, samples=20_000_000,
                    extra="[checkpoint]\nevery_steps = 5\n")
    p = run_hmmpar(2, cfg, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"hmmpar: error: checkpoint directory {out / 'checkpoints'} has ")
    assert "free; this run's checkpoints need about 6.7 MB (4 file(s) of 1.7 MB, checkpoint.keep = 3)" in lines[0]
    # no micro work: no progress line, no timing report, no checkpoint
    assert "step " not in p.stdout and not (out / "timing.json").exists()
    assert not list((out / "checkpoints").glob("ckpt_*"))
    # the same file system holds a small run's checkpoints: no false alarm
    small = ou_config(tmp_path / "small.toml", tmpfs / "small", extra="[checkpoint]\nevery_steps = 5\n")
    p = run_hmmpar(1, small, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(list((tmpfs / "small" / "checkpoints").glob("ckpt_*.h5"))) == 3


def test_full_output_directory_is_reported_before_micro_work(tmpfs, tmp_path):
    fill(tmpfs)
    out = tmpfs / "out"
    cfg = ou_config(tmp_path / "c.toml", out)
    p = run_hmmpar(2, cfg, timeout=60)
    assert p.returncode == 2, p.stderr
    assert hmmpar_lines(p.stderr) == [f"hmmpar: error: output directory {out} is full (No space left on device)"]
    assert "step " not in p.stdout


def test_read_only_output_location_is_reported(tmpfs, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    cfg = ou_config(tmp_path / "c.toml", tmpfs / "out")
    p = run_hmmpar(1, cfg, timeout=60)
    assert p.returncode == 2, p.stderr
    assert hmmpar_lines(p.stderr) == [
        f"hmmpar: error: output directory {tmpfs / 'out'} is not writable: Read-only file system"]


def test_unwritable_checkpoint_directory_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cfg = ou_config(tmp_path / "c.toml", tmp_path / "out", extra=f'[checkpoint]\ndirectory = "{blocker}/ck"\n')
    p = run_hmmpar(2, cfg, timeout=60)
    assert p.returncode == 2, p.stderr
    assert hmmpar_lines(p.stderr) == [
        f"hmmpar: error: checkpoint directory {blocker}/ck is not writable: Not a directory"]
    assert "step " not in p.stdout


def fill(directory: Path) -> None:
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def keep_filling(directory: Path, stop: threading.Event) -> None:
    """Write ``directory/filler`` 4 kB at a time until ``stop``, retrying on a full disk."""
    with open(directory / "filler", "wb", buffering=0) as f:
        while not stop.is_set():
            try:
                f.write(b"\0" * 4096)
            except OSError:
                time.sleep(0.001)


def test_disk_full_before_a_checkpoint_write_is_a_clean_error(tmpfs):
    """Each write first compares the free space with the checkpoint's size: a disk that
    filled up during the run stops it before HDF5 starts a write that would fail."""
    from hmmpar.core.checkpoint import list_checkpoints, resolve_restart
    from hmmpar.core.errors import HmmparError
    ck = Checkpointer(comm, tmpfs / "ck", keep=3)
    first = ck.write(1, 0.1, app="x", seed=1, config_text="", fields={"U": Block(np.zeros(1000), 0, 1000)})
    big = np.ones(200_000)  # 1.6 MB on a 1 MB file system
    with pytest.raises(HmmparError) as info:
        ck.write(2, 0.2, app="x", seed=1, config_text="", fields={"U": Block(big, 0, big.size)})
    assert info.value.collective
    assert re.fullmatch(rf"checkpoint directory {tmpfs / 'ck'} has [01]\.\d MB free, checkpoint 2 needs about "
                        r"1\.7 MB; the previous checkpoints are intact", str(info.value)), str(info.value)
    assert [p for _, p in list_checkpoints(tmpfs / "ck")] == [first]
    assert resolve_restart(comm, "latest", tmpfs / "ck") == first


def test_disk_filling_up_during_a_run_stops_it_then_restart_continues(tmpfs, tmp_path):
    out = tmpfs / "out"
    cfg = ou_config(tmp_path / "c.toml", out, t_end=50.0, dt=0.05, samples=2000,
                    extra="[checkpoint]\nevery_steps = 1\nkeep = 1\n")
    proc = launch(2, ["-m", "hmmpar.cli", "run", str(cfg), "--quiet"])
    try:
        deadline = time.monotonic() + 30
        while not list((out / "checkpoints").glob("ckpt_*.h5")) and time.monotonic() < deadline:
            time.sleep(0.02)
        # another job fills the disk and keeps taking any space that comes free: also the
        # space a checkpoint had reserved beyond its final size
        stop = threading.Event()
        filler = threading.Thread(target=keep_filling, args=(tmpfs, stop))
        filler.start()
        try:
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            stop.set()
            filler.join()
    finally:
        if proc.poll() is None:
            kill_session(proc)
    assert proc.returncode == 1, stderr
    # The filler lands at a random moment of the checkpoint cycle: usually before a write,
    # whose free-space check stops the run; sometimes after that check, where reserving the
    # file's space fails. Both are one collective error: HDF5 never sees a failed write
    # (which could leave the ranks in different collectives; docs/faults.md).
    lines = hmmpar_lines(stderr)
    assert len(lines) == 1, stderr
    ck = re.escape(str(out / "checkpoints"))
    match = (re.fullmatch(rf"hmmpar: error: checkpoint directory {ck} has \d+ B free, checkpoint (\d+) "
                          r"needs about [\d.]+ kB; the previous checkpoints are intact", lines[0])
             or re.fullmatch(rf"hmmpar: error: reserving [\d.]+ kB for checkpoint (\d+) in {ck} failed: "
                             r"No space left on device \(\d+ B free on its file system\); the previous "
                             r"checkpoints are intact", lines[0]))
    assert match, stderr
    failed = int(match.group(1))
    assert [p.name for p in (out / "checkpoints").glob("ckpt_*.h5")] == [f"ckpt_{failed - 1:08d}.h5"]
    (tmpfs / "filler").unlink()  # space freed: the run continues from where it stopped
    p = run_hmmpar(1, cfg, "--restart", "latest", "--set", f"macro.t_end={0.05 * (failed + 2)}", timeout=60)
    assert p.returncode == 0, p.stderr
    assert f"step {failed - 1}," in p.stdout


def test_disk_filling_after_the_check_fails_the_reservation_on_every_rank(tmpfs):
    """If the disk fills between the free-space check and the write (another writer, a
    quota), the space reservation fails before HDF5 opens the file: one message from
    rank 0, exit 1, no temporary file, the previous checkpoint intact."""
    for ranks in (1, 2, 3):
        ck = tmpfs / f"ck{ranks}"
        p = run_mpi(ranks, [str(SCRIPTS / "failing_write.py"), str(ck)], timeout=60)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert hmmpar_lines(p.stderr) == [
            f"hmmpar: error: reserving 2.1 MB for checkpoint 2 in {ck} failed: No space left on device "
            "(4.1 TB free on its file system); the previous checkpoints are intact"], p.stderr
        assert "MPI_ABORT" not in p.stderr
        assert sorted(f.name for f in ck.iterdir()) == ["ckpt_00000001.h5"]
        (ck / "ckpt_00000001.h5").unlink()


def test_failed_hdf5_write_ends_the_process_without_crashing(tmpfs):
    """Without a reservation (a file system without ``fallocate``), HDF5's own write or
    close fails: one message, exit 1 -- not a crash in HDF5's exit handlers."""
    for ranks in (1, 2):
        p = run_mpi(ranks, [str(SCRIPTS / "failing_write.py"), str(tmpfs / f"ck{ranks}"), "no-fallocate"],
                    timeout=60)
        assert p.returncode == 1, (p.returncode, p.stderr)
        lines = hmmpar_lines(p.stderr)
        assert lines and lines[0].startswith("hmmpar: error on rank ")
        assert f"writing checkpoint {tmpfs / f'ck{ranks}' / '.ckpt_00000002.h5.tmp'} failed: " in lines[0]
        assert lines[0].endswith("free on its file system; the previous checkpoints are intact")
        assert "Segmentation fault" not in p.stderr
        assert (tmpfs / f"ck{ranks}" / "ckpt_00000001.h5").exists()
        for f in (tmpfs / f"ck{ranks}").iterdir():
            f.unlink()

def test_mesh_output_that_does_not_fit_fails_on_every_rank(tmpfs):
    """The HDF5 mesh output reserves its space as the checkpoints do: a full disk is one
    ReservationError on every rank, before HDF5 opens the file, and no file is left."""
    path = tmpfs / "u.h5"
    for ranks in (1, 2, 3):
        p = run_mpi(ranks, [str(SCRIPTS / "mesh_output_full.py"), str(path)], timeout=60)
        assert p.returncode == 0, p.stderr
        lines = sorted(re.findall(r"rank \d+: .*?u\.h5", p.stdout))  # ranks' lines may interleave
        nbytes = 64 * 1024 + 8 * 401 * 401  # OUTPUT_OVERHEAD + the nodal dataset
        assert lines == [f"rank {r}: errno 28 nbytes {nbytes} file {path}" for r in range(ranks)], p.stdout
        assert not path.exists() and not path.with_suffix(".xdmf").exists()


def test_read_only_checkpoint_directory_holding_checkpoints_is_reported(tmpfs, tmp_path):
    """Checkpoints on a file system that is now read-only: a fresh run (which would move them
    aside) and a restart both stop with the documented one-line error, exit 2, no micro work."""
    ck = tmpfs / "ck"
    cfg = ou_config(tmp_path / "c.toml", tmp_path / "out", t_end=0.1,
                    extra=f'[checkpoint]\ndirectory = "{ck}"\nevery_steps = 1\n')
    assert run_hmmpar(1, cfg, timeout=60).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    for extra in ([], ["--restart", "latest"]):
        p = run_hmmpar(2, cfg, *extra, timeout=60)
        assert p.returncode == 2, p.stderr
        assert hmmpar_lines(p.stderr) == [f"hmmpar: error: checkpoint directory {ck} is not writable: "
                                          "Read-only file system"]
        assert "step " not in p.stdout
    assert sorted(f.name for f in ck.iterdir()) == [".hmmpar.lock", "ckpt_00000001.h5", "ckpt_00000002.h5"]
