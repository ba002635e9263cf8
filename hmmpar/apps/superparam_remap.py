r"""Conservative maps between a macro column's cells and a micro column's levels.

A macro column holds cell averages :math:`\bar T_k` over the cells
:math:`[z_{k-1/2}, z_{k+1/2}]` of a uniform or stretched grid. A micro column (the
convection box of :mod:`hmmpar.micro.convection`) holds the horizontal mean
:math:`\langle T\rangle(z)` at the Chebyshev levels :math:`z_j`, i.e. the polynomial
:math:`p` of degree ``nz - 1`` through those values.

Micro to macro is exact integration: :math:`A p` with
:math:`A_{kj} = \frac{1}{\Delta z_k}\int_{z_{k-1/2}}^{z_{k+1/2}} \ell_j(z)\,dz`, the cell
averages of the Lagrange basis polynomials :math:`\ell_j` (computed from their Chebyshev
series, exact to round-off).

Macro to micro is the increment :math:`q` of smallest :math:`L^2` norm among the
polynomials whose cell averages are the macro increments :math:`\delta_k`:

.. math::

    \min_q \int_0^1 q^2\,dz = q^\top W q \quad\text{subject to}\quad A q = \delta
    \qquad\Rightarrow\qquad q = W^{-1} A^\top (A W^{-1} A^\top)^{-1} \delta ,

with :math:`W` the Clenshaw–Curtis weights. The constraint makes the pair conservative:
:math:`\int_0^1 q\,dz = \sum_k \Delta z_k\,\delta_k` exactly (to round-off), whatever
the profile, and a micro column forced by :math:`q` alone would have exactly the macro
cell averages afterwards. It needs no more macro cells than micro levels.
"""
from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev as C

__all__ = ["cell_average_matrix", "interpolation_matrix", "min_norm_lift", "product"]


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` by element-wise products and NumPy's pairwise sums: the same bits however
    many threads the BLAS library runs (a BLAS product may split its sums by thread, and
    ranks started by mpirun get different thread counts when the cores are oversubscribed)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if b.ndim == 1:
        return (a * b).sum(axis=-1)
    return (a[..., :, :, None] * b[..., None, :, :]).sum(axis=-2)


def chebyshev_lagrange_coefficients(n: int) -> np.ndarray:
    r"""Chebyshev coefficients of the Lagrange polynomials of the ``n`` Chebyshev–Gauss–Lobatto
    points :math:`s_j = -\cos(\pi j / N)`, :math:`N = n - 1` (ascending), in closed form:

    .. math::

        \ell_j(s) = \sum_{k=0}^{N} \frac{2}{N \bar c_j \bar c_k} T_k(s_j)\,T_k(s),
        \qquad \bar c_0 = \bar c_N = 2,\ \bar c_k = 1 \text{ otherwise}

    (the discrete orthogonality of :math:`T_k` on these points; Canuto et al. 2006, §2.2.3).
    Column ``j`` holds :math:`\ell_j`'s coefficients; no linear solve, so no BLAS."""
    N = n - 1
    j = np.arange(n)
    cbar = np.ones(n)
    cbar[0] = cbar[-1] = 2.0
    theta = np.pi - np.pi * j / N  # s_j = cos(theta_j)
    tk_sj = np.cos(np.outer(j, theta))  # [k, j] = T_k(s_j)
    return (2.0 / N) * tk_sj / (cbar[:, None] * cbar[None, :])


def cell_average_matrix(z_levels: np.ndarray, z_edges: np.ndarray) -> np.ndarray:
    r"""The matrix A (cells x levels) of exact cell averages of the interpolating polynomial.

    Parameters
    ----------
    z_levels
        The ``n`` Chebyshev–Gauss–Lobatto levels on [0, 1], ascending (the micro model's
        ``z``: :math:`(1 - \cos(\pi j/N))/2`); checked.
    z_edges
        The ``m + 1`` increasing cell edges in [0, 1].
    """
    z = _check_levels(z_levels)
    e = np.asarray(z_edges, dtype=float)
    if np.any(np.diff(e) <= 0):
        raise ValueError("cell edges must increase")
    n = z.size
    coef = chebyshev_lagrange_coefficients(n)  # column j: ell_j
    anti = C.chebint(coef, axis=0)  # antiderivative in s
    values = C.chebval(2.0 * e - 1.0, anti)  # (n, m + 1): ell_j's antiderivative at the edges
    # dz = ds / 2: the integral over a cell is half the difference; divide by the width
    return np.ascontiguousarray((0.5 * np.diff(values, axis=1) / np.diff(e)[None, :]).T)


def interpolation_matrix(z_levels: np.ndarray, points: np.ndarray, derivative: int = 0) -> np.ndarray:
    r"""The matrix E (points x levels) with :math:`E_{ij} = \ell_j^{(d)}(z_i)`: the values
    (``derivative = 0``) or the d-th z-derivatives of the interpolating polynomial through the
    ``n`` Chebyshev–Gauss–Lobatto levels, at the given points of [0, 1] (closed form, no
    solve; apply with :func:`product`).

    Parameters
    ----------
    z_levels
        The Chebyshev–Gauss–Lobatto levels on [0, 1], ascending (checked).
    points
        Where to evaluate, in [0, 1].
    derivative
        0 or more; z = (1 + s)/2, so each derivative brings a factor 2.
    """
    z = _check_levels(z_levels)
    x = np.asarray(points, dtype=float)
    if x.ndim != 1 or np.any(x < -1e-14) or np.any(x > 1 + 1e-14):
        raise ValueError("points must be a 1-D array in [0, 1]")
    coef = chebyshev_lagrange_coefficients(z.size)
    if derivative:
        coef = C.chebder(coef, m=derivative, axis=0) * 2.0 ** derivative
    return np.ascontiguousarray(C.chebval(2.0 * x - 1.0, coef).T)


def _check_levels(z_levels: np.ndarray) -> np.ndarray:
    z = np.asarray(z_levels, dtype=float)
    n = z.size
    if not np.allclose(z, 0.5 * (1.0 - np.cos(np.pi * np.arange(n) / (n - 1))), rtol=0, atol=1e-14):
        raise ValueError("the levels must be the Chebyshev-Gauss-Lobatto points on [0, 1], ascending")
    return z


def _inverse(m: np.ndarray) -> np.ndarray:
    """Gauss–Jordan inverse with partial pivoting by row operations (element-wise, no BLAS)."""
    n = m.shape[0]
    a = np.concatenate([np.array(m, dtype=float), np.eye(n)], axis=1)
    for k in range(n):
        p = k + int(np.argmax(np.abs(a[k:, k])))
        if p != k:
            a[[k, p]] = a[[p, k]]
        a[k] = a[k] / a[k, k]
        factors = a[:, k].copy()
        factors[k] = 0.0
        a -= factors[:, None] * a[k][None, :]
    return a[:, n:]


def min_norm_lift(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The matrix L (levels x cells) of the smallest-norm lift ``q = L delta`` with ``A q = delta``.

    Parameters
    ----------
    a
        The cell-average matrix of :func:`cell_average_matrix` (m x n, m <= n).
    weights
        Positive quadrature weights of the levels (the L2 norm is ``q @ (weights * q)``).
    """
    a = np.asarray(a, dtype=float)
    w = np.asarray(weights, dtype=float)
    if a.shape[0] > a.shape[1]:
        raise ValueError(f"{a.shape[0]} macro cells cannot be lifted onto {a.shape[1]} micro levels")
    awt = a.T / w[:, None]
    return np.ascontiguousarray(product(awt, _inverse(product(a, awt))))
