r"""Initial data, default boundary conditions and exact solutions of the gas-dynamics problems.

======================  ===  ===================================================================
``problem.name``        dim  initial data (``x0`` = ``problem.x0``), exact solution
======================  ===  ===================================================================
``sod``                 1/2  Sod (1978): (1, 0, 1) | (0.125, 0, 0.1); exact (Toro's solver)
``lax``                 1/2  Lax (1954): (0.445, 0.698, 3.528) | (0.5, 0, 0.571); exact
``riemann``             1/2  ``problem.left`` | ``problem.right`` (rho, u, p); exact
``density_wave``        1/2  rho = 1 + A sin(2 pi s), u (= v) = 1, p = 1, with s = x' (1D),
                             x' + y' (2D) in units of the box; exact (advection) when periodic
``blast2d``             2    Toro's cylindrical explosion: (1, 0, 0, 1) inside r < 0.2 L of the
                             centre, (0.125, 0, 0, 0.1) outside; reflecting walls
``riemann2d``           2    Kurganov & Tadmor (2002) / Lax & Liu (1998) configuration 3 in
                             the quadrants around (x0, y0 = middle); outflow
``custom``              1/2  formulas ``problem.rho``, ``u``, ``v``, ``p`` in x, y
======================  ===  ===================================================================

A Riemann problem in 2D is planar: the data vary along x only (v = 0), the exact
solution is the 1D one, and y is periodic by default -- a 2D run that must reproduce
the 1D run. Presets prescribe the data, not gamma: Sod's and Lax's published solutions
are for gamma = 1.4 (set ``micro.gamma = 1.4``), the app's default gas is monatomic
(gamma = 5/3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hmmpar.core.errors import ConfigError
from hmmpar.core.expression import ExpressionError, macro_function
from hmmpar.macro.finite_volume import riemann_exact

__all__ = ["PROBLEMS", "TWO_D_ONLY", "Problem", "problem_from_config"]

PROBLEMS = ("sod", "lax", "riemann", "density_wave", "blast2d", "riemann2d", "custom")
TWO_D_ONLY = ("blast2d", "riemann2d")
SOD = ((1.0, 0.0, 1.0), (0.125, 0.0, 0.1))
LAX = ((0.445, 0.698, 3.528), (0.5, 0.0, 0.571))
#: Kurganov & Tadmor, Numer. Methods PDE 18 (2002) 584, configuration 3: quadrants 1..4
#: (x > x0, y > y0), (x < x0, y > y0), (x < x0, y < y0), (x > x0, y < y0) as (rho, u, v, p)
RIEMANN2D_CONFIG3 = ((1.5, 0.0, 0.0, 1.5), (0.5323, 1.206, 0.0, 0.3), (0.138, 1.206, 1.206, 0.029),
                     (0.5323, 0.0, 1.206, 0.3))

Initial = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class Problem:
    """A gas-dynamics problem on a box.

    ``initial(points (n, dim)) -> (rho (n,), velocity (n, dim), p (n,))``;
    ``exact(points, t)`` likewise or None; ``default_bc`` per direction ``(low, high)``;
    ``keys`` the config keys that define ``rho``, ``velocity`` and ``p`` (named in errors).
    """

    name: str
    dim: int
    initial: Initial
    default_bc: list[tuple[str, str]]
    exact: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
    keys: dict = field(default_factory=dict)
    riemann: tuple | None = None  # (left, right, x0) of a (planar) Riemann problem


def _riemann(name: str, dim: int, left, right, x0: float, gamma: float) -> Problem:
    def initial(pts):
        rho, u, p = riemann_exact.solution(left, right, gamma, pts[:, 0], 0.0, x0)
        vel = np.zeros((pts.shape[0], dim))
        vel[:, 0] = u
        return rho, vel, p

    def exact(pts, t):
        rho, u, p = riemann_exact.solution(left, right, gamma, pts[:, 0], t, x0)
        vel = np.zeros((pts.shape[0], dim))
        vel[:, 0] = u
        return rho, vel, p

    bc = [("outflow", "outflow")] + [("periodic", "periodic")] * (dim - 1)
    key = "problem.name" if name in ("sod", "lax") else "problem.left / problem.right"
    return Problem(name, dim, initial, bc, exact, keys={"rho": key, "velocity": key, "p": key},
                   riemann=(tuple(left), tuple(right), x0))


def _density_wave(dim: int, lower, upper, amplitude: float) -> Problem:
    lower, span = np.asarray(lower, float), np.asarray(upper, float) - np.asarray(lower, float)

    def at(pts, t):
        s = np.sum((pts - t - lower) / span, axis=1)
        n = pts.shape[0]
        return 1.0 + amplitude * np.sin(2.0 * np.pi * s), np.ones((n, dim)), np.ones(n)

    key = "problem.amplitude"
    return Problem("density_wave", dim, lambda pts: at(pts, 0.0), [("periodic", "periodic")] * dim,
                   exact=at, keys={"rho": key, "velocity": key, "p": key})


def _blast2d(lower, upper) -> Problem:
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    centre, radius = 0.5 * (lower + upper), 0.2 * float(np.min(upper - lower))

    def initial(pts):
        inside = np.sum((pts - centre) ** 2, axis=1) < radius**2
        return np.where(inside, 1.0, 0.125), np.zeros((pts.shape[0], 2)), np.where(inside, 1.0, 0.1)

    return Problem("blast2d", 2, initial, [("reflecting", "reflecting")] * 2,
                   keys={k: "problem.name" for k in ("rho", "velocity", "p")})


def _riemann2d(x0: float, lower, upper) -> Problem:
    y0 = 0.5 * (float(lower[1]) + float(upper[1]))

    def initial(pts):
        east, north = pts[:, 0] > x0, pts[:, 1] > y0
        quadrant = np.where(north, np.where(east, 0, 1), np.where(east, 3, 2))
        values = np.array(RIEMANN2D_CONFIG3)[quadrant]
        return values[:, 0], values[:, 1:3], values[:, 3]

    return Problem("riemann2d", 2, initial, [("outflow", "outflow")] * 2,
                   keys={k: "problem.name" for k in ("rho", "velocity", "p")})


def _custom(p: dict, dim: int) -> Problem:
    try:
        rho = macro_function(p["rho"], dim, "config key problem.rho")
        comps = [macro_function(p[k], dim, f"config key problem.{k}") for k in ("u", "v")[:dim]]
        pres = macro_function(p["p"], dim, "config key problem.p")
    except ExpressionError as exc:
        raise ConfigError(str(exc)) from None

    def initial(pts):
        try:
            return rho(pts), np.stack([c(pts) for c in comps], axis=1), pres(pts)
        except ValueError as exc:  # a formula that is not finite at a cell (names key and point)
            raise ConfigError(str(exc)) from None

    return Problem("custom", dim, initial, [("outflow", "outflow")] * dim,
                   keys={"rho": "problem.rho", "velocity": "problem.u / problem.v", "p": "problem.p"})


def _state(values, key: str) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ConfigError(f"config key {key} must have 3 entries (rho, u, p), got {len(values)}")
    rho, u, p = (float(v) for v in values)
    if not rho > 0 or not p > 0:
        raise ConfigError(f"config key {key} = {list(values)}: rho and p must be > 0")
    return rho, u, p


def problem_from_config(p: dict, dim: int, lower, upper, gamma: float) -> Problem:
    """The problem of the ``[problem]`` section on the box ``[lower, upper]`` (ConfigError
    on a bad combination, naming the key)."""
    name = p["name"]
    if name in TWO_D_ONLY and dim != 2:
        raise ConfigError(f"config key problem.name = {name!r} is a 2D problem; set macro.dim = 2 "
                          f"(macro.dim = {dim})")
    if dim == 1 and p["v"] != "0":
        raise ConfigError("config key problem.v is the y velocity of 2D problems; macro.dim = 1")
    if name in ("sod", "lax", "riemann", "riemann2d"):
        if not float(lower[0]) < p["x0"] < float(upper[0]):
            raise ConfigError(f"config key problem.x0 = {p['x0']:g} must lie inside the domain "
                              f"({float(lower[0]):g}, {float(upper[0]):g})")
    if name == "sod":
        return _riemann(name, dim, *SOD, p["x0"], gamma)
    if name == "lax":
        return _riemann(name, dim, *LAX, p["x0"], gamma)
    if name == "riemann":
        left, right = _state(p["left"], "problem.left"), _state(p["right"], "problem.right")
        try:
            riemann_exact.star_state(left, right, gamma)
        except ValueError as exc:
            raise ConfigError(f"config keys problem.left / problem.right: {exc}") from None
        return _riemann(name, dim, left, right, p["x0"], gamma)
    if name == "density_wave":
        if not 0.0 <= p["amplitude"] < 1.0:
            raise ConfigError(f"config key problem.amplitude = {p['amplitude']:g} must be in [0, 1) "
                              "(the density 1 + A sin must stay positive)")
        return _density_wave(dim, lower, upper, p["amplitude"])
    if name == "blast2d":
        return _blast2d(lower, upper)
    if name == "riemann2d":
        return _riemann2d(p["x0"], lower, upper)
    if name == "custom":
        return _custom(p, dim)
    raise ConfigError(f"config key problem.name: unknown problem {name!r}")  # the schema's choices prevent it
