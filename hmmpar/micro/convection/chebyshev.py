r"""Chebyshev--Gauss--Lobatto collocation on :math:`z \in [0, 1]`.

With :math:`N = n_z - 1` the points are

.. math::

    z_j = \tfrac12\,(1 - \cos\theta_j) = \sin^2(\theta_j/2),\qquad \theta_j = \pi j/N,
    \qquad j = 0,\dots,N,

ascending, :math:`z_0 = 0` and :math:`z_N = 1` (the walls). A function is represented by
its values there, i.e. by the interpolating polynomial of degree N.

* :func:`diff_matrix`: the first-derivative matrix :math:`D` (Trefethen, *Spectral Methods
  in MATLAB*, SIAM 2000, ch. 6, ``cheb``), mapped by :math:`d/dz = -2\,d/dx` with
  :math:`x = \cos\theta`. The differences :math:`x_i - x_j` are formed as
  :math:`-2\sin\frac{\theta_i+\theta_j}2\sin\frac{\theta_i-\theta_j}2` and the diagonal as
  minus the off-diagonal row sum ("negative sum trick"; Baltensperger & Trummer, SIAM J.
  Sci. Comput. 24 (2003) 1465), which keeps the rounding error of :math:`D^2` at
  :math:`O(N^4\epsilon)`.
* :func:`clenshaw_curtis_weights`: the weights :math:`w_j` with
  :math:`\int_0^1 p\,dz = \sum_j w_j p(z_j)` exactly for every polynomial of degree
  :math:`\le N` (Trefethen 2000, ``clencurt``; Clenshaw & Curtis, Numer. Math. 2 (1960) 197).
"""
from __future__ import annotations

import numpy as np


def nodes(nz: int) -> np.ndarray:
    """The ``nz`` Chebyshev--Gauss--Lobatto points on [0, 1], ascending."""
    n = nz - 1
    z = np.sin(0.5 * np.pi * np.arange(nz) / n) ** 2
    z[0], z[-1] = 0.0, 1.0
    return z


def diff_matrix(nz: int) -> np.ndarray:
    r"""First-derivative collocation matrix :math:`D_z` on :func:`nodes` (shape (nz, nz)).

    :math:`(D_z f)_i = p'(z_i)` for the interpolant p of the values f; exact for
    polynomials of degree :math:`\le n_z - 1`.
    """
    n = nz - 1
    theta = np.pi * np.arange(nz) / n
    c = np.ones(nz)
    c[0] = c[-1] = 2.0
    c *= (-1.0) ** np.arange(nz)
    ti, tj = np.meshgrid(theta, theta, indexing="ij")
    dx = -2.0 * np.sin(0.5 * (ti + tj)) * np.sin(0.5 * (ti - tj))   # x_i - x_j
    np.fill_diagonal(dx, 1.0)
    d = np.outer(c, 1.0 / c) / dx
    np.fill_diagonal(d, 0.0)
    d[np.diag_indices(nz)] = -d.sum(axis=1)
    return -2.0 * d                                                  # d/dz = -2 d/dx


def clenshaw_curtis_weights(nz: int) -> np.ndarray:
    """Clenshaw--Curtis weights on :func:`nodes` for integrals over [0, 1] (they sum to 1)."""
    n = nz - 1
    theta = np.pi * np.arange(nz) / n
    w = np.zeros(nz)
    v = np.ones(nz - 2)
    inner = theta[1:-1]
    if n % 2 == 0:
        w[0] = w[-1] = 1.0 / (n * n - 1)
        for k in range(1, n // 2):
            v -= 2.0 * np.cos(2 * k * inner) / (4 * k * k - 1)
        v -= np.cos(n * inner) / (n * n - 1)
    else:
        w[0] = w[-1] = 1.0 / (n * n)
        for k in range(1, (n - 1) // 2 + 1):
            v -= 2.0 * np.cos(2 * k * inner) / (4 * k * k - 1)
    w[1:-1] = 2.0 * v / n
    return 0.5 * w                                                   # [-1, 1] -> [0, 1]


def local_spacing(z: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest neighbour (the CFL length in z)."""
    gaps = np.diff(z)
    h = np.empty_like(z)
    h[0], h[-1] = gaps[0], gaps[-1]
    h[1:-1] = np.minimum(gaps[:-1], gaps[1:])
    return h
