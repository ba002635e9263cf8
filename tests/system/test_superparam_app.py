"""The superparametrization app: a convection box under every coarse column. Heat exchanged
between the models balances to round-off; the trajectory is bitwise the same on 1, 2, 3
ranks and after a restart on another rank count; bad input is one line naming the key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, hmmpar_lines, run_mpi

CONFIG = ROOT / "drivers" / "configs" / "superparam.toml"
SMALL = ("macro.t_end=0.002", "micro.nx=16", "micro.nz=19", "model.ra=2e4", "output.plots=false",
         "run.progress_interval=0", "coupling.rebalance_every=3",
         "output.average_from=0.0008")


def run(n, out: Path, *sets: str, restart: bool = False):
    args = ["-m", "hmmpar.cli", "run", str(CONFIG), "--set", f'run.output_dir="{out}"',
            *[a for s in (*SMALL, *sets) for a in ("--set", s)]]
    if restart:
        args += ["--restart", "latest"]
    return run_mpi(n, args, timeout=300)


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_one_two_three_ranks_and_a_restart_are_bitwise_equal_and_heat_balances(tmp_path):
    runs = {}
    for n in (1, 2, 3):
        out = tmp_path / f"r{n}"
        p = run(n, out)
        assert p.returncode == 0, p.stderr
        runs[n] = summary(out)
    ref = runs[1]
    assert ref["steps"] == 10 and ref["superparam"] is True
    for n in (2, 3):
        assert runs[n]["profiles"]["column_T"] == ref["profiles"]["column_T"], n
        assert runs[n]["heat_content"] == ref["heat_content"]
        assert runs[n]["micro_substeps"] == ref["micro_substeps"]
        assert runs[n]["averages"] == ref["averages"]
    # the column heat bookkeeping: exact cell averages and the min-norm lift make the
    # balance an identity in exact arithmetic; a few ulps of the column's heat remain
    assert ref["heat_exchange_defect_max"] < 1e-13
    # the columns follow their boxes' bottom temperature: warmer over the warm middle
    col = ref["profiles"]["column_T"]
    assert col[3][0] > col[0][0] and col[4][0] > col[7][0]
    # restart: 5 steps on 1 rank, 5 more on 3 ranks
    split = tmp_path / "split"
    assert run(1, split, "macro.t_end=0.001", "checkpoint.every_steps=5").returncode == 0
    p = run(3, split, restart=True)
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout
    assert summary(split)["profiles"]["column_T"] == ref["profiles"]["column_T"]
    # the time averages (window from step 4, across the restart at step 5) too
    avg = ref["averages"]
    assert avg["samples"] == 6 and avg["from_time"] == pytest.approx(0.0008)
    assert summary(split)["averages"] == avg
    # the bottom face's mean flux is the boxes' conductive wall flux: warm columns lose more
    # heat into the fluid than the cool sides (T_b = 1 - 0.5 cos(2 pi x / 8))
    assert avg["nusselt_bottom"][3] > avg["nusselt_bottom"][0] > 0


def test_the_coarse_model_alone_runs_without_boxes(tmp_path):
    out = tmp_path / "alone"
    p = run(2, out, "coupling.superparam=false")
    assert p.returncode == 0, p.stderr
    s = summary(out)
    assert s["superparam"] is False and s["micro_substeps"] == 0 and s["heat_exchange_defect_max"] is None


@pytest.mark.parametrize("setting, key", [
    ("micro.aspect=2.0", "micro.aspect"),   # wider than a macro column (8 / 8 = 1)
    ("macro.nz=20", "macro.nz"),            # more macro cells than box levels (19)
    ("model.ra=-1.0", "model.ra"),
    ("macro.dt=0.5", "macro.dt"),           # beyond the coarse model's stable step
])
def test_bad_input_is_one_line_naming_the_key(tmp_path, setting, key):
    out = tmp_path / "bad"
    p = run(1, out, setting)
    assert p.returncode != 0
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and key in lines[0], p.stderr
