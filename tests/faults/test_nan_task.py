"""A micro task that returns NaN or Inf is caught at the farm, named with its task_id and
step, and never reaches the macro state: the run stops with exit 1 before the step's
macro update, so no checkpoint or output holds it.

The fault is real, not injected: ou_averaging with X0 = 1e7 and dt = 1 is a diverging
forward Euler (X grows like X^3 per step: 1e7, 1e21, 1e63, 1e189); at step 3 the micro
estimate <Y^2> ~ X^2 overflows to Inf in the solver of task 1.
"""
from __future__ import annotations

import numpy as np
import pytest

import hmmpar  # noqa: F401 - Debian's MPI h5py
import h5py

from faults_helpers import hmmpar as run_hmmpar
from faults_helpers import hmmpar_lines, list_ckpts, ou_config


@pytest.mark.parametrize("ranks,mode", [(1, "dynamic"), (2, "static"), (3, "dynamic")])
def test_inf_from_a_real_micro_task_stops_the_run_naming_it(tmp_path, ranks, mode):
    out = tmp_path / "out"
    cfg = ou_config(tmp_path / "c.toml", out, points=2, dt=1.0, t_end=10.0, samples=2000,
                    extra=f"[checkpoint]\nevery_steps = 1\n[farm]\nmode = \"{mode}\"\n")
    cfg.write_text(cfg.read_text().replace("points = 2", "points = 2\nx0_min = 0.5\nx0_max = 1e7"))
    p = run_hmmpar(ranks, cfg, timeout=60)
    assert p.returncode == 1, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("hmmpar: error: micro task 1 (step 3) failed on rank ")
    assert lines[0].endswith("FloatingPointError: result field 'y2' is NaN or Inf")
    assert "Traceback" not in p.stderr
    # steps 0-2 were absorbed and checkpointed; step 3's results never were
    ck = out / "checkpoints"
    assert list_ckpts(ck) == [1, 2, 3]
    for step in (1, 2, 3):
        with h5py.File(ck / f"ckpt_{step:08d}.h5", "r") as f:
            assert np.all(np.isfinite(f["fields/X"][()]))
    assert not (out / "X.npy").exists() and not (out / "summary.json").exists()
