"""Smoke test of benchmarks/superparam_scaling.py: its tiny mode (batches of 1, 2, 4 boxes,
real runs of 8 columns on 1 and 2 ranks, emulated runs of 16 columns to 4 ranks) exits 0
and writes a JSON of the documented structure with sane numbers, and the PNG. No wall-time
target is asserted: the machine is shared."""
from __future__ import annotations

import json
import math
import subprocess
import sys

from conftest import ROOT, mpi_env

SCRIPT = ROOT / "benchmarks" / "superparam_scaling.py"


def test_tiny_mode_writes_json_and_png_with_sane_numbers(tmp_path):
    p = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--out-dir", str(tmp_path), "--timeout", "150"],
                       capture_output=True, text=True, timeout=200, env=mpi_env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    out = json.loads((tmp_path / "superparam_scaling_tiny.json").read_text())
    assert (tmp_path / "superparam_scaling_tiny.png").stat().st_size > 0
    assert out["mode"] == "tiny" and out["config"]["max_ranks"] == 4
    for key in ("batching", "real", "emulated"):
        assert "error" not in out[key], out[key]
    # batching: one grid, batches 1, 2, 4, ratio 1 at one column, positive rates
    (grid,) = out["batching"]["grids"]
    assert grid["grid"] == [32, 25]
    assert [r["columns"] for r in grid["rows"]] == [1, 2, 4]
    assert grid["rows"][0]["ratio"] == 1.0
    assert all(r["column_steps_per_s"] > 0 and r["ratio"] > 0 for r in grid["rows"])
    # real: p = 1, 2 with efficiencies, the calibration of the emulation
    real = out["real"]
    assert [r["p"] for r in real["runs"]] == [1, 2]
    for r in real["runs"]:
        assert 0 < r["efficiency"] <= 1.2, r
        assert set(r["phases_max"]) >= {"macro_solve", "micro", "farm_comm", "idle", "io"}
        assert sum(r["columns_per_rank"]) == 8 * 4  # 8 columns x 4 coupling steps
        assert r["cpu_seconds"] > 0
    assert real["distributed"]["poisson"] == "distributed" and real["distributed"]["p"] == 2
    cal = real["calibration"]
    assert cal["column_seconds"] > 0 and cal["substeps_per_column_call"] >= 1
    # emulated: p = 1, 2, 4
    emu = out["emulated"]
    assert [r["p"] for r in emu["runs"]] == [1, 2, 4]
    for r in emu["runs"]:
        assert 0 < r["efficiency"] <= 1.2, r
        assert r["rebalance"]["count"] == 1 and r["checkpoint"]["count"] >= 1  # at step 2 (none after the last, 4)
        assert math.isfinite(r["cores_busy"]) and r["cores_busy"] > 0
    # the emulated micro time is the calibrated sleep: 16 columns x 2 steps x column_seconds on 1 rank
    one = emu["runs"][0]
    assert one["phases_max"]["micro"] >= 0.9 * 16 * 2 * emu["column_seconds_emulated"]
    assert {(r["grid"][0], r["poisson"]) for r in out["batching"]["poisson"]} == {(64, "redundant"),
                                                                                   (64, "distributed")}
    assert all(r["solve_seconds"] > 0 for r in out["batching"]["poisson"])
    assert set(out["aims"]) == {"real_strong_eff_2", "emulated_strong_eff_4"}
    assert all(isinstance(a["met"], bool) for a in out["aims"].values())
