"""Distributed Q1 solver (hmmpar.macro.box_q1): exactness, convergence, rank independence, I/O.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi/test_box_q1.py`` (N = 1, 2, 3).
"""
from __future__ import annotations

import math
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import hmmpar  # noqa: F401  (before h5py: asks Debian's h5py for its MPI build)
from hmmpar.macro.box_q1 import SIDES, BoxQ1
from mesh_output_checks import written_within_reservation

comm = MPI.COMM_WORLD
PI = math.pi


def all_sides(dim, value=0.0):
    return {s: value for s in SIDES[: 2 * dim]}


def constant(mesh, tensor):
    return np.broadcast_to(np.asarray(tensor, dtype=float), (mesh.n_local, mesh.n_qp) + np.shape(tensor))


def rate(e_coarse, e_fine, ratio=2.0):
    return math.log(e_coarse / e_fine) / math.log(ratio)


def same_on_all_ranks(verdict: bool) -> bool:
    return bool(comm.bcast(verdict, root=0))


@pytest.fixture
def shared_dir():
    d = tempfile.mkdtemp(prefix="boxq1_") if comm.rank == 0 else None
    d = Path(comm.bcast(d, root=0))
    yield d
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(d, ignore_errors=True)


# 1 ----------------------------------------------------------------------------------
LINEAR_CASES = {
    "2d-spd": ([7, 5], [[2.0, 0.5], [0.5, 1.0]]),
    "3d-spd": ([4, 3, 5], [[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]]),
    "2d-nonsym": ([6, 6], [[2.0, 0.7], [-0.4, 1.0]]),
    "3d-nonsym": ([3, 4, 4], [[2.0, 0.6, 0.0], [-0.3, 1.5, 0.2], [0.1, -0.4, 1.0]]),
    # at 2 and 3 ranks some rank owns nodes but no elements
    "2d-tiny": ([2, 2], [[2.0, 0.5], [0.5, 1.0]]),
    "3d-tiny": ([2, 2, 2], [[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]]),
}


@pytest.mark.mpi
@pytest.mark.parametrize("case", sorted(LINEAR_CASES))
def test_linear_solution_is_reproduced(case):
    cells, tensor = LINEAR_CASES[case]
    dim = len(cells)
    coeffs = np.array([2.0, -3.0, 1.0])[:dim]

    def exact(p):
        return 1.0 + p @ coeffs

    mesh = BoxQ1(comm, cells, lower=[-0.5] * dim, upper=[1.0, 0.75, 2.0][:dim])
    A, b = mesh.assemble(constant(mesh, tensor), 0.0, dirichlet={s: exact for s in SIDES[: 2 * dim]})
    U = mesh.solve(A, b, rtol=1e-13)
    nodal = mesh.nodal_values(U)
    ok = True
    if comm.rank == 0:
        axes = [mesh.lower[d] + mesh.h[d] * np.arange(cells[d] + 1) for d in range(dim)]
        grid = np.meshgrid(*axes[::-1], indexing="ij")  # [k, j, i] order
        pts = np.stack([g.ravel() for g in grid[::-1]], axis=1)
        err = np.max(np.abs(nodal.ravel() - exact(pts)))
        ok = nodal.shape == tuple(c + 1 for c in cells[::-1]) and err < 1e-8
    assert same_on_all_ranks(ok)
    e = mesh.errors(U, exact)
    assert e["l2"] < 1e-8 and e["h1"] < 1e-6  # h1 limited by the finite-difference gradient


# 2 ----------------------------------------------------------------------------------
def manufactured(dim, n):
    a = np.array([0.5, 1.0 / math.sqrt(3.0), 0.8])[:dim]

    def u(p):
        return np.prod(np.sin(PI * p), axis=1)

    def f(p):
        return PI ** 2 * a.sum() * u(p)

    mesh = BoxQ1(comm, [n] * dim)
    A, b = mesh.assemble(constant(mesh, np.diag(a)), f, dirichlet=all_sides(dim))
    U = mesh.solve(A, b)
    return mesh.errors(U, u)


@pytest.mark.mpi
def test_convergence_rates_2d():
    errs = [manufactured(2, n) for n in (8, 16, 32, 64)]
    l2 = [rate(a["l2"], b["l2"]) for a, b in zip(errs, errs[1:])]
    h1 = [rate(a["h1"], b["h1"]) for a, b in zip(errs, errs[1:])]
    assert all(abs(r - 2.0) < 0.2 for r in l2), l2
    assert all(abs(r - 1.0) < 0.2 for r in h1), h1
    # the error itself, not only its rate: |u - u_h|_1 ~ h |u|_2 / sqrt(12)-ish
    assert errs[-1]["l2"] < 2e-4 and errs[-1]["h1"] < 0.05


@pytest.mark.mpi
def test_convergence_rates_3d():
    errs = [manufactured(3, n) for n in (4, 8, 16)]
    l2 = [rate(a["l2"], b["l2"]) for a, b in zip(errs, errs[1:])]
    h1 = [rate(a["h1"], b["h1"]) for a, b in zip(errs, errs[1:])]
    assert all(abs(r - 2.0) < 0.25 for r in l2), l2
    assert all(abs(r - 1.0) < 0.25 for r in h1), h1


@pytest.mark.mpi
def test_errors_of_zero_field_are_the_norms_of_exact():
    mesh = BoxQ1(comm, [16, 12])
    U = mesh.da.createGlobalVec()
    U.set(0.0)
    e = mesh.errors(U, lambda p: np.sin(PI * p[:, 0]) * np.sin(PI * p[:, 1]))
    assert e["l2"] == pytest.approx(0.5, rel=1e-6)            # ||u||_0^2 = 1/4
    assert e["h1"] == pytest.approx(PI / math.sqrt(2.0), rel=1e-6)  # |u|_1^2 = pi^2/2


# 3 ----------------------------------------------------------------------------------
def neumann_problem(dim, n):
    """u = cos(pi x + 0.4) (1 + y [+ z/2]); Neumann on x-/x+, Dirichlet elsewhere."""
    # non-symmetric: the flux (T grad u).n sees T's antisymmetric part, -div(T grad u) does not
    T = np.array([[1.0, 0.6, -0.3], [0.1, 2.0, 0.1], [0.2, 0.1, 1.5]])[:dim, :dim]
    c = np.array([0.0, 1.0, 0.5])[:dim]  # linear part in y (and z)

    def u(p):
        return np.cos(PI * p[:, 0] + 0.4) * (1.0 + p[:, 1:] @ c[1:])

    def grad(p):
        g = np.empty_like(p)
        g[:, 0] = -PI * np.sin(PI * p[:, 0] + 0.4) * (1.0 + p[:, 1:] @ c[1:])
        g[:, 1:] = np.cos(PI * p[:, 0] + 0.4)[:, None] * c[1:]
        return g

    def f(p):  # -div(T grad u) for constant T
        s, co = np.sin(PI * p[:, 0] + 0.4), np.cos(PI * p[:, 0] + 0.4)
        uxx = -PI ** 2 * co * (1.0 + p[:, 1:] @ c[1:])
        uxy = -PI * s[:, None] * c[1:]                      # d2u/dx dy_j
        return -(T[0, 0] * uxx + uxy @ (T[0, 1:] + T[1:, 0]))

    def flux(sign):
        return lambda p: sign * (grad(p) @ T[0])            # (T grad u) . n, n = sign * e_x

    mesh = BoxQ1(comm, [n] * dim)
    dirichlet = {s: u for s in SIDES[2: 2 * dim]}
    A, b = mesh.assemble(constant(mesh, T), f, dirichlet=dirichlet,
                         neumann={"x-": flux(-1.0), "x+": flux(1.0)})
    U = mesh.solve(A, b)
    return mesh.errors(U, u)


@pytest.mark.mpi
@pytest.mark.parametrize("dim,sizes", [(2, (8, 16, 32)), (3, (4, 8, 16))])
def test_neumann_sides(dim, sizes):
    errs = [neumann_problem(dim, n)["l2"] for n in sizes]
    ratios = [a / b for a, b in zip(errs, errs[1:])]
    assert all(3.4 < r < 4.6 for r in ratios), ratios
    assert errs[-1] < (2e-3 if dim == 2 else 1e-2)


@pytest.mark.mpi
def test_wrong_neumann_flux_is_detected():
    # the same problem with the x+ flux dropped must not converge to u: guards the test above
    T = np.diag([1.0, 2.0])

    def u(p):
        return np.cos(PI * p[:, 0] + 0.4) * (1.0 + p[:, 1])

    def f(p):
        return T[0, 0] * PI ** 2 * np.cos(PI * p[:, 0] + 0.4) * (1.0 + p[:, 1])

    def flux_minus(p):
        return T[0, 0] * PI * np.sin(PI * p[:, 0] + 0.4) * (1.0 + p[:, 1])

    mesh = BoxQ1(comm, [32, 32])
    A, b = mesh.assemble(constant(mesh, T), f, dirichlet={"y-": u, "y+": u}, neumann={"x-": flux_minus})
    assert mesh.errors(mesh.solve(A, b), u)["l2"] > 1e-2


# 4 ----------------------------------------------------------------------------------
def oscillating_problem(c, cells):
    mesh = BoxQ1(c, cells, lower=[0.0] * len(cells), upper=[1.0, 1.5, 1.0][: len(cells)])
    x = mesh.quadrature_points()
    coef = 1.5 + np.prod(np.sin(2 * PI * x / 0.13), axis=2)  # scalar, fine-scale-like
    dim = len(cells)
    A, b = mesh.assemble(coef, lambda p: 1.0 + p[:, 0],
                         dirichlet={"x-": 0.0, "y+": lambda p: p[:, 0]},
                         neumann={"x+": 0.5})
    return mesh, mesh.solve(A, b, rtol=1e-13, prefix=f"rankind{dim}_")


@pytest.mark.mpi
@pytest.mark.parametrize("cells", [[23, 17], [40, 33], [9, 7, 8], [11, 10, 12]])
def test_rank_count_independence(cells):  # small (direct) and larger (GAMG) systems
    mesh, U = oscillating_problem(comm, cells)
    nodal = mesh.nodal_values(U)
    ok = True
    if comm.rank == 0:
        ref_mesh, ref_U = oscillating_problem(MPI.COMM_SELF, cells)
        ref = ref_mesh.nodal_values(ref_U)
        ok = nodal.shape == ref.shape and np.max(np.abs(nodal - ref)) < 1e-8 * max(1.0, np.max(np.abs(ref)))
        ok = ok and np.max(np.abs(ref)) > 0.1  # a non-trivial solution
    assert same_on_all_ranks(ok)


@pytest.mark.mpi
def test_scalar_coefficient_equals_isotropic_tensor():
    mesh = BoxQ1(comm, [6, 5, 4])
    a = 1.0 + mesh.quadrature_points()[..., 0] ** 2
    bcs = dict(dirichlet={"z-": 1.0, "x+": lambda p: p[:, 1]}, neumann={"y-": -0.3})
    A1, b1 = mesh.assemble(a, 2.0, **bcs)
    A2, b2 = mesh.assemble(a[..., None, None] * np.eye(3), 2.0, **bcs)
    A1.axpy(-1.0, A2)
    b1.axpy(-1.0, b2)
    assert A1.norm() < 1e-12 * A2.norm() and b1.norm() < 1e-12 * b2.norm()


@pytest.mark.mpi
def test_partition_quadrature_points_and_gathers():
    cells = [5, 4, 3]
    mesh = BoxQ1(comm, cells, lower=[1.0, 0.0, -1.0], upper=[2.0, 2.0, 0.5])
    counts = comm.allgather(mesh.n_local)
    assert sum(counts) == mesh.n_elements == 60
    assert np.all(np.diff(mesh.elements) > 0)
    i, j, k = mesh.element_index.T
    assert np.array_equal(mesh.elements, i + 5 * (j + 4 * k))
    x = mesh.quadrature_points()
    assert x.shape == (mesh.n_local, 8, 3)
    centre = mesh.lower + mesh.h * (mesh.element_index + 0.5)
    assert np.allclose(x.mean(axis=1), centre)
    d = mesh.h * 0.5 / math.sqrt(3.0)
    assert np.allclose(x[:, 0], centre - d) and np.allclose(x[:, 7], centre + d)
    assert np.allclose(x[:, 1] - x[:, 0], [2 * d[0], 0, 0])   # x fastest
    assert np.allclose(x[:, 4] - x[:, 0], [0, 0, 2 * d[2]])
    gathered = mesh.element_values(np.stack([mesh.elements, -mesh.elements], axis=1).astype(float))
    owners = mesh.element_values(np.full(mesh.n_local, comm.rank, dtype=np.int32))
    ok = True
    if comm.rank == 0:
        ok = (gathered.shape == (60, 2) and np.array_equal(gathered[:, 0], np.arange(60))
              and np.array_equal(gathered[:, 1], -np.arange(60))
              and np.array_equal(np.bincount(owners, minlength=comm.size), counts))
    else:
        ok = gathered is None and owners is None
    assert comm.allreduce(not ok) == 0


# 5 ----------------------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("cells", [[6, 5], [4, 3, 5], [2, 2, 2]])
def test_write_hdf5_and_xdmf(shared_dir, cells):
    import h5py

    dim = len(cells)
    mesh = BoxQ1(comm, cells, lower=[0.5] * dim, upper=[1.5, 2.0, 3.0][:dim])
    A, b = mesh.assemble(constant(mesh, np.eye(dim)), 1.0, dirichlet=all_sides(dim))
    U = mesh.solve(A, b)
    tensor = np.zeros((mesh.n_local, 2, 2))
    tensor[:, 0, 0] = mesh.elements
    tensor[:, 1, 0] = comm.rank
    path = shared_dir / f"sol{dim}.h5"
    mesh.write(path, U, {"id": mesh.elements.astype(float), "T": tensor}, nodal_name="u")
    nodal = mesh.nodal_values(U)
    ok = True
    if comm.rank == 0:
        node_shape = tuple(c + 1 for c in cells[::-1])
        cell_shape = tuple(cells[::-1])
        with h5py.File(path, "r") as f:
            ok &= f["nodal/u"].shape == node_shape and np.array_equal(f["nodal/u"][...], nodal)
            ok &= np.max(nodal) > 0.01
            ok &= sorted(f["cell"]) == ["T_00", "T_01", "T_10", "T_11", "id"]
            ok &= all(f["cell"][k].shape == cell_shape for k in f["cell"])
            natural = np.arange(np.prod(cells)).reshape(cell_shape)
            ok &= np.array_equal(f["cell/id"][...], natural)
            ok &= np.array_equal(f["cell/T_00"][...], natural)
            ok &= np.all(f["cell/T_01"][...] == 0.0)
            ok &= set(np.unique(f["cell/T_10"][...])) <= set(range(comm.size))
            ok &= written_within_reservation(mesh, f, path)
        root = ET.parse(path.with_suffix(".xdmf")).getroot()
        topo = root.find("Domain/Grid/Topology")
        ok &= topo.get("TopologyType") == f"{dim}DCoRectMesh"
        ok &= topo.get("Dimensions") == " ".join(map(str, node_shape))
        geom = root.find("Domain/Grid/Geometry")
        ok &= geom.get("GeometryType") == ("ORIGIN_DXDYDZ" if dim == 3 else "ORIGIN_DXDY")
        origin, spacing = [np.array(it.text.split(), float) for it in geom.findall("DataItem")]
        ok &= np.allclose(origin, mesh.lower[::-1]) and np.allclose(spacing, mesh.h[::-1])
        atts = {a.get("Name"): a for a in root.findall("Domain/Grid/Attribute")}
        ok &= sorted(atts) == ["T_00", "T_01", "T_10", "T_11", "id", "u"]
        ok &= atts["u"].get("Center") == "Node" and atts["id"].get("Center") == "Cell"
        with h5py.File(path, "r") as f:
            for name, att in atts.items():
                item = att.find("DataItem")
                fname, dset = item.text.strip().split(":")
                ok &= fname == path.name and dset in f
                ok &= tuple(map(int, item.get("Dimensions").split())) == f[dset].shape
    assert same_on_all_ranks(bool(ok))


# 6 ----------------------------------------------------------------------------------
@pytest.mark.mpi
def test_bad_input_raises_value_error():
    mesh = BoxQ1(comm, [4, 4])
    good = constant(mesh, np.eye(2))
    with pytest.raises(ValueError, match="z-"):
        mesh.assemble(good, dirichlet={"z-": 0.0})      # no z sides in 2D
    with pytest.raises(ValueError, match="top"):
        mesh.assemble(good, neumann={"top": 1.0})
    with pytest.raises(ValueError, match="both"):
        mesh.assemble(good, dirichlet={"x-": 0.0}, neumann={"x-": 1.0})
    with pytest.raises(ValueError, match="shape"):
        mesh.assemble(np.ones((mesh.n_local, 3)))
    with pytest.raises(ValueError, match="shape"):
        mesh.assemble(good[..., 0])
    with pytest.raises(ValueError, match="source"):
        mesh.assemble(good, source="one")
    with pytest.raises(ValueError, match="Dirichlet data on y-"):
        mesh.assemble(good, dirichlet={"y-": lambda p: np.ones((len(p), 2))})
    with pytest.raises(ValueError, match="shape"):
        mesh.assemble(np.ones((mesh.n_local, 4, 3, 3)))
    if mesh.n_local:
        bad = np.array(good)
        bad[0, 0, 0, 0] = np.nan
    else:
        bad = good
    if comm.allreduce(mesh.n_local > 0, op=MPI.LOR):
        with pytest.raises(ValueError, match="non-finite"):  # raised on every rank
            mesh.assemble(bad)
    for args in (([0, 3],), ([3],), ([2, 2, 2, 2],), ([2, 2], [0, 0], [1, 0]), ([2, 2], [0, 0, 0])):
        with pytest.raises(ValueError):
            BoxQ1(comm, *args)


@pytest.mark.mpi
def test_divergence_raises_runtime_error_and_options_override():
    from petsc4py import PETSc

    mesh = BoxQ1(comm, [32, 32])
    A, b = mesh.assemble(constant(mesh, np.eye(2)), 1.0, dirichlet=all_sides(2))
    opts = PETSc.Options()
    opts["capped_ksp_max_it"] = 2
    opts["capped_pc_type"] = "none"
    try:
        with pytest.raises(RuntimeError, match="diverged"):
            mesh.solve(A, b, prefix="capped_")
        assert mesh.last_iterations == 2
    finally:
        opts.delValue("capped_ksp_max_it")
        opts.delValue("capped_pc_type")
    mesh.solve(A, b)
    assert (33 * 33 > BoxQ1.DIRECT_MAX_ROWS) and 0 < mesh.last_iterations < 40  # CG + GAMG
    tiny = BoxQ1(comm, [5, 5])
    A, b = tiny.assemble(constant(tiny, np.eye(2)), 1.0, dirichlet=all_sides(2))
    tiny.solve(A, b)
    assert tiny.last_iterations == 1  # direct solve below DIRECT_MAX_ROWS
