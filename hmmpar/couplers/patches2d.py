r"""Gap-tooth scheme and patch dynamics with buffers in 2D (Samaey, Roose & Kevrekidis).

The micro model is the heterogeneous diffusion equation on the periodic square
:math:`[0, L)^2`,

.. math::

    u_t = \nabla\cdot\bigl(a(x/\varepsilon)\,\nabla u\bigr),

with :math:`a` scalar, positive and 1-periodic in :math:`y = (y_1, y_2)`. Its homogenized
limit is :math:`\bar u_t = \nabla\cdot(A^*\nabla\bar u)` with the tensor :math:`A^*` of the
cell problem, which lies between the harmonic and the arithmetic mean of :math:`a` (Wiener
bounds). Two media where :math:`A^*` is known exactly validate the scheme:

* a laminate :math:`a = a(y_1)`: :math:`A^* = \operatorname{diag}(\langle a^{-1}\rangle^{-1},
  \langle a\rangle)`, the harmonic mean across the layers and the arithmetic mean along them;
* a medium that the rotation by 90 degrees, :math:`R`, maps to its reciprocal,
  :math:`a(Ry) = 1/a(y)`, such as :math:`a = \exp(s\sin 2\pi y_1\,\sin 2\pi y_2)`. In 2D
  :math:`R` turns divergence-free fields into curl-free ones, whence Keller's and Dykhne's
  duality theorem :math:`A^*[1/a] = R\,A^*[a]^{-1}R^{\mathsf T}` (J. B. Keller, *A theorem
  on the conductivity of a composite medium*, J. Math. Phys. 5 (1964) 548--549; A. M. Dykhne,
  *Conductivity of a two-dimensional two-phase system*, Zh. Eksp. Teor. Fiz. 59 (1970) 110,
  Sov. Phys. JETP 32 (1971) 63--65). A rotated medium has the rotated tensor,
  :math:`A^*[1/a] = A^*[a\circ R] = R^{\mathsf T}A^*[a]R`, so :math:`A^{*2} = I` and
  :math:`A^* = I` whatever :math:`s`, while the arithmetic mean exceeds 1 (1.1310 at
  :math:`s = 1`) and the harmonic mean falls short (0.8842); the geometric mean is 1.

The macro state is :math:`U_{ij}`, the average of :math:`u` over the square *patch*
:math:`x_{ij} + [-h/2, h/2]^2` around each point :math:`x_{ij} = (i\Delta x, j\Delta x)` of
an :math:`N\times N` macro grid, :math:`\Delta x = L/N`, flattened row-major:
``U[b, i * N + j]`` (:attr:`PatchDiffusion2D.points` lists the points in that order). The micro
solver runs on the patches and their *buffers*, a frame of width :math:`H_b` around each: a
fraction :math:`N^2(h + 2H_b)^2/L^2` of the domain (:attr:`~PatchDiffusion2D.domain_fraction`).

*Lifting.* The tensor product of the 1D interpolants of :mod:`.patches`:

.. math::

    p_{ij}(x_{ij} + \xi) = \sum_{|k|, |l| \le q} U_{i+k,\,j+l}\,\ell_k(\xi_1)\,\ell_l(\xi_2),

with :math:`\ell_k` the degree-:math:`2q` polynomial (``order = 2q``, 2 or 4) whose
averages over the boxes :math:`[k'\Delta x - h/2, k'\Delta x + h/2]`, :math:`|k'| \le q`,
are :math:`\delta_{kk'}`. Box averages of a product are products of averages, so the average
of :math:`p_{ij}` over the patch :math:`(i+k, j+l)` is :math:`U_{i+k, j+l}` and restriction
after lifting is the identity. Each fine cell gets the exact cell average of :math:`p_{ij}`.
In a homogeneous medium with a diagonal :math:`A^*` the patch-averaged time derivative of
:math:`p_{ij}` separates, so the rate of :math:`e^{i(k_1x_1 + k_2x_2)}` under the scheme's
macro limit is the sum of two 1D rates (:func:`macro_rate_2d`).

*Micro evolution.* Cell-centred finite volumes with fine spacing
:math:`\delta x = \varepsilon/n_\varepsilon` (``points_per_period``), the 5-point flux form
with face coefficients :math:`a` at the face midpoints,

.. math::

    u_{mn} \leftarrow u_{mn} + \frac{\delta t}{\delta x^2}\Bigl(
      a_{m+\frac12,n}(u_{m+1,n} - u_{mn}) - a_{m-\frac12,n}(u_{mn} - u_{m-1,n})
    + a_{m,n+\frac12}(u_{m,n+1} - u_{mn}) - a_{m,n-\frac12}(u_{mn} - u_{m,n-1})\Bigr),

explicit Euler with :math:`\delta t = \tau/\lceil\tau S/0.95\rceil`, :math:`S` the
largest sum over a cell of its face factors :math:`a_f/(\delta x\,d_f)` (:math:`d_f =
\delta x`, or :math:`\delta x/2` at the held boundary), so that every update is a convex
combination (maximum principle); :math:`S \le 6\max a/\delta x^2` (a corner cell). On the outer edges of the buffer
:math:`x_{ij} + \partial[-h/2 - H_b, h/2 + H_b]^2` the averages of the same interpolant
:math:`p_{ij}` over the boundary faces are held fixed (Dirichlet, as in 1D). The numba
kernel runs the patches in parallel, each one serially in a fixed order, so the result does
not depend on the number of threads.

Scheme-level exactness: the network of this discretisation is planar, and its dual (nodes at
the cell corners, conductance :math:`1/a` on the edge crossing each face) is, for a medium with
:math:`a(Ry) = 1/a(y)`, the network itself rotated by :math:`R` about a corner, provided the
faces lie on the lattice :math:`(\varepsilon/n_\varepsilon)\mathbb Z^2` (:math:`\Delta x` a
whole number of fine cells and an even number of fine cells across patch and buffers). The
discrete homogenized tensor is then exactly :math:`I` too, at any ``points_per_period``
(confirmed by an independent periodic cell-problem solve: :math:`I` to 1e-16 at 8 to 128 cells
per period, :math:`s` = 1 and 2). For a laminate the discrete tensor is diag(harmonic mean of
the face values, arithmetic mean of the cell-centre values).

*Healing and buffers; the 2D constants.* The lifted profile is smooth; the micro solution
carries the corrector :math:`\varepsilon\chi(x/\varepsilon)\cdot\nabla u`. The mismatch is
:math:`\varepsilon`-periodic, and the slowest :math:`\varepsilon`-periodic mode of
:math:`-\nabla\cdot(a\nabla)` decays at a rate of order :math:`\lambda_{\min}(A^*)
(2\pi/\varepsilon)^2 \ge a_h(2\pi/\varepsilon)^2`, with the 2D harmonic mean
:math:`a_h = \langle a^{-1}\rangle^{-1}` (the lower Wiener bound; equal to the 1D
:math:`a^*` for a laminate, so the 1D rule carries over unchanged). The stepper therefore
refuses :math:`\tau < 9\varepsilon^2/(4\pi^2 a_h)` (:data:`~.patches.HEALING_FACTOR`, remnant
:math:`e^{-9}`). The held buffer edge disturbs the solution; along an edge this is the 1D
problem in the normal direction (the disturbance at depth :math:`d` after :math:`\tau` is of
order :math:`\operatorname{erfc}(d/(2\sqrt{\max a\,\tau}))`), and near a corner the two
edges' disturbances superpose, at most doubling it (maximum principle). What differs from 1D is
the speed: across layers (1D) the disturbance spreads at the harmonic mean over distances of
a few :math:`\varepsilon`, so the 1D rule with :math:`\max a` has a large margin, while
along a layer of high :math:`a` (2D) it really spreads at :math:`\max a`. With the 1D factor
:math:`\beta = 3` the measured leakage in the laminate is 50 times the 1D one (relative
rate errors of one slope against its known terms, :math:`\varepsilon = 1/510`, quartic
lifting, 5 (laminate) or 6 patches a direction; laminate :math:`1.1 + \sin 2\pi y_1`: 2.3e-3, 2.8e-3,
2.7e-3 in the modes (1, 0), (0, 1), (1, 1) at :math:`H_b = 3.05\sqrt{\max a\,\tau}`, against
4.4e-5 at 2.9 in 1D; medium :math:`e^{\sin\sin}`: 3.5e-3, 1.6e-3, 2.0e-4 at 2.38, 2.68,
2.97), and with :math:`\beta = 4` it is back to 1e-4 (1.1e-4 at 4.03 in the laminate, 6e-6
at 4.01 in :math:`e^{\sin\sin}`). The
stepper refuses :math:`H_b < \max(\varepsilon, \beta_2\sqrt{\max a\,\tau})` with
:math:`\beta_2` = :data:`BUFFER_FACTOR_2D` = 4 (:math:`2\operatorname{erfc}(2) = 9.4
\times 10^{-3}` of an :math:`O(\varepsilon)` disturbance at the patch corner).

*Overlap* (the issue's "patch smaller than the buffer"). Patch dynamics saves work only if the
simulated boxes leave gaps: :math:`h + 2H_b < \Delta x`. If the buffers reach into the
neighbouring patches the boxes overlap and the micro solver simulates more than the whole
domain (``domain_fraction`` :math:`\ge 1`), so the stepper refuses such a ``buffer_width``.
Together with the buffer rule this bounds the patch from the other side: a patch with its
required buffers must fit in a macro cell.

*Restriction.* :math:`U_{ij}` = the mean of the fine cells of the inner patch (exact: its
edges are cell faces).

:func:`~.patches.gap_tooth`, :func:`~.patches.slope` and :func:`~.patches.patch_dynamics` work
unchanged on :class:`PatchDiffusion2D` (Samaey, Roose & Kevrekidis, *The gap-tooth scheme for
homogenization problems*, Multiscale Model. Simul. 4 (2005) 278--306; *Patch dynamics with
buffers for homogenization problems*, J. Comput. Phys. 213 (2006) 264--287).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

from .patches import HEALING_FACTOR, _interp_matrix, _moments, macro_rate, patch_geometry

__all__ = ["BUFFER_FACTOR_2D", "PatchDiffusion2D", "macro_rate_2d"]

#: minimum buffer width in units of :math:`\sqrt{\max a\,\tau}` in 2D (module docstring)
BUFFER_FACTOR_2D = 4.0


def macro_rate_2d(k1: float, k2: float, a11: float, a22: float, Dx: float, h: float, order: int) -> float:
    r"""Decay rate of :math:`e^{i(k_1x_1 + k_2x_2)}` (and of :math:`\sin(k_1x_1 + k_2x_2)`)
    under the macro limit of the 2D scheme, a homogeneous medium with
    :math:`A^* = \operatorname{diag}(a_{11}, a_{22})`: the patch average of
    :math:`\partial_{11}(\ell_k\otimes\ell_l)` is the 1D one times :math:`\delta_{l0}`, so the
    rate is ``macro_rate(k1, a11, ...) + macro_rate(k2, a22, ...)`` (:func:`.patches.macro_rate`)."""
    return macro_rate(k1, a11, Dx, h, order) + macro_rate(k2, a22, Dx, h, order)


@numba.njit(parallel=True, cache=True)
def _diffuse2d(S, cx, cy, patch, steps):
    """``steps`` explicit steps on every patch ``S[r]`` ``(n + 2, n + 2)`` of ``S`` ``(R, n + 2,
    n + 2)``, whose frame (first and last row and column) holds the fixed boundary values;
    ``cx[patch[r]]`` ``(n + 1, n)`` and ``cy[patch[r]]`` ``(n, n + 1)`` are its face factors
    dt * a / (dx * dist)."""
    R, m, _ = S.shape
    n = m - 2
    for r in numba.prange(R):
        u = S[r].copy()
        v = u.copy()
        cxp = cx[patch[r]]
        cyp = cy[patch[r]]
        for _ in range(steps):
            for i in range(1, n + 1):
                for j in range(1, n + 1):
                    uc = u[i, j]
                    v[i, j] = (uc + cxp[i, j - 1] * (u[i + 1, j] - uc) - cxp[i - 1, j - 1] * (uc - u[i - 1, j])
                               + cyp[i - 1, j] * (u[i, j + 1] - uc) - cyp[i - 1, j - 1] * (uc - u[i, j - 1]))
            u, v = v, u
        for i in range(1, n + 1):
            for j in range(1, n + 1):
                S[r, i, j] = u[i, j]


class PatchDiffusion2D:
    r"""Square patches with buffers of :math:`u_t = \nabla\cdot(a(x/\varepsilon)\nabla u)` on
    the periodic square :math:`[0, L)^2`, a :class:`~hmmpar.couplers.projective.FreeStepper`
    whose macro state is the :math:`N^2` patch averages, ``U[b, i * N + j]`` for the patch at
    :math:`(i\Delta x, j\Delta x)` (module docstring).

    States are ``(nb, N * N, n_fine + 2, n_fine + 2)`` arrays: the fine cells of patch and
    buffers (first index along :math:`x_1`), framed by the Dirichlet values held fixed (the
    frame's corners are unused). ``h`` (the protocol's inner step) is the fine time step;
    ``steps_per_lift`` of them make the micro time ``micro_time``. :func:`~.patches.slope`,
    :func:`~.patches.gap_tooth` and :func:`~.patches.patch_dynamics` take it as they take
    :class:`~.patches.PatchDiffusion`.

    Parameters
    ----------
    a
        The 1-periodic coefficient, a vectorised function ``a(y1, y2)`` of
        :math:`y = x/\varepsilon` (broadcasting arrays).
    eps
        Period :math:`\varepsilon` of the medium.
    n_patches
        Macro grid points per direction :math:`N` (``>= 3`` and ``>= order + 1``).
    patch_width
        :math:`h`, a whole number of fine cells, ``< L / N``.
    buffer_width
        :math:`H_b` on each side, a whole number of fine cells,
        :math:`\ge \max(\varepsilon, 4\sqrt{\max a\,\tau})` (:data:`BUFFER_FACTOR_2D`) and
        :math:`< (L/N - h)/2` (patches and buffers must not overlap).
    micro_time
        :math:`\tau \ge 9\varepsilon^2/(4\pi^2 a_h)`, the micro simulation time per lift.
    points_per_period
        Fine cells per period :math:`\varepsilon` (``>= 8``).
    order
        Degree of the 1D lifting interpolants, 2 or 4.
    length
        Side :math:`L` of the square.
    check_buffer
        ``False`` skips the minimum-buffer check (to study buffers that are too small); the
        overlap check stays.
    """

    def __init__(self, a: Callable[[np.ndarray, np.ndarray], np.ndarray], eps: float, n_patches: int,
                 patch_width: float, buffer_width: float, micro_time: float, points_per_period: int = 16,
                 order: int = 2, length: float = 1.0, check_buffer: bool = True) -> None:
        N, Dx, dx, n_in, n_buf = patch_geometry(eps, n_patches, patch_width, buffer_width, micro_time,
                                                points_per_period, order, length, n_patches, check_overlap=True)
        ppp = int(points_per_period)
        yp = (np.arange(64 * ppp) + 0.5) / (64 * ppp)
        a_probe = np.asarray(a(yp[:, None], yp[None, :]), dtype=float)
        if a_probe.shape != (yp.size, yp.size) or not (np.all(np.isfinite(a_probe)) and np.all(a_probe > 0)):
            raise ValueError("a must be a vectorised function a(y1, y2), finite and positive")
        a_harm = float(1.0 / np.mean(1.0 / a_probe))
        heal = HEALING_FACTOR * eps * eps / (4 * math.pi ** 2 * a_harm)
        if micro_time < heal * (1 - 1e-12):
            raise ValueError(f"micro_time must be >= {HEALING_FACTOR:g} eps^2 / (4 pi^2 harmonic mean of a) = "
                             f"{heal:.4g} for the lifted profile to heal, got {micro_time!r}")
        required = max(eps, BUFFER_FACTOR_2D * math.sqrt(float(a_probe.max()) * micro_time))
        if check_buffer and buffer_width < required * (1 - 1e-12):
            raise ValueError(f"buffer_width must be >= max(eps, {BUFFER_FACTOR_2D:g} sqrt(max a * micro_time)) = "
                             f"{required:.4g} to shield the patch, got {buffer_width!r}")
        self.a, self.eps, self.N, self.Dx, self.dx, self.order = a, float(eps), N, Dx, dx, int(order)
        self.length, self.patch_width, self.buffer_width = float(length), n_in * dx, n_buf * dx
        self.required_buffer = required
        self.harmonic_mean = a_harm
        self.n_in, self.n_buf = n_in, n_buf
        n = self.nf = n_in + 2 * n_buf
        half = n * dx / 2
        #: macro grid coordinates along each axis, ``i * L / N``
        self.centres = np.arange(N) * Dx
        #: ``(N * N, 2)``: the macro points in the order of the macro state
        self.points = np.stack(np.meshgrid(self.centres, self.centres, indexing="ij"), axis=-1).reshape(-1, 2)
        faces = -half + dx * np.arange(n + 1)
        mids = faces[:-1] + dx / 2
        px, py = self.points[:, 0], self.points[:, 1]
        # x-faces (n + 1 across x1, n cells along x2) and y-faces of every patch, in units of eps
        afx = np.asarray(a((px[:, None, None] + faces[None, :, None]) / eps,
                           (py[:, None, None] + mids[None, None, :]) / eps), dtype=float)
        afy = np.asarray(a((px[:, None, None] + mids[None, :, None]) / eps,
                           (py[:, None, None] + faces[None, None, :]) / eps), dtype=float)
        dist = np.full(n + 1, dx)
        dist[0] = dist[-1] = dx / 2
        # the largest sum of a cell's face factors per unit time step (convexity: dt * it <= 1)
        gx, gy = afx / (dx * dist[None, :, None]), afy / (dx * dist[None, None, :])
        rowsum = float((gx[:, :-1, :] + gx[:, 1:, :] + gy[:, :, :-1] + gy[:, :, 1:]).max())
        steps = max(1, math.ceil(micro_time * rowsum / 0.95))
        self.steps_per_lift = steps
        self.micro_time = float(micro_time)
        self.h = self.micro_time / steps
        self._cx = np.ascontiguousarray(self.h * afx / (dx * dist[None, :, None]))
        self._cy = np.ascontiguousarray(self.h * afy / (dx * dist[None, None, :]))
        # 1D lifting rows: boundary-face value, fine-cell averages, boundary-face value
        C = _interp_matrix(self.order, Dx, self.patch_width)
        cells = _moments(faces[:-1], faces[1:], self.order)
        edges = np.array([[(-half) ** m for m in range(self.order + 1)], [half ** m for m in range(self.order + 1)]])
        self._lift1 = np.ascontiguousarray(np.vstack([edges[:1], cells, edges[1:]]) @ C)  # (n + 2, order + 1)
        self.domain_fraction = (N * n * dx / self.length) ** 2

    @property
    def lifted_bytes(self) -> int:
        """Bytes of one lifted macro state, ``N^2 (nf + 2)^2`` float64 (the memory estimate)."""
        return 8 * self.N * self.N * (self.nf + 2) ** 2

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        U = np.atleast_2d(np.asarray(U, dtype=float))
        N = self.N
        if U.ndim != 2 or U.shape[1] != N * N:
            raise ValueError(f"U must have N * N = {N * N} macro values per state, got shape {U.shape}")
        q = self.order // 2
        G = U.reshape(-1, N, N)
        shifts = range(-q, q + 1)
        # stencil[b, i, j, k, l] = U_{i+k, j+l} (periodic)
        stencil = np.stack([np.stack([np.roll(G, (-k, -l), axis=(1, 2)) for l in shifts], axis=-1) for k in shifts],
                           axis=-2)
        L1 = self._lift1
        S = np.einsum("ak,bijkl,cl->bijac", L1, stencil, L1, optimize=True)
        return np.ascontiguousarray(S.reshape(U.shape[0], N * N, self.nf + 2, self.nf + 2))

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        nb, P, m, _ = states.shape
        flat = states.reshape(nb * P, m, m)  # a view: the kernel updates ``states``
        if not np.shares_memory(flat, states):
            raise ValueError("states must be a C-contiguous array from lift()")
        _diffuse2d(flat, self._cx, self._cy, np.tile(np.arange(P, dtype=np.int64), nb), int(steps))

    def restrict(self, states: np.ndarray) -> np.ndarray:
        lo = 1 + self.n_buf
        inner = states[..., lo:lo + self.n_in, lo:lo + self.n_in]
        # one contiguous row per patch: the summation order is then the same whatever the
        # batch's shape (a farmed sub-batch gives bitwise the whole batch's averages)
        return inner.reshape(inner.shape[:-2] + (-1,)).mean(axis=-1)

    # every patch of every batch member is a unit of the farm (hmmpar.couplers.farmed)
    #: leading axes of a lifted state that index units: batch member and patch
    unit_axes = 2

    def evolve_units(self, states: np.ndarray, index: np.ndarray, t: float, steps: int) -> None:
        """``steps`` fine steps of single patches ``states`` ``(n, n_fine + 2, n_fine + 2)``
        whose flat unit indices (member * N^2 + patch) are ``index``."""
        _diffuse2d(states, self._cx, self._cy, np.asarray(index, dtype=np.int64) % (self.N * self.N), int(steps))

    def restrict_units(self, states: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The patch averages ``(n, 1)`` of single patches."""
        return self.restrict(states)[:, None]

    def join_units(self, values: np.ndarray, nb: int) -> np.ndarray:
        """Unit values ``(nb * N^2, 1)`` in unit order as macro states ``(nb, N^2)``."""
        return values.reshape(nb, self.N * self.N)
