r"""Pair potentials for the molecular-dynamics micro family, in reduced Lennard-Jones units.

Units: mass :math:`m = 1`, energy :math:`\varepsilon = 1`, length :math:`\sigma = 1`,
:math:`k_B = 1`; time is then :math:`\sigma\sqrt{m/\varepsilon}`.

A potential is a :class:`Potential`: a frozen record whose compiled part is a *kind code*
(an ``int``) and a ``float64`` parameter array. Every numba kernel takes ``(kind, params)``
and calls the one compiled pair function :func:`pair_energy_force`, which dispatches on the
kind. Records of plain integers and arrays keep ``@njit(cache=True)`` working (a jitclass
cannot be cached); adding a potential is a new kind code, a branch in
:func:`pair_energy_force` and a case in :func:`make_potential`.

Potentials
----------
``lj``
    Lennard-Jones truncated at :math:`r_c` (default 2.5), optionally shifted:

    .. math::

        \phi(r) = 4\left(r^{-12} - r^{-6}\right) - \phi_{\rm shift}, \qquad r < r_c,

    and 0 beyond; :math:`\phi_{\rm shift} = 4(r_c^{-12} - r_c^{-6})` with ``shift=True``,
    else 0. The force is that of the unshifted potential in both cases (the shift is a
    constant; the truncated, unshifted potential's impulsive force at :math:`r_c` is not
    applied, as in every MD code).
``wca``
    Weeks-Chandler-Andersen: LJ cut at its minimum :math:`r_c = 2^{1/6}` and shifted up by
    :math:`\varepsilon`, so that it is purely repulsive and continuous (Weeks, Chandler &
    Andersen, J. Chem. Phys. 54, 5237 (1971)).
``none``
    No interaction: free particles, the ideal gas.

Long-range (tail) corrections
-----------------------------
With ``tail_correction=True`` the energy and pressure get the standard corrections for the
part of the LJ potential beyond :math:`r_c`, assuming :math:`g(r) = 1` there (Allen &
Tildesley, *Computer Simulation of Liquids*, section "long-range corrections"):

.. math::

    \frac{U_{\rm tail}}{N} = 2\pi\rho\int_{r_c}^\infty r^2\phi_{\rm LJ}(r)\,dr
        = \frac{8}{3}\pi\rho\left[\frac{1}{3}r_c^{-9} - r_c^{-3}\right],

    p_{\rm tail} = -\frac{2}{3}\pi\rho^2\int_{r_c}^\infty r^3\phi_{\rm LJ}'(r)\,dr
        = \frac{16}{3}\pi\rho^2\left[\frac{2}{3}r_c^{-9} - r_c^{-3}\right]

(the integrals: :math:`\int_{r_c}^\infty 4(r^{-10} - r^{-4})dr = 4(r_c^{-9}/9 - r_c^{-3}/3)`
and :math:`\int_{r_c}^\infty r^3\phi'dr = 4(-\tfrac{4}{3}r_c^{-9} + 2r_c^{-3})`). The same
expressions are used by Johnson, Zollweg & Gubbins, Mol. Phys. 78, 591 (1993) and by the
NIST LJ benchmark pages. With ``shift=True`` as well, the pressure is the full-LJ
estimate (the shift does not change forces) while the energy is that of the shifted
potential plus the tail, as LAMMPS reports it with ``pair_modify shift yes tail yes``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numba
import numpy as np

from hmmpar.core.errors import ConfigError

#: kind codes of the compiled pair function
KIND_NONE = 0
KIND_LJ = 1

#: WCA cutoff, the minimum of the LJ potential
WCA_CUTOFF = 2.0 ** (1.0 / 6.0)
#: default LJ cutoff
LJ_DEFAULT_CUTOFF = 2.5

NAMES = ("lj", "wca", "none")


@numba.njit(cache=True, error_model="numpy")
def pair_energy_force(kind: int, params: np.ndarray, r2: float):
    r"""Pair energy :math:`\phi(r)` and :math:`F(r) = -\phi'(r)/r` at squared distance ``r2``.

    The force on atom *i* from *j* is :math:`\mathbf f_{ij} = F(r)\,\mathbf r_{ij}` with
    :math:`\mathbf r_{ij} = \mathbf x_i - \mathbf x_j`. Callers test ``r2 < params[0]``
    (:math:`r_c^2`) first; ``params[1]`` is the energy shift. For LJ,
    :math:`F = 24 r^{-2} r^{-6}(2 r^{-6} - 1)`.
    """
    if kind == KIND_LJ:
        inv2 = 1.0 / r2
        inv6 = inv2 * inv2 * inv2
        return 4.0 * inv6 * (inv6 - 1.0) - params[1], 24.0 * inv2 * inv6 * (2.0 * inv6 - 1.0)
    return 0.0, 0.0


@dataclass(frozen=True, eq=False)
class Potential:
    """A pair potential: its name, compiled kind code and parameters, and its corrections.

    Attributes
    ----------
    name
        ``"lj"``, ``"wca"`` or ``"none"``.
    kind
        Kind code passed to the compiled kernels.
    cutoff
        :math:`r_c`; 0 for ``none``.
    shift
        Energy shifted to zero at :math:`r_c`.
    tail_correction
        Energy and pressure include the long-range corrections.
    params
        ``float64`` array ``[r_c^2, energy shift]`` for the kernels.
    """

    name: str
    kind: int
    cutoff: float
    shift: bool
    tail_correction: bool
    params: np.ndarray = field(repr=False)

    @property
    def interacting(self) -> bool:
        """False for free particles (no forces, no neighbour lists)."""
        return self.kind != KIND_NONE

    @property
    def energy_shift(self) -> float:
        return float(self.params[1])

    def energy(self, r: np.ndarray | float) -> np.ndarray:
        """Pair energy :math:`\\phi(r)` (truncated, shifted as configured), vectorised."""
        r = np.asarray(r, dtype=float)
        if self.kind == KIND_NONE:
            return np.zeros_like(r)
        inv6 = r ** -6.0
        return np.where(r < self.cutoff, 4.0 * inv6 * (inv6 - 1.0) - self.params[1], 0.0)

    def force_over_r(self, r: np.ndarray | float) -> np.ndarray:
        """:math:`F(r) = -\\phi'(r)/r` (zero at and beyond the cutoff), vectorised."""
        r = np.asarray(r, dtype=float)
        if self.kind == KIND_NONE:
            return np.zeros_like(r)
        inv2 = r ** -2.0
        inv6 = inv2 ** 3
        return np.where(r < self.cutoff, 24.0 * inv2 * inv6 * (2.0 * inv6 - 1.0), 0.0)

    def tail_energy_per_atom(self, density: float) -> float:
        r""":math:`U_{\rm tail}/N = \tfrac{8}{3}\pi\rho[\tfrac{1}{3}r_c^{-9} - r_c^{-3}]`, or 0."""
        if not self.tail_correction:
            return 0.0
        rc = self.cutoff
        return 8.0 / 3.0 * math.pi * density * (rc ** -9 / 3.0 - rc ** -3)

    def tail_pressure(self, density: float) -> float:
        r""":math:`p_{\rm tail} = \tfrac{16}{3}\pi\rho^2[\tfrac{2}{3}r_c^{-9} - r_c^{-3}]`, or 0."""
        if not self.tail_correction:
            return 0.0
        rc = self.cutoff
        return 16.0 / 3.0 * math.pi * density ** 2 * (2.0 / 3.0 * rc ** -9 - rc ** -3)

    def ground_state_energy(self, density: float) -> float:
        """Lowest potential energy per atom a box at ``density`` can have (zero temperature).

        For ``none`` it is 0. Otherwise it is the static fcc lattice energy (with this
        truncation and shift) minimised over lattice densities :math:`\\rho' \\ge \\rho`:
        below the lattice's optimal density the ground state is a crystal at that density
        plus vacuum. The tail correction (which depends on the box density only) is added
        when enabled. (hcp lies about 0.01 % lower for the full LJ potential; that
        difference does not matter for refusing states below the ground state.)
        """
        if self.kind == KIND_NONE:
            return 0.0
        return _fcc_ground_state(self.cutoff, self.energy_shift, float(density)) \
            + self.tail_energy_per_atom(density)

    def describe(self) -> str:
        """One line, e.g. ``lj (r_c = 2.5, shifted, tail corrections)``."""
        if self.kind == KIND_NONE:
            return "none (free particles)"
        extras = [f"r_c = {self.cutoff:g}"]
        if self.shift:
            extras.append("shifted")
        if self.tail_correction:
            extras.append("tail corrections")
        return f"{self.name} ({', '.join(extras)})"


def _fcc_lattice_energy(rc: float, e_shift: float, density: float) -> float:
    """Static fcc lattice energy per atom, (1/2) sum over lattice vectors |R| < r_c of phi."""
    a = (4.0 / density) ** (1.0 / 3.0)
    n = int(math.ceil(rc / a)) + 1
    g = np.arange(-n, n + 1, dtype=float)
    cube = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    pts = (cube + basis).reshape(-1, 3) * a
    r = np.sqrt((pts ** 2).sum(axis=1))
    r = r[(r > 0) & (r < rc)]
    inv6 = r ** -6.0
    return 0.5 * float(np.sum(4.0 * inv6 * (inv6 - 1.0) - e_shift))


#: densities of the tabulated fcc lattice energies (beyond ~1.1 they only rise)
_GRID = np.linspace(0.02, 2.0, 991)


@lru_cache(maxsize=64)
def _fcc_table(rc: float, e_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """fcc lattice energies on :data:`_GRID` and their suffix minima (min over rho' >= rho)."""
    values = np.array([_fcc_lattice_energy(rc, e_shift, d) for d in _GRID])
    return values, np.minimum.accumulate(values[::-1])[::-1]


def _fcc_ground_state(rc: float, e_shift: float, density: float) -> float:
    """min over rho' >= rho of the fcc lattice energy: the exact lattice energy at rho and
    the tabulated ones above it (every candidate is a real lattice energy, so the result
    is never below the true minimum; the table spacing, 0.002, costs ~1e-5 near the flat
    minimum)."""
    here = _fcc_lattice_energy(rc, e_shift, density)
    values, suffix = _fcc_table(rc, e_shift)
    k = int(np.searchsorted(_GRID, density, side="right"))
    return float(min(here, suffix[k])) if k < _GRID.size else here


def _finite_positive(option: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}: must be a number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0.0:
        raise ConfigError(f"{option}: must be a finite number > 0, got {value!r}")
    return x


def make_potential(name: str, cutoff: float | None = None, shift: bool = False,
                   tail_correction: bool = False) -> Potential:
    """Build a validated :class:`Potential`.

    Parameters
    ----------
    name
        ``"lj"``, ``"wca"`` or ``"none"``.
    cutoff
        :math:`r_c` for ``lj`` (default 2.5). ``wca`` has its own (:math:`2^{1/6}`; giving
        that value is accepted) and ``none`` has none.
    shift
        Shift the LJ energy to zero at :math:`r_c`. WCA is always shifted.
    tail_correction
        Add the long-range corrections to energy and pressure (``lj`` only).

    Raises
    ------
    ConfigError
        One line naming the option at fault.
    """
    if not isinstance(name, str) or name.strip().lower() not in NAMES:
        raise ConfigError(f"potential: must be one of {', '.join(NAMES)}, got {name!r}")
    name = name.strip().lower()
    for option, value in (("shift", shift), ("tail_correction", tail_correction)):
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{option}: must be true or false, got {value!r}")
    if name == "none":
        if cutoff is not None:
            raise ConfigError("cutoff: the 'none' potential (free particles) takes no cutoff")
        if tail_correction:
            raise ConfigError("tail_correction: the 'none' potential (free particles) has no tail")
        return Potential("none", KIND_NONE, 0.0, False, False, np.zeros(2))
    if name == "wca":
        if cutoff is not None and not math.isclose(float(cutoff), WCA_CUTOFF, rel_tol=1e-12):
            raise ConfigError(f"cutoff: WCA is cut at 2^(1/6) = {WCA_CUTOFF:.6f}, got {cutoff!r}")
        if tail_correction:
            raise ConfigError("tail_correction: WCA is zero beyond its cutoff; there is no tail")
        rc = WCA_CUTOFF
        return Potential("wca", KIND_LJ, rc, True, False, np.array([rc * rc, -1.0]))
    rc = LJ_DEFAULT_CUTOFF if cutoff is None else _finite_positive("cutoff", cutoff)
    e_shift = 4.0 * (rc ** -12 - rc ** -6) if shift else 0.0
    return Potential("lj", KIND_LJ, rc, bool(shift), bool(tail_correction), np.array([rc * rc, e_shift]))
