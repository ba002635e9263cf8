r"""Horizontal means, heat fluxes and energies of a column, from its Fourier--Chebyshev fields.

With the forward-normalised transform :math:`f(x) = \sum_k \hat f_k e^{ikx}` (real f,
:math:`\hat f_{-k} = \overline{\hat f_k}`, Nyquist mode kept at zero), the horizontal mean
of a product is exact by Parseval:

.. math::

    \langle fg\rangle_x(z) = \hat f_0\hat g_0 + 2\sum_{k>0}\mathrm{Re}\,\hat f_k\overline{\hat g_k}.

Vertical integrals use the Clenshaw--Curtis weights (exact for the degree :math:`n_z-1`
interpolants, spectrally accurate for products). Definitions (all per unit area of the
box, depth 1, so volume means equal integrals over z):

* ``nu_bottom``, ``nu_top``: conductive heat flux through the walls,
  :math:`-\partial_z\langle T\rangle` at z = 0 and z = 1. With :math:`T_b = 1` this is the
  Nusselt number; with a flux bottom, ``nu_bottom`` is :math:`q_b`.
* ``nu_volume``: the volume mean of the total vertical heat flux,
  :math:`\int_0^1(\langle wT\rangle - \partial_z\langle T\rangle)dz
  = \int\langle wT\rangle dz + \langle T\rangle(0) - \langle T\rangle(1)`, which is
  :math:`1 + \langle wT\rangle_V` for :math:`\Delta T = 1`.
* ``vrms`` :math:`= \langle u^2 + w^2\rangle_V^{1/2}`, ``ke`` :math:`= \tfrac12\langle u^2 + w^2\rangle_V`.
* ``work`` :math:`= \mathrm{Pr\,Ra}\langle wT\rangle_V` and ``dissipation``
  :math:`= \mathrm{Pr}\langle\omega^2\rangle_V` (for Pr = inf: without the factor Pr).
  :math:`\langle|\nabla\mathbf u|^2\rangle_V = \langle\omega^2\rangle_V` for both wall
  types (the difference is a wall integral of :math:`\mathbf u\cdot\nabla w`, and w = 0
  there), so the kinetic-energy budget is
  :math:`d\,\mathrm{ke}/dt = \mathrm{work} - \mathrm{dissipation} + \langle U f_U\rangle_z`,
  and for Pr = inf the Stokes balance is work = dissipation at every instant.
"""
from __future__ import annotations

import numpy as np


def parseval_weights(nk: int) -> np.ndarray:
    """(1, 2, ..., 2, 0): the weights of :func:`hmean` (Nyquist mode excluded)."""
    c = np.full(nk, 2.0)
    c[0] = 1.0
    c[-1] = 0.0
    return c


def hmean(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    r""":math:`\langle ab\rangle_x` per level from the coefficients (..., nz, nk); shape (..., nz).

    Every column's sum runs along its own contiguous rows, so it does not depend on the batch.
    """
    return (c * (a.real * b.real + a.imag * b.imag)).sum(axis=-1)


def zint(profile: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r""":math:`\int_0^1 f\,dz` of profiles (..., nz) by Clenshaw--Curtis."""
    return (profile * weights).sum(axis=-1)


def diag_dtype(nz: int) -> np.dtype:
    """One row of :meth:`ConvectionModel.advance`'s result (see its docstring)."""
    return np.dtype([
        ("t", "f8"), ("steps", "i8"), ("dt", "f8"),
        ("nu_top", "f8"), ("nu_bottom", "f8"), ("nu_volume", "f8"), ("vrms", "f8"), ("ke", "f8"),
        ("work", "f8"), ("dissipation", "f8"),
        ("mean_T", "f8", (nz,)), ("wT", "f8", (nz,)), ("mean_u", "f8", (nz,)),
        ("avg_nu_top", "f8"), ("avg_nu_bottom", "f8"), ("avg_work", "f8"), ("avg_dissipation", "f8"),
        ("avg_forcing_power", "f8"), ("avg_mean_T", "f8", (nz,)), ("avg_wT", "f8", (nz,)),
    ])
