r"""The slow--fast ODE examples of issue 14 as numba functions (tests, benchmarks, docs).

*Seed* (E, Ren & Vanden-Eijnden 2009): :math:`\dot x = 1 + y`, :math:`\dot y = -z/\varepsilon`,
:math:`\dot z = y/\varepsilon`, :math:`x(0) = 0`, :math:`(y, z)(0) = (1, 0)`. The fast variables
rotate; their mean is 0, so the averaged equation is :math:`\dot X = 1`, :math:`X(t) = t`
(the full solution is :math:`x = t + \varepsilon\sin(t/\varepsilon)`).

*Dissipative*: :math:`\dot x = -y^3 + \cos t + \sin(\sqrt2\,t)`,
:math:`\dot y = -(y - x)/\varepsilon`, :math:`x(0) = y(0) = 1`. The fast variable relaxes to
:math:`x`, so :math:`\dot X = -X^3 + \cos t + \sin(\sqrt2\,t)`, with
:math:`X(1) = 1.1536286412` (:data:`X1_DISSIPATIVE`).
"""
from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["SEED_Y0", "X1_DISSIPATIVE", "f_dissipative", "f_seed", "full_rhs_dissipative", "full_rhs_seed",
           "g_dissipative", "g_seed"]

#: X(1) of the dissipative example's averaged equation (the issue's value)
X1_DISSIPATIVE = 1.1536286412
#: the seed example's fast initial state (y, z)
SEED_Y0 = np.array([1.0, 0.0])


@numba.njit
def f_seed(t, x, y, out):
    out[0] = 1.0 + y[0]


@numba.njit
def g_seed(t, x, y, out):
    out[0] = -y[1]
    out[1] = y[0]


@numba.njit
def f_dissipative(t, x, y, out):
    out[0] = -y[0] ** 3 + math.cos(t) + math.sin(math.sqrt(2.0) * t)


@numba.njit
def g_dissipative(t, x, y, out):
    out[0] = -(y[0] - x[0])


def full_rhs_seed(eps: float):
    """``rhs(t, u, out)`` of the whole seed system, u = (x, y, z), for a fully resolved run."""
    inv = 1.0 / float(eps)

    @numba.njit
    def rhs(t, u, out):
        out[0] = 1.0 + u[1]
        out[1] = -u[2] * inv
        out[2] = u[1] * inv
    return rhs


def full_rhs_dissipative(eps: float):
    """``rhs(t, u, out)`` of the whole dissipative system, u = (x, y)."""
    inv = 1.0 / float(eps)

    @numba.njit
    def rhs(t, u, out):
        out[0] = -u[1] ** 3 + math.cos(t) + math.sin(math.sqrt(2.0) * t)
        out[1] = -(u[1] - u[0]) * inv
    return rhs
