"""The checkpoint directory after restarts: only this run's line of checkpoints is pruned and
found by ``--restart latest`` (see tests/unit/test_checkpoint_pruning.py for each case)."""
from __future__ import annotations

from conftest import hmmpar_lines, run_mpi

from mpi4py import MPI

from hmmpar.core.checkpoint import checkpoint_run_id, list_checkpoints, resolve_restart


def hmmpar(n, cfg, *extra):
    return run_mpi(n, ["-m", "hmmpar.cli", "run", str(cfg), *extra], timeout=120)


def test_shorter_rerun_from_an_older_checkpoint_then_restart_latest(small_ou_config, tmp_path):
    """A 20-step run leaves checkpoints 10, 15, 20 (keep 3, every 5 steps). Re-run from 10 to
    step 12: 15 and 20 are set aside (by step number alone 20 was kept and 10 deleted, and
    ``--restart latest`` then refused 20: past the end of the 12-step run). The run's
    identity is kept across the restart."""
    out = tmp_path / "o"
    ck = out / "checkpoints"
    args = ["--set", f'run.output_dir="{out}"', "--set", "checkpoint.every_steps=5", "--set", "checkpoint.keep=3"]
    assert hmmpar(1, small_ou_config, *args).returncode == 0
    assert [s for s, _ in list_checkpoints(ck)] == [10, 15, 20]
    run_id = checkpoint_run_id(ck / "ckpt_00000020.h5")
    assert len(run_id) == 16
    p = hmmpar(2, small_ou_config, *args, "--set", "macro.t_end=0.6", "--restart", str(ck / "ckpt_00000010.h5"))
    assert p.returncode == 0, p.stderr
    assert hmmpar_lines(p.stderr) == [f"hmmpar: warning: restart from step 10: moved 2 checkpoint(s) that are "
                                      f"newer or of another run to {ck / 'set-aside'}"]
    assert [s for s, _ in list_checkpoints(ck)] == [10, 12]
    assert [s for s, _ in list_checkpoints(ck / "set-aside")] == [15, 20]
    assert checkpoint_run_id(ck / "ckpt_00000012.h5") == run_id
    assert resolve_restart(MPI.COMM_SELF, "latest", ck) == ck / "ckpt_00000012.h5"  # what --restart latest takes
