r"""Staggered central schemes: Lax-Friedrichs, Nessyahu-Tadmor (1D), Jiang-Tadmor (2D).

Central schemes need no Riemann solver and no characteristic decomposition: only the
flux :math:`F(U)` at given states -- which is why they suit HMM, where every flux value
is a micro simulation at a macro state (E & Engquist, Commun. Math. Sci. 1 (2003) 87,
section 3; the staggered Lax-Friedrichs / Nessyahu-Tadmor scheme is their gas-dynamics
example).

One dimension, uniform cells of width :math:`\Delta x`, :math:`\lambda = \Delta t/\Delta x`
---------------------------------------------------------------------------------------
The cell averages :math:`U_j` at :math:`x_j` are advanced to averages over the
*staggered* cells :math:`[x_j, x_{j+1}]` centred at :math:`x_{j+1/2}`:

* staggered Lax-Friedrichs (first order):

  .. math:: U^{n+1}_{j+1/2} = \tfrac12 (U_j + U_{j+1}) - \lambda\,(F(U_{j+1}) - F(U_j));

* Nessyahu & Tadmor (J. Comput. Phys. 87 (1990) 408), second order: with limited
  undivided slopes :math:`U'_j = \operatorname{minmod}(U_j - U_{j-1}, U_{j+1} - U_j)` and
  :math:`F'_j = \operatorname{minmod}(F_j - F_{j-1}, F_{j+1} - F_j)` (NT's choice (2.9b):
  limited differences of the flux values, which for HMM are the micro fluxes),

  .. math::

      U^{n+1/2}_j &= U_j - \tfrac{\lambda}{2} F'_j \qquad\text{(predictor)},\\
      U^{n+1}_{j+1/2} &= \tfrac12 (U_j + U_{j+1}) + \tfrac18 (U'_j - U'_{j+1})
          - \lambda\,\big(F(U^{n+1/2}_{j+1}) - F(U^{n+1/2}_j)\big) \qquad\text{(corrector)}.

  The first two terms are the exact average of the piecewise linear reconstruction over
  the staggered cell; the last is the midpoint rule in time for the flux through the
  cell centres :math:`x_j, x_{j+1}`, where the solution stays smooth for
  :math:`\lambda \max|u \pm c| \le 1/2` (the CFL condition: the Riemann fans from
  :math:`x_{j\pm 1/2}` do not reach :math:`x_j` within the step).

Two dimensions (Jiang & Tadmor, SIAM J. Sci. Comput. 19 (1998) 1892), :math:`\mu = \Delta t/\Delta y`
-----------------------------------------------------------------------------------------------------
The staggered cells are centred at the cell corners :math:`(x_{j+1/2}, y_{k+1/2})`. With
limited slopes :math:`U'` (x) and :math:`U^\backprime` (y), predictor
:math:`U^{n+1/2}_{jk} = U_{jk} - \tfrac\lambda2 F'_{jk} - \tfrac\mu2 G^\backprime_{jk}` and
:math:`f_{jk} = F(U^{n+1/2}_{jk})`, :math:`g_{jk} = G(U^{n+1/2}_{jk})`,

.. math::

    U^{n+1}_{j+\frac12,k+\frac12} &= \tfrac14 (U_{jk} + U_{j+1,k} + U_{j,k+1} + U_{j+1,k+1}) \\
    &+ \tfrac1{16} (U'_{jk} - U'_{j+1,k}) + \tfrac1{16} (U'_{j,k+1} - U'_{j+1,k+1})
     + \tfrac1{16} (U^\backprime_{jk} - U^\backprime_{j,k+1}) \\
    &+ \tfrac1{16} (U^\backprime_{j+1,k} - U^\backprime_{j+1,k+1}) \\
    &- \tfrac\lambda2 \big(f_{j+1,k} - f_{jk} + f_{j+1,k+1} - f_{j,k+1}\big)
     - \tfrac\mu2 \big(g_{j,k+1} - g_{jk} + g_{j+1,k+1} - g_{j+1,k}\big),

stable for :math:`\max(\lambda\,\rho(\partial F/\partial U), \mu\,\rho(\partial G/\partial U)) \le 1/2`.
The 2D staggered Lax-Friedrichs scheme is the same without slopes and with the fluxes
at time level n. A state that does not depend on y gives the 1D scheme's numbers bit for
bit: the sums are grouped so that equal pairs add exactly.

Conventions
-----------
A 1D array is ``(n, nvar)``; a 2D array is ``(ny, nx, nvar)`` (PETSc's DMDA order: x
fastest), so the x direction is array axis 1. A corrector takes ``n + 1`` input points
per direction and returns ``n`` outputs: output ``i`` combines inputs ``i`` and ``i + 1``
(and in 2D ``[k:k+2, j:j+2]``). The same kernels serve both half steps of
:class:`hmmpar.apps.gas_dynamics.GasDynamics` (cells -> corners and corners -> cells).
"""
from __future__ import annotations

import numpy as np

__all__ = ["lax_friedrichs_1d", "nt_predictor_1d", "nt_corrector_1d", "lax_friedrichs_2d",
           "jt_predictor_2d", "jt_corrector_2d"]


def lax_friedrichs_1d(U: np.ndarray, F: np.ndarray, lam: float) -> np.ndarray:
    r"""Staggered Lax-Friedrichs: ``(n+1, nvar)`` states and fluxes -> ``n`` staggered averages."""
    return 0.5 * (U[:-1] + U[1:]) - lam * (F[1:] - F[:-1])


def nt_predictor_1d(U: np.ndarray, F_slope: np.ndarray, lam: float) -> np.ndarray:
    r"""Midpoint values :math:`U^{n+1/2} = U - \tfrac\lambda2 F'` (same shape as ``U``)."""
    return U - 0.5 * lam * F_slope


def nt_corrector_1d(U: np.ndarray, U_slope: np.ndarray, F_half: np.ndarray, lam: float) -> np.ndarray:
    r"""Nessyahu-Tadmor corrector: ``(n+1, nvar)`` states, their limited slopes and the
    fluxes of the predicted states -> ``n`` staggered averages."""
    return 0.5 * (U[:-1] + U[1:]) + 0.125 * (U_slope[:-1] - U_slope[1:]) - lam * (F_half[1:] - F_half[:-1])


def lax_friedrichs_2d(U: np.ndarray, F: np.ndarray, G: np.ndarray, lam: float, mu: float) -> np.ndarray:
    r"""2D staggered Lax-Friedrichs: ``(ny+1, nx+1, nvar)`` -> ``(ny, nx, nvar)`` corner averages."""
    zero = np.zeros_like(U)
    return jt_corrector_2d(U, zero, zero, F, G, lam, mu)


def jt_predictor_2d(U: np.ndarray, F_slope_x: np.ndarray, G_slope_y: np.ndarray, lam: float,
                    mu: float) -> np.ndarray:
    r""":math:`U^{n+1/2} = U - \tfrac\lambda2 F' - \tfrac\mu2 G^\backprime` (same shape as ``U``)."""
    return U - 0.5 * lam * F_slope_x - 0.5 * mu * G_slope_y


def jt_corrector_2d(U: np.ndarray, Ux: np.ndarray, Uy: np.ndarray, F_half: np.ndarray, G_half: np.ndarray,
                    lam: float, mu: float) -> np.ndarray:
    r"""Jiang-Tadmor corrector: ``(ny+1, nx+1, nvar)`` states, x- and y-slopes, and the x-
    and y-fluxes of the predicted states -> ``(ny, nx, nvar)`` staggered averages."""
    a, b, c, d = (np.s_[:-1, :-1], np.s_[:-1, 1:], np.s_[1:, :-1], np.s_[1:, 1:])  # jk, j+1 k, j k+1, j+1 k+1
    mean = 0.25 * ((U[a] + U[b]) + (U[c] + U[d]))
    slopes = 0.0625 * ((Ux[a] - Ux[b]) + (Ux[c] - Ux[d])) + 0.0625 * ((Uy[a] - Uy[c]) + (Uy[b] - Uy[d]))
    fx = 0.5 * lam * ((F_half[b] - F_half[a]) + (F_half[d] - F_half[c]))
    gy = 0.5 * mu * ((G_half[c] - G_half[a]) + (G_half[d] - G_half[b]))
    return mean + slopes - fx - gy
