r"""Parameters of the coarse Boussinesq model and their checks.

The model is nondimensional on the thermal-diffusion time :math:`d^2/\kappa`, the depth
:math:`d = 1` and the temperature scale :math:`\Delta T = 1` (the scaling of the micro
model):

.. math::

    \partial_t \mathbf u + \mathbf u\cdot\nabla\mathbf u = -\nabla p + \Pr\nabla^2\mathbf u
    + \Pr\,\mathrm{Ra}\,T\,\hat{\mathbf z}, \qquad \nabla\cdot\mathbf u = 0, \qquad
    \partial_t T + \mathbf u\cdot\nabla T = \nabla^2 T + S_T,

on :math:`x \in [0, L_x)` (periodic) and :math:`z \in [0, 1]` between walls (:math:`w = 0`;
free slip :math:`\partial_z u = 0` or no slip :math:`u = 0`), with :math:`T = 0` on top and
at the bottom either a temperature :math:`T_b(x)` or an upward heat flux
:math:`q_b(x) = -\partial_z T`.

Default bottom profile (a horizontally varying surface condition drives a large-scale
circulation, as the sea-surface temperature contrast of Grabowski 2001, J. Atmos. Sci.
58:978): :math:`T_b(x) = 1 - A\cos(2\pi x/L_x)` (or :math:`q_b` of the same form), warm in
the middle :math:`x = L_x/2` and cool at the sides :math:`x = 0 \equiv L_x`; its mean is the
conductive value 1, :math:`A` is ``bottom_amplitude``.

Every check raises :class:`~hmmpar.core.errors.ConfigError` with a one-line message that
names the config key (``macro.nx`` ...), on every rank alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np

from hmmpar.core.errors import ConfigError

__all__ = ["BoussinesqParams", "WIDTH", "default_bottom_profile", "bottom_values", "check_params"]

#: ghost layers of the DMDA: the limited upwind reconstruction reaches two cells
WIDTH = 2

Profile = Union[Callable[[np.ndarray], np.ndarray], np.ndarray, list, float, None]


@dataclass(frozen=True)
class BoussinesqParams:
    """Configuration of :class:`~hmmpar.macro.boussinesq.CoarseBoussinesq`.

    Parameters
    ----------
    ra, pr
        Rayleigh and Prandtl numbers (finite, positive).
    lx
        Domain width (the depth is 1).
    nx, nz
        Macro cells in x and z. Ranks split the columns: every rank needs ``WIDTH`` (2)
        of them, so ``nx >= 2 * ranks``.
    bottom
        ``"temperature"`` (:math:`T_b(x)`) or ``"flux"`` (:math:`q_b(x) = -\\partial_z T`).
    bottom_profile
        :math:`T_b` or :math:`q_b` over the macro columns: a callable of the column
        centres ``x`` (shape ``(nx,)``), an array of ``nx`` values, a number, or None for
        the default :func:`default_bottom_profile` with ``bottom_amplitude``.
    bottom_amplitude
        :math:`A` of the default profile.
    walls
        ``"free-slip"`` or ``"no-slip"``.
    poisson
        ``"redundant"`` (sequential LU of the whole Poisson problem on every rank: bitwise
        rank-independent) or ``"distributed"`` (CG + GAMG on the DMDA: reproducible to
        ``ksp_rtol`` only).
    cfl
        Fraction of the explicit step limit (:meth:`CoarseBoussinesq.stable_dt`), in (0, 1].
    ksp_rtol
        Relative residual tolerance of the distributed Poisson solve.
    source
        Heat source :math:`S_T`: None, a number, or a callable ``S(x, z)`` of cell centres.
    """

    ra: float = 1.0e5
    pr: float = 1.0
    lx: float = 8.0
    nx: int = 32
    nz: int = 8
    bottom: str = "temperature"
    bottom_profile: Profile = None
    bottom_amplitude: float = 0.5
    walls: str = "free-slip"
    poisson: str = "redundant"
    cfl: float = 0.5
    ksp_rtol: float = 1.0e-10
    source: Union[Callable[[np.ndarray, np.ndarray], np.ndarray], float, None] = None


def default_bottom_profile(x: np.ndarray, lx: float, amplitude: float) -> np.ndarray:
    r""":math:`1 - A\cos(2\pi x / L_x)`: warm in the middle, cool at the sides."""
    return 1.0 - amplitude * np.cos(2.0 * math.pi * np.asarray(x, dtype=float) / lx)


def _positive(value, key: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0.0):
        raise ConfigError(f"config key {key} = {value!r} must be a finite number > 0")
    return v


def _integer(value, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"config key {key} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"config key {key} = {value} must be >= {minimum}")
    return int(value)


def check_params(p: BoussinesqParams, ranks: int) -> None:
    """Raise :class:`ConfigError` naming the first bad key of ``p`` for ``ranks`` ranks."""
    _positive(p.ra, "macro.ra")
    _positive(p.pr, "macro.pr")
    _positive(p.lx, "macro.lx")
    nx = _integer(p.nx, "macro.nx", WIDTH)
    _integer(p.nz, "macro.nz", 2)
    if nx // ranks < WIDTH:
        raise ConfigError(f"config key macro.nx = {nx} is too small for {ranks} ranks: every rank needs "
                          f"at least {WIDTH} columns (macro.nx >= {WIDTH * ranks})")
    for key, value, allowed in (("macro.bottom", p.bottom, ("temperature", "flux")),
                                ("macro.walls", p.walls, ("free-slip", "no-slip")),
                                ("macro.poisson", p.poisson, ("redundant", "distributed"))):
        if value not in allowed:
            raise ConfigError(f"config key {key} = {value!r} must be one of " + ", ".join(map(repr, allowed)))
    cfl = _positive(p.cfl, "macro.cfl")
    if cfl > 1.0:
        raise ConfigError(f"config key macro.cfl = {cfl:g} must be in (0, 1] (a fraction of the explicit step limit)")
    rtol = _positive(p.ksp_rtol, "macro.ksp_rtol")
    if rtol >= 1.0:
        raise ConfigError(f"config key macro.ksp_rtol = {rtol:g} must be in (0, 1)")
    try:
        a = float(p.bottom_amplitude)
    except (TypeError, ValueError):
        a = float("nan")
    if not math.isfinite(a):
        raise ConfigError(f"config key macro.bottom_amplitude must be a finite number, got {p.bottom_amplitude!r}")
    bottom_values(p)


def bottom_values(p: BoussinesqParams) -> np.ndarray:
    """:math:`T_b` or :math:`q_b` at the ``nx`` column centres (the same on every rank)."""
    x = (np.arange(p.nx, dtype=float) + 0.5) * (float(p.lx) / p.nx)
    prof = p.bottom_profile
    key = "macro.bottom_profile"
    if prof is None:
        values = default_bottom_profile(x, float(p.lx), float(p.bottom_amplitude))
    elif callable(prof):
        try:
            values = np.asarray(prof(x), dtype=float)
        except Exception as exc:  # noqa: BLE001 - a user callable: report it on one line
            raise ConfigError(f"config key {key}: the profile failed at the column centres ({exc})") from None
        values = np.broadcast_to(values, x.shape).copy() if values.ndim == 0 else values
    else:
        try:
            values = np.asarray(prof, dtype=float)
        except (TypeError, ValueError):
            raise ConfigError(f"config key {key} must be numbers, a callable or None") from None
        if values.ndim == 0:
            values = np.full(x.shape, float(values))
    if values.shape != x.shape:
        raise ConfigError(f"config key {key} has shape {values.shape}, expected ({p.nx},) (one value per macro column)")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"config key {key} has non-finite values")
    return np.ascontiguousarray(values)
