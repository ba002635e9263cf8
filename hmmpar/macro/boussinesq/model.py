r"""The coarse Boussinesq model: state, step, diagnostics (see the package docstring).

Time step (one macro step of size :math:`\Delta t`, split so that a coupler can act
between the parts):

1. :meth:`CoarseBoussinesq.provisional`: forward Euler of the model's own dynamics,

   .. math::

       T^{n+1} = T^n + \Delta t\,(-\nabla\cdot F_T + S_T),\qquad
       \mathbf u^* = \mathbf u^n + \Delta t\,(-\nabla\cdot(\mathbf u\mathbf u) + \Pr\nabla^2\mathbf u
       + \Pr\,\mathrm{Ra}\,T^n\hat{\mathbf z}),

   then Chorin's projection (Chorin 1968, Math. Comp. 22:745):
   :math:`L\varphi = D\mathbf u^*/\Delta t`, :math:`\mathbf u^{n+1} = \mathbf u^* - \Delta t\,G\varphi`,
   :math:`p = \varphi`.
2. (the coupler reads the column profiles and computes a subgrid tendency)
3. :meth:`CoarseBoussinesq.add_tendency`: :math:`T \mathrel{+}= \Delta T` (and optionally
   the column velocity).

Forward Euler is first order in time, like the Lie splitting of the coupling itself.
With the minmod reconstruction it keeps the local maximum principle for :math:`T` when the
coefficients of the incremental form sum to at most one: the upwind coefficient of each
direction is at most :math:`\tfrac32|a|\Delta t/h` (the limited slope ratio lies in
[0, 1]), and the explicit diffusion adds :math:`2\Delta t/h^2` per direction, so

.. math::

    \Delta t \le \Delta t_{\max} = \Bigl[\tfrac32\Bigl(\frac{\max|u|}{h_x} + \frac{\max|w|}{h_z}\Bigr)
    + 2\max(1, \Pr)\Bigl(\frac1{h_x^2} + \frac1{h_z^2}\Bigr)\Bigr]^{-1},

and :meth:`stable_dt` returns ``cfl`` times it. Diffusion is explicit on purpose: on a
grid coarse enough not to resolve the convection the diffusive limit is not the binding
one at convective Rayleigh numbers, an explicit flux keeps the heat budget exact in flux
form, and an implicit solve would be a second linear system that must itself be
rank-independent.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from hmmpar.core.errors import CheckpointError, ConfigError, HmmparError
from hmmpar.macro.finite_volume.grid import split_counts

from . import mac
from .ordered import ColumnGather
from .params import WIDTH, BoussinesqParams, bottom_values, check_params
from .poisson import DistributedPoisson, RedundantPoisson

__all__ = ["CoarseBoussinesq", "FIELDS"]

#: the dof of the DMDA, in order
FIELDS = ("u", "w", "T", "p")
U, W, T, P = range(4)
G = WIDTH


class CoarseBoussinesq:
    r"""A distributed coarse 2D Boussinesq model on a staggered grid (one PETSc DMDA).

    Parameters
    ----------
    comm
        mpi4py communicator; the ranks split the columns (x) only.
    params
        :class:`BoussinesqParams`, checked here (:class:`ConfigError` naming the key).

    Attributes
    ----------
    columns : ndarray
        Global indices of the owned columns, ascending.
    x_centres : ndarray
        Centres of the owned columns (aligned with ``columns``).
    x_centres_global, z_centres, z_edges : ndarray
        All column centres, the ``nz`` cell centres and ``nz + 1`` faces in z.
    time : float
        Model time (advanced by :meth:`provisional`).
    steps : int
        Steps done.
    """

    def __init__(self, comm, params: BoussinesqParams) -> None:
        check_params(params, comm.size)
        self.comm, self.params = comm, params
        p = params
        self.nx, self.nz = int(p.nx), int(p.nz)
        self.lx, self.ra, self.pr = float(p.lx), float(p.ra), float(p.pr)
        self.hx, self.hz = self.lx / self.nx, 1.0 / self.nz
        self.no_slip = p.walls == "no-slip"
        self.counts = split_counts(self.nx, comm.size)
        self.i0 = sum(self.counts[:comm.rank])
        self.i1 = self.i0 + self.counts[comm.rank]
        self.nc = self.i1 - self.i0
        self.columns = np.arange(self.i0, self.i1, dtype=np.int64)
        self.x_centres_global = (np.arange(self.nx) + 0.5) * self.hx
        self.x_centres = self.x_centres_global[self.i0:self.i1].copy()
        self.z_edges = np.arange(self.nz + 1) * self.hz
        self.z_centres = (np.arange(self.nz) + 0.5) * self.hz
        self.bottom_global = bottom_values(p)
        self.source = self._source_values(p.source)  # (nz, nc) or None; checked before PETSc objects exist
        B = PETSc.DM.BoundaryType
        self.dm = PETSc.DMDA().create(dim=2, dof=len(FIELDS), sizes=(self.nx, self.nz),
                                      proc_sizes=(comm.size, 1), boundary_type=(B.PERIODIC, B.GHOSTED),
                                      stencil_type=PETSc.DMDA.StencilType.BOX, stencil_width=G,
                                      ownership_ranges=(tuple(self.counts), (self.nz,)), comm=comm)
        (g0, g1), _ = self.dm.getGhostRanges()
        assert (self.i0, self.i1) == self.dm.getRanges()[0] and (g0, g1) == (self.i0 - G, self.i1 + G)
        self.X = self.dm.createGlobalVec()
        self.X.set(0.0)
        self._scratch = self.dm.createGlobalVec()
        self._local = self.dm.createLocalVec()
        self.gather = ColumnGather(comm, self.counts)
        self._bottom_ghosted = self.bottom_global[np.arange(g0, g1) % self.nx]
        if p.poisson == "redundant":
            self.poisson = RedundantPoisson(self.gather, self.nz, self.hx, self.hz)
        else:
            self.poisson = DistributedPoisson(comm, self.counts, self.nz, self.hx, self.hz, float(p.ksp_rtol))
        self.time, self.steps = 0.0, 0

    # ------------------------------------------------------------------ set-up
    def _source_values(self, source) -> np.ndarray | None:
        """:math:`S_T` of the owned cells ``(nz, nc)``; evaluated on the whole grid by every
        rank, so that a bad source is the same error on all of them."""
        if source is None:
            return None
        zz, xx = np.meshgrid(self.z_centres, self.x_centres_global, indexing="ij")
        if callable(source):
            try:
                values = np.broadcast_to(np.asarray(source(xx, zz), dtype=float), xx.shape).copy()
            except Exception as exc:  # noqa: BLE001 - a user callable: report it on one line
                raise ConfigError(f"config key macro.source: the source failed at the cell centres ({exc})") from None
        else:
            try:
                values = np.full(xx.shape, float(source))
            except (TypeError, ValueError):
                raise ConfigError("config key macro.source must be a number, a callable or None") from None
        if not np.all(np.isfinite(values)):
            raise ConfigError("config key macro.source has non-finite values at the cell centres")
        return np.ascontiguousarray(values[:, self.i0:self.i1])

    def initialize(self, rng: np.random.Generator | None = None, amplitude: float = 1.0e-3) -> None:
        r"""The conductive state of each column, plus an optional perturbation.

        :math:`T = T_b(x)(1 - z)` (temperature bottom) or :math:`q_b(x)(1 - z)` (flux
        bottom), :math:`\mathbf u = 0`, :math:`p = 0`. With ``rng``, :math:`T` gets
        ``amplitude`` times uniform noise in [-1, 1] times :math:`\sin(\pi z)`, drawn for
        the whole grid in natural order on every rank (same ``rng`` state -> the same
        field on any rank count).
        """
        zz, bb = np.meshgrid(self.z_centres, self.bottom_global[self.i0:self.i1], indexing="ij")
        t = bb * (1.0 - zz)
        if rng is not None:
            noise = rng.uniform(-1.0, 1.0, size=(self.nz, self.nx))[:, self.i0:self.i1]
            t = t + amplitude * noise * np.sin(math.pi * zz)
        a = self._owned()
        a[...] = 0.0
        a[..., T] = t
        self.time, self.steps = 0.0, 0

    # ------------------------------------------------------------------ access
    def _owned(self) -> np.ndarray:
        """The owned block of the state ``(nz, nc, 4)`` (a view)."""
        return self.X.getArray().reshape(self.nz, self.nc, len(FIELDS))

    def _ghosted(self, vec: PETSc.Vec | None = None) -> np.ndarray:
        """Owned + ghost values ``(nz + 4, nc + 4, 4)``, wall ghosts filled (a copy)."""
        self.dm.globalToLocal(self.X if vec is None else vec, self._local)
        a = self._local.getArray(readonly=True).reshape(self.nz + 2 * G, self.nc + 2 * G, len(FIELDS)).copy()
        if vec is None:
            mac.fill_wall_ghosts(a[..., U], a[..., W], a[..., T], self._bottom_ghosted, self.hz,
                                 self.params.bottom, self.no_slip)
        return a

    def column_T(self) -> np.ndarray:
        """Cell temperatures of the owned columns, ``(nc, nz)``."""
        return self._owned()[..., T].T.copy()

    def column_u(self) -> np.ndarray:
        r"""Cell-centre horizontal velocity :math:`(u_{i,k} + u_{i+1,k})/2`, ``(nc, nz)`` (collective)."""
        a = self._ghosted()
        u = a[G:G + self.nz, :, U]
        return (0.5 * (u[:, G:G + self.nc] + u[:, G + 1:G + self.nc + 1])).T.copy()

    def divergence_columns(self) -> np.ndarray:
        """Discrete divergence of the current velocity, ``(nc, nz)`` (collective)."""
        a = self._ghosted()
        return mac.divergence(a[..., U], a[..., W], self.hx, self.hz).T.copy()

    # ------------------------------------------------------------------ time step
    def stable_dt(self) -> float:
        """``cfl`` times the explicit limit of the module docstring; the same on every rank
        (an allreduce of maxima, which is exact). Raises :class:`HmmparError` (on every
        rank) if the state is not finite."""
        a = self._owned()
        local = np.array([np.max(np.abs(a[..., U]), initial=0.0), np.max(np.abs(a[..., W]), initial=0.0),
                          0.0 if np.all(np.isfinite(a)) else 1.0])
        local[:2] = np.nan_to_num(local[:2], nan=0.0, posinf=0.0)
        glob = np.empty(3)
        self.comm.Allreduce(local, glob, op=MPI.MAX)
        if glob[2] > 0.0:
            raise HmmparError(f"the macro Boussinesq state is not finite at t = {self.time:.6g} (step {self.steps}): "
                              "the time step was too large (macro.cfl) or the model blew up")
        rate = (1.5 * (glob[0] / self.hx + glob[1] / self.hz)
                + 2.0 * max(1.0, self.pr) * (1.0 / self.hx**2 + 1.0 / self.hz**2))
        return float(self.params.cfl) / rate

    def provisional(self, dt: float, vertical_heat: bool = True) -> None:
        """Advection, diffusion, buoyancy and sources over ``dt`` (forward Euler), then the
        projection (:meth:`project`). Collective; the state is then the provisional one.
        ``vertical_heat=False``: no vertical heat diffusion and no wall heat flux (the
        column models of superparametrization carry them)."""
        a = self._ghosted()
        fx, fz = mac.temperature_fluxes(a[..., U], a[..., W], a[..., T], self.hx, self.hz, vertical_heat)
        dT = mac.temperature_tendency(fx, fz, self.hx, self.hz)
        if self.source is not None:
            dT = dT + self.source
        du, dw = mac.momentum_tendency(a[..., U], a[..., W], a[..., T], self.hx, self.hz, self.pr, self.ra)
        o = self._owned()
        o[..., T] += dt * dT
        o[..., U] += dt * du
        o[..., W] += dt * dw
        self.project(dt)
        self.time += dt
        self.steps += 1

    def project(self, dt: float) -> None:
        r"""Chorin's projection of the current velocity :math:`\mathbf u^*`:
        :math:`L\varphi = D\mathbf u^*/\Delta t`, :math:`\mathbf u = \mathbf u^* - \Delta t\,G\varphi`,
        :math:`p = \varphi` (collective)."""
        a = self._ghosted()
        rhs = mac.divergence(a[..., U], a[..., W], self.hx, self.hz) / dt
        phi = self.poisson.solve(rhs, self.i0 - 1, self.i1)  # (nz, nc + 1): west ghost column first
        o = self._owned()
        o[..., U] -= dt * ((phi[:, 1:] - phi[:, :-1]) / self.hx)
        o[1:, :, W] -= dt * ((phi[1:, 1:] - phi[:-1, 1:]) / self.hz)
        o[..., P] = phi[:, 1:]

    def solve_poisson(self, rhs_columns: np.ndarray) -> np.ndarray:
        r"""Solve :math:`L\varphi = f` for ``f`` ``(nc, nz)`` of the owned columns (shifted to
        zero mean); returns the zero-mean :math:`\varphi` of the owned columns, ``(nc, nz)``
        (collective; the solver of :meth:`project`)."""
        rhs = np.ascontiguousarray(np.asarray(rhs_columns, dtype=float).T)
        return self.poisson.solve(rhs, self.i0, self.i1).T.copy()

    def add_tendency(self, dT_local: np.ndarray, dU_local: np.ndarray | None = None) -> None:
        r"""Add per-cell increments of the owned columns, ``(nc, nz)`` each.

        ``dT_local`` is added to :math:`T`. ``dU_local`` (a cell-centre increment of the
        horizontal velocity, e.g. of the column's horizontal mean) is added to each x face
        as the mean of its two cells, :math:`u_{i} \mathrel{+}= (\delta u_{i-1} + \delta u_i)/2`
        (collective when given: one ghost exchange). The velocity is then not exactly
        divergence-free; the next :meth:`provisional` projects it again.
        """
        shape = (self.nc, self.nz)
        dT = np.asarray(dT_local, dtype=float)
        if dT.shape != shape:
            raise ValueError(f"add_tendency: dT has shape {dT.shape}, expected {shape} (owned columns x nz)")
        o = self._owned()
        o[..., T] += dT.T
        if dU_local is not None:
            dU = np.asarray(dU_local, dtype=float)
            if dU.shape != shape:
                raise ValueError(f"add_tendency: dU has shape {dU.shape}, expected {shape} (owned columns x nz)")
            s = self._scratch.getArray().reshape(self.nz, self.nc, len(FIELDS))
            s[...] = 0.0
            s[..., U] = dU.T
            g = self._ghosted(self._scratch)[G:G + self.nz, :, U]
            o[..., U] += 0.5 * (g[:, G - 1:G - 1 + self.nc] + g[:, G:G + self.nc])

    # ------------------------------------------------------------------ diagnostics
    def heat_content(self) -> float:
        r""":math:`\int T\,dx\,dz = h_x h_z \sum T`, summed in natural order (rank-independent)."""
        return self.gather.sum(self._owned()[..., T].T) * (self.hx * self.hz)

    def boundary_heat_flux(self) -> float:
        r"""Heat into the bottom minus out of the top, :math:`h_x \sum_i (F_{i,0} - F_{i,n_z})`,
        of the current state, the same face fluxes as the step uses: a step changes
        :meth:`heat_content` by ``dt * (boundary_heat_flux() + source_integral())`` before the
        projection and any tendency (collective, rank-independent)."""
        a = self._ghosted()
        _, fz = mac.temperature_fluxes(a[..., U], a[..., W], a[..., T], self.hx, self.hz)
        return self.gather.sum(fz[0] - fz[-1]) * self.hx

    def vertical_heat_flux(self, vertical_heat: bool = True) -> np.ndarray:
        r"""The upward heat flux through the z faces of the owned columns, ``(nc, nz + 1)``
        (faces ``0 .. nz``, the walls included): the :math:`F_z` that :meth:`provisional`
        would use from the current state, advective :math:`w\,T_{k-1/2}` plus, with
        ``vertical_heat``, diffusive :math:`-(T_k - T_{k-1})/h_z` and the wall fluxes
        (collective: one ghost exchange)."""
        a = self._ghosted()
        _, fz = mac.temperature_fluxes(a[..., U], a[..., W], a[..., T], self.hx, self.hz, vertical_heat)
        return np.ascontiguousarray(fz.T)

    def source_integral(self) -> float:
        r""":math:`\int S_T\,dx\,dz` (rank-independent)."""
        if self.source is None:
            return 0.0
        return self.gather.sum(self.source.T) * (self.hx * self.hz)

    def natural_fields(self) -> dict[str, np.ndarray] | None:
        """The whole state in natural ``(x, z)`` order on rank 0, None elsewhere (collective):
        ``T``, ``p`` ``(nx, nz)`` at cell centres, ``u`` ``(nx, nz)`` on the x faces
        ``x = i hx``, ``w`` ``(nx, nz + 1)`` on the z faces including both walls."""
        o = self._owned()
        blocks = self.comm.gather(np.ascontiguousarray(o.transpose(1, 0, 2)), root=0)
        if self.comm.rank != 0:
            return None
        full = np.concatenate(blocks, axis=0)  # (nx, nz, 4)
        w = np.zeros((self.nx, self.nz + 1))
        w[:, :-1] = full[..., W]
        return {"T": full[..., T].copy(), "u": full[..., U].copy(), "w": w, "p": full[..., P].copy()}

    # ------------------------------------------------------------------ checkpoints
    def state_local(self) -> dict[str, Any]:
        """The owned part of every field, ``(nc, nz)`` each (``w`` on the bottom faces
        ``0 .. nz-1``), with ``columns``, ``time`` and ``steps``."""
        o = self._owned()
        out: dict[str, Any] = {name: o[..., f].T.copy() for f, name in enumerate(FIELDS)}
        out.update(columns=self.columns.copy(), time=self.time, steps=self.steps)
        return out

    def load_state_local(self, state: dict[str, Any]) -> None:
        """Load a :meth:`state_local` dict, or any dict whose ``columns`` cover this rank's
        columns (e.g. the concatenation of every rank's dicts, for a restart on another
        rank count)."""
        cols = np.asarray(state["columns"], dtype=np.int64)
        where = {int(c): j for j, c in enumerate(cols)}
        missing = [int(c) for c in self.columns if int(c) not in where]
        if missing:
            raise CheckpointError(f"macro state lacks columns {missing[:5]} of rank {self.comm.rank}",
                                  collective=False)
        idx = np.array([where[int(c)] for c in self.columns], dtype=np.int64)
        o = self._owned()
        for f, name in enumerate(FIELDS):
            values = np.asarray(state[name], dtype=float)
            if values.shape[1:] != (self.nz,):
                raise CheckpointError(f"macro state field {name} has {values.shape[1:]} levels, expected ({self.nz},)",
                                      collective=False)
            o[..., f] = values[idx].T
        self.time, self.steps = float(state["time"]), int(state["steps"])

    def destroy(self) -> None:
        """Free the PETSc objects (collective: call on every rank)."""
        self.poisson.destroy()
        for o in (self.X, self._scratch, self._local, self.dm):
            o.destroy()
