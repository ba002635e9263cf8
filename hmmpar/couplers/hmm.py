r"""Seamless HMM and, for comparison, the classical HMM with re-initialisation.

Both integrate the macro equation :math:`\dot X = F(t, X)` by forward Euler with step
:math:`\Delta t`, the force :math:`F` estimated from a :class:`~hmmpar.couplers.MicroStepper`.

**Seamless HMM** (E, Ren & Vanden-Eijnden, *A general strategy for designing seamless
multiscale methods*, J. Comput. Phys. 228 (2009) 5437--5453). The micro model is never
re-initialised: each macro step it continues from where it stopped, for ``steps`` = n micro
steps of its own size :math:`\delta\tau` (fast time) with the current macro state held
fixed, then

.. math::

    F^k = \frac1n\sum_{s=1}^{n} F(t_k, X^k, y^{(k, s)}) \ (\text{window}) \quad\text{or}\quad
    F(t_k, X^k, y^{(k, n)}) \ (\text{instantaneous}), \qquad X^{k+1} = X^k + \Delta t\,F^k.

*How the micro time is rescaled.* In one macro step the macro clock advances
:math:`\Delta t` and the micro clock :math:`n\,\delta\tau` of fast time
(:math:`\tau = t/\varepsilon`), i.e. :math:`\varepsilon\,n\,\delta\tau` of physical time.
The micro model therefore runs as if the scale separation were
:math:`\varepsilon' = \Delta t/(n\,\delta\tau)` instead of the true :math:`\varepsilon`: the
method solves the original system with :math:`\varepsilon` replaced by :math:`\varepsilon'`
(its cost and its error do not depend on :math:`\varepsilon`), and its error against the
averaged equation is :math:`O(\Delta t) + O(\varepsilon')`, i.e. it follows
:math:`\Delta t/(n\,\delta\tau)` at fixed :math:`\Delta t`. For the rotation of the seed
example (:math:`\dot x = 1 + y`, :math:`(y, z)` rotating at unit speed in fast time, exact
micro solver, instantaneous estimator) the error at :math:`t_K = K\Delta t` is exactly

.. math::

    X^K - t_K = \Delta t \sum_{k=1}^{K}\cos(k\theta)
    = \Delta t\Bigl(\frac{\sin\bigl((K + \tfrac12)\theta\bigr)}{2\sin(\theta/2)} - \frac12\Bigr),
    \qquad \theta = n\,\delta\tau,

bounded by :math:`\Delta t\,(1 + 1/\sin(\theta/2))/2 \approx \Delta t/\theta`.

**Classical HMM** (E & Engquist 2003; E, Liu & Vanden-Eijnden 2005 for ODEs): every macro
step the micro model is lifted anew from :math:`X^k` (:meth:`MicroStepper.lift`), relaxed
for ``relax`` steps that are discarded, and the force is the mean over the next ``window``
steps. Its work per macro step is ``relax + window`` micro steps, and it must resolve the
fast time scale within each window to average it out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stepper import MicroStepper

__all__ = ["HMMResult", "classical_hmm", "seamless_hmm"]

ESTIMATORS = ("window", "instantaneous")


@dataclass
class HMMResult:
    """A macro trajectory and the micro work it took.

    Attributes
    ----------
    t : ndarray
        ``(K + 1,)`` macro times.
    X : ndarray
        ``(K + 1, nb, nx)`` macro states.
    micro_steps : int
        Micro steps per state over the run (the work; multiply by ``nb`` for the batch).
    """

    t: np.ndarray
    X: np.ndarray
    micro_steps: int


def _macro_steps(t0: float, t_end: float, dt: float) -> int:
    for name, v in (("t0", t0), ("t_end", t_end), ("dt", dt)):
        if not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    if not t_end > t0:
        raise ValueError(f"t_end = {t_end!r} must be after t0 = {t0!r}")
    k = round((t_end - t0) / dt)
    if k < 1 or abs(k * dt - (t_end - t0)) > 1e-9 * max(1.0, abs(t_end - t0)):
        raise ValueError(f"(t_end - t0) / dt = {(t_end - t0) / dt:.6g} is not a whole number of macro steps")
    return int(k)


def _check_steps(**counts: int) -> None:
    for name, v in counts.items():
        if int(v) != v or v < (0 if name == "relax" else 1):
            raise ValueError(f"{name} must be a whole number >= {0 if name == 'relax' else 1}, got {v!r}")


def seamless_hmm(stepper: MicroStepper, X0: np.ndarray, t0: float, t_end: float, dt: float, steps: int,
                 estimator: str = "window", states: np.ndarray | None = None) -> HMMResult:
    """Seamless HMM (module docstring): ``steps`` micro steps per macro step of ``dt``.

    Parameters
    ----------
    stepper
        The micro model.
    X0
        ``(nb, nx)`` (or ``(nx,)``) initial macro states.
    t0, t_end, dt
        Macro interval and step (``t_end - t0`` a whole number of steps).
    steps
        Micro steps n per macro step.
    estimator
        ``"window"`` (mean over the n steps) or ``"instantaneous"`` (the last state).
    states
        The micro states to continue from (default: lifted from ``X0`` once, at ``t0``).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    _check_steps(steps=steps)
    K = _macro_steps(t0, t_end, dt)
    X = np.atleast_2d(np.asarray(X0, dtype=float)).copy()
    S = stepper.lift(X, t0) if states is None else states
    out = np.empty((K + 1,) + X.shape)
    out[0] = X
    for k in range(K):
        t = t0 + k * dt
        w = stepper.advance(S, X, t, steps)
        F = w.mean if estimator == "window" else w.last
        X = X + dt * F
        if not np.all(np.isfinite(X)):
            raise FloatingPointError(f"seamless HMM: the macro state is not finite at t = {t + dt:.6g} "
                                     f"(macro step {k + 1}); lower dt or raise steps")
        out[k + 1] = X
    return HMMResult(t0 + dt * np.arange(K + 1), out, K * int(steps))


def classical_hmm(stepper: MicroStepper, X0: np.ndarray, t0: float, t_end: float, dt: float, relax: int,
                  window: int) -> HMMResult:
    """Classical HMM (module docstring): lift, ``relax`` discarded steps, the mean over
    ``window`` steps, forward Euler."""
    _check_steps(relax=relax, window=window)
    K = _macro_steps(t0, t_end, dt)
    X = np.atleast_2d(np.asarray(X0, dtype=float)).copy()
    out = np.empty((K + 1,) + X.shape)
    out[0] = X
    for k in range(K):
        t = t0 + k * dt
        S = stepper.lift(X, t)
        if relax:
            stepper.advance(S, X, t, relax)
        X = X + dt * stepper.advance(S, X, t, window).mean
        if not np.all(np.isfinite(X)):
            raise FloatingPointError(f"classical HMM: the macro state is not finite at t = {t + dt:.6g} "
                                     f"(macro step {k + 1}); lower dt")
        out[k + 1] = X
    return HMMResult(t0 + dt * np.arange(K + 1), out, K * (int(relax) + int(window)))
