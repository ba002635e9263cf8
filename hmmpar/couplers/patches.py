r"""Gap-tooth scheme and patch dynamics with buffers, in 1D (Samaey, Roose & Kevrekidis).

The micro model is the heterogeneous diffusion equation on a periodic domain
:math:`[0, L)`,

.. math::

    u_t = \bigl(a(x/\varepsilon)\,u_x\bigr)_x,

with :math:`a` 1-periodic and positive. Its homogenized limit is
:math:`\bar u_t = a^*\bar u_{xx}` with the harmonic mean :math:`a^* = (\int_0^1 a^{-1})^{-1}`.
The macro state is :math:`U_i`, the average of :math:`u` over a *patch* (tooth)
:math:`[x_i - h/2, x_i + h/2]` around each macro grid point :math:`x_i = i\,\Delta x`,
:math:`h < \Delta x`. The micro solver only runs on the patches and their *buffers*, a
region of width :math:`H_b` on each side: a fraction :math:`N(h + 2H_b)/L` of the domain.

*Lifting.* Around each :math:`x_i` the initial micro state is the polynomial
:math:`p_i` of degree :math:`2q` (``order = 2q``, 2 or 4) whose averages over the
:math:`2q + 1` boxes :math:`[x_j - h/2, x_j + h/2]`, :math:`|j - i| \le q`, are the
:math:`U_j` (so its average over the patch is :math:`U_i` and restriction after lifting is
the identity); each fine cell gets the exact cell average of :math:`p_i`.

*Micro evolution.* A cell-centred finite-volume discretisation with fine spacing
:math:`\delta x = \varepsilon / n_\varepsilon` (``points_per_period``), face
coefficients :math:`a_{j+1/2} = a(x_{j+1/2}/\varepsilon)` and explicit Euler steps of
:math:`\delta t \le \delta x^2 / (3\max a)` (the bound that keeps every update a convex
combination, boundary cells included):

.. math::

    u_j \leftarrow u_j + \frac{\delta t}{\delta x^2}\Bigl(a_{j+1/2}(u_{j+1} - u_j)
    - a_{j-1/2}(u_j - u_{j-1})\Bigr),

with Dirichlet values at the outer buffer edges :math:`x_i \pm (h/2 + H_b)` taken from
the same interpolant :math:`p_i` and held fixed while the patch evolves (the boundary face
is half a cell from the last cell centre). The buffers shield the patch: the disturbance
from the artificial boundary diffuses inward and reaches the patch edge after a time of
order :math:`H_b^2/a`, while the lifted (smooth) profile heals to the micro-structured one
after a time of order :math:`\varepsilon^2/(4\pi^2 a^*)`. The micro time per lift
:math:`\tau` (``micro_time``) must lie between the two. The stepper refuses buffers with
:math:`H_b < \beta\sqrt{\max a\,\tau}` (:data:`BUFFER_FACTOR` :math:`\beta`) or
:math:`H_b < \varepsilon`.

*Restriction.* :math:`U_i` = the mean of the fine cells of the inner patch (an exact
average: the patch edges are cell faces).

*Gap-tooth* (Samaey, Roose & Kevrekidis, *The gap-tooth scheme for homogenization problems*,
Multiscale Model. Simul. 4 (2005) 278--306): lift, evolve for :math:`\Delta t = \tau`,
restrict, repeat; :func:`gap_tooth` is projective forward Euler with no extrapolation
(:math:`M = 0`).

*Patch dynamics* (Samaey, Roose & Kevrekidis, *Patch dynamics with buffers for
homogenization problems*, J. Comput. Phys. 213 (2006) 264--287): the gap-tooth evolution
over :math:`\tau` gives the time derivative of the macro values (:func:`slope`: the chord of
the last fine step, taken after the lifted profile has healed), and an outer explicit
Runge--Kutta method takes macro steps :math:`\Delta t \gg \tau` with it
(:func:`patch_dynamics`). The chord at :math:`\tau` is the derivative of the evolved state,
so for a mode decaying at rate :math:`\lambda` it lags by the exact factor
:math:`e^{-\lambda\tau}` (relative error :math:`\lambda\tau`, 1.4e-4 in the validation).

*Dirichlet ends and a reaction* (``boundary="dirichlet"``, ``reaction``): on :math:`(0, L)` with
:math:`u = 0` at both ends the patches sit at the interior points :math:`x_i = iL/(N + 1)` and
the lifting stencils take ghost averages from the odd reflection of :math:`u` about the ends
(:class:`PatchDiffusion`); a numba reaction :math:`f(u; p)` is added explicitly in every fine
cell, its parameter changeable between calls. :func:`steady_residual` is the patch-dynamics
slope as a residual :math:`F(U, p)` for coarse steady states and continuation
(:mod:`hmmpar.couplers.continuation`; why the slope and not :math:`U - \Phi_T(U)`: there).

For a homogeneous medium the patch-averaged time derivative is
:math:`a^* \langle p_i''\rangle_{\text{patch}}`, so the scheme is a finite-difference
scheme for the homogenized equation: for :math:`\bar u = e^{ikx}` its rate is
:func:`macro_rate` (order 2 in :math:`\Delta x` for ``order = 2``, 4 for ``order = 4``).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

from .projective import TABLEAUX, ProjectiveResult, Tableau, _damped_slope, projective_euler

__all__ = ["BUFFER_FACTOR", "HEALING_FACTOR", "PatchDiffusion", "bratu", "gap_tooth", "harmonic_mean", "macro_rate",
           "patch_dynamics", "slope", "steady_residual"]

#: minimum buffer width in units of :math:`\sqrt{\max a\,\tau}` (module docstring)
BUFFER_FACTOR = 3.0
#: minimum micro time in units of the healing time :math:`\varepsilon^2/(4\pi^2 a^*)`
HEALING_FACTOR = 9.0
#: fewest fine cells per period of the coefficient
MIN_POINTS_PER_PERIOD = 8


def harmonic_mean(a: Callable[[np.ndarray], np.ndarray], n: int = 4096) -> float:
    r""":math:`a^* = \bigl(\int_0^1 a(y)^{-1}\,dy\bigr)^{-1}` by the midpoint rule on ``n``
    points (spectrally accurate for a smooth periodic :math:`a`)."""
    y = (np.arange(n) + 0.5) / n
    return float(1.0 / np.mean(1.0 / np.asarray(a(y), dtype=float)))


def _moments(lo: np.ndarray, hi: np.ndarray, deg: int) -> np.ndarray:
    r"""``(len(lo), deg + 1)``: the averages of :math:`\xi^m` over :math:`[lo, hi]`."""
    m = np.arange(deg + 1)
    lo, hi = np.asarray(lo, float)[:, None], np.asarray(hi, float)[:, None]
    return (hi ** (m + 1) - lo ** (m + 1)) / ((m + 1) * (hi - lo))


def _interp_matrix(order: int, Dx: float, h: float) -> np.ndarray:
    r"""``(order + 1, order + 1)``: polynomial coefficients (in :math:`\xi = x - x_i`) from
    the box averages :math:`U_{i-q}, \dots, U_{i+q}`."""
    q = order // 2
    c = np.arange(-q, q + 1) * Dx
    return np.linalg.inv(_moments(c - h / 2, c + h / 2, order))


def macro_rate(k: float, a_star: float, Dx: float, h: float, order: int) -> float:
    r"""Decay rate of :math:`e^{ikx}` under the scheme's macro limit, a homogeneous medium of
    coefficient :math:`a^*`: :math:`\lambda = -\frac{a^*}{h\,U_0}\bigl(p'(h/2) - p'(-h/2)\bigr)`
    with :math:`U_j` the box averages of :math:`e^{ikx}` around :math:`x_j = j\Delta x` and
    :math:`p` their lifting interpolant around :math:`x_0 = 0` (real: the stencil is symmetric).
    ``order`` 2 gives :math:`\lambda = a^*\,4\sin^2(k\Delta x/2)/\Delta x^2`."""
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order!r}")
    q = order // 2
    j = np.arange(-q, q + 1)
    avg = np.exp(1j * k * j * Dx) * (np.sinc(k * h / (2 * np.pi)) if h > 0 else 1.0)
    coef = _interp_matrix(order, Dx, h) @ avg
    m = np.arange(order + 1)
    dp = lambda x: np.sum(m[1:] * coef[1:] * x ** (m[1:] - 1))  # noqa: E731
    rate = -a_star * (dp(h / 2) - dp(-h / 2)) / h / np.sinc(k * h / (2 * np.pi))
    return float(rate.real)


def patch_geometry(eps: float, n_patches: int, patch_width: float, buffer_width: float, micro_time: float,
                   points_per_period: int, order: int, length: float, intervals: int,
                   check_overlap: bool = False) -> tuple[int, float, float, int, int]:
    """The checks of a patch layout shared by :class:`PatchDiffusion` and
    :class:`~hmmpar.couplers.patches2d.PatchDiffusion2D` (one-line ValueErrors naming the
    argument); with ``check_overlap`` also the issue's "a patch smaller than the buffer" read
    as its useful meaning: patches with their buffers must not overlap (they would cost at
    least the full simulation; a patch is normally narrower than its buffers). The 1D
    stepper allows overlap: its exactness tests use buffers wider than the gaps. The macro spacing is ``length / intervals`` (``n_patches`` periodic,
    ``n_patches + 1`` between Dirichlet ends). Returns ``(N, Dx, dx, n_in, n_buf)``: the patch
    count, the macro and fine spacings and the fine cells of a patch and of a buffer."""
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if int(n_patches) != n_patches or n_patches < 3:
        raise ValueError(f"n_patches must be a whole number >= 3, got {n_patches!r}")
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order!r}")
    if int(n_patches) < order + 1:
        raise ValueError(f"n_patches must be >= order + 1 = {order + 1}, got {n_patches!r}")
    if int(points_per_period) != points_per_period or points_per_period < MIN_POINTS_PER_PERIOD:
        raise ValueError(f"points_per_period must be a whole number >= {MIN_POINTS_PER_PERIOD} to resolve eps, "
                         f"got {points_per_period!r}")
    if not (math.isfinite(length) and length > 0):
        raise ValueError(f"length must be a positive finite number, got {length!r}")
    if not (math.isfinite(micro_time) and micro_time > 0):
        raise ValueError(f"micro_time must be a positive finite number, got {micro_time!r}")
    N = int(n_patches)
    Dx = length / int(intervals)
    dx = eps / int(points_per_period)
    if not (math.isfinite(patch_width) and 0 < patch_width < Dx):
        raise ValueError(f"patch_width must be in (0, macro spacing {Dx:g}), got {patch_width!r}")
    n_in = round(patch_width / dx)
    if abs(n_in * dx - patch_width) > 1e-9 * dx * max(n_in, 1):
        raise ValueError(f"patch_width must be a whole number of fine cells eps/points_per_period = {dx:g}, "
                         f"got {patch_width!r}")
    if not (math.isfinite(buffer_width) and buffer_width >= 0):
        raise ValueError(f"buffer_width must be a finite number >= 0, got {buffer_width!r}")
    n_buf = round(buffer_width / dx)
    if abs(n_buf * dx - buffer_width) > 1e-9 * dx * max(n_buf, 1):
        raise ValueError(f"buffer_width must be a whole number of fine cells eps/points_per_period = {dx:g}, "
                         f"got {buffer_width!r}")
    gap = (Dx - n_in * dx) / 2
    if check_overlap and n_buf * dx >= gap * (1 - 1e-12):
        raise ValueError(f"buffer_width must be < (L/N - patch_width)/2 = {gap:.4g}, or patches and buffers "
                         f"overlap and cost at least the full simulation, got {buffer_width!r}")
    return N, Dx, dx, n_in, n_buf


@numba.njit
def no_reaction(u, p):
    """The zero reaction (pure diffusion): adding ``h * 0.0`` leaves every update bitwise unchanged."""
    return 0.0


@numba.njit
def bratu(u, p):
    r"""The Bratu (Gelfand) reaction :math:`f(u; \lambda) = \lambda e^u`, ``p`` = :math:`\lambda`."""
    return p * math.exp(u)


@numba.njit
def _diffuse_row(u, ci, steps, f, p, h):
    """``steps`` explicit steps of one patch ``u``: fluxes with the face factors ``ci[f]`` =
    dt * a / (dx * dist) plus the reaction ``h * f(u_j, p)`` (``f`` a numba function, evaluated
    at the old value like the fluxes); ``u[0]`` and ``u[-1]`` are the fixed boundary values."""
    n2 = u.shape[0]
    for _ in range(steps):
        flux_l = ci[0] * (u[1] - u[0])
        for j in range(1, n2 - 1):
            flux_r = ci[j] * (u[j + 1] - u[j])  # u[j], u[j + 1] not yet updated
            u[j] += flux_r - flux_l + h * f(u[j], p)
            flux_l = flux_r


@numba.njit
def _diffuse(S, c, steps, f, p, h):
    """``steps`` explicit steps on every patch ``S[b, i]`` (face factors ``c[i]``)."""
    nb, N, n2 = S.shape
    for b in range(nb):
        for i in range(N):
            _diffuse_row(S[b, i], c[i], steps, f, p, h)


@numba.njit
def _diffuse_units(S, c, patch, steps, f, p, h):
    """``steps`` explicit steps on patches ``S[r]`` of patch indices ``patch[r]``."""
    for r in range(S.shape[0]):
        _diffuse_row(S[r], c[patch[r]], steps, f, p, h)


class PatchDiffusion:
    r"""Patches with buffers of :math:`u_t = (a(x/\varepsilon)u_x)_x + f(u; p)` on a periodic
    domain or on :math:`(0, L)` with :math:`u = 0` at both ends, a
    :class:`~hmmpar.couplers.projective.FreeStepper` whose macro state is the row of patch
    averages (module docstring; the reaction :math:`f` is optional).

    *Dirichlet* (``boundary="dirichlet"``): the macro unknowns are the averages around the
    interior points :math:`x_i = i\,\Delta x`, :math:`i = 1, \dots, N`, :math:`\Delta x =
    L/(N + 1)` (``n_patches`` = :math:`N`, so :math:`U_0 = U_{N+1} = 0` are the boundary values).
    The lifting stencils near the ends use ghost averages from the odd reflection of :math:`u`
    about each end, :math:`U_0 = 0`, :math:`U_{-m} = -U_m` (and the same at :math:`x = L`):
    exact box averages of the odd extension, which is :math:`C^1` but has a jump of
    :math:`u''` unless :math:`u''` vanishes at the end (for a steady state it does not when
    :math:`f(0) \ne 0`). With ``order = 2`` only :math:`U_0 = 0` enters, and the scheme is the
    3-point scheme with the boundary value (exact for a quadratic, tested). With ``order = 4``
    the ghost :math:`U_{-1}` is then off by :math:`O(\Delta x^2)`, an :math:`O(1)` truncation
    error in the slope of the patch next to each end, i.e. (expected, not measured)
    :math:`O(\Delta x^2)` in a steady state: no better than ``order = 2``. For profiles odd
    about the ends (e.g. :math:`\sin\pi x`) the quartic lifting keeps its order (tested).
    Every patch and its buffers must lie in :math:`[0, L]`.

    *Reaction*: ``reaction`` is a ``numba.njit`` function ``f(u, p) -> float`` (e.g.
    :func:`bratu`), added explicitly in every fine cell of every step, :math:`u_j \mathrel{+}=
    \delta t\, f(u_j, p)`; its parameter is the attribute :attr:`reaction_parameter`, which
    may be changed between calls without rebuilding the stepper (continuation changes it at
    every evaluation).

    States are ``(nb, n_patches, n_fine + 2)`` arrays: the fine cells of patch and buffers,
    framed by the two Dirichlet values held fixed. ``h`` (the protocol's inner step) is the
    fine time step; ``steps_per_lift`` of them make the micro time ``micro_time``.

    Parameters
    ----------
    a
        The 1-periodic coefficient, a vectorised function of :math:`y = x/\varepsilon`.
    eps
        Period :math:`\varepsilon` of the medium.
    n_patches
        Macro grid points :math:`N`, :math:`x_i = i L / N`.
    patch_width
        :math:`h`, a whole number of fine cells, ``< L / N``.
    buffer_width
        :math:`H_b` on each side, a whole number of fine cells,
        :math:`\ge \max(\varepsilon, \beta\sqrt{\max a\,\tau})`.
    micro_time
        :math:`\tau`, the micro simulation time per lift.
    points_per_period
        Fine cells per period :math:`\varepsilon` (``>= 8``).
    order
        Degree of the lifting interpolant, 2 or 4.
    length
        Domain length :math:`L`.
    check_buffer
        ``False`` skips the buffer check (to study buffers that are too small).
    boundary
        ``"periodic"`` (``x_i = i L / N``) or ``"dirichlet"`` (``u = 0`` at 0 and L,
        ``x_i = i L / (N + 1)``, ``i = 1..N``).
    reaction
        ``None`` or a ``numba.njit`` function ``f(u, p)``.
    reaction_parameter
        Initial :math:`p` (the attribute :attr:`reaction_parameter`).
    """

    def __init__(self, a: Callable[[np.ndarray], np.ndarray], eps: float, n_patches: int, patch_width: float,
                 buffer_width: float, micro_time: float, points_per_period: int = 16, order: int = 2,
                 length: float = 1.0, check_buffer: bool = True, boundary: str = "periodic",
                 reaction: Callable[[float, float], float] | None = None, reaction_parameter: float = 0.0) -> None:
        if boundary not in ("periodic", "dirichlet"):
            raise ValueError(f"boundary must be 'periodic' or 'dirichlet', got {boundary!r}")
        if reaction is not None and not isinstance(reaction, numba.core.registry.CPUDispatcher):
            raise ValueError(f"reaction must be None or a numba.njit function f(u, p), got {reaction!r}")
        if not math.isfinite(reaction_parameter):
            raise ValueError(f"reaction_parameter must be a finite number, got {reaction_parameter!r}")
        N, Dx, dx, n_in, n_buf = patch_geometry(eps, n_patches, patch_width, buffer_width, micro_time,
                                                points_per_period, order, length,
                                                n_patches if boundary == "periodic" else n_patches + 1)
        a_probe = np.asarray(a((np.arange(64 * int(points_per_period)) + 0.5) / (64 * int(points_per_period))),
                             dtype=float)
        if not (np.all(np.isfinite(a_probe)) and np.all(a_probe > 0)):
            raise ValueError("a must be finite and positive")
        a_star = float(1.0 / np.mean(1.0 / a_probe))
        heal = HEALING_FACTOR * eps * eps / (4 * math.pi ** 2 * a_star)
        if micro_time < heal * (1 - 1e-12):
            raise ValueError(f"micro_time must be >= {HEALING_FACTOR:g} eps^2 / (4 pi^2 a*) = {heal:.4g} for the "
                             f"lifted profile to heal, got {micro_time!r}")
        required = max(eps, BUFFER_FACTOR * math.sqrt(float(a_probe.max()) * micro_time))
        if check_buffer and buffer_width < required * (1 - 1e-12):
            raise ValueError(f"buffer_width must be >= max(eps, {BUFFER_FACTOR:g} sqrt(max a * micro_time)) = "
                             f"{required:.4g} to shield the patch, got {buffer_width!r}")
        self.a, self.eps, self.N, self.Dx, self.dx, self.order = a, float(eps), N, Dx, dx, int(order)
        self.length, self.patch_width, self.buffer_width = float(length), n_in * dx, n_buf * dx
        self.required_buffer = required
        self.n_in, self.n_buf = n_in, n_buf
        self.nf = n_in + 2 * n_buf
        half = self.nf * dx / 2
        if boundary == "dirichlet" and half > Dx * (1 + 1e-12):
            raise ValueError(f"patch_width + 2 buffer_width must be <= 2 Dx = {2 * Dx:g} for the patches next to "
                             f"the Dirichlet ends to lie in [0, L], got {2 * half:g}")
        self.boundary, self.reaction, self.reaction_parameter = boundary, reaction, float(reaction_parameter)
        self.centres = np.arange(N) * Dx if boundary == "periodic" else np.arange(1, N + 1) * Dx
        # local coordinates: cell faces and centres of the patch + buffers
        faces = -half + dx * np.arange(self.nf + 1)
        xf = (self.centres[:, None] + faces[None, :]) / eps
        af = np.asarray(a(xf), dtype=float)
        amax = float(af.max())
        steps = max(1, math.ceil(micro_time / (0.95 * dx * dx / (3.0 * amax))))
        self.steps_per_lift = steps
        self.micro_time = float(micro_time)
        self.h = self.micro_time / steps
        dist = np.full(self.nf + 1, dx)
        dist[0] = dist[-1] = dx / 2
        self._c = np.ascontiguousarray(self.h * af / (dx * dist[None, :]))
        # lifting: fine-cell averages and edge values of the interpolant, from the stencil
        C = _interp_matrix(self.order, Dx, self.patch_width)
        cells = _moments(faces[:-1], faces[1:], self.order)
        edges = np.array([[(-half) ** m for m in range(self.order + 1)], [half ** m for m in range(self.order + 1)]])
        self._lift = np.vstack([edges[:1], cells, edges[1:]]) @ C  # (nf + 2, order + 1)
        self.domain_fraction = N * self.nf * dx / self.length

    @property
    def lifted_bytes(self) -> int:
        """Bytes of one lifted macro state, ``N (nf + 2)`` float64 (the memory estimate)."""
        return 8 * self.N * (self.nf + 2)

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        U = np.atleast_2d(np.asarray(U, dtype=float))
        if U.shape[1] != self.N:
            raise ValueError(f"U must have {self.N} macro values per state, got shape {U.shape}")
        q = self.order // 2
        if self.boundary == "periodic":
            stencil = np.stack([np.roll(U, -j, axis=1) for j in range(-q, q + 1)], axis=-1)  # (nb, N, 2q+1)
        else:  # ghosts U_0 = 0, U_{-m} = -U_m (odd reflection), the same at the right end
            zero = np.zeros((U.shape[0], 1))
            ext = np.hstack([-U[:, q - 2::-1] if q > 1 else zero[:, :0], zero, U, zero,
                             -U[:, :-q:-1] if q > 1 else zero[:, :0]])
            stencil = np.lib.stride_tricks.sliding_window_view(ext, 2 * q + 1, axis=1)
        return np.ascontiguousarray(stencil @ self._lift.T)

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        _diffuse(states, self._c, int(steps), (no_reaction if self.reaction is None else self.reaction), float(self.reaction_parameter), self.h)

    def restrict(self, states: np.ndarray) -> np.ndarray:
        lo = 1 + self.n_buf
        return states[..., lo:lo + self.n_in].mean(axis=-1)

    # every patch of every batch member is a unit of the farm (hmmpar.couplers.farmed)
    #: leading axes of a lifted state that index units: batch member and patch
    unit_axes = 2

    def evolve_units(self, states: np.ndarray, index: np.ndarray, t: float, steps: int) -> None:
        """``steps`` fine steps of single patches ``states`` ``(n, n_fine + 2)`` whose flat unit
        indices (member * N + patch) are ``index``."""
        _diffuse_units(states, self._c, np.asarray(index, dtype=np.int64) % self.N, int(steps),
                       (no_reaction if self.reaction is None else self.reaction), float(self.reaction_parameter), self.h)

    def restrict_units(self, states: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The patch averages ``(n, 1)`` of single patches."""
        return self.restrict(states)[:, None]

    def join_units(self, values: np.ndarray, nb: int) -> np.ndarray:
        """Unit values ``(nb * N, 1)`` in unit order as macro states ``(nb, N)``."""
        return values.reshape(nb, self.N)


def gap_tooth(stepper: PatchDiffusion, U0: np.ndarray, t0: float, outer_steps: int) -> ProjectiveResult:
    r"""``outer_steps`` gap-tooth steps of :math:`\Delta t = \tau` (``stepper.micro_time``):
    lift, evolve the patches for :math:`\tau`, restrict."""
    return projective_euler(stepper, U0, t0, outer_steps, stepper.steps_per_lift - 1, 0.0)


def slope(stepper: PatchDiffusion, U: np.ndarray, t: float) -> np.ndarray:
    r"""The patch-dynamics estimate of :math:`dU/dt` at ``U``: lift, evolve for the micro time
    :math:`\tau`, and the chord of the last fine step,
    :math:`(R(u(\tau)) - R(u(\tau - \delta t)))/\delta t` (after the lifted profile has healed)."""
    return _damped_slope(stepper, np.atleast_2d(np.asarray(U, dtype=float)), t, stepper.steps_per_lift - 1)[1]


def patch_step(stepper: PatchDiffusion, tab: Tableau, U: np.ndarray, t: float, dt: float) -> np.ndarray:
    """One step of :func:`patch_dynamics` with the tableau ``tab`` from ``U`` at ``t``."""
    ks: list[np.ndarray] = []
    for s in range(len(tab.b)):
        Y = U + dt * sum((tab.a[s, l] * ks[l] for l in range(s) if tab.a[s, l] != 0.0), np.zeros_like(U))
        ks.append(slope(stepper, Y, t + tab.c[s] * dt))
    return U + dt * sum(b * k for b, k in zip(tab.b, ks))


def patch_dynamics(stepper: PatchDiffusion, U0: np.ndarray, t0: float, outer_steps: int, dt: float,
                   method: str = "rk4") -> ProjectiveResult:
    r"""``outer_steps`` patch-dynamics steps of :math:`\Delta t` (``dt``): the explicit
    Runge--Kutta method ``method`` (a key of :data:`~hmmpar.couplers.projective.TABLEAUX`) on
    the macro values, every stage slope from :func:`slope`,

    .. math::

        U^{n+1} = U^n + \Delta t\sum_s b_s k_s,\qquad
        k_s = \mathrm{slope}\Bigl(U^n + \Delta t\sum_{l<s} a_{sl}k_l\Bigr).

    Unlike :func:`~hmmpar.couplers.projective.projective_rk`, the step starts from
    :math:`U^n`, not from the restriction after the micro run: that one carries the change of
    the patch average while the lifted profile heals (with flux :math:`a(x/\varepsilon)u_x`
    instead of :math:`a^* u_x` at the patch edges), a fixed amount per step, i.e. a rate error
    :math:`\propto 1/\Delta t`.
    """
    if method not in TABLEAUX:
        raise ValueError(f"method must be one of {sorted(TABLEAUX)}, got {method!r}")
    if int(outer_steps) != outer_steps or outer_steps < 1:
        raise ValueError(f"outer_steps must be a whole number >= 1, got {outer_steps!r}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite number, got {dt!r}")
    tab = TABLEAUX[method]
    U = np.atleast_2d(np.asarray(U0, dtype=float)).copy()
    out = np.empty((int(outer_steps) + 1,) + U.shape)
    out[0] = U
    for n in range(int(outer_steps)):
        t = t0 + n * dt
        U = patch_step(stepper, tab, U, t, dt)
        if not np.all(np.isfinite(U)):
            raise FloatingPointError(f"patch dynamics: the macro state is not finite at t = {t + dt:.6g} (outer step "
                                     f"{n + 1}); dt is too large for the macro scheme's stiffest mode")
        out[n + 1] = U
    return ProjectiveResult(t0 + dt * np.arange(int(outer_steps) + 1), out,
                            int(outer_steps) * len(tab.b) * stepper.steps_per_lift)


def steady_residual(stepper: PatchDiffusion) -> Callable[[np.ndarray, float], np.ndarray]:
    r"""The coarse residual :math:`F(U, p)` whose zeros are the steady states of patch dynamics:
    the :func:`slope` at ``U`` with the reaction parameter set to ``p`` (a 1D ``U`` of the
    macro values in, a 1D slope out).

    Why the slope and not :math:`U - \Phi_T(U)` (the gap-tooth map over a time :math:`T`, the
    fixed-point form of Shroff & Keller's recursive projection method as used by Kevrekidis
    et al. 2003): one gap-tooth step carries, besides :math:`T\,\dot U`, the change of the
    patch averages while the lifted profile heals, a fixed amount per lift (module
    docstring), so the fixed points of :math:`\Phi_\tau` are shifted by that bias divided by
    :math:`\tau` -- large, as :math:`\tau \sim \varepsilon^2` (measured on the Bratu validation
case, :math:`\varepsilon = 1/512`, :math:`\tau = \varepsilon^2/2`, :math:`\lambda = 1`: at the
slope's steady state :math:`\lVert\Phi_\tau(U) - U\rVert_\infty/\tau = 0.18`, against
:math:`\lambda e^U \le 1.45`, the terms balanced there); making :math:`T` long enough to
    dilute it needs buffers growing like :math:`\sqrt T` and a cost :math:`\propto T^{3/2}`.
    The chord after healing is free of that bias (it is the validated patch-dynamics time
    derivative), its zeros are the steady states of the homogenized scheme, and the
    eigenvalues of :math:`\partial F/\partial U` are those of the coarse time derivative's
    Jacobian (times the lag :math:`e^{\mu\tau}`, a factor near 1), so they cross zero at a fold.
    The price: the chord divides a one-step difference by :math:`\delta t`, so :math:`F` carries
    rounding noise of relative size about :math:`10^{-16}/(\delta t\,|\dot U|)`, and the
    Jacobian-vector products need a differencing step near the square root of that."""
    def F(U: np.ndarray, p: float) -> np.ndarray:
        stepper.reaction_parameter = float(p)
        return slope(stepper, np.asarray(U, dtype=float)[None], 0.0)[0]
    return F
