"""Formulas and coefficients with bad values, run as a user would under mpirun: never a hang,
never a silent wrong answer; exit 2 with the key, point and value when it can be known
before the micro work, exit 1 naming the micro task when only a cell problem sees it."""
from __future__ import annotations

import pytest

from conftest import ROOT, hmmpar_lines, run_mpi

CONFIG = """
[run]
app = "elliptic"
output_dir = "{out}"
progress_interval = 0.0
[macro]
cells = [4, 4]
[coefficient]
kind = "formula"
[micro]
eps = 0.01
n = 8
batches = 2
[output]
plots = false
"""
# the first macro quadrature point of a 4x4 box, (1 - 1/sqrt(3)) / 8, and x / eps
X0 = "(0.0528312, 0.0528312)"
Y0 = "(5.28312, 5.28312)"

# (ranks, --set arguments, message)
CASES = {
    # issue 11: 9**9**9 was exact integer arithmetic and never returned (SIGTERM did nothing)
    "huge_power": (2, ["--set=coefficient.formula=2 + 0*9**9**9"],
                   f"config key coefficient.formula = '2 + 0*9**9**9' is not finite at x = {X0}, y = {Y0}: nan"),
    # issue 11: A_H = -I and U <= 0 with exit 0
    "negative": (2, ['--set=coefficient.formula="-1"'],
                 f"config key coefficient.formula = '-1' is not positive at x = {X0}, y = {Y0}: -1"),
    "user_tensor_not_pd": (2, ["--set=coefficient.kind=function",
                            "--set=coefficient.function=tensor_coefficients:shear_not_pd"],
                           "config key coefficient.function = 'tensor_coefficients:shear_not_pd' is not positive "
                           f"definite at x = {X0}, y = {Y0}: ((1, 0), (4, 1)) (eigenvalues of its symmetric "
                           "part (-1, 3))"),
    "boundary_data": (1, ["--set=problem.dirichlet_value=log(x - 1e-9)"],
                      "config key problem.dirichlet_value = 'log(x - 1e-9)' is not finite at x = (0, 0): nan"),
    "formula_too_long": (1, ["--set=problem.source=" + "+".join(["x"] * 20000)],
                         "config key problem.source: formula of 39999 characters is too long (at most 4000)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_values_exit_2_before_micro_work(tmp_path, case):
    ranks, args, line = CASES[case]
    cfg = tmp_path / "ell.toml"
    cfg.write_text(CONFIG.format(out=tmp_path / "out"))
    proc = run_mpi(ranks, ["-m", "hmmpar.cli", "run", str(cfg), *args], timeout=90,
                   env={"PYTHONPATH": str(ROOT / "tests" / "data")})
    assert proc.returncode == 2, proc.stderr
    assert hmmpar_lines(proc.stderr) == [f"hmmpar: error: {line}"]
    assert "micro tasks/s" not in proc.stdout   # no step ran


def test_value_only_a_cell_problem_sees_exit_1_naming_the_task(tmp_path):
    """A negative band of width 0.05 periods between the pre-check's samples: the cell
    problem of task 0 finds it at one of its own points."""
    cfg = tmp_path / "ell.toml"
    cfg.write_text(CONFIG.format(out=tmp_path / "out"))
    proc = run_mpi(2, ["-m", "hmmpar.cli", "run", str(cfg),
                       "--set=coefficient.formula=where(y1 - floor(y1) < 0.05, -1, 2)"], timeout=90)
    assert proc.returncode == 1, proc.stderr
    lines = hmmpar_lines(proc.stderr)
    errors = [s for s in lines if "error" in s]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("hmmpar: error: micro task 0 (step 0) failed on rank ")
    assert errors[0].endswith(": CoefficientValueError: config key coefficient.formula = "
                              "'where(y1 - floor(y1) < 0.05, -1, 2)' is not positive at x = (0.0528312, 0.0528312), "
                              "y = (0.0264156, 0.0264156): -1")
