"""Distributed Q1 finite elements for scalar elliptic problems in a box (2D and 3D).

Problem
-------
Find :math:`U` with

.. math::

    -\\nabla\\cdot\\big(A(x)\\,\\nabla U\\big) = f \\quad\\text{in } \\Omega = \\prod_d [l_d, u_d],
    \\qquad U = g \\text{ on } \\Gamma_D, \\qquad (A\\nabla U)\\cdot n = q \\text{ on } \\Gamma_N,

and :math:`(A\\nabla U)\\cdot n = 0` on box sides that are named neither Dirichlet nor
Neumann. The weak form is :math:`a(U, V) = \\int_\\Omega \\nabla V\\cdot A\\nabla U
= \\int_\\Omega f V + \\int_{\\Gamma_N} q V` for all test functions :math:`V` vanishing on
:math:`\\Gamma_D`.

Discretisation
--------------
A uniform grid of ``cells[d]`` bilinear (2D) / trilinear (3D) elements per direction on
a PETSc DMDA (one unknown per node, box stencil of width 1). The coefficient :math:`A`
is *data at the quadrature points* of the elements a rank owns (as FE-HMM delivers it,
one micro problem per quadrature point): the tensor-product 2-point Gauss-Legendre
rule, ``n_qp = 2**dim`` points per element, numbered ``q = qx + 2*qy + 4*qz`` (x
fastest, the lower Gauss point first). With reference shape functions
:math:`\\hat N_a` on :math:`[0, 1]^d` (node ``a = ax + 2*ay + 4*az`` at the corner
``(i + ax, j + ay, k + az)``), the element matrix and load are

.. math::

    K^e_{ab} = \\sum_q w_q\\,|J|\\;\\nabla N_a(x_q)\\cdot A_q\\,\\nabla N_b(x_q),
    \\qquad F^e_a = \\sum_q w_q\\,|J|\\,f(x_q)\\,N_a(x_q),

with :math:`|J| = \\prod_d h_d`, :math:`w_q = 2^{-d}` and :math:`a` the test (row),
:math:`b` the trial (column) index. Neumann data are integrated with the 2-point Gauss
rule on the element faces. Dirichlet values are interpolated at the boundary nodes and
eliminated symmetrically (:meth:`petsc4py.PETSc.Mat.zeroRowsColumns` with diagonal 1,
the right-hand side corrected), so a symmetric coefficient gives an SPD system for CG.

Ownership
---------
A rank owns element ``(i, j, k)`` iff it owns the element's lower corner node
``(i, j, k)`` in the DMDA layout; every element then has one owner and all its nodes
lie in the owner's ghosted region. Element arrays (the coefficient, element fields)
are ordered like :attr:`BoxQ1.elements`: natural order ``e = i + nx*(j + ny*k)``,
ascending. Results do not depend on the number of ranks (to solver tolerance).
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

import hmmpar  # noqa: F401  (sets H5PY_ALWAYS_USE_MPI before h5py is imported)
from hmmpar.io.reserved_h5 import open_reserved

__all__ = ["SIDES", "BoxQ1"]

#: Names of the box sides: axis letter and ``-`` (lower) / ``+`` (upper).
SIDES = ("x-", "x+", "y-", "y+", "z-", "z+")

# Gauss-Legendre rules on [0, 1]
_G2_POINTS = np.array([0.5 - 0.5 / math.sqrt(3.0), 0.5 + 0.5 / math.sqrt(3.0)])
_G2_WEIGHTS = np.array([0.5, 0.5])
_G3_POINTS = 0.5 + 0.5 * np.array([-math.sqrt(0.6), 0.0, math.sqrt(0.6)])
_G3_WEIGHTS = np.array([5.0, 8.0, 5.0]) / 18.0

Data = float | Callable[[np.ndarray], np.ndarray]


def _tensor_rule(points: np.ndarray, weights: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product rule on [0,1]^dim, point ``q = q0 + n*q1 + n*n*q2`` (x fastest)."""
    n = len(points)
    idx = np.array(list(np.ndindex(*(n,) * dim)))[:, ::-1]  # columns (qx, qy, qz), qx fastest
    return points[idx], np.prod(weights[idx], axis=1)


def _corner_offsets(dim: int) -> np.ndarray:
    """Node offsets of the reference element, node ``a = ax + 2*ay + 4*az``."""
    return np.array([[(a >> d) & 1 for d in range(dim)] for a in range(2 ** dim)], dtype=np.int64)


def _shape(ref: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Q1 shape functions and reference gradients at reference points ``ref`` (n, dim).

    Returns ``N`` (n, 2**dim) and ``dN`` (n, 2**dim, dim) with
    :math:`\\hat N_a(\\xi) = \\prod_d \\big(o_{ad}\\,\\xi_d + (1 - o_{ad})(1 - \\xi_d)\\big)`.
    """
    off = _corner_offsets(dim)                                       # (nen, dim)
    fac = np.where(off[None], ref[:, None, :], 1.0 - ref[:, None, :])  # (n, nen, dim)
    dfac = np.where(off[None], 1.0, -1.0) * np.ones_like(fac)
    N = np.prod(fac, axis=2)
    dN = np.empty(fac.shape)
    for d in range(dim):
        others = np.delete(fac, d, axis=2)
        dN[:, :, d] = dfac[:, :, d] * np.prod(others, axis=2)
    return N, dN


def _collective_raise(comm, message: str | None, exc=ValueError) -> None:
    """Raise ``exc`` on every rank if any rank has a message (the first rank's wins)."""
    messages = comm.allgather(message)
    for m in messages:
        if m is not None:
            raise exc(m)


def check_assembly_inputs(comm, coefficient, n: int, nq: int, dim: int, dirichlet, neumann,
                          check_names: Callable, kind: str) -> tuple[np.ndarray, dict, dict, bool]:
    """Validate what ``assemble`` gets, collectively; shared by the box and the simplex mesh.

    ``check_names(mapping, "Dirichlet"|"Neumann")`` checks the side / group names (``kind``
    is the word for them in messages). Returns the coefficient as an array, the checked
    Dirichlet and Neumann mappings, and whether the coefficient is symmetric on every rank
    (``max |A - A^T| <= 1e-12 max |A|``), which picks CG or GMRES. Raises ValueError with
    the same message on every rank if any rank finds a problem."""
    message = None
    coef = np.zeros((n, nq))
    try:
        dirichlet = check_names(dirichlet, "Dirichlet")
        neumann = check_names(neumann, "Neumann")
        both = sorted(set(dirichlet) & set(neumann))
        if both:
            raise ValueError(f"{kind}(s) {', '.join(both)} given both Dirichlet and Neumann data")
        coef = np.asarray(coefficient, dtype=float)
        if coef.shape not in ((n, nq), (n, nq, dim, dim)):
            raise ValueError(f"coefficient has shape {coef.shape}; expected ({n}, {nq}) (scalar) "
                             f"or ({n}, {nq}, {dim}, {dim}) (tensor) for the {n} elements this "
                             f"rank owns and {nq} quadrature points each")
        if not np.all(np.isfinite(coef)):
            raise ValueError("coefficient has non-finite values")
    except ValueError as exc:
        message = str(exc)
    _collective_raise(comm, message)
    scale = float(np.max(np.abs(coef), initial=0.0))
    asym = 0.0 if coef.ndim == 2 else float(np.max(np.abs(coef - np.swapaxes(coef, 2, 3)), initial=0.0))
    asym, scale = comm.allreduce(asym, op=MPI.MAX), comm.allreduce(scale, op=MPI.MAX)
    return coef, dirichlet, neumann, asym <= 1e-12 * scale


def krylov_solve(A: PETSc.Mat, b: PETSc.Vec, x: PETSc.Vec, *, rtol: float, prefix: str,
                 direct_max_rows: int) -> tuple[int, str | None]:
    """Solve :math:`A x = b` in place with the macro solvers' defaults (collective).

    CG if ``A`` is flagged ``SYMMETRIC``, else GMRES; GAMG, or ``PCREDUNDANT`` (a
    sequential LU on every rank) for at most ``direct_max_rows`` rows; relative tolerance
    ``rtol``; then ``ksp.setFromOptions()`` with ``prefix``, so the options database
    overrides every default. ``x`` is the initial guess.

    Returns
    -------
    (iterations, failure)
        The iteration count and ``None``, or a one-line message if the solver diverged
        (negative converged reason).
    """
    ksp = PETSc.KSP().create(comm=A.getComm())
    try:
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(A)
        known, sym = A.isSymmetricKnown()
        ksp.setType(PETSc.KSP.Type.CG if (known and sym) else PETSc.KSP.Type.GMRES)
        small = A.getSize()[0] <= direct_max_rows
        ksp.getPC().setType(PETSc.PC.Type.REDUNDANT if small else PETSc.PC.Type.GAMG)
        ksp.setTolerances(rtol=rtol)
        ksp.setFromOptions()
        ksp.solve(b, x)
        reason = ksp.getConvergedReason()
        iterations = int(ksp.getIterationNumber())
        if reason >= 0:
            return iterations, None
        names = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items() if isinstance(v, int)}
        return iterations, (
            f"macro solve diverged: KSP {ksp.getType()}/{ksp.getPC().getType()} (prefix "
            f"{prefix!r}) stopped with {names.get(reason, 'reason')} ({reason}) after "
            f"{iterations} iterations, residual norm {ksp.getResidualNorm():.3e}")
    finally:
        ksp.destroy()


#: bytes reserved for the HDF5 metadata of a mesh output file (superblock, groups,
#: attributes, object headers: 2.4 kB measured for 6 datasets), on top of
#: :meth:`NodalMesh._output_datasets`
OUTPUT_OVERHEAD = 64 * 1024


def _h5py():
    import h5py  # after hmmpar, which asks Debian's h5py for its MPI build
    return h5py


class NodalMesh:
    """What the box (:class:`BoxQ1`) and the simplex mesh
    (:class:`hmmpar.macro.simplex_p1.SimplexP1`) share: the Krylov solve and the element
    gather of nodal values. Subclasses provide ``dm`` (the PETSc DM of the nodal dofs) and
    ``_conn`` (local dof indices per element)."""

    #: :meth:`solve` uses a direct solve (PCREDUNDANT, LU) by default up to this many rows.
    DIRECT_MAX_ROWS = 1000
    dm: PETSc.DM
    _conn: np.ndarray

    def solve(self, A: PETSc.Mat, b: PETSc.Vec, *, rtol: float = 1e-10,
              prefix: str = "macro_") -> PETSc.Vec:
        """Solve :math:`A U = b` with PETSc KSP (collective).

        Defaults: CG with algebraic multigrid (GAMG), relative tolerance ``rtol`` (of the
        preconditioned residual norm, CG's default). Two exceptions: if ``A`` is not
        flagged ``SYMMETRIC`` (:meth:`assemble` found a non-symmetric coefficient) the
        Krylov method is GMRES, since CG needs a symmetric operator; and systems of at
        most :attr:`DIRECT_MAX_ROWS` rows use ``PCREDUNDANT`` (a sequential LU of the
        whole matrix on every rank), because GAMG's eigenvalue estimates break down on
        tiny grids (e.g. 2x2x2 cells) and a direct solve is cheaper there anyway.
        ``ksp.setFromOptions()`` runs last, so every option under ``prefix``
        (``-macro_ksp_type``, ``-macro_pc_type``, ``-macro_ksp_monitor`` ...) overrides
        the defaults. The iteration count is stored in :attr:`last_iterations`.

        Returns
        -------
        petsc4py.PETSc.Vec
            The nodal solution (a global vector of ``dm``).

        Raises
        ------
        RuntimeError
            If the solver diverges (negative converged reason).
        """
        x = self.dm.createGlobalVec()
        x.set(0.0)
        self.last_iterations, failure = krylov_solve(A, b, x, rtol=rtol, prefix=prefix,
                                                     direct_max_rows=self.DIRECT_MAX_ROWS)
        if failure:
            raise RuntimeError(failure)
        return x

    def _element_dofs(self, U: PETSc.Vec) -> np.ndarray:
        lu = self.dm.createLocalVec()
        self.dm.globalToLocal(U, lu)
        values = lu.getArray(readonly=True)[self._conn].copy()
        lu.destroy()
        return values


    def _load_and_constraints(self, A: PETSc.Mat, add_load: Callable[[np.ndarray], None], dirichlet: dict,
                              symmetric: bool) -> tuple[PETSc.Mat, PETSc.Vec]:
        """Finish an assembly (collective): the load vector b, accumulated by ``add_load``
        on the ghosted local vector, then the Dirichlet rows and columns of the assembled
        ``A`` replaced by identity rows (``MatZeroRowsColumns``, which moves the known
        values to the right-hand side, so A stays symmetric). A ``ValueError`` from the
        data on any rank is raised on every rank."""
        message = None
        lb = self.dm.createLocalVec()
        lb.set(0.0)
        try:
            add_load(lb.getArray())
        except ValueError as exc:
            message = str(exc)
        _collective_raise(self.comm, message)
        b = self.dm.createGlobalVec()
        b.set(0.0)
        self.dm.localToGlobal(lb, b, addv=PETSc.InsertMode.ADD_VALUES)
        lb.destroy()
        # Dirichlet nodes owned here: global (PETSc-ordered) rows and values
        message = None
        try:
            rows, values = self._dirichlet_rows(dirichlet)
        except ValueError as exc:
            message = str(exc)
            rows, values = np.zeros(0, dtype=np.int64), np.zeros(0)
        _collective_raise(self.comm, message)
        x = self.dm.createGlobalVec()
        x.set(0.0)
        assert x.getOwnershipRange()[0] == self._rstart
        if rows.size:
            x.getArray()[rows - self._rstart] = values
        A.zeroRowsColumns(rows.astype(PETSc.IntType), 1.0, x, b)
        x.destroy()
        A.setOption(PETSc.Mat.Option.SYMMETRIC, symmetric)
        return A, b

    # ------------------------------------------------------------------ shared by errors / write
    def _error_norms(self, exact: Callable[[np.ndarray], np.ndarray], pts: np.ndarray, uh: np.ndarray,
                     guh: np.ndarray, wdet: np.ndarray, delta: float) -> dict:
        """``{"l2", "h1"}`` of :math:`U - u` from U and its gradient at quadrature points.

        ``pts`` (n nq, dim) are the points, ``uh`` (n, nq) and ``guh`` (n, nq or 1, dim) U and
        :math:`\\nabla U` there, ``wdet`` (n or 1, nq) the weights times :math:`|\\det J|`.
        :math:`\\partial_d u` is the 4th-order central difference
        :math:`(-u(x+2\\delta e_d) + 8u(x+\\delta e_d) - 8u(x-\\delta e_d) + u(x-2\\delta e_d))
        / (12\\delta)` (``exact`` is evaluated up to :math:`2\\delta` outside the domain).
        Collective; the result is bitwise the same on every rank."""
        n, nq = uh.shape
        dim = pts.shape[1]
        message = None
        try:
            u = BoxQ1._evaluate(exact, pts, "exact").reshape(n, nq)
            gu = np.empty((n, nq, dim))
            for d in range(dim):
                e = np.zeros(dim)
                e[d] = delta
                f = [BoxQ1._evaluate(exact, pts + s * e, "exact").reshape(n, nq) for s in (2, 1, -1, -2)]
                gu[:, :, d] = (-f[0] + 8.0 * f[1] - 8.0 * f[2] + f[3]) / (12.0 * delta)
        except ValueError as exc:
            message = str(exc)
        _collective_raise(self.comm, message)
        sums = np.array([np.sum((uh - u) ** 2 * wdet), np.sum(np.sum((guh - gu) ** 2, axis=2) * wdet)])
        self.comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
        self.comm.Bcast(sums, root=0)  # bitwise identical everywhere
        return {"l2": float(math.sqrt(sums[0])), "h1": float(math.sqrt(sums[1]))}

    def _write_outputs(self, path: str | Path, U: PETSc.Vec, element_fields: Mapping[str, np.ndarray],
                       nodal_name: str) -> None:
        """The collective part of ``write``: check the names, expand components, write the
        HDF5 file (:meth:`_write_h5` of the subclass), then rank 0 writes the XDMF file
        (grid from :meth:`_xdmf_grid`)."""
        comm = self.comm
        path = Path(path)
        names = comm.allgather(sorted(element_fields))
        message = None
        if any(nm != names[0] for nm in names):
            message = f"element_fields names differ between ranks: {names}"
        else:
            for nm in [nodal_name] + names[0]:
                if not isinstance(nm, str) or not nm or "/" in nm or nm in (".", ".."):
                    message = f"invalid field name {nm!r} (non-empty, no '/')"
        _collective_raise(comm, message)
        # expand element fields into scalar components (same order on every rank)
        cell_sets: list[tuple[str, np.ndarray]] = []
        for name in names[0]:
            values = self._check_element_array(element_fields[name], f"element field {name!r}")
            if values.dtype.kind == "b":
                values = values.astype(np.int8)
            trailing = values.shape[1:]
            flat = values.reshape(values.shape[0], int(np.prod(trailing, dtype=np.int64)))
            if not trailing:
                cell_sets.append((name, flat[:, 0]))
                continue
            widths = [len(str(max(m - 1, 0))) for m in trailing]
            for c, idx in enumerate(np.ndindex(*trailing)):
                suffix = "".join(str(i).zfill(w) for i, w in zip(idx, widths))
                cell_sets.append((f"{name}_{suffix}", flat[:, c]))
        cell_names = [nm for nm, _ in cell_sets]
        if len(set(cell_names)) != len(cell_names):
            raise ValueError(f"element field component names collide: {cell_names}")

        h5py = _h5py()
        mpio = bool(h5py.get_config().mpi)
        if not mpio and comm.size > 1:
            raise RuntimeError(f"h5py was built without MPI support; {type(self).__name__}.write needs an "
                               "MPI-enabled h5py (Debian: python3-h5py-mpi)")
        # the file's space is reserved first: a full disk or quota fails there, on every rank
        # (ReservationError), instead of inside HDF5's collective writes
        nbytes = OUTPUT_OVERHEAD + sum(self._output_datasets(nodal_name, cell_sets).values())
        with open_reserved(comm, path, nbytes) as f:
            self._write_h5(f, U, nodal_name, cell_sets, mpio)
        comm.Barrier()
        xdmf_path = path.with_suffix(".xdmf")
        message = None
        if comm.rank == 0:
            try:
                self._write_xdmf(xdmf_path, path.name, nodal_name, cell_sets)
            except OSError as exc:
                message = f"cannot write {xdmf_path}: {exc}"
        message = comm.bcast(message, root=0)
        if message:
            raise OSError(message)

    def _write_xdmf(self, xdmf_path: Path, h5_name: str, nodal_name: str, cell_sets) -> None:
        """XDMF 2 description of the HDF5 file, written atomically (rank 0 only)."""
        root = ET.Element("Xdmf", Version="2.0")
        grid, node_dims, cell_dims = self._xdmf_grid(ET.SubElement(root, "Domain"), h5_name)

        def attribute(name: str, center: str, dims: str, dataset: str, dtype: np.dtype) -> None:
            att = ET.SubElement(grid, "Attribute", Name=name, AttributeType="Scalar", Center=center)
            if dtype.kind == "f":
                number = "Float"
            elif dtype.itemsize == 1:
                number = "UChar" if dtype.kind == "u" else "Char"
            else:
                number = "UInt" if dtype.kind == "u" else "Int"
            item = ET.SubElement(att, "DataItem", Dimensions=dims, NumberType=number,
                                 Precision=str(dtype.itemsize), Format="HDF")
            item.text = f"{h5_name}:{dataset}"

        attribute(nodal_name, "Node", node_dims, f"/nodal/{nodal_name}", np.dtype("f8"))
        for name, column in cell_sets:
            attribute(name, "Cell", cell_dims, f"/cell/{name}", column.dtype)
        ET.indent(root)
        tmp = xdmf_path.with_name(f".{xdmf_path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write('<?xml version="1.0" ?>\n<!DOCTYPE Xdmf SYSTEM "Xdmf.dtd" []>\n')
            fh.write(ET.tostring(root, encoding="unicode"))
            fh.write("\n")
        tmp.replace(xdmf_path)


class BoxQ1(NodalMesh):
    """Q1 finite elements on a uniform box grid distributed with a PETSc DMDA.

    Parameters
    ----------
    comm
        mpi4py (or petsc4py) communicator; every method except the trivial accessors is
        collective over it.
    cells
        Elements per direction, length 2 (2D) or 3 (3D), each >= 1.
    lower, upper
        Box corners (default 0 and 1 in every direction), ``upper > lower``.

    Attributes
    ----------
    dim : int
        2 or 3.
    cells : numpy.ndarray
        ``(dim,)`` int elements per direction ``(nx, ny[, nz])``.
    lower, upper, h : numpy.ndarray
        ``(dim,)`` box corners and mesh widths :math:`h_d = (u_d - l_d) / n_d`.
    da : petsc4py.PETSc.DMDA
        ``cells + 1`` nodes per direction, one dof, box stencil of width 1.
    n_elements : int
        Global element count :math:`\\prod_d n_d`.
    elements : numpy.ndarray
        ``(n_local,)`` int64 natural numbers ``e = i + nx*(j + ny*k)`` of the owned
        elements, ascending.
    element_index : numpy.ndarray
        ``(n_local, dim)`` int64 element coordinates ``(i, j[, k])``.
    n_qp : int
        Quadrature points per element, ``2**dim``.
    last_iterations : int
        Iterations of the last :meth:`solve` (-1 before the first).

    Raises
    ------
    ValueError
        On wrong lengths, ``cells < 1``, non-finite corners or ``upper <= lower``, or
        if PETSc cannot split the nodes over the ranks (fewer nodes than ranks in a
        direction of its process grid).
    """

    @property
    def dm(self) -> PETSc.DMDA:
        """The DMDA of the nodes (the name :class:`NodalMesh` uses)."""
        return self.da

    def __init__(self, comm, cells: Sequence[int], lower: Sequence[float] = None,
                 upper: Sequence[float] = None) -> None:
        if isinstance(comm, PETSc.Comm):
            comm = comm.tompi4py()
        self.comm = comm
        cells_list = list(cells) if not isinstance(cells, (str, bytes)) else None
        if cells_list is None or len(cells_list) not in (2, 3):
            raise ValueError(f"cells must give 2 or 3 element counts, got {cells!r}")
        if any(isinstance(c, bool) or not float(c).is_integer() for c in cells_list):
            raise ValueError(f"cells must be integers, got {cells!r}")
        self.cells = np.array([int(c) for c in cells_list], dtype=np.int64)
        if np.any(self.cells < 1):
            raise ValueError(f"cells must all be >= 1, got {self.cells.tolist()}")
        self.dim = int(self.cells.size)
        dim = self.dim
        self.lower = np.zeros(dim) if lower is None else np.array(lower, dtype=float).ravel()
        self.upper = np.ones(dim) if upper is None else np.array(upper, dtype=float).ravel()
        for name, v in (("lower", self.lower), ("upper", self.upper)):
            if v.size != dim:
                raise ValueError(f"{name} must have {dim} entries (one per direction), got {v.size}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{name} must be finite, got {v.tolist()}")
        if np.any(self.upper <= self.lower):
            raise ValueError(f"upper must exceed lower in every direction, got lower="
                             f"{self.lower.tolist()} upper={self.upper.tolist()}")
        self.h = (self.upper - self.lower) / self.cells
        self.n_elements = int(np.prod(self.cells))
        self.n_qp = 2 ** dim
        self.last_iterations = -1

        nodes = tuple(int(c) + 1 for c in self.cells)
        try:
            self.da = PETSc.DMDA().create(dim=dim, sizes=nodes, dof=1, stencil_width=1,
                                          stencil_type=PETSc.DMDA.StencilType.BOX,
                                          comm=PETSc.Comm(comm))
            self.da.setUp()
        except PETSc.Error as exc:
            raise ValueError(f"PETSc cannot distribute {nodes} nodes over {comm.size} ranks "
                             f"(each rank needs at least one node per direction): {exc}") from exc

        # owned node box [ns, ne) and ghosted box [gs, ge), per direction (x, y[, z])
        self._ns = np.array([r[0] for r in self.da.getRanges()], dtype=np.int64)
        self._ne = np.array([r[1] for r in self.da.getRanges()], dtype=np.int64)
        self._gs = np.array([r[0] for r in self.da.getGhostRanges()], dtype=np.int64)
        self._ge = np.array([r[1] for r in self.da.getGhostRanges()], dtype=np.int64)
        # owned element box [ns, min(ne, cells))
        self._es = self._ns.copy()
        self._ee = np.minimum(self._ne, self.cells)
        ecount = np.maximum(self._ee - self._es, 0)
        # every rank's boxes, for gathering on rank 0
        boxes = comm.allgather((self._ns.tolist(), self._ne.tolist(), self._es.tolist(), self._ee.tolist()))
        self._node_boxes = [(np.array(b[0]), np.array(b[1])) for b in boxes]
        self._elem_boxes = [(np.array(b[2]), np.maximum(np.array(b[3]), np.array(b[2]))) for b in boxes]
        # first PETSc (global vector) row of this rank: ranks own consecutive row blocks
        self._rstart = int(sum(np.prod(e - s) for s, e in self._node_boxes[: comm.rank]))

        # owned elements in natural order: C-order over (k, j, i) with i fastest
        axes = [np.arange(self._es[d], self._es[d] + ecount[d], dtype=np.int64) for d in range(dim)]
        grids = np.meshgrid(*axes[::-1], indexing="ij")  # (k, j, i) or (j, i)
        self.element_index = np.stack([g.ravel() for g in grids[::-1]], axis=1).astype(np.int64)
        self.element_index = self.element_index.reshape(-1, dim)
        strides = np.concatenate([[1], np.cumprod(self.cells[:-1])]).astype(np.int64)
        self.elements = self.element_index @ strides

        # element -> ghosted local node numbers (x fastest), node a = ax + 2*ay + 4*az
        gsize = self._ge - self._gs
        self._gstrides = np.concatenate([[1], np.cumprod(gsize[:-1])]).astype(np.int64)
        self._offsets = _corner_offsets(dim)
        base = (self.element_index - self._gs) @ self._gstrides
        self._conn = base[:, None] + (self._offsets @ self._gstrides)[None, :]
        self._conn_petsc = self._conn.astype(PETSc.IntType)

        # quadrature tables (reference coordinates on [0,1]^dim)
        self._ref2, w2 = _tensor_rule(_G2_POINTS, _G2_WEIGHTS, dim)
        self._N2, dN2 = _shape(self._ref2, dim)
        self._G2 = dN2 / self.h                           # physical gradients (nq, nen, dim)
        self._wdet2 = w2 * float(np.prod(self.h))
        self._ref3, w3 = _tensor_rule(_G3_POINTS, _G3_WEIGHTS, dim)
        self._N3, dN3 = _shape(self._ref3, dim)
        self._G3 = dN3 / self.h
        self._wdet3 = w3 * float(np.prod(self.h))

    # ------------------------------------------------------------------ geometry
    @property
    def n_local(self) -> int:
        """Number of elements this rank owns."""
        return int(self.elements.size)

    def _physical(self, ref: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
        """Physical points ``lower + h*(index + ref)``: (n_elem, n_ref, dim)."""
        index = self.element_index if index is None else index
        return self.lower + self.h * (index[:, None, :] + ref[None, :, :])

    def quadrature_points(self) -> np.ndarray:
        """Physical 2-point Gauss points of the owned elements.

        Returns
        -------
        numpy.ndarray
            ``(n_local, n_qp, dim)``, :math:`x_{e,q} = l + h\\odot(\\mathrm{idx}_e + \\xi_q)`
            with :math:`\\xi_q \\in \\{\\tfrac12 \\mp \\tfrac{1}{2\\sqrt3}\\}^{d}` and
            ``q = qx + 2*qy + 4*qz`` (x fastest, the lower point first).
        """
        return self._physical(self._ref2)

    # ------------------------------------------------------------------ assembly
    def _check_sides(self, mapping, what: str) -> dict:
        mapping = dict(mapping or {})
        valid = SIDES[: 2 * self.dim]
        for side in mapping:
            if side not in valid:
                raise ValueError(f"unknown {what} side {side!r} for a {self.dim}D box; "
                                 f"valid sides are {', '.join(valid)}")
        return mapping

    @staticmethod
    def _evaluate(data, points: np.ndarray, what: str) -> np.ndarray:
        """Evaluate float-or-callable data at points (n, dim) -> finite (n,) array."""
        if callable(data):
            values = np.asarray(data(points), dtype=float)
            if values.shape != (points.shape[0],):
                try:
                    values = np.broadcast_to(values, (points.shape[0],)).copy()
                except ValueError:
                    raise ValueError(f"{what} returned shape {values.shape}, expected "
                                     f"({points.shape[0]},) for points of shape {points.shape}") from None
        else:
            try:
                value = float(data)
            except (TypeError, ValueError):
                raise ValueError(f"{what} must be a number or a callable f(points (n, dim)) -> (n,), "
                                 f"got {data!r}") from None
            values = np.full(points.shape[0], value)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what} has non-finite values")
        return values

    def _side_axis(self, side: str) -> tuple[int, bool]:
        return "xyz".index(side[0]), side[1] == "+"

    def assemble(self, coefficient: np.ndarray, source: Data = 0.0,
                 dirichlet: Mapping[str, Data] = None,
                 neumann: Mapping[str, Data] = None) -> tuple[PETSc.Mat, PETSc.Vec]:
        """Assemble the stiffness matrix and load vector (collective).

        Parameters
        ----------
        coefficient
            :math:`A` at the quadrature points of the owned elements (rows ordered like
            :attr:`elements`): ``(n_local, n_qp)`` for a scalar :math:`a\\,I` or
            ``(n_local, n_qp, dim, dim)`` for a full (possibly non-symmetric) tensor.
        source
            :math:`f`: a float or ``f(points (n, dim)) -> (n,)``; integrated with the
            element Gauss rule, :math:`F_a = \\sum_q w_q |J| f(x_q) N_a(x_q)`.
        dirichlet
            Side name -> :math:`g` (float or callable on points ``(n, dim)``), imposed at
            the side's nodes by interpolation. Where sides meet, the first side in
            :data:`SIDES` order gives the value.
        neumann
            Side name -> :math:`q = (A\\nabla U)\\cdot n` (outward normal), float or
            callable; adds :math:`\\int_{\\text{side}} q\\,N_a\\,ds` by 2-point Gauss per
            face direction. Sides in neither mapping are natural (zero flux).

        Returns
        -------
        (A, b)
            ``A`` is :math:`K` with the Dirichlet rows and columns replaced by the
            identity; ``b`` is :math:`F` with :math:`b_i = g_i` at Dirichlet nodes and
            :math:`b_j \\leftarrow b_j - \\sum_i K_{ji} g_i` elsewhere. ``A`` carries the
            ``SYMMETRIC`` option when :math:`A(x)` is symmetric at every point (to
            :math:`10^{-12}` relative). Without Dirichlet sides :math:`K` is singular (the
            solution is defined up to a constant; :math:`f, q` must be compatible).

        Raises
        ------
        ValueError
            Unknown side names, a side both Dirichlet and Neumann, a coefficient of the
            wrong shape or with non-finite values, bad source/boundary data. Raised on
            every rank if any rank detects it.
        """
        comm, dim, n, nq = self.comm, self.dim, self.n_local, self.n_qp
        # symmetry of the coefficient picks the default Krylov method (CG or GMRES). (No SPD
        # flag: it switches GAMG's eigenvalue estimate to CG, which hangs in PETSc 3.18 when
        # a rank owns only Dirichlet rows.)
        coef, dirichlet, neumann, symmetric = check_assembly_inputs(
            comm, coefficient, n, nq, dim, dirichlet, neumann, self._check_sides, "side")

        # element matrices K[e, a, b] = sum_q wdet_q G[q, a] . A[e, q] G[q, b], as one matmul
        G, nen = self._G2, 2 ** dim
        if coef.ndim == 2:
            M = np.einsum("q,qad,qbd->qab", self._wdet2, G, G).reshape(nq, nen * nen)
            Ke = coef @ M
        else:
            M = np.einsum("q,qad,qbc->qdcab", self._wdet2, G, G).reshape(nq * dim * dim, nen * nen)
            Ke = coef.reshape(n, nq * dim * dim) @ M
        Ke = Ke.reshape(n, nen, nen)

        A = self.da.createMatrix()
        if n:
            A.setValuesLocalRCV(self._conn_petsc, self._conn_petsc, Ke, addv=PETSc.InsertMode.ADD_VALUES)
        A.assemble()

        def add_load(barr: np.ndarray) -> None:
            if callable(source):
                pts = self.quadrature_points().reshape(-1, dim)
                fq = self._evaluate(source, pts, "source").reshape(n, nq)
                np.add.at(barr, self._conn, (fq * self._wdet2) @ self._N2)
            else:
                value = self._evaluate(source, np.zeros((1, dim)), "source")[0]
                if value != 0.0:
                    Fe = value * (self._wdet2 @ self._N2)
                    np.add.at(barr, self._conn, np.broadcast_to(Fe, (n, Fe.size)))
            for side in SIDES[: 2 * dim]:
                if side in neumann:
                    self._add_neumann(barr, side, neumann[side])

        return self._load_and_constraints(A, add_load, dirichlet, symmetric)

    def _add_neumann(self, barr: np.ndarray, side: str, data) -> None:
        dim = self.dim
        axis, upper = self._side_axis(side)
        on_side = self.element_index[:, axis] == (self.cells[axis] - 1 if upper else 0)
        index = self.element_index[on_side]
        tang = [d for d in range(dim) if d != axis]
        ref_t, w_t = _tensor_rule(_G2_POINTS, _G2_WEIGHTS, dim - 1)
        ref = np.empty((ref_t.shape[0], dim))
        ref[:, tang] = ref_t
        ref[:, axis] = 1.0 if upper else 0.0
        N, _ = _shape(ref, dim)                                  # off-face nodes vanish
        w = w_t * float(np.prod(self.h[tang]))
        pts = self._physical(ref, index)                         # (m, nfq, dim)
        qv = self._evaluate(data, pts.reshape(-1, dim), f"Neumann data on {side}")
        qv = qv.reshape(index.shape[0], ref.shape[0])
        np.add.at(barr, self._conn[on_side], (qv * w) @ N)

    def _dirichlet_rows(self, dirichlet: dict) -> tuple[np.ndarray, np.ndarray]:
        dim = self.dim
        ns, ne = self._ns, self._ne
        counts = ne - ns
        ostrides = np.concatenate([[1], np.cumprod(counts[:-1])]).astype(np.int64)
        all_rows, all_vals = [], []
        seen = np.zeros(0, dtype=np.int64)
        for side in SIDES[: 2 * dim]:
            if side not in dirichlet:
                continue
            axis, upper = self._side_axis(side)
            fixed = int(self.cells[axis]) if upper else 0
            if not (ns[axis] <= fixed < ne[axis]):
                continue
            axes = [np.arange(ns[d], ne[d]) if d != axis else np.array([fixed]) for d in range(dim)]
            grids = np.meshgrid(*axes, indexing="ij")
            idx = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
            local = (idx - ns) @ ostrides
            new = ~np.isin(local, seen)
            idx, local = idx[new], local[new]
            pts = self.lower + self.h * idx
            all_vals.append(self._evaluate(dirichlet[side], pts, f"Dirichlet data on {side}"))
            all_rows.append(local)
            seen = np.concatenate([seen, local])
        rstart = self._rstart
        if not all_rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(all_rows) + rstart, np.concatenate(all_vals)

    # ------------------------------------------------------------------ solve
    # ------------------------------------------------------------------ errors
    def errors(self, U: PETSc.Vec, exact: Callable[[np.ndarray], np.ndarray]) -> dict:
        """Global L2 norm and H1 seminorm of :math:`U - u` (collective).

        .. math::

            \\|U - u\\|_{L^2}^2 = \\sum_e \\sum_q w_q |J| \\big(U(x_q) - u(x_q)\\big)^2,
            \\qquad |U - u|_{H^1}^2 = \\sum_e \\sum_q w_q |J|\\,
            \\big|\\nabla U(x_q) - \\nabla u(x_q)\\big|^2,

        with the 3-point Gauss rule per direction, :math:`\\nabla U` from the Q1 shape
        functions and :math:`\\partial_d u` by 4th-order central differences,
        :math:`(-u(x+2\\delta e_d) + 8u(x+\\delta e_d) - 8u(x-\\delta e_d) + u(x-2\\delta e_d))
        / (12\\delta)`, :math:`\\delta = 10^{-3}\\min_d h_d` (``exact`` is evaluated up to
        :math:`2\\delta` outside the box).

        Parameters
        ----------
        U
            Nodal solution (DMDA global vector).
        exact
            ``u(points (n, dim)) -> (n,)``.

        Returns
        -------
        dict
            ``{"l2": float, "h1": float}``, identical on every rank.
        """
        dim = self.dim
        Ue = self._element_dofs(U)                                # (n, nen)
        pts = self._physical(self._ref3).reshape(-1, dim)         # (n*nq3, dim)
        uh = Ue @ self._N3.T                                      # (n, nq3)
        guh = np.einsum("ea,qad->eqd", Ue, self._G3)              # (n, nq3, dim)
        return self._error_norms(exact, pts, uh, guh, self._wdet3[None, :], 1e-3 * float(np.min(self.h)))

    # ------------------------------------------------------------------ gathering
    def _gather_boxes(self, local: np.ndarray, boxes, trailing: tuple, dtype) -> np.ndarray | None:
        """Gatherv each rank's box block (C order over z, y, x) into a rank-0 global array."""
        comm = self.comm
        local = np.ascontiguousarray(local, dtype=dtype)
        nbytes = np.array(comm.allgather(local.nbytes), dtype=np.int64)
        if comm.rank == 0:
            recv = np.empty(int(nbytes.sum()), dtype=np.uint8)
            displs = np.concatenate([[0], np.cumsum(nbytes)[:-1]])
            comm.Gatherv(local.view(np.uint8).ravel(), [recv, nbytes.tolist(), displs.tolist(), MPI.BYTE], root=0)
            shape = self._global_shape(boxes)
            out = np.empty(shape + trailing, dtype=dtype)
            for r, (start, end) in enumerate(boxes):
                count = np.maximum(end - start, 0)
                if np.prod(count) == 0:
                    continue
                block = recv[displs[r]: displs[r] + nbytes[r]].view(dtype)
                block = block.reshape(tuple(count[::-1]) + trailing)
                sl = tuple(slice(int(s), int(e)) for s, e in zip(start[::-1], end[::-1]))
                out[sl] = block
            return out
        comm.Gatherv(local.view(np.uint8).ravel(), None, root=0)
        return None

    def _global_shape(self, boxes) -> tuple:
        cells = self.cells + 1 if boxes is self._node_boxes else self.cells
        return tuple(int(c) for c in cells[::-1])

    def _owned_nodal(self, U: PETSc.Vec) -> np.ndarray:
        counts = self._ne - self._ns
        return U.getArray(readonly=True).reshape(tuple(counts[::-1]))

    def nodal_values(self, U: PETSc.Vec) -> np.ndarray | None:
        """Gather the nodal solution on rank 0 (collective).

        Returns
        -------
        numpy.ndarray or None
            Rank 0: ``(nz+1, ny+1, nx+1)`` (3D) or ``(ny+1, nx+1)`` (2D), i.e. indexed
            ``[k, j, i]`` at node :math:`l + h\\odot(i, j, k)`; ``None`` on other ranks.
        """
        return self._gather_boxes(self._owned_nodal(U), self._node_boxes, (), np.float64)

    def _check_element_array(self, values, what: str) -> np.ndarray:
        values = np.asarray(values)
        message = None
        if values.ndim == 0 or values.shape[0] != self.n_local:
            message = (f"{what} has shape {values.shape}; expected ({self.n_local}, ...) "
                       f"(one row per owned element)")
        elif values.dtype.kind not in "biuf":
            message = f"{what} must be numeric (bool, integer or float), got dtype {values.dtype}"
        _collective_raise(self.comm, message)
        trailing = self.comm.allgather((values.shape[1:], values.dtype.str))
        if len(set(trailing)) != 1:
            raise ValueError(f"{what}: ranks disagree on trailing shape/dtype: {sorted(set(trailing))}")
        return values

    def element_values(self, values: np.ndarray) -> np.ndarray | None:
        """Gather per-element data on rank 0 (collective).

        Parameters
        ----------
        values
            ``(n_local, ...)`` rows ordered like :attr:`elements`.

        Returns
        -------
        numpy.ndarray or None
            Rank 0: ``(n_elements, ...)`` in natural element order; ``None`` elsewhere.
        """
        values = self._check_element_array(values, "element values")
        trailing = values.shape[1:]
        count = self._ee - self._es
        block = values.reshape(tuple(np.maximum(count, 0)[::-1]) + trailing)
        out = self._gather_boxes(block, self._elem_boxes, trailing, values.dtype)
        return None if out is None else out.reshape((self.n_elements,) + trailing)

    # ------------------------------------------------------------------ output
    def write(self, path: str | Path, U: PETSc.Vec, element_fields: Mapping[str, np.ndarray] = {},
              nodal_name: str = "U") -> None:
        """Write the solution and element fields to HDF5 + XDMF (collective).

        One HDF5 file is written in parallel (h5py ``driver="mpio"``, each rank writes its
        box of nodes / elements in collective transfers):

        * ``/nodal/<nodal_name>``: shaped like :meth:`nodal_values` (``[k, j, i]``);
        * ``/cell/<name>``: ``(nz, ny, nx)`` (3D) / ``(ny, nx)`` (2D) for each element
          field; a field with components, e.g. ``(n_local, 2, 2)``, becomes one scalar
          dataset per component, ``<name>_00``, ``<name>_01``, ... (zero-padded index
          digits per component axis).

        Rank 0 then writes ``path.with_suffix(".xdmf")``: a ``2DCoRectMesh`` /
        ``3DCoRectMesh`` with ``ORIGIN_DXDY`` / ``ORIGIN_DXDYDZ`` geometry, the nodal
        attribute (``Center="Node"``) and cell attributes (``Center="Cell"``). Origin and
        spacing are listed slowest axis first ((z,) y, x), the order of ``Dimensions``,
        which is what ParaView's XDMF reader expects.

        Parameters
        ----------
        path
            The HDF5 file (same on every rank); an existing file is replaced.
        U
            Nodal solution (DMDA global vector).
        element_fields
            Name -> ``(n_local, ...)`` numeric array ordered like :attr:`elements`; the
            same names on every rank.
        nodal_name
            Dataset / attribute name of ``U``.
        """
        self._write_outputs(path, U, element_fields, nodal_name)

    def _output_datasets(self, nodal_name: str, cell_sets) -> dict[str, int]:
        """Bytes of each dataset :meth:`_write_h5` writes."""
        nodes, cells = int(np.prod(self.cells + 1)), int(np.prod(self.cells))
        sizes = {f"nodal/{nodal_name}": 8 * nodes}
        sizes.update({f"cell/{name}": cells * column.dtype.itemsize for name, column in cell_sets})
        return sizes

    def _write_h5(self, f, U: PETSc.Vec, nodal_name: str, cell_sets, mpio: bool) -> None:
        ecount = np.maximum(self._ee - self._es, 0)
        node_shape = tuple(int(c) for c in (self.cells + 1)[::-1])
        cell_shape = tuple(int(c) for c in self.cells[::-1])
        f.attrs["lower"] = self.lower
        f.attrs["upper"] = self.upper
        f.attrs["cells"] = self.cells
        dset = f.create_group("nodal").create_dataset(nodal_name, shape=node_shape, dtype="f8")
        _write_box(dset, self._ns[::-1], self._owned_nodal(U), mpio)
        cells = f.create_group("cell")
        for name, column in cell_sets:
            dset = cells.create_dataset(name, shape=cell_shape, dtype=column.dtype)
            _write_box(dset, self._es[::-1], column.reshape(tuple(ecount[::-1])), mpio)

    def _xdmf_grid(self, domain, h5_name: str):
        dim = self.dim
        node_dims = " ".join(str(int(c)) for c in (self.cells + 1)[::-1])
        cell_dims = " ".join(str(int(c)) for c in self.cells[::-1])
        grid = ET.SubElement(domain, "Grid", Name="box_q1", GridType="Uniform")
        ET.SubElement(grid, "Topology", TopologyType=f"{dim}DCoRectMesh", Dimensions=node_dims)
        geom = ET.SubElement(grid, "Geometry", GeometryType="ORIGIN_DXDYDZ" if dim == 3 else "ORIGIN_DXDY")
        for label, vals in (("Origin", self.lower), ("Spacing", self.h)):
            item = ET.SubElement(geom, "DataItem", Name=label, Dimensions=str(dim), NumberType="Float",
                                 Precision="8", Format="XML")
            item.text = " ".join(repr(float(v)) for v in vals[::-1])
        return grid, node_dims, cell_dims


def _write_box(dset, start: Sequence[int], block: np.ndarray, mpio: bool) -> None:
    """Write ``block`` at ``start`` of ``dset``; with MPI a collective transfer every rank
    joins, an empty block as an empty selection (h5py's ``dset[...] = x`` skips the call
    for an empty selection, which would hang a collective write)."""
    h5py = _h5py()
    fspace = dset.id.get_space()
    if block.size:
        buf = np.ascontiguousarray(block, dtype=dset.dtype)
        fspace.select_hyperslab(tuple(int(s) for s in start), tuple(buf.shape))
        mspace = h5py.h5s.create_simple(buf.shape)
    else:
        buf = np.zeros(1, dtype=dset.dtype)
        fspace.select_none()
        mspace = h5py.h5s.create_simple((1,))
        mspace.select_none()
    dxpl = h5py.h5p.create(h5py.h5p.DATASET_XFER)
    if mpio:
        dxpl.set_dxpl_mpio(h5py.h5fd.MPIO_COLLECTIVE)
    dset.id.write(mspace, fspace, buf, dxpl=dxpl)
