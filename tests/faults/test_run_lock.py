"""One run at a time per directory: a second run into a busy output or checkpoint directory
is refused (exit 2, the holder named) and the first is unharmed; a killed run's lock file
blocks nothing."""
import errno
import fcntl
import os
import re
import socket
import time
from pathlib import Path

import pytest
from mpi4py import MPI

from faults_helpers import hmmpar, hmmpar_lines, kill_session, launch, list_ckpts, ou_config
from hmmpar.core.errors import ConfigError
from hmmpar.core.rundir import lock_run_directories



def start_paused(cfg: Path, ck: Path, go: Path):
    """Launch a 2-rank run that waits inside checkpoint 2's write until the file ``go``
    exists; return once its temporary file exists (the moment a second run used to delete it)."""
    proc = launch(2, ["-m", "hmmpar.cli", "run", str(cfg)], env={"HMMPAR_TEST_CHECKPOINT_PAUSE": f"2:@{go}"})
    deadline = time.monotonic() + 60
    while not (ck / ".ckpt_00000002.h5.tmp").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc


def test_second_run_into_a_busy_directory_is_refused_and_the_first_finishes(tmp_path):
    out = tmp_path / "out"
    cfg = ou_config(tmp_path / "c.toml", out, t_end=0.25, extra="[checkpoint]\nevery_steps = 1\nkeep = 2\n")
    go = tmp_path / "go"
    first = start_paused(cfg, out / "checkpoints", go)
    try:
        holder = (out / ".hmmpar.lock").read_text()
        m = re.fullmatch(r"pid (\d+) on host (\S+), started (\S+)\n", holder)
        assert m and m[2] == socket.gethostname()
        assert "hmmpar.cli" in Path(f"/proc/{m[1]}/cmdline").read_text()  # rank 0 of the first run
        # the same output directory
        second = hmmpar(1, cfg, timeout=60)
        assert second.returncode == 2, second.stderr
        assert hmmpar_lines(second.stderr) == [
            f"hmmpar: error: output directory {out} is in use by another hmmpar run ({holder.strip()}); "
            "wait for it to end or choose another run.output_dir"]
        # another output directory, the same checkpoint directory
        other = tmp_path / "other"
        third = hmmpar(1, cfg, "--set", f'run.output_dir="{other}"', "--set",
                       f'checkpoint.directory="{out / "checkpoints"}"', timeout=60)
        assert third.returncode == 2, third.stderr
        assert hmmpar_lines(third.stderr) == [
            f"hmmpar: error: checkpoint directory {out / 'checkpoints'} is in use by another hmmpar run "
            f"({holder.strip()}); wait for it to end or choose another checkpoint.directory"]
        assert "step " not in second.stdout + third.stdout
        assert not (out / "checkpoints" / "previous-run").exists() and not (other / "run_config.toml").exists()
        go.touch()
        stdout, stderr = first.communicate(timeout=60)
    except BaseException:
        kill_session(first)
        raise
    assert first.returncode == 0, stderr
    assert list_ckpts(out / "checkpoints") == [4, 5] and (out / "summary.json").exists()


def test_lock_file_of_a_killed_run_does_not_block(tmp_path):
    out = tmp_path / "out"
    cfg = ou_config(tmp_path / "c.toml", out, t_end=0.25, extra="[checkpoint]\nevery_steps = 1\n")
    proc = start_paused(cfg, out / "checkpoints", tmp_path / "never")
    assert kill_session(proc) == []
    assert (out / ".hmmpar.lock").read_text().startswith("pid ")  # left behind by the dead run
    p = hmmpar(2, cfg, "--restart", "latest", timeout=60)
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout and "ckpt_00000001.h5" in p.stdout
    assert list_ckpts(out / "checkpoints") == [3, 4, 5]


def test_the_same_directory_under_two_names_is_locked_once(tmp_path):
    """checkpoint.directory naming the output directory's checkpoints through a symlink:
    one lock, not a run that refuses itself."""
    (tmp_path / "out" / "checkpoints").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "out")
    with lock_run_directories(MPI.COMM_SELF, [(tmp_path / "out", "output directory"),
                                              (tmp_path / "out" / "checkpoints", "checkpoint directory"),
                                              (tmp_path / "alias" / "checkpoints", "checkpoint directory")]) as lock:
        assert len(lock.fds) == 2
    assert lock.fds == []


def test_lock_message_names_the_holder_and_a_free_directory_locks_again(tmp_path):
    """In process: a second lock of a held directory is the one-line ConfigError with the
    holder's pid, host and start time; after release the directory locks again."""
    dirs = [(tmp_path / "o", "output directory")]
    with lock_run_directories(MPI.COMM_SELF, dirs):
        pattern = (rf"^output directory {tmp_path / 'o'} is in use by another hmmpar run \(pid {os.getpid()} "
                   rf"on host {re.escape(socket.gethostname())}, started \S+\); wait for it to end or choose "
                   r"another run.output_dir$")
        with pytest.raises(ConfigError, match=pattern):
            lock_run_directories(MPI.COMM_SELF, dirs)
    with lock_run_directories(MPI.COMM_SELF, dirs) as lock:
        assert len(lock.fds) == 1


def test_a_file_system_without_flock_is_a_warning(tmp_path, monkeypatch, capfd):
    """flock unsupported (ENOLCK, some Lustre mounts): the run goes on, unlocked, and says so."""
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(fcntl, "flock", no_flock)
    with lock_run_directories(MPI.COMM_SELF, [(tmp_path / "o", "output directory")]) as lock:
        assert lock.fds == []
    assert capfd.readouterr().err == (f"hmmpar: warning: cannot lock {tmp_path / 'o'} ({os.strerror(errno.ENOLCK)}): "
                                      "a second run into this directory would not be detected\n")
