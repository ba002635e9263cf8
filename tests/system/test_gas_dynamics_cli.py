"""The gas-dynamics app from the command line: bad inputs are one-line errors with exit 2
before any micro work; a run that loses positivity stops with exit 1 naming the cell; the
driver writes the documented outputs (HDF5, XDMF time series, PNG, snapshots); a run
stopped by USR1 continues on another rank count to the uninterrupted run's states."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import ROOT, hmmpar_lines, mpi_env, mpirun_cmd, run_mpi

GOOD = """
[run]
app = "gas_dynamics"
output_dir = "{out}"
[macro]
cells = [12]
t_end = 0.02
[output]
plots = false
"""

#: case -> (--set overrides, ranks, text the one error line must hold)
CASES = {
    "cells_too_few": (["macro.cells=[2]"], 1, "config key macro.cells = [2]: every entry must be >= 3"),
    "cells_vs_dim": (["macro.dim=2"], 1, "config key macro.cells must have 2 entries (macro.dim = 2), got 1"),
    "cells_per_rank": (["macro.cells=[5]"], 3, "config key macro.cells = [5]: 3 ranks cannot each get at least 2"),
    "cfl_above_one": (["macro.cfl=1.5", 'macro.scheme="kinetic"', "macro.order=1"], 1,
                      "config key macro.cfl = 1.5 exceeds the stability limit 1 of the kinetic scheme"),
    "cfl_staggered_2d": (["macro.cfl=0.6", "macro.dim=2", "macro.cells=[6, 6]", 'problem.name="blast2d"'], 2,
                         "config key macro.cfl = 0.6 exceeds the stability limit 0.5 of the staggered scheme"),
    "unknown_problem": (['problem.name="shocktube"'], 1, "config key problem.name must be one of sod, lax"),
    "2d_problem_in_1d": (['problem.name="riemann2d"'], 2, "config key problem.name = 'riemann2d' is a 2D problem; "
                                                          "set macro.dim = 2"),
    "rho_formula_negative": (['problem.name="custom"', 'problem.rho="1 - 2*x"'], 2,
                             "config key problem.rho gives rho = -0.0833333 (must be > 0) at cell 6 (x = 0.541667)"),
    "p_formula_zero": (['problem.name="custom"', 'problem.p="where(x > 0.9, 0, 1)"'], 1,
                       "config key problem.p gives p = 0 (must be > 0) at cell 11 (x = 0.958333)"),
    "formula_nan": (['problem.name="custom"', 'problem.u="sqrt(x - 0.5)"'], 1,
                    "config key problem.u = 'sqrt(x - 0.5)' is not finite at x = (0.0416667)"),
    "bc_unknown": (['macro.bc=["wall"]'], 1, "config key macro.bc[0] = 'wall' must be one of periodic, reflecting, "
                                             "outflow"),
    "bc_half_periodic": (['macro.bc=["periodic", "outflow"]'], 1, "x- is periodic and x+ is outflow; periodic must "
                                                                  "be on both sides"),
    "riemann_vacuum": (['problem.name="riemann"', "problem.left=[1, -10, 0.4]", "problem.right=[1, 10, 0.4]"], 1,
                       "the Riemann data generate a vacuum"),
    "x0_outside": (["problem.x0=2.0"], 1, "config key problem.x0 = 2 must lie inside the domain (0, 1)"),
    "gamma_one": (["micro.gamma=1.0"], 1, "config key micro.gamma must be > 1.0"),
    "model_unknown": (['micro.model="dsmc"'], 1, "config key micro.model must be one of ideal, md"),
    "md_eos_range": (['micro.model="md"', "micro.eos_densities=[1.0, 0.5]"], 2,
                     "config key micro.eos_densities must be [min, max] with 0 < min < max"),
    "md_cutoff": (['micro.model="md"', "micro.cutoff=0.5"], 1, "config key micro.cutoff must be >= 1.12"),
    "md_box_too_small": (['micro.model="md"', "micro.atoms=20"], 2,
                         "config key micro.atoms = 20: a box at density 1.4 has side 2.426 <= 2 r_c = 5; use at least 176 atoms"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(tmp_path, case):
    overrides, ranks, message = CASES[case]
    cfg = tmp_path / "gas.toml"
    cfg.write_text(GOOD.format(out=tmp_path / "out"))
    args = [arg for o in overrides for arg in ("--set", o)]
    p = run_mpi(ranks, ["-m", "hmmpar.cli", "run", str(cfg), *args], timeout=120)
    assert p.returncode == 2, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and message in lines[0], p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out" / "snapshots").exists()  # refused before any work


def test_lost_positivity_stops_with_the_cell_named(tmp_path):
    """A near-vacuum jet that NT cannot hold: exit 1, one line naming the state and the
    corner where it turned non-physical, on 2 ranks."""
    cfg = tmp_path / "gas.toml"
    cfg.write_text(GOOD.format(out=tmp_path / "out").replace("cells = [12]", "cells = [100]"))
    p = run_mpi(2, ["-m", "hmmpar.cli", "run", str(cfg), "--set", 'problem.name="custom"',
                    "--set", 'problem.p="where(x < 0.5, 1, 1e-9)"', "--set", 'problem.u="where(x < 0.5, 0, 40)"'],
                timeout=120)
    assert p.returncode == 1, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert "non-physical state after a half step at step 3" in lines[0] and "in corner 52 (x = 0.52)" in lines[0]
    assert ", p = -" in lines[0] and "rho e = -" in lines[0]


def test_driver_writes_the_documented_outputs(tmp_path):
    out = tmp_path / "run"
    p = run_mpi(2, ["drivers/gas_dynamics.py", "--set", f'run.output_dir="{out}"', "--set", "macro.cells=[40]",
                    "--set", "output.snapshot_interval=0.1", "--set", 'macro.scheme="kinetic"'], timeout=180, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    for name in ("summary.json", "gas_dynamics.h5", "gas_dynamics.xdmf", "gas_dynamics.png", "timing.json",
                 "snapshots/gas_dynamics_00000.h5", "snapshots/gas_dynamics_00001.h5"):
        assert (out / name).is_file(), name
    s = json.loads((out / "summary.json").read_text())
    assert s["time"] == 0.2 and s["problem"] == "sod" and s["micro"] == {"model": "ideal", "gamma": 5 / 3}
    assert s["exact_star_state"]["p"] == pytest.approx(0.29395, abs=5e-6)
    series = ET.parse(out / "gas_dynamics.xdmf").getroot().find("Domain/Grid")
    assert series.get("CollectionType") == "Temporal"
    times = [float(g.find("Time").get("Value")) for g in series.findall("Grid")]
    assert times[0] == 0.0 and times[-1] == 0.2 and times == sorted(times) and len(times) == 3
    assert "hmmpar gas_dynamics: about" in p.stdout and "steps (estimated)" in p.stdout


def test_sigusr1_checkpoints_and_the_restart_on_3_ranks_is_bitwise_the_straight_run(tmp_path):
    """The adaptive step count (the run ends by time) and the checkpoint/stop logic: USR1
    to mpirun after the first progress line checkpoints at the next step boundary and
    exits 75; `--restart latest` on 3 ranks then ends with the cell states of an
    uninterrupted 1-rank run, bit for bit."""
    args = ["--set", "macro.cells=[60]", "--set", "run.progress_interval=0", "--set", "output.plots=false"]
    ref = tmp_path / "ref"
    p = run_mpi(1, ["drivers/gas_dynamics.py", *args, "--set", f'run.output_dir="{ref}"'], cwd=ROOT)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "sig"
    cmd = mpirun_cmd(2, ["drivers/gas_dynamics.py", *args, "--set", f'run.output_dir="{out}"'])
    proc = subprocess.Popen(cmd, env=mpi_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    line = proc.stdout.readline()
    while line and not line.startswith("step"):
        line = proc.stdout.readline()
    os.kill(proc.pid, signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 75, stderr
    written = sorted((out / "checkpoints").glob("ckpt_*.h5"))
    assert len(written) == 1
    p = run_mpi(3, ["drivers/gas_dynamics.py", *args, "--set", f'run.output_dir="{out}"', "--restart", "latest"],
                cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout and "now 3" in p.stdout
    import hmmpar  # noqa: F401 - MPI h5py
    import h5py
    with h5py.File(ref / "gas_dynamics.h5", "r") as a, h5py.File(out / "gas_dynamics.h5", "r") as b:
        for name in ("rho", "u", "p", "E"):
            assert np.array(a[name]).tobytes() == np.array(b[name]).tobytes(), name
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (ref, out))
    assert sa["steps"] == sb["steps"] and sa["micro_tasks"] == sb["micro_tasks"]
