"""A failing micro task ends the whole run quickly with one clear message (no hang)."""
from __future__ import annotations

import time

from conftest import SCRIPTS, hmmpar_lines, run_mpi


def test_task_raising_on_rank_2_of_3_ends_run_within_10s(tmp_path):
    stamp = tmp_path / "stamp"
    proc = run_mpi(3, [str(SCRIPTS / "failing_farm.py"), "raise", str(stamp)], timeout=60)
    t_exit = time.time()
    assert proc.returncode == 1, proc.stderr
    lines = hmmpar_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr  # one message, printed once
    assert "micro task" in lines[0] and "failed on rank 2" in lines[0]
    assert "ValueError: micro model diverged" in lines[0]
    assert "Traceback" not in proc.stderr
    t_fail = min(float(t) for t in stamp.read_text().split())
    assert t_exit - t_fail < 10.0, f"run took {t_exit - t_fail:.1f} s to end after the failure"


def test_stuck_worker_cannot_hang_the_run(tmp_path):
    """A worker stuck in a task while another fails: the master aborts after abort_grace."""
    stamp = tmp_path / "stamp"
    proc = run_mpi(3, [str(SCRIPTS / "failing_farm.py"), "stuck", str(stamp)], timeout=60)
    t_exit = time.time()
    assert proc.returncode != 0
    lines = hmmpar_lines(proc.stderr)
    assert len(lines) == 1 and "failed on rank 2" in lines[0] and "rank 1 did not stop within 3 s" in lines[0]
    t_fail = min(float(t) for t in stamp.read_text().split())
    assert t_exit - t_fail < 10.0
