"""What Open MPI's mpirun does with SIGTERM and SIGUSR1, as docs/faults.md#signals says.

The run waits inside the write of checkpoint 2 (test hook) until the test lets it go, so
the signal arrives in the middle of "a long step" at a known point.
"""
import os
import signal
import time

from faults_helpers import hmmpar_lines, kill_session, launch, list_ckpts, ou_config, session_processes


def start(tmp_path, go):
    out = tmp_path / "out"
    cfg = ou_config(tmp_path / "c.toml", out, t_end=0.5, extra="[checkpoint]\nevery_steps = 1\nkeep = 5\n")
    proc = launch(2, ["-m", "hmmpar.cli", "run", str(cfg)], env={"HMMPAR_TEST_CHECKPOINT_PAUSE": f"2:@{go}"})
    deadline = time.monotonic() + 60
    while not (out / "checkpoints" / ".ckpt_00000002.h5.tmp").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc, out / "checkpoints"


def test_sigusr1_to_mpirun_checkpoints_at_the_next_step_and_exits_75(tmp_path):
    """mpirun forwards SIGUSR1 to every rank and does not kill them: the ranks finish the
    step (here 3 s later), write a checkpoint, and mpirun's exit status is the ranks' 75."""
    go = tmp_path / "go"
    proc, ck = start(tmp_path, go)
    try:
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(3)  # longer than mpirun's 2 s SIGTERM grace: no kill comes
        assert proc.poll() is None
        go.touch()
        _, err = proc.communicate(timeout=60)
    finally:
        kill_session(proc)
    assert proc.returncode == 75, err
    assert "hmmpar: checkpointed at step 3 after signal; requeue to continue (exit code 75)" in hmmpar_lines(err)
    assert list_ckpts(ck) == [1, 2, 3]


def test_sigterm_to_mpirun_kills_the_ranks_within_seconds_and_exits_1(tmp_path):
    """mpirun (Open MPI 4.1) answers SIGTERM by terminating the job: SIGCONT, SIGTERM and
    SIGKILL to the ranks about 1 s apart. A rank in the middle of a step has no chance to
    checkpoint, and mpirun exits 1, not 75 (what docs/faults.md#signals says; send SIGUSR1)."""
    proc, ck = start(tmp_path, tmp_path / "never")
    t0 = time.monotonic()
    try:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
        deadline = time.monotonic() + 10
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session_processes(proc.pid) == []  # the ranks are gone too
    finally:
        kill_session(proc)
    assert proc.returncode == 1 and elapsed < 15, (proc.returncode, elapsed, err)
    assert not any("checkpointed" in line for line in hmmpar_lines(err))
    assert list_ckpts(ck) == [1]
