"""A micro task that runs past ``farm.task_time_limit`` is reported with its task_id and
step, on any rank count and in either farm mode; the run ends (no hang)."""
from __future__ import annotations

import re
import time

import pytest

from faults_helpers import SCRIPTS
from faults_helpers import hmmpar as run_hmmpar
from faults_helpers import hmmpar_lines, ou_config, run_mpi
from hmmpar.core.config import load_config
from hmmpar.core.errors import ConfigError


@pytest.mark.parametrize("ranks,mode", [(1, "dynamic"), (2, "static"), (3, "dynamic"), (3, "static")])
def test_stuck_python_task_is_interrupted_and_named(ranks, mode):
    t0 = time.monotonic()
    p = run_mpi(ranks, [str(SCRIPTS / "slow_task.py"), mode, "sleep"], timeout=60)
    elapsed = time.monotonic() - t0
    assert p.returncode == 1, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert re.fullmatch(r"hmmpar: error: micro task 17 \(step 1\) failed on rank \d: TaskTimeout: "
                        r"ran past the time limit farm\.task_time_limit = 0\.2 s", lines[0]), lines[0]
    assert "Traceback" not in p.stderr
    assert elapsed < 20, f"{elapsed:.1f} s"


def test_stuck_numba_task_without_gil_is_aborted_by_the_watchdog():
    p = run_mpi(2, [str(SCRIPTS / "slow_task.py"), "dynamic", "nogil"], timeout=60)
    assert p.returncode != 0
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert re.fullmatch(r"hmmpar: error: (micro task 5|one of micro tasks .*) \(step 1\) on rank \d ran past "
                        r"the time limit \(farm\.task_time_limit = 0\.2 s per task\) and could not be "
                        r"interrupted; aborting", lines[0]), lines[0]
    if not lines[0].startswith("hmmpar: error: micro task 5 "):
        assert re.search(r"tasks (\d+, )*5\b", lines[0]) or "more" in lines[0]


def test_stuck_numba_task_holding_the_gil_ends_by_faulthandler():
    p = run_mpi(1, [str(SCRIPTS / "slow_task.py"), "dynamic", "gil"], timeout=60)
    assert p.returncode != 0
    assert "Timeout (0:00:0" in p.stderr
    # the traceback names the stuck call's tasks and step on a line of its own
    assert re.search(r"line \d+ in <hmmpar: error: (micro task 5|one of micro tasks [^>]*) \(step 1\) on rank 0 "
                     r"ran past the time limit", p.stderr), p.stderr


def test_real_app_task_over_the_limit_is_named(tmp_path):
    """ou_averaging through ``hmmpar run``: tasks of ~30 ms against a 2 ms limit."""
    out = tmp_path / "out"
    cfg = ou_config(tmp_path / "c.toml", out, points=8, samples=3_000_000,
                    extra="[farm]\ntask_time_limit = 0.002\n")
    p = run_hmmpar(2, cfg, timeout=60)
    assert p.returncode == 1, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert re.fullmatch(r"hmmpar: error: micro task [0-7] \(step 0\) failed on rank [01]: TaskTimeout: ran past "
                        r"the time limit farm\.task_time_limit = 0\.002 s", lines[0]), lines[0]
    assert not list((out / "checkpoints").glob("ckpt_*.h5")) and not (out / "timing.json").exists()


def test_time_limit_is_validated(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\napp = "ou_averaging"\n[farm]\ntask_time_limit = -1\n')
    with pytest.raises(ConfigError, match="config key farm.task_time_limit must be >= 0.0, got -1.0"):
        load_config(cfg)
    assert load_config(cfg, ["farm.task_time_limit=30"])["farm.task_time_limit"] == 30.0
