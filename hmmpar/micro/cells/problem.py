r"""FE-HMM cell problems: the effective tensor :math:`A_H(x_l)` at a macro quadrature point.

At a macro quadrature point :math:`x_l` the sampling domain is
:math:`I_\delta = x_l + \delta\,[-1/2, 1/2]^d`. For each direction :math:`j` FE-HMM
(E & Engquist 2003; Abdulle 2005, 2009) solves the micro problem

.. math::

    -\nabla\cdot\big(a^\varepsilon \nabla \varphi_j\big) = 0 \ \text{in } I_\delta, \qquad
    \varphi_j - x_j \in W(I_\delta),

with :math:`W` the periodic functions (``bc = "periodic"``) or :math:`H^1_0`
(``"dirichlet"``), and averages the flux,

.. math::

    A_H(x_l)\, e_j = \frac{1}{|I_\delta|}\int_{I_\delta} a^\varepsilon \nabla\varphi_j \, dx ,

which for symmetric :math:`a` equals the averaged energy
:math:`\frac{1}{|I_\delta|}\int \nabla\varphi_i\cdot a^\varepsilon\nabla\varphi_j`.
With ``"oversampling"`` the Dirichlet problem is solved on a box larger by
``oversampling * delta`` on each side and the flux is averaged over the inner
:math:`I_\delta` only (Hou & Wu 1997; Henning & Ohlberger 2009), which shrinks the
boundary-layer error :math:`O(\varepsilon/\delta)` of Dirichlet cells.

Discretization: in the scaled coordinate :math:`s = (x - x_l)/\delta + 1/2 \in [0,1]^d`
the corrector :math:`w_j = (\varphi_j - x_j)/\delta` solves
:math:`\int a (e_j + \nabla_s w_j)\cdot\nabla_s v\,ds = 0` for all :math:`v \in W_h`, on a
uniform mesh of ``n`` Q1 elements per direction across :math:`I_\delta` (``h/eps =
delta / (n eps)`` must resolve the oscillation), with the coefficient sampled at the
:math:`2^d` Gauss points of each element. The stiffness matrix :math:`K` is assembled by a
numba kernel straight into the values of a fixed CSR pattern; one sparse Cholesky
factorization (PETSc, nested-dissection ordering, the symbolic analysis reused across
points; LU if :math:`a` is not symmetric) serves the :math:`d` right-hand sides
:math:`r_j = -\int a e_j\cdot\nabla N`. Then

.. math::

    (A_H)_{ij} = \int_{\text{inner}} a_{ij}\,ds + \sum_b (w_j)_b \int_{\text{inner}} e_i\cdot a\nabla N_b\,ds .

The error of the discrete :math:`A_H` against the exact cell average is
:math:`O((h/\varepsilon)^2)` for smooth coefficients (Abdulle 2005, Thm. 3.2).

Placement (:func:`cell_dependence`): a periodic cell of a whole number of periods of a
coefficient periodic in the cell is solved on the period-aligned cell :math:`[0, \delta]^d`
(its answer does not depend on the phase :math:`x_l/\varepsilon \bmod 1`), so voxel
interfaces fall on element edges when the voxels per period divide the elements per
period; every other cell is centred at :math:`x_l`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

from hmmpar.micro.cells.coefficients import check_values

BCS = ("periodic", "dirichlet", "oversampling")

_G = 1.0 / np.sqrt(3.0)  # 2-point Gauss-Legendre abscissa on [-1, 1]


@dataclass(frozen=True)
class CellSpec:
    """What fixes the micro mesh and its matrix pattern."""

    dim: int
    n: int                    # elements per direction across the averaging box I_delta
    bc: str = "periodic"
    oversampling: float = 0.0  # extra width per side, in units of delta ("oversampling" only)
    solver: str = "auto"       # sparse direct solver: auto, petsc, mumps, cholmod

    def __post_init__(self) -> None:
        if self.dim not in (2, 3):
            raise ValueError(f"cell problems are 2D or 3D, not {self.dim}D")
        if self.n < 2:
            raise ValueError(f"micro.n = {self.n}: need at least 2 elements per direction")
        if self.bc not in BCS:
            raise ValueError(f"micro.bc = {self.bc!r} is not one of {', '.join(BCS)}")
        if self.solver not in FACTOR_PACKAGES:
            raise ValueError(f"micro.solver = {self.solver!r} is not one of {', '.join(FACTOR_PACKAGES)}")
        if self.bc == "oversampling" and not self.oversampling > 0:
            raise ValueError("micro.oversampling must be > 0 with bc = 'oversampling'")

    @property
    def layers(self) -> int:
        """Oversampling layers of elements on each side of the averaging box."""
        return int(np.ceil(self.oversampling * self.n - 1e-12)) if self.bc == "oversampling" else 0


class CellMesh:
    """The micro mesh of a :class:`CellSpec`, its CSR pattern and factorization objects.

    Built once per spec and process (:func:`cell_mesh`); a solve only changes values.
    """

    def __init__(self, spec: CellSpec) -> None:
        from petsc4py import PETSc

        self.spec = spec
        d, n, m = spec.dim, spec.n, spec.layers
        nt = n + 2 * m                       # elements per direction, oversampling included
        self.h = 1.0 / n
        periodic = spec.bc == "periodic"
        nn = 2**d
        offsets = np.array([[(a >> k) & 1 for k in range(d)] for a in range(nn)], dtype=np.int64)
        # element e = i + nt*(j + nt*k): rows (i, j[, k]) with i fastest
        grid = np.indices((nt,) * d).reshape(d, -1).T[:, ::-1]  # rows (i, j[, k]) with i fastest
        self.element_index = np.ascontiguousarray(grid)
        corner = self.element_index[:, None, :] + offsets[None, :, :]   # (n_el, nn, d)
        if periodic:
            nodes_per = n
            corner = corner % n
        else:
            nodes_per = nt + 1
        stride = nodes_per ** np.arange(d)
        node = (corner * stride).sum(axis=2)                            # (n_el, nn)
        n_nodes = nodes_per**d
        if periodic:
            constrained = np.zeros(n_nodes, dtype=bool)
            constrained[0] = True                                       # pin the constant
        else:
            coords = np.indices((nodes_per,) * d).reshape(d, -1).T[:, ::-1]
            constrained = ((coords == 0) | (coords == nt)).any(axis=1)
        dof_of_node = np.full(n_nodes, -1, dtype=np.int64)
        dof_of_node[~constrained] = np.arange(int((~constrained).sum()))
        self.n_dofs = int((~constrained).sum())
        self.element_dofs = np.ascontiguousarray(dof_of_node[node])     # (n_el, nn), -1 constrained
        # CSR pattern of the dof-dof couplings and the slot of every element entry
        ra = np.repeat(self.element_dofs, nn, axis=1).reshape(-1)
        cb = np.tile(self.element_dofs, (1, nn)).reshape(-1)
        ok = (ra >= 0) & (cb >= 0)
        keys = ra[ok] * self.n_dofs + cb[ok]
        uniq = np.unique(keys)
        rows, cols = uniq // self.n_dofs, uniq % self.n_dofs
        self.indptr = np.searchsorted(rows, np.arange(self.n_dofs + 1)).astype(PETSc.IntType)
        self.indices = cols.astype(PETSc.IntType)
        slot = np.full(ra.shape[0], -1, dtype=np.int64)
        slot[ok] = np.searchsorted(uniq, keys)
        self.slot = slot.reshape(-1, nn, nn)
        # quadrature: 2^d Gauss points per element, s-coordinates of the averaging box [0, 1]^d
        ref = (offsets * 2 - 1) * _G                                    # (nq, d) in [-1, 1]^d
        self.n_qp = nn
        lower = (self.element_index - m) * self.h                       # (n_el, d)
        self.points = lower[:, None, :] + self.h * (ref[None, :, :] + 1) / 2
        # shape gradients at the Gauss points: N_a = prod_k (1 +- r_k)/2
        grads = np.empty((nn, nn, d))
        for q in range(nn):
            for a in range(nn):
                sign = offsets[a] * 2 - 1
                fac = (1 + sign * ref[q]) / 2
                for k in range(d):
                    grads[q, a, k] = sign[k] / 2 * np.prod(np.delete(fac, k))
        self.grads = grads * (2.0 / self.h)                             # d/ds of the physical element
        self.weights = np.full(nn, self.h**d / nn)                      # Gauss weights are 1 per dir.
        self.inner = np.all((self.element_index >= m) & (self.element_index < m + n), axis=1)
        self.all_inner = bool(self.inner.all())
        self.maps = {"tensor": _element_maps(self.grads, self.weights)}
        self.maps["scalar"] = self.maps["tensor"].reshape(nn, d, d, -1).trace(axis1=1, axis2=2)
        # PETSc objects: matrix with this pattern, one direct solver per symmetry kind
        self._petsc = PETSc
        self.mat = PETSc.Mat().createAIJ(size=(self.n_dofs, self.n_dofs),
                                         csr=(self.indptr, self.indices, np.zeros(self.indices.size)),
                                         comm=PETSc.COMM_SELF)
        self.mat.assemble()
        self._ksp: dict[bool, object] = {}
        self.package = _factor_package(spec, self.n_dofs)
        self.rhs = PETSc.Mat().createDense((self.n_dofs, d), comm=PETSc.COMM_SELF)
        self.rhs.setUp()
        self.sol = PETSc.Mat().createDense((self.n_dofs, d), comm=PETSc.COMM_SELF)
        self.sol.setUp()
        self.data = np.zeros(self.indices.size)

    def _solver(self, symmetric: bool):
        PETSc = self._petsc
        if symmetric not in self._ksp:
            ksp = PETSc.KSP().create(PETSc.COMM_SELF)
            ksp.setType("preonly")
            pc = ksp.getPC()
            pc.setType("cholesky" if symmetric else "lu")
            if self.package == "petsc":
                pc.setFactorOrdering("amd")
            else:
                pc.setFactorSolverType(self.package)
            self._ksp[symmetric] = ksp
        return self._ksp[symmetric]

    def solve(self, coef: np.ndarray, timings: dict | None = None) -> np.ndarray:
        """The effective tensor from the coefficient at the Gauss points: scalars
        ``(n_el, nq)`` (isotropic) or tensors ``(n_el, nq, d, d)``.

        ``timings``: if given, seconds are added to its keys ``assembly``, ``matrix_setup``,
        ``factorization`` and ``solve`` (for the benchmark's profile)."""
        d, nn = self.spec.dim, self.n_qp
        t0 = time.perf_counter()
        n_el = self.element_dofs.shape[0]
        scalar = coef.ndim == 2
        if coef.shape != ((n_el, nn) if scalar else (n_el, nn, d, d)):
            raise ValueError(f"cell coefficient has shape {coef.shape}, expected "
                             f"({n_el}, {nn}) or ({n_el}, {nn}, {d}, {d})")
        # every element quantity is linear in the element's coefficient values: one GEMM
        E = coef.reshape(n_el, -1) @ self.maps["scalar" if scalar else "tensor"]
        data = self.data
        data[:] = 0.0
        rhs = np.zeros((self.n_dofs, d))
        g = np.zeros((d, self.n_dofs))
        _scatter(self.element_dofs, self.slot, self.inner, E, data, rhs, g)
        Ein = E if self.all_inner else E[self.inner]
        m0 = Ein[:, -d * d:].sum(axis=0).reshape(d, d)
        t1 = time.perf_counter()
        symmetric = scalar or _symmetric(coef)
        if symmetric:
            self.mat.setOption(self._petsc.Mat.Option.SYMMETRIC, True)
        self.mat.setValuesCSR(self.indptr, self.indices, data)
        self.mat.assemble()
        ksp = self._solver(symmetric)
        ksp.setOperators(self.mat)
        t2 = time.perf_counter()
        ksp.setUp()
        t3 = time.perf_counter()
        self.rhs.getDenseArray()[:] = rhs
        ksp.getPC().getFactorMatrix().matSolve(self.rhs, self.sol)
        A = m0 + g @ self.sol.getDenseArray()  # inner box volume is 1 in s-coordinates
        if timings is not None:
            t4 = time.perf_counter()
            for key, a, b in (("assembly", t0, t1), ("matrix_setup", t1, t2),
                              ("factorization", t2, t3), ("solve", t3, t4)):
                timings[key] = timings.get(key, 0.0) + b - a
        return A


FACTOR_PACKAGES = ("auto", "petsc", "mumps", "cholmod")

#: bytes per (element x node pair) of the mesh, pattern and assembly arrays of a CellMesh
#: (``ra``, ``cb``, ``keys``, ``slot``, ``E`` ... of ``n_el * (2^d)^2`` entries), fitted to
#: the peak RSS of one solve (2D n = 64 .. 512: 7.1 .. 509 MB)
MESH_BYTES_PER_PAIR = 8.6 * 8
#: bytes per stored entry of the factor: value, index and the factorization's workspace
FACTOR_BYTES_PER_ENTRY = 16


def cell_sizes(spec: CellSpec) -> tuple[int, int]:
    """Elements and unknowns of the cell mesh of ``spec`` (without building it)."""
    nt = spec.n + 2 * spec.layers
    n_el = nt**spec.dim
    n_dofs = spec.n**spec.dim - 1 if spec.bc == "periodic" else (nt - 1)**spec.dim
    return n_el, n_dofs


def factor_entries(dim: int, n_dofs: int) -> float:
    r"""Estimated nonzeros of the sparse Cholesky factor of a cell matrix with ``n_dofs``
    unknowns: :math:`3.4\,N\log_2 N` in 2D (PETSc's Cholesky, AMD ordering; measured
    36 .. 60 entries per unknown for N = 4095 .. 262143) and :math:`22\,N^{4/3}` in 3D
    (MUMPS, nested dissection; measured 21.9 .. 22.0 for periodic N = 4095 .. 32767,
    12.4 for Dirichlet), the growth of nested-dissection fill (George 1973)."""
    n = max(n_dofs, 2)
    return 3.4 * n * np.log2(n) if dim == 2 else 22.0 * n ** (4.0 / 3.0)


def cell_memory(spec: CellSpec) -> int:
    r"""Peak bytes one process allocates to solve a cell problem of ``spec``:

    .. math::

        M = 68.8\, n_{el}\, (2^d)^2 + 16\, \mathrm{nnz}(L),

    the mesh / pattern / assembly arrays plus the factor (:func:`factor_entries`).
    Within a factor 0.88-1.9 of the measured peak RSS delta of one solve (2D n = 64 ..
    512, 3D n = 16 .. 32, periodic and Dirichlet; tests/unit/test_validation.py)."""
    n_el, n_dofs = cell_sizes(spec)
    nn = 2**spec.dim
    return int(MESH_BYTES_PER_PAIR * n_el * nn * nn + FACTOR_BYTES_PER_ENTRY * factor_entries(spec.dim, n_dofs))


def _factor_package(spec: "CellSpec", n_dofs: int) -> str:
    """The sparse direct solver of a cell mesh.

    ``auto``: MUMPS (multifrontal, dense BLAS kernels) for 3D cells with more than 400
    unknowns, where it factorizes 7-8x faster than PETSc's own Cholesky (16^3 periodic:
    39 ms against 284 ms, Dirichlet 12 against 52 ms, one core); PETSc's Cholesky with
    the AMD ordering otherwise (2D 32^2 periodic: 0.41 ms, MUMPS 0.90 ms, CHOLMOD 1.18 ms).
    Falls back to PETSc when MUMPS is not in this PETSc build."""
    want = spec.solver
    if want == "auto":
        want = "mumps" if spec.dim == 3 and n_dofs > 400 else "petsc"
        if want != "petsc" and want not in available_factor_packages():
            want = "petsc"
    elif want != "petsc" and want not in available_factor_packages():
        raise ValueError(f"micro.solver = {want!r}: this PETSc build has no {want} "
                         f"(available: {', '.join(['petsc', *available_factor_packages()])})")
    return want


@lru_cache(maxsize=1)
def available_factor_packages() -> tuple[str, ...]:
    """External factorization packages of this PETSc build that can factor an SPD matrix."""
    from petsc4py import PETSc
    out = []
    A = PETSc.Mat().createAIJ(size=(2, 2), csr=([0, 1, 2], [0, 1], [2.0, 3.0]), comm=PETSc.COMM_SELF)
    A.assemble()
    A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
    for pkg in ("mumps", "cholmod"):
        ksp = PETSc.KSP().create(PETSc.COMM_SELF)
        try:
            ksp.setType("preonly")
            ksp.getPC().setType("cholesky")
            ksp.getPC().setFactorSolverType(pkg)
            ksp.setOperators(A)
            ksp.setUp()
            out.append(pkg)
        except PETSc.Error:
            pass
        finally:
            ksp.destroy()
    A.destroy()
    return tuple(out)


def _symmetric(coef: np.ndarray) -> bool:
    """Is every tensor of ``(n_el, nq, d, d)`` exactly symmetric (compares the off-diagonals)."""
    d = coef.shape[-1]
    iu = np.triu_indices(d, 1)
    return bool(np.array_equal(coef[..., iu[0], iu[1]], coef[..., iu[1], iu[0]]))


def _element_maps(grads: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""The linear map from an element's coefficient tensors to its local quantities.

    With :math:`G_{qbk} = \partial_k N_b` at Gauss point :math:`q` (the same on every
    element of the uniform mesh) and weights :math:`w_q`, the element matrix, load, flux
    rows and coefficient integral are

    .. math::

        K_{pb} = \sum_q w_q G_{qpi} a^q_{ik} G_{qbk},\quad
        r_{pj} = -\sum_q w_q G_{qpi} a^q_{ij},\quad
        g_{ib} = \sum_q w_q a^q_{ik} G_{qbk},\quad
        m_{ij} = \sum_q w_q a^q_{ij},

    all linear in the :math:`n_q d^2` values :math:`a^q_{ik}`. Returns the matrix
    ``(nq*d*d, nn*nn + nn*d + d*nn + d*d)`` whose columns are ``K`` (row-major ``p, b``),
    ``r`` (``p, j``), ``g`` (``i, b``) and ``m`` (``i, j``); a row of coefficient values
    times it gives all four at once, so the assembly of all elements is one matrix product.
    """
    nq, nn, d = grads.shape
    eye = np.eye(d)
    K = np.einsum("q,qpi,qbk->qikpb", weights, grads, grads).reshape(nq * d * d, nn * nn)
    R = -np.einsum("q,qpi,jl->qijpl", weights, grads, eye).reshape(nq * d * d, nn * d)
    G = np.einsum("q,il,qbk->qiklb", weights, eye, grads).reshape(nq * d * d, d * nn)
    M = np.einsum("q,il,jm->qijlm", weights, eye, eye).reshape(nq * d * d, d * d)
    return np.ascontiguousarray(np.hstack([K, R, G, M]))


@numba.njit(cache=True)
def _scatter(element_dofs, slot, inner, E, data, rhs, g):  # pragma: no cover
    """Add the element quantities ``E`` (rows of :func:`_element_maps` columns) into the CSR
    values ``data``, the right-hand sides ``rhs`` and the flux rows ``g`` (inner elements)."""
    n_el, nn = element_dofs.shape
    d = rhs.shape[1]
    off_r = nn * nn
    off_g = off_r + nn * d
    for e in range(n_el):
        for p in range(nn):
            dp = element_dofs[e, p]
            if dp < 0:
                continue
            for b in range(nn):
                idx = slot[e, p, b]
                if idx >= 0:
                    data[idx] += E[e, p * nn + b]
            for j in range(d):
                rhs[dp, j] += E[e, off_r + p * d + j]
            if inner[e]:
                for i in range(d):
                    g[i, dp] += E[e, off_g + i * nn + p]


@lru_cache(maxsize=8)
def cell_mesh(spec: CellSpec) -> CellMesh:
    """The (per-process, cached) mesh and solver of a cell spec."""
    return CellMesh(spec)


def whole_periods(eps: float, delta: float) -> int | None:
    r"""The number of periods :math:`\delta/\varepsilon` across the cell when it is a whole
    number (to a relative 1e-9, so that ``delta = k * eps`` computed in floating point
    counts), else None."""
    ratio = delta / eps
    k = round(ratio)
    return int(k) if k >= 1 and abs(ratio - k) <= 1e-9 * ratio else None


#: what a cell problem at x_l depends on besides the coefficient and the cell spec
DEPENDENCE = ("nothing", "slow", "phase", "position")


def cell_dependence(coefficient, spec: CellSpec, *, eps: float, delta: float, frozen: bool) -> str:
    r"""What the cell problem at :math:`x_l` depends on: one of :data:`DEPENDENCE`.

    The cell coefficient is :math:`a(\xi, x/\varepsilon)` on :math:`I_\delta(x_l)`, with
    :math:`\xi = x_l` (``frozen``) or :math:`\xi = x`. When it is periodic in the cell
    (:math:`a` 1-periodic in :math:`y` and :math:`\xi` constant in the cell: frozen, or a
    coefficient without slow dependence), a periodic cell of a whole number of periods has
    the same effective tensor at every phase :math:`x_l/\varepsilon \bmod 1` (a shift of a
    periodic problem), so :func:`effective_tensor` solves it on the period-aligned cell:

    - ``"nothing"``: periodic cell, whole periods, no slow dependence: one cell problem;
    - ``"slow"``: the same, frozen with slow dependence: it depends on :math:`x_l` only
      through :math:`a(x_l, \cdot)`;
    - ``"phase"``: no slow dependence, but the cell is Dirichlet / oversampling or not a
      whole number of periods: it depends on :math:`x_l/\varepsilon \bmod 1`;
    - ``"position"``: anything else (slow dependence inside the cell, a coefficient not
      periodic in :math:`y`): it depends on :math:`x_l` itself.

    ``coefficient.periodic_in_y(d)`` and ``coefficient.depends_on_x`` say what the
    coefficient is (:mod:`hmmpar.micro.cells.coefficients`; an object without them counts as
    periodic in y and without slow dependence, the defaults of ``Coefficient``).
    """
    check = getattr(coefficient, "periodic_in_y", None)
    periodic_y = True if check is None else bool(check(spec.dim))
    slow = bool(getattr(coefficient, "depends_on_x", False))
    if periodic_y and (frozen or not slow) and spec.bc == "periodic" and whole_periods(eps, delta):
        return "slow" if slow else "nothing"
    if periodic_y and not slow:
        return "phase"
    return "position"


def cell_points(spec: CellSpec, x_l: np.ndarray, delta: float) -> np.ndarray:
    """Physical coordinates of the micro Gauss points of the cell centred at ``x_l``,
    ``(n_el, nq, d)``."""
    mesh = cell_mesh(spec)
    return np.asarray(x_l, dtype=float)[None, None, :] + delta * (mesh.points - 0.5)


def effective_tensor(coefficient, x_l: np.ndarray, spec: CellSpec, *, eps: float, delta: float,
                     frozen: bool = True, timings: dict | None = None) -> np.ndarray:
    r"""The FE-HMM effective tensor :math:`A_H(x_l)` (``d x d``).

    ``frozen``: the coefficient is :math:`a(x_l, x/\varepsilon)` in the cell (locally
    periodic problems, the slow variable frozen at the quadrature point); otherwise
    :math:`a(x, x/\varepsilon)` (a general :math:`a^\varepsilon`). ``timings``: add the
    seconds of each phase (``coefficient`` and those of :meth:`CellMesh.solve`) to this dict.

    Placement: when the answer does not depend on the phase (:func:`cell_dependence` is
    ``"nothing"`` or ``"slow"``), the cell is the period-aligned :math:`[0, \delta]^d`, i.e.
    :math:`y = k s` with :math:`k = \delta/\varepsilon` periods and :math:`s \in [0, 1]^d`
    the mesh coordinate: element edges sit at :math:`y = k\,i/n`, so the interfaces of a
    voxel image with :math:`m` voxels per period side lie on element edges when :math:`m`
    divides :math:`n/k`, every element then samples one voxel at all its Gauss points, and
    the result is the exact Q1 answer for that image (monotone under refinement). Otherwise
    the cell is :math:`I_\delta(x_l)`, centred at :math:`x_l`.
    """
    t0 = time.perf_counter()
    mesh = cell_mesh(spec)
    x_l = np.asarray(x_l, dtype=float)
    if cell_dependence(coefficient, spec, eps=eps, delta=delta, frozen=frozen) in ("nothing", "slow"):
        y = whole_periods(eps, delta) * mesh.points.reshape(-1, spec.dim)
        pts = eps * y
    else:
        pts = cell_points(spec, x_l, delta).reshape(-1, spec.dim)
        y = pts / eps
    slow = np.broadcast_to(x_l, pts.shape) if frozen else pts
    coef = np.asarray(coefficient.values(np.ascontiguousarray(slow), y), dtype=float)
    check_values(coefficient, coef, slow, y)  # finite, positive (definite)
    coef = np.ascontiguousarray(coef.reshape(mesh.points.shape[:2] + coef.shape[1:]))
    if timings is not None:
        timings["coefficient"] = timings.get("coefficient", 0.0) + time.perf_counter() - t0
    return mesh.solve(coef, timings)
