r"""Parameters of the convection micro model and their checks.

The boundary-layer resolution rule
----------------------------------
A thermal boundary layer of thickness :math:`\delta = 1/(2\,\mathrm{Nu})` carries the whole
temperature drop of one wall (half of :math:`\Delta T = 1`) by conduction. Nu is estimated
from the classical boundary-layer law :math:`\mathrm{Nu}\propto\mathrm{Ra}^{1/3}` (Malkus,
Proc. R. Soc. A 225 (1954) 196; Howard 1966) as

.. math::

    \mathrm{Nu}_{\rm est} = \max(1,\ 0.27\,\mathrm{Ra}^{1/3}),

with the prefactor chosen so that the estimate lies above the steady free-slip,
infinite-Pr values of Blankenbach et al. (GJI 98 (1989) 23): 4.88, 10.53, 21.97 at
:math:`\mathrm{Ra} = 10^4, 10^5, 10^6` (estimates 5.8, 12.5, 27.0). No-slip walls and
finite-Pr turbulent convection have a smaller Nu (e.g. Grossmann & Lohse, JFM 407 (2000)
27: :math:`\mathrm{Nu}\approx 0.1\text{--}0.2\,\mathrm{Ra}^{0.3}` for
:math:`\mathrm{Ra}\lesssim10^{10}`), so the estimate errs towards thinner layers. The rule
asks for at least :data:`BL_POINTS` = 3 Chebyshev points :math:`z_j` with
:math:`0 < z_j \le \delta`; since :math:`z_j = \sin^2(\pi j/2N)` this is
:math:`N \ge 3\pi/\arccos(1 - 2\delta)`. It is necessary, not sufficient: the
convergence tables in docs/convection.md say what a given accuracy costs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hmmpar.core.errors import ConfigError

WALLS = ("free-slip", "no-slip")
BOTTOMS = ("temperature", "flux")
SCHEMES = ("ars222", "ars443")
#: Chebyshev points required strictly inside the thermal boundary layer
BL_POINTS = 3
#: largest grids accepted (memory guard: the per-mode inverses are 4 nz^2 (nx/2) doubles)
MAX_NX = 4096
MAX_NZ = 513


def nusselt_estimate(ra: float) -> float:
    r""":math:`\max(1, 0.27\,\mathrm{Ra}^{1/3})` (see the module docstring)."""
    return max(1.0, 0.27 * ra ** (1.0 / 3.0))


def boundary_layer_points(nz: int, ra: float) -> int:
    r"""Number of Chebyshev points with :math:`0 < z_j \le \delta = 1/(2\mathrm{Nu}_{\rm est})`."""
    delta = 0.5 / nusselt_estimate(ra)
    n = nz - 1
    count = 0
    for j in range(1, nz):
        if math.sin(0.5 * math.pi * j / n) ** 2 <= delta:
            count += 1
        else:
            break
    return count


def minimum_nz(ra: float) -> int:
    """Smallest nz (>= 9) whose grid satisfies the boundary-layer rule at ``ra``."""
    delta = 0.5 / nusselt_estimate(ra)
    nz = max(9, int(math.ceil(BL_POINTS * math.pi / math.acos(1.0 - 2.0 * delta))) - 1)
    while boundary_layer_points(nz, ra) < BL_POINTS:
        nz += 1
    return nz


@dataclass(frozen=True)
class ConvectionParams:
    r"""One convection box (all columns of a model share it).

    Attributes
    ----------
    ra
        Rayleigh number :math:`g\alpha\Delta T d^3/(\nu\kappa)` (> 0).
    pr
        Prandtl number :math:`\nu/\kappa` (> 0), or ``math.inf`` for Stokes flow.
    aspect
        Box width L in units of the depth (periodic in x).
    nx
        Fourier grid points in x (even, >= 8); modes :math:`|k| < n_x/2` are kept and the
        products are dealiased by 3/2 padding.
    nz
        Chebyshev--Gauss--Lobatto points in z including both walls (>= 9, and the
        boundary-layer rule of the module docstring).
    walls
        ``"free-slip"`` (:math:`w = \partial_z u = 0`) or ``"no-slip"`` (:math:`u = w = 0`).
    bottom
        ``"temperature"`` (:math:`T(x, 0) = T_b`) or ``"flux"``
        (:math:`-\partial_z T(x, 0) = q_b`); the top is always :math:`T = 0`.
    cfl
        Courant number of the explicit (advective) part, in (0, 1].
    dt_max
        Largest time step (None: the buoyancy bound of :func:`ConvectionModel.dt_limit`).
    scheme
        IMEX Runge--Kutta scheme: ``"ars222"`` (order 2) or ``"ars443"`` (order 3).
    """

    ra: float
    pr: float = math.inf
    aspect: float = 2.0
    nx: int = 64
    nz: int = 33
    walls: str = "free-slip"
    bottom: str = "temperature"
    cfl: float = 0.5
    dt_max: float | None = None
    scheme: str = "ars222"

    def validate(self, prefix: str = "") -> None:
        """Raise :class:`~hmmpar.core.errors.ConfigError` (one line naming the key) on bad values."""
        def bad(key: str, what: str) -> ConfigError:
            return ConfigError(f"{prefix}{key}: {what}")

        def number(key: str, value) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(key, f"must be a number, got {value!r}")
            return float(value)

        def integer(key: str, value) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(key, f"must be an integer, got {value!r}")
            return value

        ra = number("ra", self.ra)
        if not (ra > 0 and math.isfinite(ra)):
            raise bad("ra", f"must be > 0 and finite, got {self.ra!r}")
        pr = number("pr", self.pr)
        if not pr > 0 or math.isnan(pr):
            raise bad("pr", f"must be > 0 or inf, got {self.pr!r}")
        aspect = number("aspect", self.aspect)
        if not (aspect > 0 and math.isfinite(aspect)):
            raise bad("aspect", f"must be > 0 and finite, got {self.aspect!r}")
        nx = integer("nx", self.nx)
        if nx < 8 or nx % 2 or nx > MAX_NX:
            raise bad("nx", f"must be an even integer in [8, {MAX_NX}], got {nx}")
        nz = integer("nz", self.nz)
        if nz < 9 or nz > MAX_NZ:
            raise bad("nz", f"must be an integer in [9, {MAX_NZ}], got {nz}")
        if self.walls not in WALLS:
            raise bad("walls", f"must be one of {', '.join(WALLS)}, got {self.walls!r}")
        if self.bottom not in BOTTOMS:
            raise bad("bottom", f"must be one of {', '.join(BOTTOMS)}, got {self.bottom!r}")
        if self.scheme not in SCHEMES:
            raise bad("scheme", f"must be one of {', '.join(SCHEMES)}, got {self.scheme!r}")
        cfl = number("cfl", self.cfl)
        if not 0 < cfl <= 1:
            raise bad("cfl", f"must be in (0, 1], got {self.cfl!r}")
        if self.dt_max is not None:
            dt_max = number("dt_max", self.dt_max)
            if not (dt_max > 0 and math.isfinite(dt_max)):
                raise bad("dt_max", f"must be > 0 and finite, got {self.dt_max!r}")
        points = boundary_layer_points(nz, ra)
        if points < BL_POINTS:
            raise bad("nz", f"{nz} points do not resolve the thermal boundary layer at Ra = {ra:g} "
                            f"({points} of {BL_POINTS} inside delta = {0.5 / nusselt_estimate(ra):.3g}); "
                            f"use nz >= {minimum_nz(ra)}")
