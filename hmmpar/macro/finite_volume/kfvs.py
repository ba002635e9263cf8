r"""Kinetic flux-vector splitting (KFVS) for the Euler equations of an ideal gas.

References: Pullin, J. Comput. Phys. 34 (1980) 231 (equilibrium flux method);
Deshpande, NASA TP 2613 (1986); Mandal & Deshpande, Comput. Fluids 23 (1994) 447.

Idea
----
The Euler equations are the moments of the Boltzmann equation with a local Maxwellian.
Split the Maxwellian into the particles moving right (:math:`\xi_d > 0`) and left
(:math:`\xi_d < 0`) across a face normal to direction :math:`d`; the flux carried by each
half is a *half-range moment*. The numerical flux at the face between cells L and R is
upwind at the particle level:

.. math:: F_{L|R} = F^+(U_L) + F^-(U_R).

Derivation
----------
In the normal velocity :math:`\xi` the Maxwellian of a state :math:`(\rho, \mathbf u, p)`
is :math:`f(\xi) = \rho\sqrt{\beta/\pi}\,e^{-\beta(\xi - u)^2}` with :math:`u = u_d` and
:math:`\beta = \rho/(2p) = 1/(2RT)`. A particle carries mass 1, momentum
:math:`\boldsymbol\xi` and energy :math:`\xi^2/2 + I`, where :math:`I` collects everything
not in the normal motion: the tangential motion (mean :math:`|\mathbf u_t|^2/2` plus its thermal
part) and internal degrees of freedom. The thermal part of the normal motion holds
:math:`RT/2` per unit mass, i.e. :math:`p/2` per unit volume, of the internal energy
density :math:`\rho e = p/(\gamma - 1)`; so
:math:`\rho\langle I\rangle = E - \tfrac12\rho u^2 - p/2`, non-negative for :math:`\gamma \le 3`
(:math:`\gamma = 5/3`, a monatomic gas: :math:`\langle I\rangle = |\mathbf u_t|^2/2 + RT`,
the two tangential translations). With :math:`s = u\sqrt\beta`,
:math:`A^\pm = \tfrac12\operatorname{erfc}(\mp s)` and
:math:`B = e^{-s^2} / (2\sqrt{\pi\beta})`, the half-range moments are

.. math::

    \int_0^\infty f\,d\xi = \rho A^+, \quad
    \int_0^\infty \xi f\,d\xi = \rho(u A^+ + B), \quad
    \int_0^\infty \xi^2 f\,d\xi = \rho\big((u^2 + \tfrac{1}{2\beta}) A^+ + u B\big), \quad
    \int_0^\infty \xi^3 f\,d\xi = \rho\big((u^3 + \tfrac{3u}{2\beta}) A^+ + (u^2 + \tfrac1\beta) B\big)

(substitute :math:`\xi = u + t/\sqrt\beta`; the :math:`B` terms are the boundary terms
of :math:`\int t\,e^{-t^2}`). Hence, with :math:`p = \rho/(2\beta)`,

.. math::

    F^+ &= \Big(\rho(uA^+ + B),\ \ (p + \rho u^2) A^+ + \rho u B,\ \ \rho\mathbf u_t (uA^+ + B),\ \
           (E + p)\,u A^+ + (E + \tfrac p2) B\Big) \\
        &= A^+\,F_d(U) + B\,\big(\rho,\ \rho\mathbf u,\ E + \tfrac p2\big),

the energy line from :math:`\tfrac12\int\xi^3 f + \rho\langle I\rangle\int\xi f`; and
:math:`F^- = F_d - F^+ = A^-\,F_d(U) - B\,(\rho, \rho\mathbf u, E + p/2)` with
:math:`A^- = \tfrac12\operatorname{erfc}(s)`. This is Deshpande's closed form, written for
any direction of a 1D or 2D state (the tangential momentum rides on the mass flux).
Consistency :math:`F^+(U) + F^-(U) = F_d(U)` holds exactly in exact arithmetic, and
:math:`F^\pm \to F_d` or 0 for supersonic flow (:math:`|s| \to \infty`). The scheme is
first order; :mod:`hmmpar.macro.finite_volume.muscl` supplies second-order face states.

The half fluxes need the temperature :math:`p/\rho` of the Maxwellian: here the ideal
gas EOS. An MD micro model measures :math:`F^\pm` directly (particles crossing a plane).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc

from .euler import flux, primitive

__all__ = ["split_fluxes", "interface_flux"]


def split_fluxes(U: np.ndarray, axis: int, eos) -> tuple[np.ndarray, np.ndarray]:
    r"""The half-range fluxes :math:`(F^+, F^-)` in direction ``axis`` of states ``(..., nvar)``."""
    rho, vel, p = primitive(U, eos)
    beta = 0.5 * rho / p
    s = vel[..., axis] * np.sqrt(beta)
    a_plus = 0.5 * erfc(-s)
    a_minus = 0.5 * erfc(s)
    b = np.exp(-s * s) / (2.0 * np.sqrt(math.pi * beta))
    F = flux(U, axis, eos)
    D = U.copy()
    D[..., -1] = U[..., -1] + 0.5 * p
    return a_plus[..., None] * F + b[..., None] * D, a_minus[..., None] * F - b[..., None] * D


def interface_flux(UL: np.ndarray, UR: np.ndarray, axis: int, eos) -> np.ndarray:
    r"""KFVS face flux :math:`F^+(U_L) + F^-(U_R)` in direction ``axis``."""
    plus, _ = split_fluxes(UL, axis, eos)
    _, minus = split_fluxes(UR, axis, eos)
    return plus + minus
