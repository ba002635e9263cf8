"""Coefficient values must be finite and positive (a tensor: positive definite symmetric
part); the check is vectorised and names the coefficient, the point and the value."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hmmpar.micro.cells.coefficients import (CoefficientValueError, Formula, UserFunction, check_values, invalid_values,
                                             positive_definite)
from hmmpar.micro.cells.problem import CellSpec, effective_tensor

DATA = Path(__file__).resolve().parents[3] / "data"


def test_positive_definite_by_symmetric_part():
    """Known spectra: the symmetric part decides, not the diagonal and not symmetry."""
    a = np.array([
        [[1.0, 0.0], [0.0, -1.0]],      # eigenvalue -1
        [[1.0, 2.0], [2.0, 1.0]],       # positive diagonal, eigenvalues -1, 3
        [[1.0, 0.0], [4.0, 1.0]],       # asymmetric, symmetric part as the one above
        [[2.0, 5.0], [-5.0, 2.0]],      # asymmetric, symmetric part 2 I: positive definite
        [[1.0, 0.0], [0.0, 1e-300]],    # positive definite, badly conditioned
        [[1.0, 1.0], [1.0, 1.0]],       # singular (eigenvalue 0)
        [[np.nan, 0.0], [0.0, 1.0]],
    ])
    assert positive_definite(a).tolist() == [False, False, False, True, True, False, False]
    # 3D: leading minors 1, 1 but det = -1 (eigenvalues of diag(1, 1, -1))
    b = np.array([np.diag([1.0, 1.0, -1.0]), np.eye(3) + 0.4 * (np.ones((3, 3)) - np.eye(3)),
                  np.eye(3) - 0.6 * (np.ones((3, 3)) - np.eye(3))])   # eigenvalues 1.8, .6, .6 / -.2, 1.6, 1.6
    assert positive_definite(b).tolist() == [False, True, False]
    # agrees with the eigenvalues on random matrices
    rng = np.random.default_rng(1)
    m = rng.normal(size=(2000, 3, 3)) + 1.2 * np.eye(3)
    eig_min = np.linalg.eigvalsh(0.5 * (m + np.swapaxes(m, 1, 2))).min(axis=1)
    np.testing.assert_array_equal(positive_definite(m), eig_min > 0)
    assert 100 < (eig_min > 0).sum() < 1900   # both kinds occur


def test_invalid_scalars():
    assert invalid_values(np.array([1.0, 0.0, -1.0, np.nan, np.inf, 1e-300])).tolist() == \
        [False, True, True, True, True, False]


def test_check_values_message():
    x, y = np.array([[0.5, 0.25], [0.5, 0.75]]), np.array([[50.0, 25.0], [50.0, 75.0]])
    f = Formula("where(y2 > 50, -1, 1)", 2)
    with pytest.raises(CoefficientValueError) as info:
        check_values(f, f.values(x, y), x, y)
    assert str(info.value) == ("config key coefficient.formula = 'where(y2 > 50, -1, 1)' is not positive "
                               "at x = (0.5, 0.75), y = (50, 75): -1")
    t = np.array([np.eye(2), [[1.0, 0.0], [4.0, 1.0]]])
    with pytest.raises(CoefficientValueError, match=r"is not positive definite at x = \(0.5, 0.75\), y = \(50, 75\): "
                       r"\(\(1, 0\), \(4, 1\)\) \(eigenvalues of its symmetric part \(-1, 3\)\)"):
        check_values(f, t, x, y)
    check_values(f, np.array([[[2.0, 5.0], [-5.0, 2.0]]] * 2), x, y)   # asymmetric, PD: accepted


def test_cell_problem_checks_every_point():
    """A thin negative band that a coarse sample misses is found in the cell problem, with
    the point; a user function's non-PD tensor likewise (every kind, not just formulas)."""
    spec = CellSpec(2, 8, "periodic")
    band = Formula("where(y1 - floor(y1) < 0.05, -1, 2)", 2)
    with pytest.raises(CoefficientValueError, match=r"^config key coefficient.formula = .* is not positive at "
                       r"x = \(0.3, 0.3\), y = \(0.0\d+, .*\): -1$"):
        effective_tensor(band, np.array([0.3, 0.3]), spec, eps=0.01, delta=0.01)
    sys.path.insert(0, str(DATA))
    try:
        bad = UserFunction("tensor_coefficients:shear_not_pd", depends_on_x=False)
        good = UserFunction("tensor_coefficients:skew_pd", depends_on_x=False)
    finally:
        sys.path.remove(str(DATA))
    with pytest.raises(CoefficientValueError, match="config key coefficient.function = "
                       "'tensor_coefficients:shear_not_pd' is not positive definite"):
        effective_tensor(bad, np.array([0.3, 0.3]), spec, eps=0.01, delta=0.01)
    # asymmetric but positive definite is accepted: A_H of a constant tensor is the tensor itself
    np.testing.assert_allclose(effective_tensor(good, np.array([0.3, 0.3]), spec, eps=0.01, delta=0.01),
                               [[2.0, 5.0], [-5.0, 2.0]], atol=1e-10)


def test_effective_tensors_checked_before_the_macro_solve(tmp_path):
    """A_H with a non-positive-definite symmetric part (here planted; from a cell problem it
    cannot be when the coefficient passed its checks) stops the run naming the task."""
    from mpi4py import MPI

    from hmmpar.apps.elliptic import Elliptic
    from hmmpar.core.config import load_config
    from hmmpar.core.errors import HmmparError
    from hmmpar.core.timing import Timers

    cfg = tmp_path / "e.toml"
    cfg.write_text('[run]\napp = "elliptic"\n[macro]\ncells = [2, 2]\n')
    app = Elliptic(load_config(cfg, []), MPI.COMM_SELF, Timers())
    app.A[:] = np.eye(2)
    app.A[5] = [[1.0, 4.0], [0.0, 1.0]]   # symmetric part [[1, 2], [2, 1]]: eigenvalues -1, 3
    app.done[:] = True
    with pytest.raises(HmmparError) as info:
        app._coefficient_at_qp()
    x = ", ".join(f"{v:.6g}" for v in app.points[5])
    assert str(info.value) == (f"A_H of micro task {app.task_ids[5]} at x = ({x}) is not positive definite: "
                               "((1, 4), (0, 1)) (eigenvalues of its symmetric part (-1, 3))")
    app.A[5] = [[1.0, 3.0], [-3.0, 1.0]]   # asymmetric, positive definite: accepted
    assert app._coefficient_at_qp().shape == (4, 4, 2, 2)
