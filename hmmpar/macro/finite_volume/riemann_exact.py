r"""Exact solution of the Riemann problem of the 1D Euler equations of an ideal gas.

Toro, *Riemann Solvers and Numerical Methods for Fluid Dynamics*, 3rd ed. (2009), ch. 4.
Initial data :math:`W_L = (\rho_L, u_L, p_L)` for :math:`x < x_0` and :math:`W_R` for
:math:`x > x_0`. The solution is self-similar in :math:`\xi = (x - x_0)/t`: a left wave, a
contact at :math:`u^*`, a right wave, separating the star states
:math:`(\rho^*_L, u^*, p^*)` and :math:`(\rho^*_R, u^*, p^*)`.

Star pressure (Toro §4.2-4.3): :math:`p^*` is the root of

.. math::

    f(p) = f_L(p) + f_R(p) + u_R - u_L = 0, \qquad
    f_K(p) = \begin{cases}
        (p - p_K)\sqrt{\dfrac{A_K}{p + B_K}}, & p > p_K \ \text{(shock)},\\[2mm]
        \dfrac{2 c_K}{\gamma - 1}\Big[\big(\tfrac{p}{p_K}\big)^{\frac{\gamma-1}{2\gamma}} - 1\Big],
            & p \le p_K \ \text{(rarefaction)},
    \end{cases}

:math:`A_K = 2/((\gamma+1)\rho_K)`, :math:`B_K = p_K(\gamma-1)/(\gamma+1)`,
:math:`c_K = \sqrt{\gamma p_K/\rho_K}`; :math:`f` increases monotonically, and a root
:math:`p^* > 0` exists iff the pressure positivity condition
:math:`u_R - u_L < 2(c_L + c_R)/(\gamma - 1)` holds (no vacuum). Then
:math:`u^* = \tfrac12(u_L + u_R) + \tfrac12(f_R(p^*) - f_L(p^*))`, and the star densities
are :math:`\rho^*_K = \rho_K \frac{p^*/p_K + \frac{\gamma-1}{\gamma+1}}{\frac{\gamma-1}{\gamma+1}p^*/p_K + 1}`
behind a shock, :math:`\rho_K (p^*/p_K)^{1/\gamma}` behind a rarefaction.
The root is bracketed and found by Brent's method to relative precision
:math:`4\cdot 10^{-16}` (instead of Toro's Newton iteration with tolerance :math:`10^{-6}`).

Sampling (Toro §4.5): shock speeds
:math:`S_L = u_L - c_L\sqrt{\frac{\gamma+1}{2\gamma}\frac{p^*}{p_L} + \frac{\gamma-1}{2\gamma}}`,
:math:`S_R = u_R + c_R\sqrt{\cdots}`; rarefaction heads :math:`u_L - c_L`, :math:`u_R + c_R`,
tails :math:`u^* \mp c^*_K` with :math:`c^*_K = c_K (p^*/p_K)^{(\gamma-1)/(2\gamma)}`; inside the
left fan :math:`u = \frac{2}{\gamma+1}\big(c_L + \frac{\gamma-1}{2}u_L + \xi\big)`,
:math:`\rho = \rho_L\big[\frac{2}{\gamma+1} + \frac{\gamma-1}{(\gamma+1)c_L}(u_L - \xi)\big]^{2/(\gamma-1)}`,
:math:`p = p_L[\cdots]^{2\gamma/(\gamma-1)}`, and mirrored in the right fan.

Used by the gas-dynamics app for the exact solution of Riemann problems (summary errors,
plots) and checked in tests against Toro's Table 4.3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

__all__ = ["StarState", "star_state", "sample", "solution"]


@dataclass(frozen=True)
class StarState:
    """The star region of a Riemann problem and the kind of each nonlinear wave."""

    p: float
    u: float
    rho_left: float
    rho_right: float
    left_wave: str   # "shock" or "rarefaction"
    right_wave: str


def _check(state, gamma: float, side: str) -> tuple[float, float, float]:
    rho, u, p = (float(v) for v in state)
    if not (math.isfinite(rho) and math.isfinite(u) and math.isfinite(p)) or rho <= 0 or p <= 0:
        raise ValueError(f"{side} state (rho, u, p) = ({rho:g}, {u:g}, {p:g}) must have finite "
                         "values and rho > 0, p > 0")
    if not gamma > 1.0:
        raise ValueError(f"gamma = {gamma} must exceed 1")
    return rho, u, p


def _f_k(p: float, rho: float, pk: float, gamma: float) -> float:
    c = math.sqrt(gamma * pk / rho)
    if p > pk:
        a = 2.0 / ((gamma + 1.0) * rho)
        b = pk * (gamma - 1.0) / (gamma + 1.0)
        return (p - pk) * math.sqrt(a / (p + b))
    return 2.0 * c / (gamma - 1.0) * ((p / pk) ** ((gamma - 1.0) / (2.0 * gamma)) - 1.0)


def star_state(left, right, gamma: float) -> StarState:
    """Star pressure, velocity and densities of the Riemann problem ``left | right``.

    Parameters
    ----------
    left, right
        ``(rho, u, p)`` on each side.
    gamma
        Ratio of specific heats (> 1).

    Raises
    ------
    ValueError
        A non-physical state, or data that create a vacuum (no positive star pressure).
    """
    rl, ul, pl = _check(left, gamma, "left")
    rr, ur, pr = _check(right, gamma, "right")
    cl, cr = math.sqrt(gamma * pl / rl), math.sqrt(gamma * pr / rr)
    if ur - ul >= 2.0 * (cl + cr) / (gamma - 1.0):
        raise ValueError("the Riemann data generate a vacuum (u_R - u_L >= 2 (c_L + c_R) / (gamma - 1))")

    def f(p: float) -> float:
        return _f_k(p, rl, pl, gamma) + _f_k(p, rr, pr, gamma) + ur - ul

    lo = 1e-300
    hi = max(pl, pr)
    while f(hi) < 0.0:
        hi *= 4.0
    p = brentq(f, lo, hi, xtol=1e-300, rtol=4.0 * np.finfo(float).eps, maxiter=500)
    u = 0.5 * (ul + ur) + 0.5 * (_f_k(p, rr, pr, gamma) - _f_k(p, rl, pl, gamma))
    g = (gamma - 1.0) / (gamma + 1.0)

    def rho_star(rho: float, pk: float) -> tuple[float, str]:
        if p > pk:
            return rho * (p / pk + g) / (g * p / pk + 1.0), "shock"
        return rho * (p / pk) ** (1.0 / gamma), "rarefaction"

    rsl, wl = rho_star(rl, pl)
    rsr, wr = rho_star(rr, pr)
    return StarState(p=p, u=u, rho_left=rsl, rho_right=rsr, left_wave=wl, right_wave=wr)


def sample(left, right, gamma: float, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(rho, u, p)`` of the self-similar solution at :math:`\xi = (x - x_0)/t` (array)."""
    rl, ul, pl = _check(left, gamma, "left")
    rr, ur, pr = _check(right, gamma, "right")
    star = star_state(left, right, gamma)
    ps, us = star.p, star.u
    xi = np.asarray(xi, dtype=float)
    rho, u, p = np.empty_like(xi), np.empty_like(xi), np.empty_like(xi)
    g1 = (gamma - 1.0) / (2.0 * gamma)
    g2 = (gamma + 1.0) / (2.0 * gamma)

    def side(mask_side, rk, uk, pk, rho_star, wave, sign):
        # sign = -1: left side (waves move with u - c); +1: right side (u + c)
        ck = math.sqrt(gamma * pk / rk)
        x = xi[mask_side]
        r_out, u_out, p_out = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        if wave == "shock":
            s = uk + sign * ck * math.sqrt(g2 * ps / pk + g1)
            outside = (x > s) if sign > 0 else (x < s)
            r_out[:], u_out[:], p_out[:] = rho_star, us, ps
            r_out[outside], u_out[outside], p_out[outside] = rk, uk, pk
        else:
            head = uk + sign * ck
            cstar = ck * (ps / pk) ** g1
            tail = us + sign * cstar
            r_out[:], u_out[:], p_out[:] = rho_star, us, ps
            outside = (x > head) if sign > 0 else (x < head)
            fan = ~outside & ((x > tail) if sign > 0 else (x < tail))
            r_out[outside], u_out[outside], p_out[outside] = rk, uk, pk
            xf = x[fan]
            base = 2.0 / (gamma + 1.0) - sign * (gamma - 1.0) / ((gamma + 1.0) * ck) * (uk - xf)
            r_out[fan] = rk * base ** (2.0 / (gamma - 1.0))
            u_out[fan] = 2.0 / (gamma + 1.0) * (-sign * ck + 0.5 * (gamma - 1.0) * uk + xf)
            p_out[fan] = pk * base ** (2.0 * gamma / (gamma - 1.0))
        rho[mask_side], u[mask_side], p[mask_side] = r_out, u_out, p_out

    left_of_contact = xi <= us
    side(left_of_contact, rl, ul, pl, star.rho_left, star.left_wave, -1)
    side(~left_of_contact, rr, ur, pr, star.rho_right, star.right_wave, +1)
    return rho, u, p


def solution(left, right, gamma: float, x: np.ndarray, t: float, x0: float = 0.5
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rho, u, p)`` at positions ``x`` and time ``t`` (``t = 0``: the initial data)."""
    x = np.asarray(x, dtype=float)
    if t <= 0.0:
        rl, ul, pl = _check(left, gamma, "left")
        rr, ur, pr = _check(right, gamma, "right")
        lft = x < x0
        return (np.where(lft, rl, rr), np.where(lft, ul, ur), np.where(lft, pl, pr))
    return sample(left, right, gamma, (x - x0) / t)
