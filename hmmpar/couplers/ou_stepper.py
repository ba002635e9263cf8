r"""The fast Ornstein--Uhlenbeck micro model of the averaging demo as a :class:`MicroStepper`.

The system (the averaging example of E, Liu & Vanden-Eijnden, *Analysis of multiscale
methods for stochastic differential equations*, Commun. Pure Appl. Math. 58 (2005)
1544--1585; Vanden-Eijnden, *Numerical techniques for multi-scale dynamical systems with
stochastic effects*, Commun. Math. Sci. 1 (2003) 385--391; the demo
:mod:`hmmpar.apps.ou_averaging`)

.. math::

    \dot X = -Y^2 X, \qquad dY = -\frac{Y - X}{\varepsilon}\,dt + \sqrt{2/\varepsilon}\,dW,

has, as :math:`\varepsilon \to 0`, the averaged equation
:math:`\dot X = -\mathbb E_{N(X, 1)}[Y^2]\,X = -(1 + X^2)\,X`, solved exactly by
:math:`X(t) = X_0/\sqrt{(1 + X_0^2)e^{2t} - X_0^2}`
(:func:`hmmpar.apps.ou_averaging.exact_solution`).

*Micro state* ``(nb, 2)``: :math:`(x, y)` per instance, so that :meth:`OUStepper.restrict`
is :math:`x`; :meth:`OUStepper.advance` sets :math:`x = X_b` before it steps.

*Micro step.* With :math:`x` frozen the OU transition over a step :math:`\delta\tau` of fast
time (:math:`\varepsilon\,\delta\tau` of physical time) is sampled exactly,

.. math::

    y_{j+1} = x + (y_j - x)\,a + \sqrt{1 - a^2}\,\xi_j,\qquad
    a = e^{-\varepsilon\delta\tau/\varepsilon} = e^{-\delta\tau},\quad \xi_j \sim N(0, 1),

as :mod:`hmmpar.micro.ou` does (the demo's ``micro.dt_over_eps`` is :math:`\delta\tau`): no
discretisation error, and the work per step does not depend on :math:`\varepsilon`.

*Estimator* :math:`F(X, y) = -y^2 X`: :meth:`OUStepper.advance` returns its mean over the
``steps`` states after each step (``Window.mean``) and its value after the last
(``Window.last``). At stationarity the variance of an :math:`n`-step mean is
:math:`X^2(2 + 4X^2)\,\tau/n`, with :math:`\tau` the integrated autocorrelation time of
:math:`y_j^2` (:func:`hmmpar.micro.ou.integrated_autocorrelation_y2`).

*Lifting* :math:`y = X` (the mean of the invariant law :math:`N(X, 1)`, as the demo's task
starts): the variance of :math:`y` then grows as :math:`1 - a^{2j}`, a transient that the
classical HMM's ``relax`` steps discard (``relax`` :math:`\gg 1/(2\delta\tau)`).

*Random numbers.* The :math:`c`-th call of :meth:`OUStepper.advance` (:math:`c = 0, 1,
\dots`, counted by :attr:`OUStepper.calls` since construction) draws the ``steps`` normals
of instance :math:`b` (row :math:`b` of ``X``) as
``hmmpar.core.rng.task_rng(seed, c, b).standard_normal(steps)``: the stream of farm task
``task_id = b`` at ``step = c`` of a run with seed ``seed`` (``TaskContext.rng(b)``), so a farm
that hands instance :math:`b` of call :math:`c` to any rank draws the same numbers, and a
batch gives each member exactly the numbers it would get alone at the same row.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..core.rng import task_rng
from .stepper import Window

__all__ = ["OUStepper"]


@numba.njit(cache=True)
def _advance(X, S, a, xi, mean, last):
    """Exact OU steps of ``S[b, 1]`` towards ``X[b]`` with the normals ``xi[b]``; the mean and
    last value of ``-y^2 X`` over the states after each step."""
    nb, n = xi.shape
    s = math.sqrt(1.0 - a * a)
    for b in range(nb):
        x = X[b, 0]
        S[b, 0] = x
        y = S[b, 1]
        acc = 0.0
        for j in range(n):
            y = x + (y - x) * a + s * xi[b, j]
            acc += y * y
        S[b, 1] = y
        mean[b, 0] = -x * acc / n
        last[b, 0] = -x * y * y


class OUStepper:
    r"""An ensemble of fast OU processes, one per macro instance, as a
    :class:`~hmmpar.couplers.MicroStepper` (module docstring).

    Parameters
    ----------
    eps
        :math:`\varepsilon > 0`, the true scale separation (it cancels in the exact
        transition: the stepper's output does not depend on it beyond rounding).
    dtau
        Micro step in fast time :math:`\tau = t/\varepsilon` (> 0); :math:`a = e^{-\delta\tau}`.
    seed
        Root of the random streams (a whole number >= 0), module docstring.

    Attributes
    ----------
    nx : int
        1 (the slow variable :math:`X`).
    a : float
        The one-step autocorrelation :math:`e^{-\delta\tau}` of :math:`y`.
    calls : int
        :meth:`advance` calls so far (the ``step`` key of the next call's streams).

    Raises
    ------
    ValueError
        A non-positive or non-finite ``eps`` or ``dtau``, a negative or fractional ``seed``.
    """

    nx = 1

    def __init__(self, eps: float, dtau: float, seed: int = 0) -> None:
        for name, v in (("eps", eps), ("dtau", dtau)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
        self.eps, self.dtau, self.seed = float(eps), float(dtau), int(seed)
        h = self.eps * self.dtau                      # the step in physical time
        self.a = math.exp(-h / self.eps)
        self.calls = 0

    def lift(self, X: np.ndarray, t: float) -> np.ndarray:
        """States ``(nb, 2)`` = :math:`(X_b, X_b)`: :math:`y` at the invariant mean."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.ndim != 2 or X.shape[1] != 1:
            raise ValueError(f"X must have shape (nb, 1), got {X.shape}")
        return np.repeat(X, 2, axis=1)

    def advance(self, states: np.ndarray, X: np.ndarray, t: float, steps: int) -> Window:
        """``steps`` exact OU steps of every instance (in place) with ``X`` frozen."""
        if isinstance(steps, bool) or int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
        steps = int(steps)
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.ndim != 2 or X.shape[1] != 1:
            raise ValueError(f"X must have shape (nb, 1), got {X.shape}")
        if not isinstance(states, np.ndarray) or states.shape != (X.shape[0], 2) or states.dtype != np.float64:
            raise ValueError(f"states must be a float64 array of shape {(X.shape[0], 2)} from lift(), "
                             f"got {getattr(states, 'shape', type(states).__name__)}")
        xi = np.empty((X.shape[0], steps))
        for b in range(X.shape[0]):
            xi[b] = task_rng(self.seed, self.calls, b).standard_normal(steps)
        self.calls += 1
        return self._steps(states, X, xi)

    def advance_units(self, states: np.ndarray, X: np.ndarray, t: float, steps: int, ids: np.ndarray,
                      ctx) -> Window:
        """:meth:`advance` of the instances ``ids`` of a farmed batch
        (:class:`~hmmpar.couplers.farmed.FarmedMicroStepper`): instance ``b`` draws from the
        farm task's stream ``ctx.rng(b)`` = ``task_rng(seed, c, b)`` of the farm's call ``c``,
        the numbers :meth:`advance` gives row ``b`` at its ``c``-th call with the run's seed."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        xi = np.empty((X.shape[0], int(steps)))
        for r, b in enumerate(np.asarray(ids)):
            xi[r] = ctx.rng(int(b)).standard_normal(int(steps))
        return self._steps(states, X, xi)

    def _steps(self, states: np.ndarray, X: np.ndarray, xi: np.ndarray) -> Window:
        steps = xi.shape[1]
        mean = np.empty_like(X)
        last = np.empty_like(X)
        _advance(X, states, self.a, xi, mean, last)
        return Window(mean, last, steps)

    def restrict(self, states: np.ndarray) -> np.ndarray:
        return states[:, :1].copy()
