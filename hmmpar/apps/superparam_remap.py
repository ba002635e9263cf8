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

__all__ = ["cell_average_matrix", "min_norm_lift"]


def cell_average_matrix(z_levels: np.ndarray, z_edges: np.ndarray) -> np.ndarray:
    """The matrix A (cells x levels) of exact cell averages of the interpolating polynomial.

    Parameters
    ----------
    z_levels
        The ``n`` distinct interpolation levels in [0, 1] (the micro model's Chebyshev
        points; any distinct points work, Chebyshev points keep it well conditioned).
    z_edges
        The ``m + 1`` increasing cell edges in [0, 1].
    """
    z = np.asarray(z_levels, dtype=float)
    e = np.asarray(z_edges, dtype=float)
    if np.any(np.diff(e) <= 0):
        raise ValueError("cell edges must increase")
    n = z.size
    s = 2.0 * z - 1.0  # to [-1, 1]
    # coefficients of every Lagrange polynomial: solve V c = I with the Chebyshev-Vandermonde V
    coef = np.linalg.solve(C.chebvander(s, n - 1), np.eye(n))  # column j: ell_j
    anti = C.chebint(coef, axis=0)  # antiderivative in s
    values = C.chebval(2.0 * e - 1.0, anti)  # (n, m + 1): ell_j's antiderivative at the edges
    # dz = ds / 2: the integral over a cell is half the difference; divide by the width
    return (0.5 * np.diff(values, axis=1) / np.diff(e)[None, :]).T


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
    awa = a @ (a.T / w[:, None])
    return (a.T / w[:, None]) @ np.linalg.inv(awa)
