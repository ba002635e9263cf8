r"""MUSCL reconstruction (van Leer, J. Comput. Phys. 32 (1979) 101) with the minmod limiter.

Piecewise linear states in the *primitive* variables :math:`W = (\rho, \mathbf u, \rho e)`
(density, velocity, internal energy density) with limited undivided slopes
:math:`\sigma_i = \operatorname{minmod}(W_i - W_{i-1}, W_{i+1} - W_i)` give the face values
of cell :math:`i` along one direction:

.. math:: W_{i}^{-} = W_i - \tfrac12\sigma_i \ \ (\text{low face}), \qquad
          W_{i}^{+} = W_i + \tfrac12\sigma_i \ \ (\text{high face}).

The face between cells :math:`i` and :math:`i+1` then has the left state
:math:`W_i^+` and the right state :math:`W_{i+1}^-`. For an ideal gas
:math:`p = (\gamma - 1)\rho e` is a positive multiple of :math:`\rho e`, and minmod
commutes with positive factors, so this is exactly the usual reconstruction in
:math:`(\rho, \mathbf u, p)`; in :math:`\rho e` it needs no equation of state (an MD
micro model has none in closed form). Minmod keeps each face value between the
neighbouring cell values, so positive :math:`\rho` and :math:`\rho e` stay positive.
"""
from __future__ import annotations

import numpy as np

from .euler import internal_energy_density
from .limiters import limited_differences

__all__ = ["to_primitive", "to_conserved", "face_states"]


def to_primitive(U: np.ndarray) -> np.ndarray:
    r""":math:`W = (\rho, \mathbf u, \rho e)` of conserved states (same shape)."""
    W = np.empty_like(U)
    W[..., 0] = U[..., 0]
    W[..., 1:-1] = U[..., 1:-1] / U[..., :1]
    W[..., -1] = internal_energy_density(U)
    return W


def to_conserved(W: np.ndarray) -> np.ndarray:
    r"""Conserved states of :math:`W = (\rho, \mathbf u, \rho e)` (same shape)."""
    U = np.empty_like(W)
    U[..., 0] = W[..., 0]
    U[..., 1:-1] = W[..., :1] * W[..., 1:-1]
    m = U[..., 1:-1]
    U[..., -1] = W[..., -1] + 0.5 * np.sum(m * m, axis=-1) / W[..., 0]
    return U


def face_states(U: np.ndarray, axis: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Conserved states at the low and high faces of every cell along array axis ``axis``.

    ``order`` 1: both are the cell average (first-order upwind / KFVS). ``order`` 2:
    the MUSCL values above; the first and last cells along ``axis`` have slope 0 (they
    lack a neighbour) and are meant to be ghost cells.
    """
    if order == 1:
        return U, U
    W = to_primitive(U)
    half = 0.5 * limited_differences(W, axis)
    return to_conserved(W - half), to_conserved(W + half)
