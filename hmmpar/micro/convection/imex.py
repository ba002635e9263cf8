r"""Implicit-explicit Runge--Kutta tableaux of Ascher, Ruuth & Spiteri (Appl. Numer. Math. 25 (1997) 151).

For :math:`y' = L y + N(y)` (L stiff and linear: diffusion; N: advection, buoyancy,
forcing) stage i of an ARS scheme with s implicit stages solves

.. math::

    (I - \gamma\Delta t L)\,Y_i = y_n + \Delta t\sum_{j<i}\big(a^E_{ij}N(Y_j)
        + a^I_{ij}LY_j\big),\qquad Y_0 = y_n,

and :math:`y_{n+1} = Y_s` (both schemes are stiffly accurate: the last rows of
:math:`A^E, A^I` are the weights b; :math:`b^E_s = 0`). The implicit part is L-stable
(SDIRK with diagonal :math:`\gamma`), so one matrix per :math:`\gamma\Delta t` serves
every stage. :math:`LY_j` is recovered from its own stage equation,
:math:`LY_j = (Y_j - R_j)/(\gamma\Delta t)`, instead of differentiating :math:`Y_j`.

* ``ars222`` -- ARS(2,2,2), :math:`\gamma = 1 - 1/\sqrt2`, :math:`\delta = 1 - 1/(2\gamma)`:
  second order, two solves and two evaluations of N per step.
* ``ars443`` -- ARS(4,4,3): third order, four solves and four evaluations of N per step.
  (Both are Dedalus's ``RK222`` and ``RK443``.)

The explicit parts are 2- and 4-stage Runge--Kutta methods; ARS(4,4,3)'s contains a
segment of the imaginary axis (advection), ARS(2,2,2)'s only touches it at the origin, so
with ``ars222`` the CFL number relies on the implicit diffusion for damping (the default
0.5 is stable in every test here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tableau:
    name: str
    order: int
    a_exp: np.ndarray     # (s + 1, s + 1)
    a_imp: np.ndarray     # (s + 1, s + 1), column 0 zero
    gamma: float

    @property
    def stages(self) -> int:
        return self.a_exp.shape[0] - 1

    @property
    def b_exp(self) -> np.ndarray:
        return self.a_exp[-1]

    @property
    def b_imp(self) -> np.ndarray:
        return self.a_imp[-1]


def _ars222() -> Tableau:
    g = 1.0 - 1.0 / math.sqrt(2.0)
    d = 1.0 - 1.0 / (2.0 * g)
    a_exp = np.array([[0, 0, 0], [g, 0, 0], [d, 1 - d, 0]], dtype=float)
    a_imp = np.array([[0, 0, 0], [0, g, 0], [0, 1 - g, g]], dtype=float)
    return Tableau("ars222", 2, a_exp, a_imp, g)


def _ars443() -> Tableau:
    a_exp = np.array([[0, 0, 0, 0, 0],
                      [1 / 2, 0, 0, 0, 0],
                      [11 / 18, 1 / 18, 0, 0, 0],
                      [5 / 6, -5 / 6, 1 / 2, 0, 0],
                      [1 / 4, 7 / 4, 3 / 4, -7 / 4, 0]])
    a_imp = np.array([[0, 0, 0, 0, 0],
                      [0, 1 / 2, 0, 0, 0],
                      [0, 1 / 6, 1 / 2, 0, 0],
                      [0, -1 / 2, 1 / 2, 1 / 2, 0],
                      [0, 3 / 2, -3 / 2, 1 / 2, 1 / 2]])
    return Tableau("ars443", 3, a_exp, a_imp, 0.5)


TABLEAUX = {"ars222": _ars222(), "ars443": _ars443()}
