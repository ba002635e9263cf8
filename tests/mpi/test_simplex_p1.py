"""P1 elements on Gmsh simplex meshes (hmmpar.macro.simplex_p1): exactness, convergence,
Neumann data, numbering, rank independence, I/O, errors.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi/test_simplex_p1.py`` (N = 1, 2, 3).
The meshes come from tests/data/make_meshes.py: jittered, randomly numbered triangulations
of the unit square / cube with the physical groups left, right, bottom, top (2D) and
left, right, front, back, bottom, top (3D).
"""
from __future__ import annotations

import math
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import hmmpar  # noqa: F401  (before h5py: asks Debian's h5py for its MPI build)
from hmmpar.macro.simplex_p1 import SimplexP1, read_physical_names
from mesh_output_checks import written_within_reservation

DATA = Path(__file__).resolve().parents[1] / "data"
sys.path.insert(0, str(DATA))
import make_meshes as mm  # noqa: E402

comm = MPI.COMM_WORLD
PI = math.pi
SIDES = {2: mm.SIDE_NAMES[2], 3: mm.SIDE_NAMES[3]}


def same_on_all_ranks(verdict: bool) -> bool:
    return bool(comm.bcast(verdict, root=0))


def rate(e_coarse, e_fine, ratio=2.0):
    return math.log(e_coarse / e_fine) / math.log(ratio)


def constant(mesh, tensor):
    return np.broadcast_to(np.asarray(tensor, dtype=float), (mesh.n_local, mesh.n_qp) + np.shape(tensor))


@pytest.fixture(scope="module")
def mesh_dir():
    d = tempfile.mkdtemp(prefix="simplex_") if comm.rank == 0 else None
    d = Path(comm.bcast(d, root=0))
    yield d
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(d, ignore_errors=True)


def mesh_file(directory: Path, dim: int, n: int, *, seed: int = 0, fmt: str = "22") -> Path:
    """Write (rank 0) the n^dim grid mesh once; collective."""
    path = directory / f"box{dim}_{n}_{seed}_{fmt}.msh"
    if comm.rank == 0 and not path.exists():
        mesh = mm.box_mesh([n] * dim, seed=seed)
        (mm.write_msh22 if fmt == "22" else mm.write_msh41)(path, mesh)
    comm.Barrier()
    return path


# 1 ----------------------------------------------------------------------------------
TENSORS = {
    2: [[2.0, 0.5], [0.5, 1.0]],
    3: [[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]],
}
NONSYM = {
    2: [[2.0, 0.7], [-0.4, 1.0]],
    3: [[2.0, 0.6, 0.0], [-0.3, 1.5, 0.2], [0.1, -0.4, 1.0]],
}


@pytest.mark.mpi
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kind", ["spd", "nonsym"])
def test_affine_solution_is_reproduced(dim, kind):
    """Patch test: u = 1 + c.x with a constant tensor, Dirichlet on every side."""
    tensor = (TENSORS if kind == "spd" else NONSYM)[dim]
    c = np.array([2.0, -3.0, 1.0])[:dim]

    def exact(p):
        return 1.0 + p @ c

    mesh = SimplexP1(comm, DATA / ("square.msh" if dim == 2 else "cube.msh"))
    A, b = mesh.assemble(constant(mesh, tensor), 0.0, dirichlet={s: exact for s in SIDES[dim]})
    U = mesh.solve(A, b, rtol=1e-13)
    nodal = mesh.nodal_values(U)
    points, _ = mesh.gather_mesh()
    ok = True
    if comm.rank == 0:
        ok = nodal.shape == (mesh.n_vertices,) and np.max(np.abs(nodal - exact(points))) < 1e-10
    assert same_on_all_ranks(ok)
    e = mesh.errors(U, exact)
    assert e["l2"] < 1e-10 and e["h1"] < 1e-6  # h1 limited by the finite-difference gradient


@pytest.mark.mpi
@pytest.mark.parametrize("dim", [2, 3])
def test_affine_solution_with_neumann_groups(dim):
    """u = 1 + c.x, flux (T grad u).n on two groups, Dirichlet on the others: exact."""
    T = np.array(NONSYM[dim])
    c = np.array([2.0, -3.0, 1.0])[:dim]
    flux = T @ c

    def exact(p):
        return 1.0 + p @ c

    mesh = SimplexP1(comm, DATA / ("square.msh" if dim == 2 else "cube.msh"))
    neumann = {"left": -flux[0], "top": flux[dim - 1]}          # outward normals -e_x, +e_last
    dirichlet = {s: exact for s in SIDES[dim] if s not in neumann}
    A, b = mesh.assemble(constant(mesh, T), 0.0, dirichlet=dirichlet, neumann=neumann)
    U = mesh.solve(A, b, rtol=1e-13)
    assert mesh.errors(U, exact)["l2"] < 1e-10


# 2 ----------------------------------------------------------------------------------
def smooth_problem(path: Path, dim: int):
    """u = sin(pi x) cos(pi y / 2) (1 + z), full SPD tensor T, u on every side."""
    T = np.array(TENSORS[dim])

    def u(p):
        z = p[:, 2] if dim == 3 else 0.0
        return np.sin(PI * p[:, 0]) * np.cos(0.5 * PI * p[:, 1]) * (1.0 + z)

    def f(p):  # -T : hess(u)
        x, y = p[:, 0], p[:, 1]
        z = p[:, 2] if dim == 3 else 0.0
        s, co, sy, cy = np.sin(PI * x), np.cos(PI * x), np.sin(0.5 * PI * y), np.cos(0.5 * PI * y)
        H = np.zeros((len(p), dim, dim))
        H[:, 0, 0] = -PI ** 2 * s * cy * (1 + z)
        H[:, 1, 1] = -0.25 * PI ** 2 * s * cy * (1 + z)
        H[:, 0, 1] = H[:, 1, 0] = -0.5 * PI ** 2 * co * sy * (1 + z)
        if dim == 3:
            H[:, 0, 2] = H[:, 2, 0] = PI * co * cy
            H[:, 1, 2] = H[:, 2, 1] = -0.5 * PI * s * sy
        return -np.einsum("ij,nij->n", T, H)

    mesh = SimplexP1(comm, path)
    A, b = mesh.assemble(constant(mesh, T), f, dirichlet={s: u for s in SIDES[dim]})
    U = mesh.solve(A, b)
    return mesh.errors(U, u)


@pytest.mark.mpi
@pytest.mark.parametrize("dim,sizes", [(2, (8, 16, 32, 64)), (3, (5, 10, 20))])
def test_convergence_rates(mesh_dir, dim, sizes):
    errs = [smooth_problem(mesh_file(mesh_dir, dim, n, seed=n), dim) for n in sizes]
    l2 = [rate(a["l2"], b["l2"]) for a, b in zip(errs, errs[1:])]
    h1 = [rate(a["h1"], b["h1"]) for a, b in zip(errs, errs[1:])]
    assert all(abs(r - 2.0) < 0.2 for r in l2), l2
    assert all(abs(r - 1.0) < 0.2 for r in h1), h1


def neumann_problem(path: Path, drop_right: bool = False):
    """2D: u = cos(pi x + 0.4)(1 + y), non-symmetric T; Neumann on left and right."""
    T = np.array([[1.0, 0.6], [0.1, 2.0]])

    def u(p):
        return np.cos(PI * p[:, 0] + 0.4) * (1.0 + p[:, 1])

    def grad(p):
        return np.stack([-PI * np.sin(PI * p[:, 0] + 0.4) * (1.0 + p[:, 1]),
                         np.cos(PI * p[:, 0] + 0.4)], axis=1)

    def f(p):  # -div(T grad u): u_xx T00 + u_xy (T01 + T10), u_yy = 0
        uxx = -PI ** 2 * np.cos(PI * p[:, 0] + 0.4) * (1.0 + p[:, 1])
        uxy = -PI * np.sin(PI * p[:, 0] + 0.4)
        return -(T[0, 0] * uxx + (T[0, 1] + T[1, 0]) * uxy)

    neumann = {"left": lambda p: -(grad(p) @ T[0])}
    if not drop_right:
        neumann["right"] = lambda p: grad(p) @ T[0]
    mesh = SimplexP1(comm, path)
    A, b = mesh.assemble(constant(mesh, T), f, dirichlet={"bottom": u, "top": u}, neumann=neumann)
    return mesh.errors(mesh.solve(A, b), u)


@pytest.mark.mpi
def test_neumann_group_converges_to_exact_solution(mesh_dir):
    errs = [neumann_problem(mesh_file(mesh_dir, 2, n, seed=n))["l2"] for n in (8, 16, 32, 64)]
    rates = [rate(a, b) for a, b in zip(errs, errs[1:])]
    assert all(abs(r - 2.0) < 0.25 for r in rates), (errs, rates)
    assert errs[-1] < 1e-3
    # the same problem without the right flux must not converge to u
    assert neumann_problem(mesh_file(mesh_dir, 2, 32, seed=32), drop_right=True)["l2"] > 1e-2


# 3 ----------------------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("dim", [2, 3])
def test_numbering_follows_the_file(mesh_dir, dim):
    """Element ids are the file order of the cells, vertex ids the node order, and
    quadrature point q sits nearest to the q-th vertex (ascending ids) of its element."""
    n = 6 if dim == 2 else 3
    path = mesh_file(mesh_dir, dim, n, seed=7)
    ref = mm.box_mesh([n] * dim, seed=7)                 # what the file holds
    mesh = SimplexP1(comm, path)
    assert mesh.n_elements == len(ref.cells) and mesh.n_vertices == len(ref.points)
    assert np.all(np.diff(mesh.elements) > 0)
    assert comm.allreduce(mesh.n_local) == mesh.n_elements
    qp = mesh.element_values(mesh.quadrature_points())
    points, cells = mesh.gather_mesh()
    ok = True
    if comm.rank == 0:
        ok &= np.array_equal(points, ref.points)
        ok &= np.array_equal(np.sort(cells, axis=1), np.sort(ref.cells, axis=1))
        lam = np.full((dim + 1, dim + 1), 1.0 / 6.0) if dim == 2 else np.full((4, 4), (5 - 5 ** 0.5) / 20)
        np.fill_diagonal(lam, 2.0 / 3.0 if dim == 2 else (5 + 3 * 5 ** 0.5) / 20)
        expected = np.einsum("qa,ead->eqd", lam, ref.points[np.sort(ref.cells, axis=1)])
        ok &= np.allclose(qp, expected, rtol=0, atol=1e-14)
        X = ref.points[cells]
        ok &= bool(np.all(np.linalg.det(X[:, 1:] - X[:, :1]) > 0))  # written positively oriented
    assert same_on_all_ranks(bool(ok))


@pytest.mark.mpi
def test_gmsh_41_equals_22(mesh_dir):
    a = SimplexP1(comm, mesh_file(mesh_dir, 3, 3, seed=4, fmt="22"))
    b = SimplexP1(comm, mesh_file(mesh_dir, 3, 3, seed=4, fmt="41"))
    assert a.boundary_groups == b.boundary_groups
    qa, qb = a.element_values(a.quadrature_points()), b.element_values(b.quadrature_points())
    assert same_on_all_ranks(comm.rank != 0 or np.array_equal(qa, qb))


def oscillating_problem(c, path: Path):
    mesh = SimplexP1(c, path)
    x = mesh.quadrature_points()
    coef = 1.5 + np.prod(np.sin(2 * PI * x / 0.13), axis=2)
    A, b = mesh.assemble(coef, lambda p: 1.0 + p[:, 0],
                         dirichlet={"left": 0.0, "top": lambda p: p[:, 0]}, neumann={"right": 0.5})
    return mesh, mesh.solve(A, b, rtol=1e-13, prefix=f"rankind{mesh.dim}_"), coef


@pytest.mark.mpi
@pytest.mark.parametrize("dim,n", [(2, 7), (2, 40), (3, 4), (3, 11)])  # direct and GAMG solves
def test_rank_count_independence(mesh_dir, dim, n):
    path = mesh_file(mesh_dir, dim, n, seed=3)
    mesh, U, coef = oscillating_problem(comm, path)
    nodal = mesh.nodal_values(U)
    coef_all = mesh.element_values(coef)
    ok = True
    if comm.rank == 0:
        ref_mesh, ref_U, ref_coef = oscillating_problem(MPI.COMM_SELF, path)
        ref = ref_mesh.nodal_values(ref_U)
        ok = nodal.shape == ref.shape and np.max(np.abs(nodal - ref)) < 1e-8 * np.max(np.abs(ref))
        ok = ok and np.max(np.abs(ref)) > 0.1
        ok = ok and coef_all.tobytes() == ref_coef.tobytes()  # same points, bit for bit
    assert same_on_all_ranks(bool(ok))


# 4 ----------------------------------------------------------------------------------
@pytest.fixture
def shared_dir():
    d = tempfile.mkdtemp(prefix="simplexio_") if comm.rank == 0 else None
    d = Path(comm.bcast(d, root=0))
    yield d
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.mpi
@pytest.mark.parametrize("dim", [2, 3])
def test_write_hdf5_and_xdmf(shared_dir, dim):
    import h5py

    mesh = SimplexP1(comm, DATA / ("square.msh" if dim == 2 else "cube.msh"))
    A, b = mesh.assemble(constant(mesh, np.eye(dim)), 1.0, dirichlet={s: 0.0 for s in SIDES[dim]})
    U = mesh.solve(A, b)
    tensor = np.zeros((mesh.n_local, 2, 2))
    tensor[:, 0, 0] = mesh.elements
    tensor[:, 1, 0] = comm.rank
    path = shared_dir / f"sol{dim}.h5"
    mesh.write(path, U, {"id": mesh.elements.astype(float), "T": tensor}, nodal_name="u")
    nodal = mesh.nodal_values(U)
    points, cells = mesh.gather_mesh()
    ok = True
    if comm.rank == 0:
        ne, nv = mesh.n_elements, mesh.n_vertices
        with h5py.File(path, "r") as f:
            ok &= np.array_equal(f["nodal/u"][...], nodal) and np.max(nodal) > 0.01
            ok &= np.array_equal(f["mesh/geometry"][...], points)
            ok &= np.array_equal(f["mesh/topology"][...], cells)
            ok &= sorted(f["cell"]) == ["T_00", "T_01", "T_10", "T_11", "id"]
            ok &= np.array_equal(f["cell/id"][...], np.arange(ne))
            ok &= set(np.unique(f["cell/T_10"][...])) <= set(range(comm.size))
            ok &= written_within_reservation(mesh, f, path)
        root = ET.parse(path.with_suffix(".xdmf")).getroot()
        topo = root.find("Domain/Grid/Topology")
        ok &= topo.get("TopologyType") == ("Triangle" if dim == 2 else "Tetrahedron")
        ok &= topo.get("NumberOfElements") == str(ne)
        ok &= root.find("Domain/Grid/Geometry").get("GeometryType") == ("XY" if dim == 2 else "XYZ")
        atts = {a.get("Name"): a for a in root.findall("Domain/Grid/Attribute")}
        ok &= sorted(atts) == ["T_00", "T_01", "T_10", "T_11", "id", "u"]
        ok &= atts["u"].get("Center") == "Node" and atts["id"].get("Center") == "Cell"
        with h5py.File(path, "r") as f:
            for item in root.iter("DataItem"):
                fname, dset = item.text.strip().split(":")
                ok &= fname == path.name and dset in f
                ok &= tuple(map(int, item.get("Dimensions").split())) == f[dset].shape
        ok &= nv == len(points)
    assert same_on_all_ranks(bool(ok))


# 5 ----------------------------------------------------------------------------------
def write_text(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    if comm.rank == 0:
        path.write_text(text)
    comm.Barrier()
    return path


QUADS = """$MeshFormat
2.2 0 8
$EndMeshFormat
$Nodes
4
1 0 0 0
2 1 0 0
3 1 1 0
4 0 1 0
$EndNodes
$Elements
1
1 3 2 1 1 1 2 3 4
$EndElements
"""
FLAT = QUADS.replace("1 3 2 1 1 1 2 3 4", "1 2 2 1 1 1 2 3").replace("3 1 1 0", "3 0.5 0 0")


@pytest.mark.mpi
def test_bad_files_and_groups_raise_value_error_everywhere(shared_dir):
    with pytest.raises(ValueError, match="not found"):
        SimplexP1(comm, shared_dir / "missing.msh")
    with pytest.raises(ValueError, match="cannot read mesh file .*MeshFormat"):
        SimplexP1(comm, write_text(shared_dir, "junk.msh", "hello\n"))
    with pytest.raises(ValueError, match="cannot read mesh file"):
        SimplexP1(comm, write_text(shared_dir, "cut.msh", (DATA / "square.msh").read_text()[:1500]))
    with pytest.raises(ValueError, match="not triangles"):
        SimplexP1(comm, write_text(shared_dir, "quads.msh", QUADS))
    with pytest.raises(ValueError, match="degenerate"):
        SimplexP1(comm, write_text(shared_dir, "flat.msh", FLAT))
    mesh = SimplexP1(comm, DATA / "square.msh")
    good = constant(mesh, np.eye(2))
    with pytest.raises(ValueError, match=r"unknown Dirichlet physical group 'x-' .* left, right, bottom, top"):
        mesh.assemble(good, dirichlet={"x-": 0.0})
    with pytest.raises(ValueError, match="'domain' is a 2D physical group"):
        mesh.assemble(good, neumann={"domain": 1.0})
    with pytest.raises(ValueError, match="both"):
        mesh.assemble(good, dirichlet={"left": 0.0}, neumann={"left": 1.0})
    with pytest.raises(ValueError, match="shape"):
        mesh.assemble(np.ones((mesh.n_local, 4)))
    # an unnamed group can be addressed by its tag
    A, b = mesh.assemble(good, 1.0, dirichlet={"1": 0.0, "right": 0.0})
    assert mesh.solve(A, b).norm() > 0


@pytest.mark.mpi
def test_physical_names_parser(shared_dir):
    text = '$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$PhysicalNames\n3\n1 1 "inlet"\n1 2 "a b"\n2 3 "inlet"\n' \
           '$EndPhysicalNames\n$Nodes\n'
    path = write_text(shared_dir, "names.msh", text)
    assert read_physical_names(path) == {"inlet": (2, 3), "a b": (1, 2)}
    assert read_physical_names(DATA / "square.msh")["top"] == (1, 4)


@pytest.mark.mpi
def test_solver_defaults_options_and_divergence(mesh_dir):
    from petsc4py import PETSc

    mesh = SimplexP1(comm, mesh_file(mesh_dir, 2, 40, seed=3))
    assert mesh.n_vertices > SimplexP1.DIRECT_MAX_ROWS
    A, b = mesh.assemble(constant(mesh, np.eye(2)), 1.0, dirichlet={s: 0.0 for s in SIDES[2]})
    opts = PETSc.Options()
    opts["cappedp1_ksp_max_it"] = 2
    opts["cappedp1_pc_type"] = "none"
    try:
        with pytest.raises(RuntimeError, match="diverged"):
            mesh.solve(A, b, prefix="cappedp1_")
        assert mesh.last_iterations == 2
    finally:
        opts.delValue("cappedp1_ksp_max_it")
        opts.delValue("cappedp1_pc_type")
    mesh.solve(A, b)
    assert 1 < mesh.last_iterations < 40  # CG + GAMG
    small = SimplexP1(comm, DATA / "square.msh")
    A, b = small.assemble(constant(small, np.eye(2)), 1.0, dirichlet={s: 0.0 for s in SIDES[2]})
    small.solve(A, b)
    assert small.last_iterations == 1  # direct below DIRECT_MAX_ROWS
