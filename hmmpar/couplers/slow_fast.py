r"""A micro stepper for slow--fast ODE systems given as numba functions.

The system (E 2003; E, Ren & Vanden-Eijnden 2009)

.. math::

    \dot x = f(t, x, y), \qquad \dot y = \frac{1}{\varepsilon}\, g(t, x, y),
    \qquad x \in \mathbb R^{n_x},\ y \in \mathbb R^{n_y},

has the averaged (macro) equation :math:`\dot X = \langle f(t, X, \cdot)\rangle_{\mu_{t,X}}`,
the mean of :math:`f` over the invariant measure of the fast equation at frozen
:math:`(t, X)`. The micro model is the fast equation with :math:`(t, x)` held at the macro
values; its state is the whole vector :math:`(x, y)` (so that :meth:`SlowFastODE.restrict`
is :math:`x`), and :meth:`SlowFastODE.advance` sets :math:`x = X` before it steps.

One micro step is a classical Runge--Kutta step (RK4) of size :math:`h = \varepsilon\,\delta\tau`
of :math:`\dot y = g/\varepsilon` in physical time, i.e. :math:`\delta\tau` in the fast time
:math:`\tau = t/\varepsilon`: the work per step does not depend on :math:`\varepsilon`.

``f(t, x, y, out)`` and ``g(t, x, y, out)`` write :math:`f` (length :math:`n_x`) and :math:`g`
(length :math:`n_y`) into ``out``; both must be ``numba.njit`` functions (trusted code: they
run in this process). A batch of states is stepped by one compiled loop.
"""
from __future__ import annotations

import math
from typing import Callable

import numba
import numpy as np

from .stepper import Window

__all__ = ["SlowFastODE"]


@numba.njit(error_model="numpy")
def _advance(f, g, t, X, S, nx, eps, dtau, steps, mean, last):
    """RK4 in physical time, h = eps * dtau, of y' = g / eps with (t, x = X[b]) frozen;
    mean / last of f over the states after each step."""
    nb = S.shape[0]
    ny = S.shape[1] - nx
    h = eps * dtau
    k1 = np.empty(ny)
    k2 = np.empty(ny)
    k3 = np.empty(ny)
    k4 = np.empty(ny)
    tmp = np.empty(ny)
    fv = np.empty(nx)
    acc = np.empty(nx)
    for b in range(nb):
        for i in range(nx):
            S[b, i] = X[b, i]
        x = S[b, :nx]
        y = S[b, nx:]
        acc[:] = 0.0
        for _ in range(steps):
            g(t, x, y, k1)
            for j in range(ny):
                tmp[j] = y[j] + 0.5 * h * (k1[j] / eps)
            g(t, x, tmp, k2)
            for j in range(ny):
                tmp[j] = y[j] + 0.5 * h * (k2[j] / eps)
            g(t, x, tmp, k3)
            for j in range(ny):
                tmp[j] = y[j] + h * (k3[j] / eps)
            g(t, x, tmp, k4)
            for j in range(ny):
                y[j] += h / 6.0 * ((k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]) / eps)
            f(t, x, y, fv)
            for i in range(nx):
                acc[i] += fv[i]
        for i in range(nx):
            mean[b, i] = acc[i] / steps
            last[b, i] = fv[i]


class SlowFastODE:
    r"""The fast equation of a slow--fast ODE system as a :class:`~hmmpar.couplers.MicroStepper`.

    Parameters
    ----------
    f, g
        ``numba.njit`` functions ``(t, x, y, out)`` of the slow and the fast right-hand side
        (:math:`g` without the factor :math:`1/\varepsilon`).
    nx, ny
        Numbers of slow and fast variables.
    eps
        :math:`\varepsilon > 0`, the true scale separation.
    dtau
        Micro step in fast time :math:`\tau = t/\varepsilon` (> 0).
    y0
        The fast part of a lifted state: a constant vector (length ``ny``), or a
        ``numba.njit`` function ``(t, x, out)``.

    Raises
    ------
    ValueError
        A non-positive or non-finite ``eps`` or ``dtau``, a ``y0`` of the wrong length.
    """

    def __init__(self, f: Callable, g: Callable, nx: int, ny: int, eps: float, dtau: float,
                 y0: np.ndarray | Callable) -> None:
        for name, v in (("eps", eps), ("dtau", dtau)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if int(nx) < 1 or int(ny) < 1:
            raise ValueError(f"nx and ny must be >= 1, got {nx}, {ny}")
        self.f, self.g = f, g
        self.nx, self.ny = int(nx), int(ny)
        self.eps, self.dtau = float(eps), float(dtau)
        if callable(y0):
            self._y0 = y0
        else:
            y = np.asarray(y0, dtype=float)
            if y.shape != (self.ny,):
                raise ValueError(f"y0 has shape {y.shape}, expected ({self.ny},)")
            self._y0 = y.copy()

    def lift(self, X: np.ndarray, t: float) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        S = np.empty((X.shape[0], self.nx + self.ny))
        S[:, :self.nx] = X
        if callable(self._y0):
            for b in range(X.shape[0]):
                self._y0(float(t), S[b, :self.nx], S[b, self.nx:])
        else:
            S[:, self.nx:] = self._y0
        return S

    def advance(self, states: np.ndarray, X: np.ndarray, t: float, steps: int) -> Window:
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if states.shape != (X.shape[0], self.nx + self.ny):
            raise ValueError(f"states has shape {states.shape}, expected {(X.shape[0], self.nx + self.ny)}")
        mean = np.empty_like(X)
        last = np.empty_like(X)
        _advance(self.f, self.g, float(t), X, states, self.nx, self.eps, self.dtau, steps, mean, last)
        return Window(mean, last, steps)

    def restrict(self, states: np.ndarray) -> np.ndarray:
        return states[:, :self.nx].copy()
