"""The elliptic FE-HMM application as users run it: under mpirun, restarted, and its driver."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import hmmpar  # noqa: F401 - MPI h5py
import h5py

from conftest import ROOT, hmmpar_lines, run_mpi

CONFIG = """
[run]
app = "elliptic"
output_dir = "{out}"
progress_interval = 0.0
[macro]
cells = [8, 6]
[problem]
source = "1 + x*y"
dirichlet = ["x-", "y-", "y+"]
neumann = ["x+"]
neumann_value = "0.5*y"
[coefficient]
kind = "formula"
formula = "(1 + 0.5*x1*x2) * (2 + sin(2*pi*y1)) / (2 + cos(2*pi*y2))"
[micro]
eps = 0.01
n = 12
batches = 4
[checkpoint]
every_steps = 1
keep = 10
[output]
plots = false
"""


def config(tmp_path, name):
    f = tmp_path / f"{name}.toml"
    f.write_text(CONFIG.format(out=tmp_path / name))
    return f


def hmmpar(n, *args, timeout=240):
    return run_mpi(n, ["-m", "hmmpar.cli", "run", *map(str, args)], timeout=timeout)


def nodal_u(out):
    with h5py.File(out / "elliptic.h5", "r") as f:
        return np.array(f["nodal/U"])


def summary(out):
    return json.loads((out / "summary.json").read_text())


def test_one_two_three_ranks_same_solution(tmp_path):
    results = {}
    for n in (1, 2, 3):
        name = f"r{n}"
        p = hmmpar(n, config(tmp_path, name))
        assert p.returncode == 0, p.stderr
        results[n] = nodal_u(tmp_path / name)
        s = summary(tmp_path / name)
        assert s["cell_problems"] == 8 * 6 * 4 == s["cell_problems_solved_this_run"]
    assert results[1].shape == (7, 9)
    scale = np.abs(results[1]).max()
    assert scale > 0.01
    for n in (2, 3):  # macro rtol 1e-10: the same U to solver tolerance
        assert np.abs(results[n] - results[1]).max() < 1e-8 * scale
    # one checkpoint per batch and none after the macro solve, which stores nothing new
    assert sorted(p.name for p in (tmp_path / "r2" / "checkpoints").glob("ckpt_*.h5")) == \
        [f"ckpt_0000000{k}.h5" for k in (1, 2, 3, 4)]
    # the cell problems themselves are rank-independent bit for bit
    with h5py.File(tmp_path / "r1" / "checkpoints" / "ckpt_00000004.h5", "r") as a, \
            h5py.File(tmp_path / "r3" / "checkpoints" / "ckpt_00000004.h5", "r") as b:
        assert np.array(a["fields/A_H"]).tobytes() == np.array(b["fields/A_H"]).tobytes()


def test_restart_of_a_finished_run_redoes_only_the_macro_solve(tmp_path):
    p = hmmpar(2, config(tmp_path, "done"))
    assert p.returncode == 0, p.stderr
    reference = nodal_u(tmp_path / "done")
    p = hmmpar(3, config(tmp_path, "done"), "--restart", "latest")
    assert p.returncode == 0, p.stderr
    assert "ckpt_00000004.h5" in p.stdout
    s = summary(tmp_path / "done")
    assert s["cell_problems_solved_this_run"] == 0 and s["cell_problems"] == 8 * 6 * 4
    assert np.abs(nodal_u(tmp_path / "done") - reference).max() < 1e-8 * np.abs(reference).max()


def test_restart_does_not_resolve_checkpointed_cells(tmp_path):
    p = hmmpar(1, config(tmp_path, "full"))
    assert p.returncode == 0, p.stderr
    reference = nodal_u(tmp_path / "full")
    # keep the checkpoint after 2 of the 4 batches, as if the run had been killed there
    out = tmp_path / "killed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "full" / "checkpoints" / "ckpt_00000002.h5", out / "checkpoints")
    p = hmmpar(3, config(tmp_path, "killed"), "--restart", "latest")
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout
    s = summary(out)
    assert s["cell_problems_solved_this_run"] == s["cell_problems"] // 2
    assert np.abs(nodal_u(out) - reference).max() < 1e-8 * np.abs(reference).max()


def test_outputs_xdmf_png_and_bad_side(tmp_path):
    f = config(tmp_path, "plots")
    f.write_text(f.read_text().replace("plots = false", "plots = true"))
    p = hmmpar(2, f)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "plots"
    for name in ("elliptic.h5", "elliptic.xdmf", "elliptic.png", "summary.json", "timing.json"):
        assert (out / name).is_file(), name
    import xml.etree.ElementTree as ET
    ET.parse(out / "elliptic.xdmf")
    p = hmmpar(2, f, "--set", 'problem.neumann=["x+", "w-"]')
    assert p.returncode == 2
    assert hmmpar_lines(p.stderr) == ["hmmpar: error: config key problem.neumann: unknown side 'w-' "
                                      "(sides: x-, x+, y-, y+)"]


def test_driver_default_config_runs(tmp_path):
    """drivers/elliptic.py with its default config (made small with --set) on 2 ranks."""
    p = run_mpi(2, [str(ROOT / "drivers" / "elliptic.py"), "--set", f'run.output_dir="{tmp_path}"',
                    "--set", "macro.cells=[6, 6]", "--set", "micro.n=8", "--set", "output.plots=false"],
                timeout=240)
    assert p.returncode == 0, p.stderr
    s = summary(tmp_path)
    assert s["cell_problems_solved_this_run"] == 6 * 6 * 4
    # the demo's coefficient separates: A_H(x) = (1 + 0.5 sin(pi x1)) A_periodic, so U > 0
    assert s["U_max"] > 0 and s["U_min"] > -1e-12


def test_sbatch_script_runs_and_resumes_outside_slurm(tmp_path):
    """slurm/elliptic.sbatch as a plain script (no Slurm here): runs, and a second call
    finds the checkpoints and resumes instead of starting over."""
    import subprocess
    from conftest import mpi_env
    cfg = config(tmp_path, "sb")
    env = mpi_env({"OUT": str(tmp_path / "sbout"), "PYTHON": __import__("sys").executable,
                   "SLURM_NTASKS": "2"})
    cmd = ["bash", str(ROOT / "slurm" / "elliptic.sbatch"), str(cfg), "--set", "micro.batches=2"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert summary(tmp_path / "sbout")["cell_problems_solved_this_run"] == 8 * 6 * 4
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    # the run was complete: the restart re-solves the macro problem from the checkpointed
    # A_H and writes the same outputs, without solving a single cell problem
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout
    s = summary(tmp_path / "sbout")
    assert s["cell_problems_solved_this_run"] == 0 and s["U_max"] > 0


def test_petsc_options_after_double_dash_reach_the_macro_solver(tmp_path):
    """``-- -macro_ksp_type gmres -macro_pc_type jacobi`` replaces CG + GAMG (the
    ``macro_`` prefix); the solution is the same to the solver tolerance (rtol 1e-10)."""
    default = hmmpar(2, config(tmp_path, "cg"))
    assert default.returncode == 0, default.stderr
    p = hmmpar(2, config(tmp_path, "gmres"), "--", "-macro_ksp_type", "gmres",
               "-macro_pc_type", "jacobi", "-macro_ksp_view")
    assert p.returncode == 0, p.stderr
    assert "KSP Object: (macro_)" in p.stdout and "type: gmres" in p.stdout and "type: jacobi" in p.stdout
    assert "gamg" not in p.stdout
    U0, U1 = nodal_u(tmp_path / "cg"), nodal_u(tmp_path / "gmres")
    assert np.abs(U1 - U0).max() < 1e-7 * np.abs(U0).max()
    assert summary(tmp_path / "gmres")["krylov_iterations"] > summary(tmp_path / "cg")["krylov_iterations"]


def test_cache_counts_are_summed_over_ranks(tmp_path):
    """A purely periodic coefficient on 3 ranks: one cell problem solved, every other task a
    cache hit, whichever rank owns it."""
    p = hmmpar(3, config(tmp_path, "cache"), "--set", 'coefficient.kind="sine"')
    assert p.returncode == 0, p.stderr
    s = summary(tmp_path / "cache")
    assert s["cell_problems_solved_this_run"] == 1
    assert s["cache_hits_this_run"] == s["cell_problems"] - 1 == 8 * 6 * 4 - 1
