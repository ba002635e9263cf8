r"""The pressure Poisson problem of the projection, and its two solvers.

The discrete Laplacian is :math:`L = D\,G`: :math:`G` the MAC gradient (to the x faces,
periodic; to the interior z faces, zero on the walls) and :math:`D` the cell divergence,
so that after :math:`\mathbf u = \mathbf u^* - \Delta t\,G\varphi` with
:math:`L\varphi = D\mathbf u^*/\Delta t` the velocity is discretely divergence-free:
:math:`D\mathbf u = \Delta t\,(b - L\varphi)`, the solver residual times :math:`\Delta t`.
In cell :math:`(i, k)`

.. math::

    (L\varphi)_{i,k} = \frac{\varphi_{i+1,k} - 2\varphi_{i,k} + \varphi_{i-1,k}}{h_x^2}
    + \frac{[k<n_z-1](\varphi_{i,k+1} - \varphi_{i,k}) - [k>0](\varphi_{i,k} - \varphi_{i,k-1})}{h_z^2},

the 5-point Laplacian with homogeneous Neumann walls (from :math:`w = 0` there) and
periodic x: symmetric, negative semi-definite, null space the constants. The right-hand
side sums to zero (a telescoping sum of face velocities), to round-off.

:class:`RedundantPoisson` (bitwise rank-independent): every rank gathers :math:`b` in
natural order, subtracts its mean, pins :math:`\varphi_{0,0} = 0` (row and column 0 of
:math:`L` replaced by the identity: a non-singular symmetric matrix whose solution is the
Neumann solution up to a constant, since the dropped equation is the negative sum of the
others) and solves with a sequential PETSc LU factorised once (``KSPPREONLY``,
``PCLU``, nested-dissection ordering). Same matrix, same vector, same library on every
rank: the same bits on any rank count. Cost: the whole (coarse) problem on every rank.

:class:`DistributedPoisson`: CG + GAMG on the DMDA, the constants attached as a
``MatNullSpace`` and removed from :math:`b`; the unpreconditioned residual norm is tested,
so :math:`\|D\mathbf u\|_2 \le \mathrm{rtol}\,\|D\mathbf u^*\|_2`. Its result depends on
the rank count at the level of the tolerance. Options prefix ``boussinesq_poisson_``
(e.g. ``-boussinesq_poisson_pc_type hypre`` for BoomerAMG); GAMG's coarsest LU gets a
nonzero pivot shift (the coarse matrix is singular too).

Both return :math:`\varphi` with zero mean.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from petsc4py import PETSc

from hmmpar.core.errors import HmmparError

from .ordered import ColumnGather

__all__ = ["laplacian", "RedundantPoisson", "DistributedPoisson"]


def laplacian(nx: int, nz: int, hx: float, hz: float, rows: np.ndarray | None = None) -> sp.csr_matrix:
    """The matrix :math:`L` in natural numbering ``i + nx k`` (rows ``rows`` only, default all)."""
    n = nx * nz
    rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    i, k = rows % nx, rows // nx
    r, c, v = [], [], []
    cx, cz = 1.0 / hx**2, 1.0 / hz**2
    local = np.arange(rows.size, dtype=np.int64)
    for nb, coef in (((i - 1) % nx + nx * k, cx), ((i + 1) % nx + nx * k, cx)):
        r += [local, local]
        c += [nb, rows]
        v += [np.full(rows.size, coef), np.full(rows.size, -coef)]
    for ok, nb in ((k > 0, rows - nx), (k < nz - 1, rows + nx)):
        r += [local[ok], local[ok]]
        c += [nb[ok], rows[ok]]
        v += [np.full(ok.sum(), cz), np.full(ok.sum(), -cz)]
    m = sp.coo_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(rows.size, n)).tocsr()
    m.sum_duplicates()
    m.sort_indices()
    return m


def _petsc_aij(m: sp.csr_matrix, comm, local_rows: int | None = None) -> PETSc.Mat:
    n = m.shape[1]
    size = (m.shape[0], n) if local_rows is None else ((local_rows, n), (local_rows, n))
    a = PETSc.Mat().createAIJ(size=size, csr=(m.indptr.astype(PETSc.IntType), m.indices.astype(PETSc.IntType),
                                              m.data), comm=comm)
    a.assemble()
    return a


class RedundantPoisson:
    """Sequential LU of the whole problem on every rank (see the module docstring).

    Parameters
    ----------
    gather
        The model's :class:`ColumnGather`.
    nz, hx, hz
        Grid.
    """

    def __init__(self, gather: ColumnGather, nz: int, hx: float, hz: float) -> None:
        self.gather, self.nx, self.nz = gather, gather.nx, nz
        m = laplacian(self.nx, nz, hx, hz).tolil()
        m[0, :] = 0.0
        m[:, 0] = 0.0
        m[0, 0] = 1.0
        m = m.tocsr()
        m.eliminate_zeros()
        m.sort_indices()
        self.A = _petsc_aij(m, PETSc.COMM_SELF)
        self.ksp = PETSc.KSP().create(comm=PETSc.COMM_SELF)
        self.ksp.setOperators(self.A)
        self.ksp.setType(PETSc.KSP.Type.PREONLY)
        pc = self.ksp.getPC()
        pc.setType(PETSc.PC.Type.LU)
        pc.setFactorSolverType("petsc")
        pc.setFactorOrdering("nd")
        self.ksp.setUp()  # factorise once
        self.b, self.x = self.A.createVecs()

    def solve_full(self, rhs_local: np.ndarray) -> np.ndarray:
        """``rhs_local`` ``(nz, nc)`` of the owned columns -> :math:`\\varphi` ``(nz, nx)``
        of the whole grid, identical on every rank (collective)."""
        full = self.gather.all(np.ascontiguousarray(rhs_local.T)).T  # (nz, nx), natural order
        b = np.ascontiguousarray(full).reshape(-1)
        b = b - np.sum(b) / b.size
        b[0] = 0.0
        self.b.getArray()[:] = b
        self.ksp.solve(self.b, self.x)
        phi = self.x.getArray(readonly=True).copy()
        phi -= np.sum(phi) / phi.size
        return phi.reshape(self.nz, self.nx)

    def solve(self, rhs_local: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """:math:`\\varphi` ``(nz, hi - lo)`` of the global columns ``lo .. hi - 1`` (periodic)."""
        return self.solve_full(rhs_local)[:, np.arange(lo, hi) % self.nx]

    def destroy(self) -> None:
        for o in (self.ksp, self.A, self.b, self.x):
            o.destroy()


class DistributedPoisson:
    """CG + GAMG on a scalar DMDA with the model's column split (see the module docstring).

    Parameters
    ----------
    comm
        mpi4py communicator.
    counts
        Columns per rank.
    nz, hx, hz
        Grid.
    rtol
        Relative (unpreconditioned) residual tolerance.
    """

    def __init__(self, comm, counts, nz: int, hx: float, hz: float, rtol: float) -> None:
        B = PETSc.DM.BoundaryType
        self.nx, self.nz = int(sum(counts)), nz
        self.dm = PETSc.DMDA().create(dim=2, dof=1, sizes=(self.nx, nz), proc_sizes=(comm.size, 1),
                                      boundary_type=(B.PERIODIC, B.GHOSTED),
                                      stencil_type=PETSc.DMDA.StencilType.STAR, stencil_width=1,
                                      ownership_ranges=(tuple(counts), (nz,)), comm=comm)
        (i0, i1), _ = self.dm.getRanges()
        self.i0, self.i1 = i0, i1
        kk, ii = np.meshgrid(np.arange(nz), np.arange(i0, i1), indexing="ij")
        natural = (ii + self.nx * kk).reshape(-1)  # owned rows in DMDA (PETSc) order
        m = laplacian(self.nx, nz, hx, hz, natural).tocoo()
        ao = self.dm.getAO()
        cols = ao.app2petsc(m.col.astype(PETSc.IntType))
        m = sp.csr_matrix((m.data, (m.row, cols)), shape=m.shape)
        m.sort_indices()
        self.A = _petsc_aij(m, comm, local_rows=natural.size)
        self.nullspace = PETSc.NullSpace().create(constant=True, comm=comm)
        self.A.setNullSpace(self.nullspace)
        self.ksp = PETSc.KSP().create(comm=comm)
        self.ksp.setOptionsPrefix("boussinesq_poisson_")
        self.ksp.setOperators(self.A)
        self.ksp.setType(PETSc.KSP.Type.CG)
        self.ksp.getPC().setType(PETSc.PC.Type.GAMG)
        self.ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        self.ksp.setTolerances(rtol=rtol, atol=0.0, max_it=10000)
        # GAMG's coarsest level is the singular Neumann matrix: a plain LU there gives
        # inf/NaN (observed on 2 ranks); a nonzero pivot shift makes it a pseudo-solve
        opts, key = PETSc.Options(), self.ksp.getOptionsPrefix() + "mg_coarse_sub_pc_factor_shift_type"
        if not opts.hasName(key):
            opts.setValue(key, "nonzero")
        self.ksp.setFromOptions()
        self.b = self.dm.createGlobalVec()
        self.x = self.dm.createGlobalVec()
        self.xl = self.dm.createLocalVec()

    def solve(self, rhs_local: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """:math:`\\varphi` ``(nz, hi - lo)`` for ``lo >= i0 - 1``, ``hi <= i1 + 1`` (collective)."""
        self.b.getArray()[:] = np.ascontiguousarray(rhs_local).reshape(-1)
        self.nullspace.remove(self.b)
        self.x.set(0.0)
        self.ksp.solve(self.b, self.x)
        if self.ksp.getConvergedReason() < 0:
            raise HmmparError(f"macro Poisson solve diverged: KSP CG/{self.ksp.getPC().getType()} reason "
                              f"{self.ksp.getConvergedReason()} after {self.ksp.getIterationNumber()} iterations")
        self.x.shift(-self.x.sum() / self.x.getSize())
        self.dm.globalToLocal(self.x, self.xl)
        (g0, g1), (h0, h1) = self.dm.getGhostRanges()
        arr = self.xl.getArray(readonly=True).reshape(h1 - h0, g1 - g0)
        return arr[-h0:-h0 + self.nz, lo - g0:hi - g0].copy()

    def destroy(self) -> None:
        for o in (self.ksp, self.A, self.nullspace, self.b, self.x, self.xl, self.dm):
            o.destroy()
