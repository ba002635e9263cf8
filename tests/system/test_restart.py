"""Checkpoint/restart through the command line: bitwise-equal continuation on other rank counts."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from conftest import ROOT, hmmpar_lines, mpi_env, mpirun_cmd, run_mpi


def hmmpar(n, cfg, *extra, env=None, timeout=120):
    return run_mpi(n, ["-m", "hmmpar.cli", "run", str(cfg), *extra], env=env, timeout=timeout)


def final_x(outdir: Path) -> np.ndarray:
    return np.load(outdir / "X.npy")


def wait_for_lock_release(directory: Path, timeout: float = 60.0) -> None:
    """Wait until the killed run's rank 0 is gone: ``mpirun`` is reaped before its ranks
    are, and the kernel frees rank 0's ``flock`` only when that process has exited (a
    restart in the meantime is refused, rightly, as a second run into the directory)."""
    import fcntl
    from hmmpar.core.rundir import LOCK_NAME
    fd = os.open(directory / LOCK_NAME, os.O_RDWR)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                assert time.time() < deadline, f"the killed run still holds {directory / LOCK_NAME}"
                time.sleep(0.1)
    finally:
        os.close(fd)


def test_straight_equals_stop_and_restart_on_other_rank_count(small_ou_config, tmp_path):
    straight = tmp_path / "straight"
    p = hmmpar(1, small_ou_config, "--set", f'run.output_dir="{straight}"')
    assert p.returncode == 0, p.stderr
    split = tmp_path / "split"
    # 10 of 20 steps on 2 ranks, checkpoint at the end ...
    p = hmmpar(2, small_ou_config, "--set", f'run.output_dir="{split}"', "--set", "macro.t_end=0.5")
    assert p.returncode == 0, p.stderr
    assert (split / "checkpoints" / "ckpt_00000010.h5").is_file()
    # ... then restart on 3 ranks and run to t = 1.0 (step 20)
    p = hmmpar(3, small_ou_config, "--set", f'run.output_dir="{split}"', "--restart", "latest")
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout and "written on 2 rank(s), now 3" in p.stdout
    a, b = final_x(straight), final_x(split)
    assert a.tobytes() == b.tobytes()  # bitwise
    # and the run really moved away from X(0)
    assert np.all(a < 0.5 * np.linspace(0.2, 2.0, 37))


def test_restart_refuses_changed_physics(small_ou_config, tmp_path):
    out = tmp_path / "o"
    assert hmmpar(1, small_ou_config, "--set", f'run.output_dir="{out}"', "--set", "macro.t_end=0.2").returncode == 0
    p = hmmpar(2, small_ou_config, "--set", f'run.output_dir="{out}"', "--set", "micro.samples=401",
               "--restart", "latest")
    assert p.returncode == 2
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and "different model: micro.samples = 400 (now 401)" in lines[0]


def test_sigkill_during_checkpoint_restarts_from_previous(small_ou_config, tmp_path):
    ref = tmp_path / "ref"
    assert hmmpar(2, small_ou_config, "--set", f'run.output_dir="{ref}"').returncode == 0
    out = tmp_path / "killed"
    ckdir = out / "checkpoints"
    cmd = mpirun_cmd(2, ["-m", "hmmpar.cli", "run", str(small_ou_config), "--set", f'run.output_dir="{out}"',
                         "--set", "checkpoint.every_steps=5"])
    env = mpi_env({"HMMPAR_TEST_CHECKPOINT_PAUSE": "10:60"})
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    tmp = ckdir / ".ckpt_00000010.h5.tmp"
    deadline = time.time() + 60
    while not tmp.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert tmp.exists(), "the run never started writing checkpoint 10"
    os.killpg(proc.pid, signal.SIGKILL)  # kill everything mid-write
    proc.wait(timeout=30)
    assert sorted(p.name for p in ckdir.glob("ckpt_*.h5")) == ["ckpt_00000005.h5"]
    wait_for_lock_release(out)
    p = hmmpar(3, small_ou_config, "--set", f'run.output_dir="{out}"', "--restart", "latest")
    assert p.returncode == 0, p.stderr
    assert "step 5" in p.stdout
    assert final_x(out).tobytes() == final_x(ref).tobytes()
    assert not tmp.exists()  # the partial file was cleaned up by the next write


def test_sigusr1_checkpoints_and_exits_75_then_resumes(small_ou_config, tmp_path):
    ref = tmp_path / "ref"
    assert hmmpar(1, small_ou_config, "--set", f'run.output_dir="{ref}"').returncode == 0
    out = tmp_path / "sig"
    # every_steps = 0 (default): only the signal makes a checkpoint before the end
    args = ["--set", f'run.output_dir="{out}"']
    cmd = mpirun_cmd(2, ["-m", "hmmpar.cli", "run", str(small_ou_config), *args])
    proc = subprocess.Popen(cmd, env=mpi_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    # wait for the first progress line, then send the SLURM pre-timeout signal to mpirun
    line = proc.stdout.readline()
    while line and not line.startswith("step"):
        line = proc.stdout.readline()
    os.kill(proc.pid, signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 75, stderr
    assert "checkpointed at step" in stderr
    written = sorted((out / "checkpoints").glob("ckpt_*.h5"))
    assert len(written) == 1 and written[0].name != "ckpt_00000020.h5"
    p = hmmpar(3, small_ou_config, *args, "--restart", "latest")
    assert p.returncode == 0, p.stderr
    assert final_x(out).tobytes() == final_x(ref).tobytes()


def test_ckpt_info_and_foreign_or_truncated_files(small_ou_config, tmp_path):
    out = tmp_path / "o"
    assert hmmpar(2, small_ou_config, "--set", f'run.output_dir="{out}"', "--set", "macro.t_end=0.1").returncode == 0
    ck = out / "checkpoints" / "ckpt_00000002.h5"
    info = run_mpi(1, ["-m", "hmmpar.cli", "ckpt", "info", str(ck)])
    assert info.returncode == 0 and "step            2" in info.stdout and "/fields/X" in info.stdout
    # truncated copy
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(ck.read_bytes()[:1000])
    p = hmmpar(2, small_ou_config, "--set", f'run.output_dir="{out}"', "--restart", str(trunc))
    assert p.returncode == 2 and "unreadable or truncated" in "".join(hmmpar_lines(p.stderr))
    # an HDF5 file that is not a checkpoint
    import h5py
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    p = hmmpar(2, small_ou_config, "--set", f'run.output_dir="{out}"', "--restart", str(tmp_path / "foreign.h5"))
    assert p.returncode == 2 and "is not an hmmpar checkpoint" in "".join(hmmpar_lines(p.stderr))
    # latest skips a corrupt newest checkpoint with a warning
    (out / "checkpoints" / "ckpt_00000099.h5").write_bytes(b"garbage" * 100)
    p = hmmpar(1, small_ou_config, "--set", f'run.output_dir="{out}"', "--restart", "latest")
    assert p.returncode == 0, p.stderr
    bad = out / "checkpoints" / "ckpt_00000099.h5"
    assert f"hmmpar: warning: skipping {bad}: unreadable or truncated" in p.stderr
    assert "restarted from" in p.stdout


def test_restart_past_the_end_is_refused(small_ou_config, tmp_path):
    out = tmp_path / "o"
    assert hmmpar(1, small_ou_config, "--set", f'run.output_dir="{out}"', "--set", "macro.t_end=0.5").returncode == 0
    p = hmmpar(1, small_ou_config, "--set", f'run.output_dir="{out}"', "--set", "macro.t_end=0.25",
               "--restart", "latest")
    assert p.returncode == 2
    assert "checkpoint is at step 10 (t = 0.5), past the end of this run (5 steps)" in p.stderr


def test_fresh_run_moves_earlier_checkpoints_aside(small_ou_config, tmp_path):
    out = tmp_path / "o"
    ck = out / "checkpoints"
    args = ["--set", f'run.output_dir="{out}"', "--set", "checkpoint.keep=1"]
    assert hmmpar(1, small_ou_config, *args).returncode == 0  # leaves ckpt_20
    p = hmmpar(1, small_ou_config, *args, "--set", "macro.t_end=0.25")  # fresh, shorter run
    assert p.returncode == 0, p.stderr
    assert "moved 1 checkpoint(s) of an earlier run" in p.stderr
    assert [c.name for c in ck.glob("ckpt_*.h5")] == ["ckpt_00000005.h5"]
    assert [c.name for c in (ck / "previous-run").glob("ckpt_*.h5")] == ["ckpt_00000020.h5"]


def test_restart_auto_starts_fresh_then_continues(small_ou_config, tmp_path):
    """``--restart auto``: no checkpoint yet -> a fresh run; checkpoints there -> continue
    from the newest (what a batch script that may be a requeue runs)."""
    straight = tmp_path / "straight"
    assert hmmpar(1, small_ou_config, "--set", f'run.output_dir="{straight}"').returncode == 0
    out = tmp_path / "auto"
    p = hmmpar(2, small_ou_config, "--set", f'run.output_dir="{out}"', "--set", "macro.t_end=0.5",
               "--restart", "auto")
    assert p.returncode == 0, p.stderr
    assert "restarted from" not in p.stdout
    p = hmmpar(3, small_ou_config, "--set", f'run.output_dir="{out}"', "--restart", "auto")
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout and "ckpt_00000010.h5" in p.stdout
    assert final_x(straight).tobytes() == final_x(out).tobytes()
