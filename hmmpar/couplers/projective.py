r"""Projective forward Euler (Gear & Kevrekidis 2003), equation-free.

An inner integrator of step :math:`h` (the micro time-stepper, :meth:`FreeStepper.evolve`,
with no macro constraint held) takes :math:`k + 1` steps from the lifted state; the macro
state is restricted after the last two, and extrapolated over :math:`M` further steps:

.. math::

    U^{n+1} = R(u_{k+1}) + M\,\bigl(R(u_{k+1}) - R(u_k)\bigr),
    \qquad u_{j+1} = \Phi_h(u_j),\ u_0 = L(U^n),

an outer step of :math:`(k + 1 + M)\,h` for :math:`k + 1` inner steps of work (Gear &
Kevrekidis, *Projective methods for stiff differential equations*, SIAM J. Sci. Comput. 24
(2003) 1091--1106).

*Stability.* For :math:`\dot u = \lambda u` and an inner forward Euler step,
:math:`\rho = 1 + h\lambda`, one outer step multiplies :math:`u` by

.. math::

    \sigma(\rho) = \rho^k\bigl((M + 1)\rho - M\bigr),

stable where :math:`|\sigma| \le 1`. For :math:`k = 1` the real stable set splits into two
intervals exactly when :math:`M > 2 + 2\sqrt2`, one around :math:`\rho = 1` (the slow
modes, which are extrapolated) and one around :math:`\rho = 0` (the fast ones, damped by
the inner steps), whose radius tends to :math:`M^{-1/k}` as :math:`M` grows.
:func:`amplification` is the formula; :func:`projective_euler` is the method (the tests
measure its amplification and compare).

**Projective Runge--Kutta** (Lee & Gear, *Second-order accurate projective integrators for
multiscale problems*, J. Comput. Appl. Math. 201 (2007) 258--274; the formulation analysed by
Maclean & Gottwald 2015 and Koellermeier & Samaey 2022). An outer explicit Runge--Kutta method
:math:`(a, b, c)` of step :math:`\Delta t` takes its stage slopes from the inner integrator: from
the stage's starting value, :math:`K + 1` inner steps of :math:`\delta t`, and

.. math::

    k_s = \frac{u_{s, K+1} - u_{s, K}}{\delta t},\qquad
    u_{s, 0} = u_{1, K+1} + \bigl(c_s\Delta t - (K + 1)\delta t\bigr)\sum_{l<s}\frac{a_{sl}}{c_s}\,k_l
    \ (s \ge 2),\qquad
    U^{n+1} = u_{1, K+1} + \bigl(\Delta t - (K + 1)\delta t\bigr)\sum_s b_s k_s,

with :math:`u_{1, 0} = L(U^n)` (every stage value restricted, extrapolated and lifted again).
On a system with a spectral gap whose fast modes the :math:`K` inner steps damp, it has the
order of the outer method in :math:`\Delta t`, plus an :math:`O(K\delta t)` bias of the slope.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numba
import numpy as np

__all__ = ["EulerODE", "FreeStepper", "LinearEuler", "ProjectiveResult", "ProjectiveStepper", "telescopic_amplification", "TABLEAUX", "amplification", "projective_euler",
           "projective_rk"]


@runtime_checkable
class FreeStepper(Protocol):
    """A micro time-stepper for equation-free methods: lift, free evolution, restrict."""

    #: the inner step
    h: float

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        """Micro states for the macro states ``U`` ``(nb, nu)`` at time ``t``."""
        ...

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        """``steps`` inner steps of every state (in place), from time ``t``."""
        ...

    def restrict(self, states: np.ndarray) -> np.ndarray:
        """The macro states ``(nb, nu)`` of the micro states."""
        ...


class LinearEuler:
    r"""Forward Euler steps :math:`u \mapsto u + hAu` of a linear system (the test stepper of
    the stability analysis); lift and restrict are the identity.

    Parameters
    ----------
    A
        ``(m, m)`` matrix, or ``(m,)`` for a diagonal one (the eigenvalues).
    h
        Inner step (> 0).
    """

    def __init__(self, A: np.ndarray, h: float) -> None:
        if not (math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite number, got {h!r}")
        A = np.asarray(A, dtype=float)
        if A.ndim not in (1, 2) or (A.ndim == 2 and A.shape[0] != A.shape[1]):
            raise ValueError(f"A must be a square matrix or a vector of eigenvalues, got shape {A.shape}")
        self.A, self.h = A, float(h)

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        return np.atleast_2d(np.asarray(U, dtype=float)).copy()

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        for _ in range(int(steps)):
            Au = states * self.A if self.A.ndim == 1 else states @ self.A.T
            states += self.h * Au

    def restrict(self, states: np.ndarray) -> np.ndarray:
        return states.copy()


@numba.njit(error_model="numpy")
def _euler_steps(rhs, t, S, h, steps):
    n = S.shape[1]
    k = np.empty(n)
    for b in range(S.shape[0]):
        u = S[b]
        tt = t
        for _ in range(steps):
            rhs(tt, u, k)
            for i in range(n):
                u[i] += h * k[i]
            tt += h


class EulerODE:
    r"""Forward Euler steps :math:`u \mapsto u + h\,F(t, u)` of a full (slow and fast) ODE
    system given as a ``numba.njit`` function ``rhs(t, u, out)``; lift and restrict are the
    identity (the macro state is the whole state), so projective integration extrapolates
    the whole state after the inner steps have damped its fast part.

    Parameters
    ----------
    rhs
        ``numba.njit`` function ``(t, u, out)``.
    h
        Inner step (> 0).
    """

    def __init__(self, rhs, h: float) -> None:
        if not (math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite number, got {h!r}")
        self.rhs, self.h = rhs, float(h)

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        return np.atleast_2d(np.asarray(U, dtype=float)).copy()

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        _euler_steps(self.rhs, float(t), states, self.h, int(steps))

    def restrict(self, states: np.ndarray) -> np.ndarray:
        return states.copy()


def amplification(rho: np.ndarray | complex, k: int, M: float) -> np.ndarray:
    r""":math:`\sigma(\rho) = \rho^k((M + 1)\rho - M)` (module docstring)."""
    rho = np.asarray(rho)
    return rho ** k * ((M + 1.0) * rho - M)


@dataclass
class ProjectiveResult:
    """Outer times ``t`` ``(N + 1,)``, macro states ``U`` ``(N + 1, nb, nu)``, and the inner
    steps per state spent (``inner_steps``)."""

    t: np.ndarray
    U: np.ndarray
    inner_steps: int


def check_projective(k: int, M: float, outer_steps: int | None = None) -> None:
    """One-line ValueErrors for a bad inner-step count ``k``, extrapolation length ``M`` or
    number of outer steps (shared by the projective methods)."""
    if outer_steps is not None and (int(outer_steps) != outer_steps or outer_steps < 1):
        raise ValueError(f"outer_steps must be a whole number >= 1, got {outer_steps!r}")
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a whole number >= 0, got {k!r}")
    if not (math.isfinite(M) and M >= 0):
        raise ValueError(f"M must be a finite number >= 0, got {M!r}")


def projective_euler(stepper: FreeStepper, U0: np.ndarray, t0: float, outer_steps: int, k: int,
                     M: float) -> ProjectiveResult:
    """``outer_steps`` steps of projective forward Euler (module docstring) from ``U0`` at ``t0``.

    Parameters
    ----------
    k
        Inner steps before the two that the extrapolation uses (k + 1 inner steps; k >= 0).
    M
        Extrapolation length in inner steps (M >= 0; M = 0 is the inner integrator alone).
    """
    check_projective(k, M, outer_steps)
    h = stepper.h
    U = np.atleast_2d(np.asarray(U0, dtype=float)).copy()
    out = np.empty((int(outer_steps) + 1,) + U.shape)
    out[0] = U
    t = float(t0)
    for n in range(int(outer_steps)):
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported below, once
            before, after = _last_two(stepper, U, t, k)
            U = after + M * (after - before)
        t += (k + 1 + M) * h
        if not np.all(np.isfinite(U)):
            raise FloatingPointError(f"projective Euler: the macro state is not finite at t = {t:.6g} (outer "
                                     f"step {n + 1}); (k, M) = ({k}, {M:g}) is outside the stable set of some "
                                     "mode (amplification())")
        out[n + 1] = U
    return ProjectiveResult(t0 + (k + 1 + M) * h * np.arange(int(outer_steps) + 1), out,
                            int(outer_steps) * (int(k) + 1))


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge--Kutta tableau (``a`` strictly lower triangular)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "c", np.asarray(self.a).sum(axis=1))


#: outer methods of :func:`projective_rk`: forward Euler, Heun (order 2), the classical RK4
TABLEAUX = {
    "euler": Tableau(np.zeros((1, 1)), np.array([1.0])),
    "rk2": Tableau(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0.5, 0.5])),
    "rk4": Tableau(np.array([[0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0],
                             [0.0, 0.0, 1.0, 0.0]]), np.array([1.0, 2.0, 2.0, 1.0]) / 6.0),
}


def _last_two(stepper: FreeStepper, U: np.ndarray, t: float, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Lift ``U``, ``K + 1`` inner steps; the restricted states before and after the last one.

    This is the coarse time-stepper every projective method is built on. A stepper that
    computes it elsewhere (its micro states spread over the ranks as farm tasks,
    :mod:`hmmpar.couplers.farmed`) offers it as ``stepper.last_two(U, t, K)``, which is then
    used instead of lift / evolve / restrict."""
    own = getattr(stepper, "last_two", None)
    if own is not None:
        return own(U, t, K)
    S = stepper.lift(U, t)
    if K:
        stepper.evolve(S, t, K)
    before = stepper.restrict(S)
    stepper.evolve(S, t + K * stepper.h, 1)
    return before, stepper.restrict(S)


def _damped_slope(stepper: FreeStepper, U: np.ndarray, t: float, K: int) -> tuple[np.ndarray, np.ndarray]:
    """The restricted state after ``K + 1`` inner steps and the chord slope of the last one."""
    before, after = _last_two(stepper, U, t, K)
    return after, (after - before) / stepper.h


def projective_rk(stepper: FreeStepper, U0: np.ndarray, t0: float, outer_steps: int, dt: float, K: int,
                  method: str = "rk4") -> ProjectiveResult:
    """``outer_steps`` steps of size ``dt`` of projective Runge--Kutta (module docstring).

    Parameters
    ----------
    dt
        Outer step; must exceed the ``(K + 1) h`` of the inner steps.
    K
        Inner damping steps before the one whose chord gives a stage slope (K >= 0).
    method
        Outer tableau, a key of :data:`TABLEAUX`.
    """
    if method not in TABLEAUX:
        raise ValueError(f"method must be one of {sorted(TABLEAUX)}, got {method!r}")
    if int(outer_steps) != outer_steps or outer_steps < 1:
        raise ValueError(f"outer_steps must be a whole number >= 1, got {outer_steps!r}")
    if int(K) != K or K < 0:
        raise ValueError(f"K must be a whole number >= 0, got {K!r}")
    h = stepper.h
    if not (math.isfinite(dt) and dt > (K + 1) * h):
        raise ValueError(f"dt = {dt!r} must exceed the inner steps' (K + 1) h = {(K + 1) * h:g}")
    tab = TABLEAUX[method]
    U = np.atleast_2d(np.asarray(U0, dtype=float)).copy()
    out = np.empty((int(outer_steps) + 1,) + U.shape)
    out[0] = U
    lead = (K + 1) * h
    for n in range(int(outer_steps)):
        t = t0 + n * dt
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported below, once
            U = _prk_step(stepper, tab, U, t, dt, K, lead)
        if not np.all(np.isfinite(U)):
            raise FloatingPointError(f"projective {method}: the macro state is not finite at t = {t + dt:.6g} "
                                     f"(outer step {n + 1}); the inner steps do not damp the fast modes "
                                     "(raise K or lower h) or dt is too large for the slow ones")
        out[n + 1] = U
    return ProjectiveResult(t0 + dt * np.arange(int(outer_steps) + 1), out,
                            int(outer_steps) * len(tab.b) * (int(K) + 1))


def _prk_step(stepper: FreeStepper, tab: Tableau, U: np.ndarray, t: float, dt: float, K: int,
              lead: float) -> np.ndarray:
    """One outer step of :func:`projective_rk`."""
    base, k1 = _damped_slope(stepper, U, t, K)
    slopes = [k1]
    for s in range(1, len(tab.b)):
        cs = tab.c[s]
        direction = sum((tab.a[s, l] / cs) * slopes[l] for l in range(s) if tab.a[s, l] != 0.0)
        start = base + (cs * dt - lead) * direction
        slopes.append(_damped_slope(stepper, start, t + cs * dt, K)[1])
    return base + (dt - lead) * sum(tab.b[s] * slopes[s] for s in range(len(tab.b)))


class ProjectiveStepper:
    r"""One outer step of projective forward Euler as the inner step of another level:
    telescopic projective integration (Gear & Kevrekidis, *Telescopic projective methods for
    parabolic differential equations*, J. Comput. Phys. 187 (2003) 95--109).

    ``evolve(states, t, steps)`` takes ``steps`` outer steps of :func:`projective_euler` with
    ``(k, M)`` over ``inner``, each of length :math:`h' = (k + 1 + M)\,h`; ``lift`` and
    ``restrict`` are ``inner``'s (the states are ``inner``'s micro states, re-lifted from the
    extrapolated macro state after every outer step, as projective_euler does). Nesting L
    levels with :math:`(k_l, M_l)` multiplies a mode by the composition
    :math:`\sigma_L(\cdots\sigma_1(\rho))` (:func:`telescopic_amplification`): the inner
    levels damp the fastest modes, the outer ones take long steps over the slow ones.
    """

    def __init__(self, inner: FreeStepper, k: int, M: float) -> None:
        check_projective(k, M)
        self.inner, self.k, self.M = inner, int(k), float(M)
        self.h = (self.k + 1 + self.M) * inner.h
        #: steps of ``inner`` taken so far (the work of this level; nest to count the innermost)
        self.inner_steps = 0

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        return self.inner.lift(U, t)

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        for n in range(int(steps)):
            U = self.inner.restrict(states)
            before, after = _last_two(self.inner, U, t + n * self.h, self.k)
            states[...] = self.inner.lift(after + self.M * (after - before), t + (n + 1) * self.h)
            self.inner_steps += self.k + 1

    def restrict(self, states: np.ndarray) -> np.ndarray:
        return self.inner.restrict(states)


def telescopic_amplification(rho: np.ndarray | complex, levels: list[tuple[int, float]]) -> np.ndarray:
    r""":math:`\sigma_L(\cdots\sigma_1(\rho))` for levels ``[(k_1, M_1), ..., (k_L, M_L)]``,
    innermost first (:func:`amplification` at each level)."""
    s = np.asarray(rho)
    for k, M in levels:
        s = amplification(s, k, M)
    return s
