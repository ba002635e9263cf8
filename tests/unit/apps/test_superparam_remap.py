"""The macro-cell / micro-level maps of superparametrization are exact and conservative."""
from __future__ import annotations

import numpy as np
import pytest

from hmmpar.apps.superparam_remap import cell_average_matrix, min_norm_lift


def chebyshev_levels(n: int) -> np.ndarray:
    return 0.5 * (1.0 - np.cos(np.pi * np.arange(n) / (n - 1)))


def clenshaw_curtis(n: int) -> np.ndarray:
    """Weights on [0, 1] for the levels above, from the exact integrals of the Lagrange basis."""
    a = cell_average_matrix(chebyshev_levels(n), np.array([0.0, 1.0]))
    return a[0]


@pytest.mark.parametrize("edges", [np.linspace(0, 1, 9), np.array([0.0, 0.05, 0.3, 0.31, 0.8, 1.0])])
def test_cell_averages_of_a_polynomial_are_exact(edges):
    z = chebyshev_levels(25)
    a = cell_average_matrix(z, edges)
    coef = np.random.default_rng(3).normal(size=25)  # a degree-24 polynomial
    poly = np.polynomial.Polynomial(coef, domain=[0, 1], window=[-1, 1])
    exact = np.diff(poly.integ()(edges)) / np.diff(edges)
    assert a @ poly(z) == pytest.approx(exact, rel=0, abs=1e-12 * np.abs(coef).sum())
    # rows of averages of a constant are 1
    assert a.sum(axis=1) == pytest.approx(np.ones(edges.size - 1), abs=1e-13)


def test_lift_has_the_macro_cell_averages_and_conserves_the_column_integral():
    n, edges = 33, np.linspace(0.0, 1.0, 9)
    z, w = chebyshev_levels(n), clenshaw_curtis(n)
    a = cell_average_matrix(z, edges)
    lift = min_norm_lift(a, w)
    delta = np.random.default_rng(5).normal(size=8)
    q = lift @ delta
    assert a @ q == pytest.approx(delta, abs=1e-12)
    assert w @ q == pytest.approx(np.diff(edges) @ delta, abs=1e-13)
    # the smallest norm: any other q' = q + r with A r = 0 has a larger norm
    r = np.linalg.svd(a)[2][-1]  # a null vector of A
    assert (q + 0.1 * r) @ (w * (q + 0.1 * r)) > q @ (w * q)


def test_more_cells_than_levels_is_refused():
    with pytest.raises(ValueError, match="cannot be lifted"):
        min_norm_lift(np.ones((10, 9)), np.ones(9))


def test_closed_form_lagrange_coefficients_and_blas_free_products_match_the_linear_algebra():
    """The maps are built without BLAS (the same bits on any thread count); they equal what
    a linear solve and matmul give, to round-off."""
    from numpy.polynomial import chebyshev as C

    from hmmpar.apps.superparam_remap import chebyshev_lagrange_coefficients, product
    n = 21
    s = -np.cos(np.pi * np.arange(n) / (n - 1))
    solved = np.linalg.solve(C.chebvander(s, n - 1), np.eye(n))
    assert chebyshev_lagrange_coefficients(n) == pytest.approx(solved, abs=1e-13)
    a, b = np.random.default_rng(2).normal(size=(2, 7, 7))
    assert product(a, b) == pytest.approx(a @ b, abs=1e-13)
    assert product(a, b[0]) == pytest.approx(a @ b[0], abs=1e-13)


def test_levels_that_are_not_chebyshev_points_are_refused():
    with pytest.raises(ValueError, match="Chebyshev-Gauss-Lobatto"):
        cell_average_matrix(np.linspace(0, 1, 9), np.linspace(0, 1, 3))
