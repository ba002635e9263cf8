"""The superparametrization app: a convection box under every coarse column. Heat exchanged
between the models balances to round-off; the trajectory is bitwise the same on 1, 2, 3
ranks and after a restart on another rank count; bad input is one line naming the key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, hmmpar_lines, run_mpi

CONFIG = ROOT / "drivers" / "configs" / "superparam.toml"
# the demo config made small and fast: columns of width 1, free-slip walls, short steps
SMALL = ("macro.lx=8.0", "macro.dt=2e-4", "model.walls=free-slip",
         "macro.t_end=0.002", "micro.nx=16", "micro.nz=19", "model.ra=2e4", "output.plots=false",
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
    # the rebalance record survives the restart: steps 3 and 6 and 9, two of them after it
    assert ref["rebalance"]["count"] == 3 and summary(split)["rebalance"]["count"] == 3
    assert summary(split)["rebalance"]["last"]["step"] == 9
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
    (("macro.dt=0.004", "macro.t_end=0.008"), "macro.dt"),  # beyond the coarse model's stable step
    ("macro.dt=0.0015", "macro.t_end / macro.dt"),          # 0.002 is not a whole number of steps
    ("model.bottom_profile=[1.0,1.0]", "model.bottom_profile"),  # not one value per column (8)
    ("output.average_from=5.0", "output.average_from"),         # after the last step: nothing to average
])
def test_bad_input_is_one_line_naming_the_key(tmp_path, setting, key):
    out = tmp_path / "bad"
    p = run(1, out, *((setting,) if isinstance(setting, str) else setting))
    assert p.returncode != 0
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and key in lines[0], p.stderr


IMBALANCED = ROOT / "drivers" / "configs" / "superparam_imbalanced.toml"


def test_imbalanced_columns_are_rebalanced_without_changing_the_trajectory(tmp_path):
    """Two warm spots (columns 2 and 6, both on rank 0 of 2 under the first placement)
    convect and take several times the sub-steps of the quiet columns; the rebalance at
    step 20 moves columns, lowers the predicted imbalance, and changes no bit of the
    trajectory against one rank. The timing report measures each placement (wall times
    are reported, never asserted)."""
    short = ("macro.t_end=0.01", "coupling.rebalance_every=20", "output.plots=false", "run.progress_interval=0",
             "checkpoint.every_steps=0")
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"r{n}"
        args = ["-m", "hmmpar.cli", "run", str(IMBALANCED), "--set", f'run.output_dir="{out}"',
                *[a for s in short for a in ("--set", s)]]
        p = run_mpi(n, args, timeout=300)
        assert p.returncode == 0, p.stderr
        runs[n] = (summary(out), json.loads((out / "timing.json").read_text()), p.stdout)
    (one, _, _), (two, timing, log) = runs[1], runs[2]
    assert two["steps"] == 25 and two["rebalance"]["count"] == 1
    ev = two["rebalance"]["first_move"]
    assert ev is not None and ev["step"] == 20 and ev["moved"] >= 1
    costs = ev["costs"]
    # deep convection over the warm spots only: the costliest column takes > 2.5 times the
    # sub-steps of the cheapest, and the warm ones (2, 6) are the two costliest
    assert max(costs) / min(costs) > 2.5, costs
    assert sorted(range(8), key=lambda i: -costs[i])[:2] in ([2, 6], [6, 2]), costs
    # alternating first placement: both warm columns on rank 0, so LPT must do better
    assert ev["imbalance_before"] > 1.1 and ev["imbalance_after"] < ev["imbalance_before"]
    assert f"rebalanced at step 20: moved {ev['moved']} column(s)" in log
    # the timing report measures the placement before the move and the one after it
    placements = timing["farm"]["placements"]
    assert [p["calls"] for p in placements] == [20, 5]
    assert "instances moved 1 time(s)" in log
    # rebalancing moves states as bytes: not one bit of the trajectory changes
    assert two["profiles"]["column_T"] == one["profiles"]["column_T"]
    assert two["heat_content"] == one["heat_content"] and two["micro_substeps"] == one["micro_substeps"]
    assert one["rebalance"]["moved"] == 0  # one rank: nothing to move
