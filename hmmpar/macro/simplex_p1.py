"""Distributed P1 finite elements on unstructured simplex meshes from Gmsh (2D and 3D).

Problem
-------
The same as :mod:`hmmpar.macro.box_q1`: find :math:`U` with

.. math::

    -\\nabla\\cdot\\big(A(x)\\,\\nabla U\\big) = f \\text{ in } \\Omega, \\qquad
    U = g \\text{ on } \\Gamma_D, \\qquad (A\\nabla U)\\cdot n = q \\text{ on } \\Gamma_N,

zero flux on the rest of :math:`\\partial\\Omega`, with :math:`\\Omega` a triangle (2D) or
tetrahedron (3D) mesh read from a Gmsh ``.msh`` file (formats 2.2 and 4.1, ASCII or
binary: PETSc's reader). The boundary parts are the mesh's *physical groups* of facets
(lines in 2D, triangles in 3D), named in the file's ``$PhysicalNames`` block; a group
without a name is addressed by its tag written as a string (``"7"``).

Discretisation
--------------
Continuous P1 elements, one unknown per mesh vertex. With the barycentric coordinates
:math:`\\lambda_a` (:math:`a = 0..d`) of element :math:`e`, vertices :math:`X_0..X_d`,
the Jacobian :math:`J_e = [X_1 - X_0, \\dots, X_d - X_0]` and the constant gradients
:math:`G_e = \\hat G\\,J_e^{-1}` (row :math:`a` is :math:`\\nabla\\lambda_a^T`,
:math:`\\hat G = [-\\mathbf 1; I]`), the element matrix and load are

.. math::

    K^e = |\\det J_e|\\; G_e \\Big(\\sum_q w_q A_q\\Big) G_e^T, \\qquad
    F^e_a = |\\det J_e| \\sum_q w_q\\, f(x_q)\\, \\lambda_a(x_q),

with the symmetric rule of degree 2 on the reference simplex: 3 points
:math:`\\lambda = (\\tfrac23, \\tfrac16, \\tfrac16)` and permutations, :math:`w_q = 1/6`
(2D); 4 points :math:`\\lambda = (\\alpha, \\beta, \\beta, \\beta)` and permutations,
:math:`\\alpha = (5 + 3\\sqrt5)/20`, :math:`\\beta = (5 - \\sqrt5)/20`, :math:`w_q = 1/24`
(3D). Quadrature point ``q`` is the one nearest to the element's vertex ``q``, the
vertices taken in ascending global vertex number, so the points and their order do not
depend on how the mesh is distributed. Neumann data are integrated over the facets of
the group with the 2-point Gauss rule (2D) or the 3-point rule above (3D); Dirichlet
values are interpolated at the vertices of the group's facets and eliminated
symmetrically as in :class:`~hmmpar.macro.box_q1.BoxQ1`.

Numbering and distribution
--------------------------
Rank 0 reads the file (PETSc ``DMPlexCreateFromFile``, interpolated), the mesh is
partitioned and distributed by ``DMPlexDistribute`` (partitioner options under the
prefix, e.g. ``-macro_petscpartitioner_type simple``), without overlap: every rank owns
its cells, vertices on partition boundaries are owned by one rank. The undistributed
mesh numbers its cells and vertices in file order, and these numbers travel with the
points through the migration star forest:

* element id = position of the cell among the file's top-dimensional elements
  (``0 .. n_elements - 1``), :attr:`SimplexP1.elements` ascending per rank;
* vertex id = position of the node in the file's node list, counting only nodes that
  belong to a cell (``0 .. n_vertices - 1``).

Both are independent of the number of ranks, and so are the quadrature points, task ids
``element * n_qp + q`` and all gathered or written arrays. The unknowns live in a
``PetscSection`` with one dof on every vertex; PETSc derives the global numbering,
matrix preallocation and ghost exchange from it.
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

import hmmpar  # noqa: F401  (sets H5PY_ALWAYS_USE_MPI before h5py is imported)
from hmmpar.macro.box_q1 import BoxQ1, NodalMesh, _collective_raise, _write_box, check_assembly_inputs

__all__ = ["SimplexP1", "read_physical_names"]

Data = float | Callable[[np.ndarray], np.ndarray]

_BOUNDARY_LABEL = "hmmpar_boundary"   # Face Sets completed to the facets' closures
_TOPOLOGY = {2: "Triangle", 3: "Tetrahedron"}


# ---------------------------------------------------------------------- quadrature
def _symmetric_rule(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Degree-2 rule: barycentric points (nq, d+1), weights (nq,) summing to 1/d!."""
    if dim == 2:
        a, b, w = 2.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0
    else:
        a, b, w = (5.0 + 3.0 * math.sqrt(5.0)) / 20.0, (5.0 - math.sqrt(5.0)) / 20.0, 1.0 / 24.0
    lam = np.full((dim + 1, dim + 1), b)
    np.fill_diagonal(lam, a)
    return lam, np.full(dim + 1, w)


def _collapsed_rule(dim: int, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Collapsed (Duffy) Gauss-Jacobi rule on the reference simplex, exact to degree ``2n - 1``.

    The cube :math:`[0,1]^d` maps to the simplex by :math:`x_1 = s`,
    :math:`x_2 = t(1 - s)`, :math:`x_3 = r(1 - s)(1 - t)` with Jacobian
    :math:`(1-s)^{d-1}(1-t)^{d-2}`, which the Gauss-Jacobi weights of ``s`` and ``t``
    absorb; ``n`` points per direction, ``n**dim`` in all. Returns barycentric points
    (n^d, d+1) and weights summing to :math:`1/d!`.
    """
    from scipy.special import roots_jacobi

    axes, weights = [], []
    for k in range(dim):
        alpha = dim - 1 - k                          # the power of (1 - s_k) in the Jacobian
        x, w = roots_jacobi(n, alpha, 0.0)
        axes.append(0.5 * (x + 1.0))
        weights.append(w * 0.5 ** (alpha + 1))
    s = [g.ravel() for g in np.meshgrid(*axes, indexing="ij")]
    w = np.prod([g.ravel() for g in np.meshgrid(*weights, indexing="ij")], axis=0)
    x = np.empty((s[0].size, dim))
    rest = np.ones(s[0].size)
    for k in range(dim):
        x[:, k] = s[k] * rest
        rest = rest * (1.0 - s[k])
    return np.hstack([1.0 - x.sum(axis=1, keepdims=True), x]), w


def _facet_rule(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Rule on a facet (segment / triangle): barycentric points, weights summing to 1."""
    if dim == 2:
        t = 0.5 / math.sqrt(3.0)
        return np.array([[0.5 + t, 0.5 - t], [0.5 - t, 0.5 + t]]), np.array([0.5, 0.5])
    lam, w = _symmetric_rule(2)
    return lam, 2.0 * w


# ---------------------------------------------------------------------- file inspection
_NAME_LINE = re.compile(r'^\s*(\d+)\s+(-?\d+)\s+"(.*)"\s*$')


def read_physical_names(path: str | Path) -> dict[str, tuple[int, int]]:
    """Parse the ``$PhysicalNames`` block of a Gmsh file: name -> (dimension, tag).

    The block is text in every format version (also in binary files) and precedes the
    nodes, so only the head of the file is read. A file without the block gives ``{}``.

    Raises
    ------
    ValueError
        If the block is malformed or a name is given twice for one dimension.
    """
    names: dict[str, tuple[int, int]] = {}
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.strip()
            if line in (b"$Nodes", b"$Entities", b"$Elements", b"$ParametricNodes"):
                return names
            if line != b"$PhysicalNames":
                continue
            try:
                count = int(fh.readline())
                for _ in range(count):
                    text = fh.readline().decode("utf-8", errors="replace")
                    m = _NAME_LINE.match(text)
                    if not m:
                        raise ValueError(f"malformed $PhysicalNames line {text.strip()!r}")
                    dim, tag, name = int(m.group(1)), int(m.group(2)), m.group(3)
                    if name in names and names[name][0] == dim:
                        raise ValueError(f"physical name {name!r} is given twice")
                    if name not in names or dim > names[name][0]:
                        names[name] = (dim, tag)
            except ValueError as exc:
                raise ValueError(f"bad $PhysicalNames block: {exc}") from None
            return names
    return names


def _petsc_message(exc: PETSc.Error) -> str:
    """The informative lines of a petsc4py error (without the call stack)."""
    lines = [ln.split("]", 1)[-1].strip() for ln in str(exc).splitlines()]
    keep = [ln for ln in lines if ln and not re.search(r"\(\) at ", ln) and not ln.startswith("error code")]
    return "; ".join(keep) or f"PETSc error {getattr(exc, 'ierr', '?')}"


def inspect_mesh(path: Path) -> dict:
    """Rank 0's check of a mesh file, on a serial read: everything that could make the
    parallel read fail or the mesh unusable, as a ValueError with one line."""
    if not path.is_file():
        raise ValueError(f"mesh file {path} not found")
    try:
        names = read_physical_names(path)
    except OSError as exc:
        raise ValueError(f"cannot read mesh file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"mesh file {path}: {exc}") from None
    if path.suffix.lower() != ".msh":
        raise ValueError(f"mesh file {path} must be a Gmsh .msh file")
    try:
        dm = PETSc.DMPlex().createFromFile(str(path), interpolate=True, comm=PETSc.COMM_SELF)
    except PETSc.Error as exc:
        raise ValueError(f"cannot read mesh file {path}: {_petsc_message(exc)}") from None
    try:
        dim = dm.getDimension()
        if dim not in (2, 3):
            raise ValueError(f"mesh file {path} has dimension {dim}; need triangles (2D) or tetrahedra (3D)")
        if dm.getCoordinateDim() != dim:
            raise ValueError(f"mesh file {path}: a {dim}D mesh in {dm.getCoordinateDim()}D space is not supported")
        cs, ce = dm.getHeightStratum(0)
        simplex = PETSc.DMPlex.PolytopeType.TRIANGLE if dim == 2 else PETSc.DMPlex.PolytopeType.TETRAHEDRON
        n_simplex = dm.getLabel("celltype").getStratumSize(simplex)
        if ce - cs == 0 or n_simplex != ce - cs:
            raise ValueError(f"mesh file {path}: {ce - cs - n_simplex} of {ce - cs} cells are not "
                             f"{_TOPOLOGY[dim].lower()}s (only simplex meshes are supported)")
        faces = dm.getLabel("Face Sets") if dm.hasLabel("Face Sets") else None
        tags = sorted(int(t) for t in faces.getValueIS().getIndices()) if faces is not None else []
    finally:
        dm.destroy()
    return {"dim": dim, "names": names, "facet_tags": tags}


def _mpi_int():
    return MPI.INT64_T if np.dtype(PETSc.IntType).itemsize == 8 else MPI.INT32_T


class SimplexP1(NodalMesh):
    """P1 finite elements on a distributed Gmsh simplex mesh (PETSc DMPlex).

    A drop-in for :class:`~hmmpar.macro.box_q1.BoxQ1` where the domain is a mesh file
    and the sides are physical groups.

    Parameters
    ----------
    comm
        mpi4py (or petsc4py) communicator; every method except the accessors is collective.
    path
        Gmsh ``.msh`` file (the same path on every rank; read by rank 0).
    prefix
        Options prefix of the partitioner (``-macro_petscpartitioner_type ...``).

    Attributes
    ----------
    dim : int
        2 (triangles) or 3 (tetrahedra).
    path : pathlib.Path
    dm : petsc4py.PETSc.DMPlex
        The distributed mesh, with the P1 section.
    n_elements, n_vertices : int
        Global counts.
    elements : numpy.ndarray
        ``(n_local,)`` int64 ids of the owned cells (file order), ascending.
    n_qp : int
        Quadrature points per element, ``dim + 1``.
    boundary_groups : dict
        Name -> physical tag of every facet group that has facets (also ``"<tag>"``).
    h_min, h_max : float
        Shortest and longest edge of the mesh.
    lower, upper : numpy.ndarray
        Bounding box of the vertices.
    last_iterations : int
        Iterations of the last :meth:`solve` (-1 before the first).

    Raises
    ------
    ValueError
        On every rank, if the file is missing, unreadable, not a simplex mesh, or has
        degenerate cells.
    """

    #: :meth:`solve` uses a direct solve (PCREDUNDANT, LU) by default up to this many rows.

    def __init__(self, comm, path: str | Path, *, prefix: str = "macro_") -> None:
        if isinstance(comm, PETSc.Comm):
            comm = comm.tompi4py()
        self.comm = comm
        self.path = Path(path)
        self.last_iterations = -1
        info, message = None, None
        if comm.rank == 0:
            try:
                info = inspect_mesh(self.path)
            except ValueError as exc:
                message = str(exc)
        info, message = comm.bcast((info, message), root=0)
        _collective_raise(comm, message)
        self.dim = dim = info["dim"]
        self.n_qp = dim + 1
        self.physical_names = info["names"]
        self.boundary_groups = {str(t): t for t in info["facet_tags"]}
        for name, (d, tag) in info["names"].items():
            if d == dim - 1 and tag in info["facet_tags"]:
                self.boundary_groups[name] = tag

        dm = PETSc.DMPlex().createFromFile(str(self.path), interpolate=True, comm=PETSc.Comm(comm))
        ids = self._mark_boundary_and_number(dm)
        part = dm.getPartitioner()
        part.setOptionsPrefix(prefix)
        part.setFromOptions()
        if comm.size > 1:
            sf = dm.distribute()
            if sf is not None:  # original numbers from rank 0 to every copy of a point
                leaf = np.full(dm.getChart()[1], -1, dtype=PETSc.IntType)
                sf.bcastBegin(_mpi_int(), ids, leaf, MPI.REPLACE)
                sf.bcastEnd(_mpi_int(), ids, leaf, MPI.REPLACE)
                ids = leaf
                sf.destroy()
        self.dm = dm
        self._setup_dofs(ids.astype(np.int64))
        self._setup_cells(ids.astype(np.int64))

    # ------------------------------------------------------------------ set-up
    def _mark_boundary_and_number(self, dm: PETSc.DMPlex) -> np.ndarray:
        """On the undistributed mesh (all on rank 0): copy the facet groups into a label
        completed to their closures (so every rank that gets a boundary vertex also gets
        its groups), and number cells and used vertices in file order.

        Returns the point -> original number array (cells, vertices; -1 elsewhere)."""
        dm.createLabel(_BOUNDARY_LABEL)
        bnd = dm.getLabel(_BOUNDARY_LABEL)
        if dm.hasLabel("Face Sets"):
            faces = dm.getLabel("Face Sets")
            for tag in faces.getValueIS().getIndices():
                bnd.setStratumIS(int(tag), faces.getStratumIS(int(tag)))
        dm.labelComplete(bnd)
        p0, p1 = dm.getChart()
        ids = np.full(p1 - p0, -1, dtype=PETSc.IntType)
        cs, ce = dm.getHeightStratum(0)
        vs, ve = dm.getDepthStratum(0)
        ids[cs:ce] = np.arange(ce - cs)
        used = np.array([dm.getSupportSize(v) > 0 for v in range(vs, ve)], dtype=bool)
        ids[vs:ve] = np.where(used, np.cumsum(used) - 1, -1)
        counts = self.comm.bcast((ce - cs, int(used.sum())), root=0)
        self.n_elements, self.n_vertices = int(counts[0]), int(counts[1])
        return ids

    def _setup_dofs(self, ids: np.ndarray) -> None:
        """One dof per used vertex; local/global numbers and coordinates per vertex point."""
        dm, dim = self.dm, self.dim
        p0, p1 = dm.getChart()
        vs, ve = dm.getDepthStratum(0)
        self._vs = vs
        self._vid = ids[vs:ve]                                  # original vertex number or -1
        sec = PETSc.Section().create(comm=dm.getComm())  # the global offsets scan over it
        sec.setChart(p0, p1)
        for k in np.flatnonzero(self._vid >= 0):
            sec.setDof(vs + int(k), 1)
        sec.setUp()
        dm.setSection(sec)
        self._section = sec
        self._vdof = np.array([sec.getOffset(v) if self._vid[v - vs] >= 0 else -1 for v in range(vs, ve)],
                              dtype=np.int64)
        self._lgmap = dm.getLGMap()
        has = self._vdof >= 0
        self._vrow = np.full(ve - vs, -1, dtype=np.int64)
        if has.any():
            self._vrow[has] = self._lgmap.apply(self._vdof[has].astype(PETSc.IntType))
        g = dm.createGlobalVec()
        self._rstart, self._rend = g.getOwnershipRange()
        g.destroy()
        self._owned = has & (self._vrow >= self._rstart) & (self._vrow < self._rend)
        csec = dm.getCoordinateSection()
        coords = dm.getCoordinatesLocal().getArray(readonly=True)
        offs = np.array([csec.getOffset(v) for v in range(vs, ve)], dtype=np.int64)
        self._vx = coords[offs[:, None] + np.arange(dim)] if ve > vs else np.zeros((0, dim))
        owned = int(self._owned.sum())
        if self.comm.allreduce(owned) != self.n_vertices:
            raise RuntimeError("internal: owned vertex count differs from the file's")
        self._ghost_points: set[int] = set()  # points another rank owns (point SF leaves)
        if self.comm.size > 1:
            _, ilocal, _ = dm.getPointSF().getGraph()
            if ilocal is not None:
                self._ghost_points = set(int(p) for p in ilocal)

    def _setup_cells(self, ids: np.ndarray) -> None:
        """Cell -> vertex tables sorted by vertex id, geometry, quadrature points."""
        dm, dim, comm = self.dm, self.dim, self.comm
        cs, ce = dm.getHeightStratum(0)
        vs, ve = self._vs, self._vs + self._vid.size
        nen = dim + 1
        verts = np.empty((ce - cs, nen), dtype=np.int64)
        for c in range(cs, ce):  # set-up only: one closure per cell
            cl = dm.getTransitiveClosure(c)[0]
            verts[c - cs] = cl[(cl >= vs) & (cl < ve)] - vs
        cell_ids = ids[cs:ce]
        order = np.argsort(cell_ids, kind="stable")
        self.elements = cell_ids[order]
        verts = verts[order]
        verts = np.take_along_axis(verts, np.argsort(self._vid[verts], axis=1), axis=1)
        self._verts = verts                                     # local vertex index (point - vs)
        self._conn = self._vdof[verts].astype(PETSc.IntType)    # local dof numbers
        self._erow = self._vrow[verts].astype(PETSc.IntType)    # global rows
        self._nnz = None                                        # matrix preallocation, on demand
        X = self._vx[verts]                                     # (n, nen, dim)
        J = np.swapaxes(X[:, 1:] - X[:, :1], 1, 2)              # columns X_k - X_0
        det = np.linalg.det(J) if len(J) else np.zeros(0)
        edges = np.concatenate([np.linalg.norm(X[:, a] - X[:, b], axis=1)
                                for a in range(nen) for b in range(a)]) if len(X) else np.zeros(0)
        scale = float(edges.max(initial=0.0))
        message = None
        if np.any(np.abs(det) <= 1e-12 * scale ** dim):
            bad = int(self.elements[np.argmin(np.abs(det))])
            message = f"mesh file {self.path}: element {bad} (file order, from 0) is degenerate (zero volume)"
        _collective_raise(comm, message)
        self._det = det
        self._absdet = np.abs(det)
        ref_grad = np.vstack([-np.ones(dim), np.eye(dim)])      # (nen, dim)
        self._G = ref_grad @ np.linalg.inv(J) if len(J) else np.zeros((0, nen, dim))
        self._lam, self._w = _symmetric_rule(dim)
        self._lam_hi, self._w_hi = _collapsed_rule(dim)
        self._qp = np.einsum("qa,ead->eqd", self._lam, X)
        self.h_min = comm.allreduce(float(edges.min(initial=np.inf)), op=MPI.MIN)
        self.h_max = comm.allreduce(scale, op=MPI.MAX)
        self.lower = self._vx.min(axis=0, initial=np.inf)
        self.upper = self._vx.max(axis=0, initial=-np.inf)
        comm.Allreduce(MPI.IN_PLACE, self.lower, op=MPI.MIN)
        comm.Allreduce(MPI.IN_PLACE, self.upper, op=MPI.MAX)

    # ------------------------------------------------------------------ geometry
    @property
    def n_local(self) -> int:
        """Number of elements this rank owns."""
        return int(self.elements.size)

    def quadrature_points(self) -> np.ndarray:
        """Physical quadrature points of the owned elements.

        Returns
        -------
        numpy.ndarray
            ``(n_local, n_qp, dim)``: :math:`x_{e,q} = \\sum_a \\lambda_{q,a} X_{e,a}`, rows
            ordered like :attr:`elements`, point ``q`` nearest to the element's vertex
            ``q`` (vertices in ascending global number).
        """
        return self._qp.copy()

    def describe(self) -> dict:
        """Mesh facts for a run summary: file name, counts, edge lengths."""
        return {"file": self.path.name, "dim": self.dim, "n_elements": self.n_elements,
                "n_vertices": self.n_vertices, "h_max": self.h_max, "h_min": self.h_min}

    # ------------------------------------------------------------------ assembly
    def check_groups(self, mapping, what: str) -> dict:
        """The mapping as a dict, if every key is a boundary group of the mesh; else a
        ValueError naming the group, the file and the valid groups (not collective)."""
        mapping = dict(mapping or {})
        for group in mapping:
            if group in self.boundary_groups:
                continue
            if group in self.physical_names and self.physical_names[group][0] != self.dim - 1:
                why = (f"{what} group {group!r} is a {self.physical_names[group][0]}D physical group; "
                       f"boundary data need a group of {self.dim - 1}D facets")
            elif group in self.physical_names:
                why = f"{what} group {group!r} has no facets in the mesh"
            else:
                why = f"unknown {what} physical group {group!r}"
            named = {t for g, t in self.boundary_groups.items() if not g.isdigit()}
            valid = [g for g, t in sorted(self.boundary_groups.items(), key=lambda gt: (gt[1], gt[0]))
                     if not g.isdigit() or int(g) not in named]      # names, else the bare tag
            raise ValueError(f"{why} in mesh file {self.path.name}; its boundary groups are "
                             f"{', '.join(valid) or 'none'}")
        return mapping

    def _group_points(self, group: str, depth: int | None) -> np.ndarray:
        """Local points of a facet group (``depth=None``: the facets; 0: their vertices)."""
        name = "Face Sets" if depth is None else _BOUNDARY_LABEL
        tag = self.boundary_groups[group]
        label = self.dm.getLabel(name) if self.dm.hasLabel(name) else None
        if label is None or not label.hasStratum(tag):
            return np.zeros(0, dtype=np.int64)
        pts = label.getStratumIS(tag).getIndices().astype(np.int64)
        if depth == 0:
            vs, ve = self._vs, self._vs + self._vid.size
            return pts[(pts >= vs) & (pts < ve)]
        fs, fe = self.dm.getHeightStratum(1)
        pts = pts[(pts >= fs) & (pts < fe)]
        return np.array([p for p in pts if int(p) not in self._ghost_points], dtype=np.int64)

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
            :math:`f`: a float or ``f(points (n, dim)) -> (n,)``.
        dirichlet
            Physical group name -> :math:`g` (float or callable), interpolated at the
            group's vertices. Where groups meet, the first group of the mapping wins.
        neumann
            Physical group name -> :math:`q = (A\\nabla U)\\cdot n` (outward normal);
            adds :math:`\\int_F q\\,\\lambda_a\\,ds` over the group's facets ``F``.
            Boundary facets in neither mapping are natural (zero flux).

        Returns
        -------
        (A, b)
            ``A`` is :math:`K` with the Dirichlet rows and columns replaced by the
            identity, ``b`` the load with :math:`b_i = g_i` at Dirichlet vertices and
            :math:`b_j \\leftarrow b_j - \\sum_i K_{ji} g_i` elsewhere; ``A`` is flagged
            ``SYMMETRIC`` when :math:`A(x)` is symmetric everywhere (to 1e-12 relative).

        Raises
        ------
        ValueError
            Unknown group names (the message lists the mesh's boundary groups), a group
            both Dirichlet and Neumann, a coefficient of the wrong shape or with
            non-finite values, bad source/boundary data; raised on every rank.
        """
        comm, dim, n, nq = self.comm, self.dim, self.n_local, self.n_qp
        coef, dirichlet, neumann, symmetric = check_assembly_inputs(
            comm, coefficient, n, nq, dim, dirichlet, neumann, self.check_groups, "group")

        # K_e = |det J| G (sum_q w_q A_q) G^T
        if coef.ndim == 2:
            Ke = np.einsum("e,ead,ebd->eab", (coef @ self._w) * self._absdet, self._G, self._G)
        else:
            Abar = np.einsum("q,eqij->eij", self._w, coef) * self._absdet[:, None, None]
            Ke = np.einsum("ead,edc,ebc->eab", self._G, Abar, self._G, optimize=True)
        A = self._create_matrix()
        if n:
            A.setValuesRCV(self._erow, self._erow, np.ascontiguousarray(Ke), addv=PETSc.InsertMode.ADD_VALUES)
        A.assemble()

        def add_load(barr: np.ndarray) -> None:
            if callable(source) or float(BoxQ1._evaluate(source, np.zeros((1, dim)), "source")[0]) != 0.0:
                pts = self._qp.reshape(-1, dim)
                fq = BoxQ1._evaluate(source, pts, "source").reshape(n, nq)
                np.add.at(barr, self._conn, ((fq * self._w) * self._absdet[:, None]) @ self._lam)
            for group, data in neumann.items():
                self._add_neumann(barr, group, data)

        return self._load_and_constraints(A, add_load, dirichlet, symmetric)

    def _create_matrix(self) -> PETSc.Mat:
        """An AIJ matrix with the exact P1 pattern preallocated (collective).

        The pattern is the vertex adjacency through cells: the pairs (row, column) of
        every element, those of rows owned elsewhere sent to their owner (one
        ``Alltoallv``), counted per owned row inside / outside the diagonal block. (Much
        faster than ``DMCreateMatrix``'s closure-of-star traversal on an interpolated
        mesh; computed once and reused.)
        """
        comm = self.comm
        if self._nnz is None:
            nen = self.dim + 1
            rows = np.repeat(self._erow.astype(np.int64), nen, axis=1).ravel()
            cols = np.tile(self._erow.astype(np.int64), (1, nen)).ravel()
            starts = np.array(comm.allgather(self._rstart) + [self.n_vertices], dtype=np.int64)
            dest = np.searchsorted(starts, rows, side="right") - 1
            order = np.argsort(dest, kind="stable")
            pairs = np.stack([rows[order], cols[order]], axis=1)
            send = np.bincount(dest, minlength=comm.size).astype(np.int64)
            recv = np.array(comm.alltoall(send.tolist()), dtype=np.int64)
            got = np.empty((int(recv.sum()), 2), dtype=np.int64)
            item = 2 * 8
            sd = (np.concatenate([[0], np.cumsum(send)[:-1]]) * item).tolist()
            rd = (np.concatenate([[0], np.cumsum(recv)[:-1]]) * item).tolist()
            comm.Alltoallv([pairs.view(np.uint8), (send * item).tolist(), sd, MPI.BYTE],
                           [got.view(np.uint8), (recv * item).tolist(), rd, MPI.BYTE])
            key = np.unique(got[:, 0] * self.n_vertices + got[:, 1])
            row, col = np.divmod(key, self.n_vertices)
            diag = (col >= self._rstart) & (col < self._rend)
            m = self._rend - self._rstart
            d_nnz = np.bincount(row[diag] - self._rstart, minlength=m)
            o_nnz = np.bincount(row[~diag] - self._rstart, minlength=m)
            # a vertex row always has its diagonal; keep >= 1 for safety
            self._nnz = (np.maximum(d_nnz, 1).astype(PETSc.IntType), o_nnz.astype(PETSc.IntType))
        m = self._rend - self._rstart
        A = PETSc.Mat().create(comm=PETSc.Comm(comm))
        A.setSizes(((m, self.n_vertices), (m, self.n_vertices)))
        A.setType(PETSc.Mat.Type.AIJ)
        A.setPreallocationNNZ(self._nnz)
        A.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, True)
        return A

    def _add_neumann(self, barr: np.ndarray, group: str, data) -> None:
        """Add :math:`\\int_F q\\,\\lambda_a\\,ds` of the group's owned facets to ``barr``."""
        dim, vs = self.dim, self._vs
        facets = self._group_points(group, None)
        nv = dim
        fverts = np.empty((facets.size, nv), dtype=np.int64)
        ve = vs + self._vid.size
        for i, f in enumerate(facets):  # boundary facets only
            cl = self.dm.getTransitiveClosure(int(f))[0]
            fverts[i] = cl[(cl >= vs) & (cl < ve)] - vs
        if facets.size:
            fverts = np.take_along_axis(fverts, np.argsort(self._vid[fverts], axis=1), axis=1)
        X = self._vx[fverts]                                     # (m, dim, dim)
        if dim == 2:
            measure = np.linalg.norm(X[:, 1] - X[:, 0], axis=1)
        else:
            measure = 0.5 * np.linalg.norm(np.cross(X[:, 1] - X[:, 0], X[:, 2] - X[:, 0]), axis=1)
        lam, w = _facet_rule(dim)
        pts = np.einsum("qa,ead->eqd", lam, X)
        qv = BoxQ1._evaluate(data, pts.reshape(-1, dim), f"Neumann data on {group}").reshape(facets.size, w.size)
        np.add.at(barr, self._vdof[fverts], ((qv * w) * measure[:, None]) @ lam)

    def _dirichlet_rows(self, dirichlet: dict) -> tuple[np.ndarray, np.ndarray]:
        """Global rows (owned here) and values of the Dirichlet vertices."""
        rows, vals = [], []
        seen = np.zeros(self._vid.size, dtype=bool)
        for group, data in dirichlet.items():
            v = self._group_points(group, 0) - self._vs
            v = v[self._owned[v] & ~seen[v]]
            seen[v] = True
            vals.append(BoxQ1._evaluate(data, self._vx[v], f"Dirichlet data on {group}"))
            rows.append(self._vrow[v])
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(rows), np.concatenate(vals)

    # ------------------------------------------------------------------ solve
    # ------------------------------------------------------------------ errors
    def errors(self, U: PETSc.Vec, exact: Callable[[np.ndarray], np.ndarray]) -> dict:
        """Global L2 norm and H1 seminorm of :math:`U - u` (collective).

        .. math::

            \\|U - u\\|_{L^2}^2 = \\sum_e |\\det J_e| \\sum_q w_q \\big(U(x_q) - u(x_q)\\big)^2,
            \\qquad |U - u|_{H^1}^2 = \\sum_e |\\det J_e| \\sum_q w_q
            \\big|\\nabla U - \\nabla u(x_q)\\big|^2,

        with the collapsed Gauss rule of 4 points per direction (exact to degree 6 in
        2D, 5 in 3D) and :math:`\\partial_d u` by the 4th-order central difference of
        :meth:`BoxQ1.errors`, step :math:`\\delta = 10^{-3} h_{min}`.

        Returns
        -------
        dict
            ``{"l2": float, "h1": float}``, identical on every rank.
        """
        dim = self.dim
        Ue = self._element_dofs(U)                                   # (n, nen)
        X = self._vx[self._verts]
        pts = np.einsum("qa,ead->eqd", self._lam_hi, X).reshape(-1, dim)
        uh = Ue @ self._lam_hi.T                                     # (n, nqh)
        guh = np.einsum("ea,ead->ed", Ue, self._G)[:, None, :]       # constant per element
        wdet = self._absdet[:, None] * self._w_hi[None, :]
        return self._error_norms(exact, pts, uh, guh, wdet, 1e-3 * self.h_min)

    # ------------------------------------------------------------------ gathering
    def _owned_nodal(self, U: PETSc.Vec) -> tuple[np.ndarray, np.ndarray]:
        """(vertex ids, values) of the vertices this rank owns."""
        owned = np.flatnonzero(self._owned)
        values = U.getArray(readonly=True)[self._vrow[owned] - self._rstart]
        return self._vid[owned], np.asarray(values, dtype=np.float64)

    def _gather(self, ids: np.ndarray, values: np.ndarray, total: int) -> np.ndarray | None:
        """Rows with global ids from all ranks -> rank 0 array ``(total, ...)`` by id."""
        comm = self.comm
        values = np.ascontiguousarray(values)
        rows = np.zeros(ids.size, dtype=[("id", "i8"), ("v", values.dtype, values.shape[1:])])
        rows["id"], rows["v"] = ids, values
        counts = np.array(comm.allgather(rows.size), dtype=np.int64)
        out = np.empty(int(counts.sum()), dtype=rows.dtype) if comm.rank == 0 else None
        nbytes = (counts * rows.dtype.itemsize).tolist()
        displs = np.concatenate([[0], np.cumsum(nbytes)[:-1]]).tolist()
        recv = [out.view(np.uint8), nbytes, displs, MPI.BYTE] if comm.rank == 0 else None
        comm.Gatherv([rows.view(np.uint8), MPI.BYTE], recv, root=0)
        if comm.rank != 0:
            return None
        if out.size != total or not np.array_equal(np.sort(out["id"]), np.arange(total)):
            raise RuntimeError("internal: gathered ids are not a permutation")
        result = np.empty((total,) + values.shape[1:], dtype=values.dtype)
        result[out["id"]] = out["v"]
        return result

    def nodal_values(self, U: PETSc.Vec) -> np.ndarray | None:
        """Gather the nodal solution on rank 0 (collective).

        Returns
        -------
        numpy.ndarray or None
            Rank 0: ``(n_vertices,)`` by vertex id (file node order); ``None`` elsewhere.
        """
        ids, values = self._owned_nodal(U)
        return self._gather(ids, values, self.n_vertices)

    def _check_element_array(self, values, what: str) -> np.ndarray:
        return BoxQ1._check_element_array(self, values, what)

    def element_values(self, values: np.ndarray) -> np.ndarray | None:
        """Gather per-element data on rank 0 (collective).

        Parameters
        ----------
        values
            ``(n_local, ...)`` rows ordered like :attr:`elements`.

        Returns
        -------
        numpy.ndarray or None
            Rank 0: ``(n_elements, ...)`` by element id; ``None`` elsewhere.
        """
        values = self._check_element_array(values, "element values")
        return self._gather(self.elements, values, self.n_elements)

    def gather_mesh(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """Vertex coordinates ``(n_vertices, dim)`` and element vertex ids
        ``(n_elements, dim + 1)`` on rank 0 (collective), by id."""
        owned = np.flatnonzero(self._owned)
        points = self._gather(self._vid[owned], self._vx[owned], self.n_vertices)
        cells = self._gather(self.elements, self._cell_vertex_ids(), self.n_elements)
        return points, cells

    def _cell_vertex_ids(self) -> np.ndarray:
        """``(n_local, dim + 1)`` vertex ids of the owned cells, positively oriented
        (:math:`\\det J > 0`, as Gmsh and VTK expect)."""
        ids = self._vid[self._verts]
        flip = self._det < 0
        ids[flip, :2] = ids[flip, 1::-1]
        return ids

    # ------------------------------------------------------------------ output
    def _to_blocks(self, ids: np.ndarray, values: np.ndarray, total: int) -> tuple[int, np.ndarray]:
        """Move rows so that rank r holds ids ``[total r // P, total (r+1) // P)`` in order."""
        comm = self.comm
        size = comm.size
        bounds = np.array([total * r // size for r in range(size + 1)], dtype=np.int64)
        dest = np.searchsorted(bounds, ids, side="right") - 1
        order = np.argsort(dest, kind="stable")
        values = np.ascontiguousarray(values)
        rows = np.zeros(ids.size, dtype=[("id", "i8"), ("v", values.dtype, values.shape[1:])])
        rows["id"], rows["v"] = ids[order], values[order]
        send = np.bincount(dest, minlength=size).astype(np.int64)
        recv = np.array(comm.alltoall(send.tolist()), dtype=np.int64)
        item = rows.dtype.itemsize
        out = np.empty(int(recv.sum()), dtype=rows.dtype)
        sd = np.concatenate([[0], np.cumsum(send)[:-1]]) * item
        rd = np.concatenate([[0], np.cumsum(recv)[:-1]]) * item
        comm.Alltoallv([rows.view(np.uint8), (send * item).tolist(), sd.tolist(), MPI.BYTE],
                       [out.view(np.uint8), (recv * item).tolist(), rd.tolist(), MPI.BYTE])
        out = out[np.argsort(out["id"], kind="stable")]
        start = int(bounds[comm.rank])
        if not np.array_equal(out["id"], np.arange(start, start + out.size)):
            raise RuntimeError("internal: rows do not form the rank's block")
        return start, out["v"]

    def write(self, path: str | Path, U: PETSc.Vec, element_fields: Mapping[str, np.ndarray] = {},
              nodal_name: str = "U") -> None:
        """Write mesh, solution and element fields to HDF5 + XDMF (collective).

        One HDF5 file written in parallel (h5py ``driver="mpio"``; the rows are first
        moved so that each rank holds a contiguous block of ids, then written in one
        collective hyperslab per dataset):

        * ``/mesh/geometry``: ``(n_vertices, dim)`` coordinates by vertex id;
        * ``/mesh/topology``: ``(n_elements, dim + 1)`` vertex ids by element id;
        * ``/nodal/<nodal_name>``: ``(n_vertices,)``;
        * ``/cell/<name>``: ``(n_elements,)`` per element field; a field with components
          becomes ``<name>_00``, ``<name>_01``, ... as in :meth:`BoxQ1.write`.

        Rank 0 then writes ``path.with_suffix(".xdmf")`` with ``Triangle`` /
        ``Tetrahedron`` topology and ``XY`` / ``XYZ`` geometry for ParaView.
        """
        self._write_outputs(path, U, element_fields, nodal_name)

    def _output_datasets(self, nodal_name: str, cell_sets) -> dict[str, int]:
        """Bytes of each dataset :meth:`_write_h5` writes."""
        nv, ne = self.n_vertices, self.n_elements
        sizes = {"mesh/geometry": 8 * nv * self.dim, "mesh/topology": 8 * ne * (self.dim + 1),
                 f"nodal/{nodal_name}": 8 * nv}
        sizes.update({f"cell/{name}": ne * column.dtype.itemsize for name, column in cell_sets})
        return sizes

    def _write_h5(self, f, U: PETSc.Vec, nodal_name: str, cell_sets, mpio: bool) -> None:
        dim = self.dim
        owned = np.flatnonzero(self._owned)
        vids, uvals = self._owned_nodal(U)
        vstart, xyz = self._to_blocks(vids, self._vx[owned], self.n_vertices)
        _, ublock = self._to_blocks(vids, uvals, self.n_vertices)
        estart, topo = self._to_blocks(self.elements, self._cell_vertex_ids(), self.n_elements)
        f.attrs["mesh_file"] = self.path.name
        mesh = f.create_group("mesh")
        dset = mesh.create_dataset("geometry", shape=(self.n_vertices, dim), dtype="f8")
        _write_box(dset, (vstart, 0), xyz, mpio)
        dset = mesh.create_dataset("topology", shape=(self.n_elements, dim + 1), dtype="i8")
        _write_box(dset, (estart, 0), topo, mpio)
        dset = f.create_group("nodal").create_dataset(nodal_name, shape=(self.n_vertices,), dtype="f8")
        _write_box(dset, (vstart,), ublock, mpio)
        cells = f.create_group("cell")
        for name, column in cell_sets:
            _, block = self._to_blocks(self.elements, column, self.n_elements)
            dset = cells.create_dataset(name, shape=(self.n_elements,), dtype=column.dtype)
            _write_box(dset, (estart,), block, mpio)

    def _xdmf_grid(self, domain, h5_name: str):
        dim, ne, nv = self.dim, self.n_elements, self.n_vertices
        grid = ET.SubElement(domain, "Grid", Name="simplex_p1", GridType="Uniform")
        topo = ET.SubElement(grid, "Topology", TopologyType=_TOPOLOGY[dim], NumberOfElements=str(ne))
        item = ET.SubElement(topo, "DataItem", Dimensions=f"{ne} {dim + 1}", NumberType="Int",
                             Precision="8", Format="HDF")
        item.text = f"{h5_name}:/mesh/topology"
        geom = ET.SubElement(grid, "Geometry", GeometryType="XYZ" if dim == 3 else "XY")
        item = ET.SubElement(geom, "DataItem", Dimensions=f"{nv} {dim}", NumberType="Float",
                             Precision="8", Format="HDF")
        item.text = f"{h5_name}:/mesh/geometry"
        return grid, str(nv), str(ne)
