r"""The Euler equations of gas dynamics in conservation form, and the ideal-gas closure.

.. math::

    \partial_t U + \sum_{d} \partial_{x_d} F_d(U) = 0, \qquad
    U = (\rho,\ \rho\mathbf u,\ E), \qquad
    F_d(U) = (\rho u_d,\ \rho u_d\,\mathbf u + p\,\mathbf e_d,\ (E + p)\,u_d),

with the density :math:`\rho`, the momentum density :math:`\mathbf m = \rho\mathbf u`,
the total energy density :math:`E = \rho e + \tfrac12\rho|\mathbf u|^2` (:math:`\rho e`
the internal energy density) and the pressure :math:`p`, given by an equation of state
:math:`p = p(\rho, \rho e)`.

Array layout: the conserved variables are the *last* axis of a state array, in the
order ``(rho, m_1, .., m_dim, E)`` (``n_vars(dim) = dim + 2``); leading axes are cells.
Every function here is vectorised over the leading axes and written for any ``dim``
with the same floating-point operations, so that a 2D state whose second momentum
component is zero gives bit for bit the 1D numbers.

Equations of state
------------------
An EOS is any object with the three methods of :class:`IdealGas`:
``pressure(rho, rho_e)``, ``internal_energy_density(rho, p)`` and
``sound_speed(rho, p)``. The macro solver needs it only to turn initial data given as
``(rho, u, p)`` into conserved variables and to report ``p`` in the outputs; fluxes and
sound speeds during a run come from the micro model (:mod:`hmmpar.apps.gas_micro`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IdealGas", "n_vars", "conserved", "primitive", "internal_energy_density", "flux",
           "all_fluxes", "wave_speeds", "inadmissible"]

#: gamma of a monatomic ideal gas (3 translational degrees of freedom)
MONATOMIC_GAMMA = 5.0 / 3.0


def n_vars(dim: int) -> int:
    """Number of conserved variables in ``dim`` space dimensions: ``dim + 2``."""
    return dim + 2


@dataclass(frozen=True)
class IdealGas:
    r"""Calorically perfect gas: :math:`p = (\gamma - 1)\rho e`, :math:`c = \sqrt{\gamma p/\rho}`.

    ``gamma = 5/3`` is a monatomic gas (the default of the gas-dynamics app: the limit a
    Lennard-Jones fluid approaches at low density); ``gamma = 1.4`` is Toro's diatomic
    test gas.
    """

    gamma: float = MONATOMIC_GAMMA

    def pressure(self, rho: np.ndarray, rho_e: np.ndarray) -> np.ndarray:
        """Pressure from density and internal energy density."""
        return (self.gamma - 1.0) * rho_e

    def internal_energy_density(self, rho: np.ndarray, p: np.ndarray) -> np.ndarray:
        r"""Internal energy density :math:`\rho e = p / (\gamma - 1)`."""
        return p / (self.gamma - 1.0)

    def sound_speed(self, rho: np.ndarray, p: np.ndarray) -> np.ndarray:
        r"""Adiabatic sound speed :math:`c = \sqrt{\gamma p / \rho}`."""
        return np.sqrt(self.gamma * p / rho)


def internal_energy_density(U: np.ndarray) -> np.ndarray:
    r""":math:`\rho e = E - |\mathbf m|^2 / (2\rho)` of conserved states ``U`` (..., nvar)."""
    m = U[..., 1:-1]
    return U[..., -1] - 0.5 * np.sum(m * m, axis=-1) / U[..., 0]


def conserved(rho: np.ndarray, velocity: np.ndarray, p: np.ndarray, eos) -> np.ndarray:
    r"""Conserved states from primitive ones.

    Parameters
    ----------
    rho, p
        Density and pressure, shape ``(...)``.
    velocity
        Velocity, shape ``(..., dim)``.
    eos
        Equation of state (``internal_energy_density(rho, p)``).

    Returns
    -------
    numpy.ndarray
        ``(..., dim + 2)``: :math:`(\rho, \rho\mathbf u, \rho e(\rho, p) + \tfrac12\rho|\mathbf u|^2)`.
    """
    rho = np.asarray(rho, dtype=float)
    velocity = np.asarray(velocity, dtype=float)
    dim = velocity.shape[-1]
    U = np.empty(rho.shape + (dim + 2,))
    U[..., 0] = rho
    U[..., 1:-1] = rho[..., None] * velocity
    m = U[..., 1:-1]
    U[..., -1] = eos.internal_energy_density(rho, np.asarray(p, dtype=float)) + 0.5 * np.sum(m * m, axis=-1) / rho
    return U


def primitive(U: np.ndarray, eos) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rho, velocity (..., dim), p)`` of conserved states ``U`` (..., dim + 2)."""
    rho = U[..., 0]
    return rho, U[..., 1:-1] / rho[..., None], eos.pressure(rho, internal_energy_density(U))


def flux(U: np.ndarray, axis: int, eos) -> np.ndarray:
    r"""The Euler flux :math:`F_d(U)` in direction ``axis`` (0 = x, 1 = y) of states (..., nvar)."""
    rho, vel, p = primitive(U, eos)
    u = vel[..., axis]
    F = np.empty_like(U)
    F[..., 0] = U[..., 1 + axis]
    F[..., 1:-1] = U[..., 1 + axis, None] * vel
    F[..., 1 + axis] += p
    F[..., -1] = (U[..., -1] + p) * u
    return F


def all_fluxes(U: np.ndarray, eos) -> np.ndarray:
    """The fluxes in every direction: shape ``(..., dim, nvar)``."""
    dim = U.shape[-1] - 2
    return np.stack([flux(U, d, eos) for d in range(dim)], axis=-2)


def wave_speeds(U: np.ndarray, eos) -> np.ndarray:
    r"""Largest characteristic speed per direction, :math:`|u_d| + c`: shape ``(..., dim)``."""
    rho, vel, p = primitive(U, eos)
    return np.abs(vel) + eos.sound_speed(rho, p)[..., None]


def inadmissible(U: np.ndarray) -> np.ndarray:
    r"""Mask of states that are not physical: a non-finite entry, :math:`\rho \le 0`, or
    :math:`\rho e \le 0` (for an ideal gas the same as :math:`p \le 0`). Shape ``(...)``."""
    with np.errstate(all="ignore"):
        bad = ~np.all(np.isfinite(U), axis=-1) | ~(U[..., 0] > 0.0)
        bad |= ~(internal_energy_density(U) > 0.0)
    return bad
