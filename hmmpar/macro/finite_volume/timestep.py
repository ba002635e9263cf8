r"""Time steps from the CFL condition, and each scheme's stability limit.

.. math::

    \Delta t = \mathrm{CFL}\cdot \min_d \frac{\Delta x_d}{\max_j (|u_{d,j}| + c_j)},

so the Courant number :math:`\nu_d = \Delta t\,(|u_d| + c)/\Delta x_d` is at most CFL in every
direction. The sound speed :math:`c` is whatever the micro model reports for each state
(the exact :math:`\sqrt{\gamma p/\rho}` for the ideal gas).

Two limits. The CFL number of the config is checked at start-up against the condition
under which the scheme is non-oscillatory (:func:`cfl_limit`, per direction):

* staggered schemes, 1D and 2D: 1/2 -- Nessyahu & Tadmor (1990) and Jiang & Tadmor (1998):
  the Riemann fans from the staggered cell's corners must not reach its centre lines
  within a step (the staggered Lax-Friedrichs scheme is the classical Lax-Friedrichs
  scheme on a grid of width :math:`\Delta x/2`, stable for Courant number 1 there);
* kinetic flux splitting, first order: 1 in 1D (an upwind scheme), 1/2 in 2D (the
  unsplit update adds the two directions' Courant numbers);
* kinetic flux splitting with MUSCL and Heun's method: 2/3 in 1D, 1/3 in 2D. A forward-Euler
  stage of minmod MUSCL is TVD for Courant numbers up to 2/3 (Harten's criterion: in flux
  limiter form its incremental coefficient is :math:`\nu(1 + \phi(r_j)/2 - \phi(r_{j-1})/(2r_{j-1}))`
  with :math:`0 \le \phi(r), \phi(r)/r \le 1`, at most :math:`3\nu/2`), and Heun's method is a
  convex combination of such stages (SSP, Gottlieb & Shu, Math. Comp. 67 (1998) 73).

The states met *during* a step (the NT/JT predicted states, the Heun stage) may move
faster than those the step was chosen for; their Courant number is checked after the
stage against the scheme's stability limit (:func:`courant_limit`): 1/2 for the staggered
schemes (of :math:`\max_d \nu_d`: their condition holds per direction), 1 for the kinetic
scheme of either order (of :math:`\sum_d \nu_d`, the unsplit upwind update's condition).
"""
from __future__ import annotations

import numpy as np

__all__ = ["cfl_limit", "courant_limit", "stable_dt", "courant_numbers"]


def cfl_limit(scheme: str, order: int, dim: int) -> float:
    """Largest admissible CFL number of a scheme (see the module docstring)."""
    if scheme == "staggered":
        return 0.5
    if scheme == "kinetic":
        return (1.0 if order == 1 else 2.0 / 3.0) / dim
    raise ValueError(f"unknown scheme {scheme!r}")


def courant_limit(scheme: str, order: int) -> float:  # noqa: ARG001 - the same for both orders
    """Largest admissible combined Courant number (max over directions for the staggered
    schemes, sum for the kinetic one) of any state met during a step: the stability limit."""
    if scheme == "staggered":
        return 0.5
    if scheme == "kinetic":
        return 1.0
    raise ValueError(f"unknown scheme {scheme!r}")


def stable_dt(cfl: float, h: np.ndarray, max_speed: np.ndarray) -> float:
    """``cfl * min_d h_d / max_speed_d`` (``inf`` where a direction has speed 0)."""
    with np.errstate(divide="ignore"):
        return float(cfl * np.min(np.asarray(h, dtype=float) / np.asarray(max_speed, dtype=float)))


def courant_numbers(dt: float, h: np.ndarray, speed: np.ndarray, scheme: str = "staggered") -> np.ndarray:
    """Combined Courant numbers of states with wave speeds ``speed`` (..., dim): of
    ``dt * speed_d / h_d`` the largest over the directions (staggered) or their sum
    (kinetic), shape ``(...)``."""
    nu = dt * np.asarray(speed) / np.asarray(h, dtype=float)
    return np.sum(nu, axis=-1) if scheme == "kinetic" else np.max(nu, axis=-1)
