"""Periodic cells on the period-aligned mesh (issue 11, item 2a).

A periodic cell of a whole number of periods of a coefficient that is periodic in the cell
has the same effective tensor at every phase x_l/eps mod 1, so it is solved with its corner
at a multiple of eps: a voxel image with m voxels per period side then has its interfaces
on element edges when m divides the elements per period, and the discrete A_H is the exact
Q1 answer for the image. Checked here against an independent assembly of that
discretisation (element-constant coefficient sampled at element centres, the closed-form
Q1 element matrix, SciPy's direct solver), by the monotone decrease under nested refinement
that a conforming discretisation of the exact coefficient guarantees, and by phase
independence; Dirichlet, oversampling, non-whole-period cells and coefficients that are not
periodic in the cell keep their phase.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import hmmpar  # noqa: F401
from hmmpar.micro.cells.coefficients import Formula, Product, Sine, UserFunction, Voxels
from hmmpar.micro.cells.problem import CellSpec, cell_dependence, cell_mesh, cell_points, effective_tensor

CHECKER = np.array([[1.0, 10.0], [10.0, 1.0]])  # 2x2 checkerboard: A_0 = sqrt(10) I (Dykhne)
EPS = 0.01


def reference_q1(grid: np.ndarray, n: int, periods: int) -> np.ndarray:
    """A_H of the periodic Q1 cell problem on [0, periods]^2 (in periods), n x n square
    elements, each with the voxel value at its centre; assembled and solved here with SciPy.

    Scaled to the unit square (h = 1/n), the corrector w_j solves K w_j = -b_j, with the
    bilinear element matrix a_e [[4, -1, -2, -1], ...] / 6 (nodes counter-clockwise) and
    b_j(p) = sum_e a_e int_e d_j N_p = a_e h (+-1/2); then A_ij = <a> delta_ij + b_i . w_j.
    """
    h = 1.0 / n
    centre = periods * (np.arange(n) + 0.5) * h
    m = np.array(grid.shape)
    i1 = np.floor(np.mod(centre, 1.0) * m[0]).astype(int)
    i2 = np.floor(np.mod(centre, 1.0) * m[1]).astype(int)
    a = grid[i1[:, None], i2[None, :]]                       # a[e1, e2]
    Ke = np.array([[4, -1, -2, -1], [-1, 4, -1, -2], [-2, -1, 4, -1], [-1, -2, -1, 4]]) / 6.0
    corners = [(0, 0), (1, 0), (1, 1), (0, 1)]
    dN = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * h / 2  # int_e d_k N_p
    rows, cols, vals = [], [], []
    b = np.zeros((n * n, 2))
    for e1 in range(n):
        for e2 in range(n):
            nodes = [((e1 + c1) % n) + n * ((e2 + c2) % n) for c1, c2 in corners]
            for p in range(4):
                for q in range(4):
                    rows.append(nodes[p]), cols.append(nodes[q]), vals.append(a[e1, e2] * Ke[p, q])
                b[nodes[p]] += a[e1, e2] * dN[p]
    K = sp.csr_matrix((vals, (rows, cols)), shape=(n * n, n * n))
    w = np.zeros((n * n, 2))
    w[1:] = spla.spsolve(K[1:, 1:].tocsc(), -b[1:])         # pin the constant at node 0
    return a.mean() * np.eye(2) + b.T @ w


@pytest.mark.parametrize("grid,n,periods", [
    (CHECKER, 8, 1),
    (CHECKER, 16, 2),
    (np.random.default_rng(1).uniform(0.5, 20.0, (4, 2)), 16, 1),  # m = 4 x 2, not symmetric
])
def test_aligned_cell_is_the_exact_q1_answer_for_the_image(grid, n, periods):
    expected = reference_q1(grid, n, periods)
    for x_l in ([0.123, 0.456], [0.5 * EPS, 0.5 * EPS], [0.77, 0.0311]):
        A = effective_tensor(Voxels(grid), np.array(x_l), CellSpec(2, n), eps=EPS, delta=periods * EPS)
        np.testing.assert_allclose(A, expected, rtol=1e-11, atol=1e-11 * grid.max())


def test_checkerboard_refinement_decreases_monotonically_to_sqrt10():
    """Nested conforming meshes with the image represented exactly can only lower the
    energy: A_11 decreases strictly with n and stays above sqrt(10). Before the alignment,
    the cell centred at x_l = (0.123, 0.456) gave 3.8445, 3.4149, 3.4043, 3.2661."""
    x_l = np.array([0.123, 0.456])
    A = [effective_tensor(Voxels(CHECKER), x_l, CellSpec(2, n), eps=EPS, delta=EPS) for n in (8, 16, 32, 64)]
    a11 = np.array([a[0, 0] for a in A])
    assert np.all(np.diff(a11) < 0), a11
    assert np.all(a11 > math.sqrt(10)), a11
    np.testing.assert_allclose(a11, [3.6659, 3.4442, 3.3232, 3.2550], atol=5e-5)  # measured, docs/elliptic.md
    for a in A:  # the checkerboard is symmetric under y1 <-> y2
        assert abs(a[1, 1] - a[0, 0]) < 1e-10 * a[0, 0] and abs(a[0, 1]) < 1e-10 * a[0, 0]


def test_periodic_cells_do_not_depend_on_the_phase():
    xs = [np.array([0.3, 0.7]), np.array([0.123456, 0.987654]), np.array([0.5 * EPS, 0.5 * EPS])]
    rng = np.random.default_rng(5)
    for coef in (Voxels(rng.uniform(1.0, 10.0, (4, 4))), Sine(axis=1), Product(Sine(), Sine(axis=1))):
        A = [effective_tensor(coef, x, CellSpec(2, 16), eps=EPS, delta=EPS) for x in xs]
        assert all(np.array_equal(A[0], a) for a in A[1:]), A
    vox3 = Voxels(rng.uniform(1.0, 10.0, (2, 2, 2)))
    A3 = [effective_tensor(vox3, np.array(x), CellSpec(3, 4), eps=EPS, delta=2 * EPS)
          for x in ([0.31, 0.52, 0.77], [0.1, 0.2, 0.3])]
    assert np.array_equal(A3[0], A3[1])
    # frozen slow dependence: A_H(x_l) = (1 + x_l1) A_H of the periodic part, at any phase
    f = Formula("(1 + x1) * (2 + sin(2*pi*y1) * cos(2*pi*y2))", 2)
    ref = effective_tensor(Formula("2 + sin(2*pi*y1) * cos(2*pi*y2)", 2), xs[0], CellSpec(2, 16),
                           eps=EPS, delta=EPS)
    for x in xs:
        A = effective_tensor(f, x, CellSpec(2, 16), eps=EPS, delta=EPS)
        np.testing.assert_allclose(A, (1 + x[0]) * ref, rtol=1e-13, atol=1e-13)


def centred(coef, x_l, spec, delta, frozen=True):
    """A_H of the cell centred at x_l (the placement before alignment), for comparison."""
    pts = cell_points(spec, x_l, delta).reshape(-1, spec.dim)
    slow = np.broadcast_to(x_l, pts.shape) if frozen else pts
    mesh = cell_mesh(spec)
    return mesh.solve(np.asarray(coef.values(np.ascontiguousarray(slow), pts / EPS)).reshape(mesh.points.shape[:2]))


@pytest.mark.parametrize("bc,delta,frozen,formula", [
    ("dirichlet", 2 * EPS, True, None),
    ("oversampling", 2 * EPS, True, None),
    ("periodic", 1.5 * EPS, True, None),              # not a whole number of periods
    ("periodic", EPS, False, "(1 + x1) * (2 + sin(2*pi*y1))"),  # slow variable varies in the cell
])
def test_cells_that_depend_on_the_phase_keep_it(bc, delta, frozen, formula):
    coef = Voxels(CHECKER) if formula is None else Formula(formula, 2)
    spec = CellSpec(2, 16 if bc != "periodic" or delta == EPS else 24, bc, 0.5 if bc == "oversampling" else 0.0)
    x = np.array([0.4321, 0.2468])
    A = effective_tensor(coef, x, spec, eps=EPS, delta=delta, frozen=frozen)
    np.testing.assert_array_equal(A, centred(coef, x, spec, delta, frozen))
    shifted = effective_tensor(coef, x + np.array([0.25 * EPS, 0.0]), spec, eps=EPS, delta=delta, frozen=frozen)
    assert abs(shifted[0, 0] - A[0, 0]) > 1e-3 * A[0, 0]  # the phase changes the answer


def nonperiodic_user(x, y):
    return 2.0 + y[0] * y[0]


def periodic_user(x, y):
    return 2.0 + math.sin(2 * math.pi * y[1])


def test_what_a_cell_depends_on():
    per, dirichlet = CellSpec(2, 8), CellSpec(2, 8, "dirichlet")
    kw = dict(eps=EPS, delta=EPS)
    sine, slow = Sine(), Formula("(1 + x1) * (2 + sin(2*pi*y2))", 2)
    assert cell_dependence(sine, per, frozen=True, **kw) == "nothing"
    assert cell_dependence(sine, per, frozen=False, **kw) == "nothing"
    assert cell_dependence(sine, per, frozen=True, eps=EPS, delta=3 * EPS * (1 + 1e-15)) == "nothing"
    assert cell_dependence(sine, per, frozen=True, eps=EPS, delta=1.5 * EPS) == "phase"
    assert cell_dependence(sine, dirichlet, frozen=True, **kw) == "phase"
    assert cell_dependence(slow, per, frozen=True, **kw) == "slow"
    assert cell_dependence(slow, per, frozen=False, **kw) == "position"
    assert cell_dependence(slow, dirichlet, frozen=True, **kw) == "position"
    # a formula or user function that is not periodic in y is placed where it is
    for coef in (Formula("1 + y1^2", 2), Product(Sine(), Formula("3 + floor(2*y2)", 2)),
                 Formula("1 + log(y1)", 2), UserFunction(f"{__name__}:nonperiodic_user", depends_on_x=False)):
        assert not coef.periodic_in_y(2)
        assert cell_dependence(coef, per, frozen=True, **kw) == "position"
    for coef in (Formula("3 + floor(y2) - y2 + 0.5*sin(2*pi*y1)", 2),
                 UserFunction(f"{__name__}:periodic_user", depends_on_x=False)):
        assert coef.periodic_in_y(2)
        assert cell_dependence(coef, per, frozen=True, **kw) == "nothing"


def run_app(tmp_path, name, overrides):
    from mpi4py import MPI

    from hmmpar.core.config import load_config
    from hmmpar.core.log import RankLog
    from hmmpar.core.runner import run
    np.save(tmp_path / "checker.npy", CHECKER)
    f = tmp_path / f"{name}.toml"
    f.write_text(f"""
[run]
app = "elliptic"
output_dir = "{tmp_path / name}"
[macro]
cells = [3, 2]
[coefficient]
kind = "voxels"
file = "{tmp_path / 'checker.npy'}"
[micro]
eps = 0.0123
batches = 1
[checkpoint]
at_end = false
[output]
plots = false
""")
    run(load_config(f, list(overrides)), MPI.COMM_WORLD, log=RankLog(MPI.COMM_WORLD, quiet=True))
    import h5py
    with h5py.File(tmp_path / name / "elliptic.h5", "r") as h:
        a11 = np.array(h["cell/A_H_00"]).reshape(-1)  # element means of A_H_11
    return json.loads((tmp_path / name / "summary.json").read_text()), a11


def test_app_solves_every_aligned_cell_alike_and_the_cache_is_exact(tmp_path):
    """The issue's reproduction through the app: every cell problem (cache off) gives the
    same A_H bit for bit, it decreases with micro.n, and the cache changes nothing."""
    means = []
    for n in (8, 16, 32):
        s, a11 = run_app(tmp_path, f"off{n}", [f"micro.n={n}", 'micro.cache="off"'])
        assert s["cell_problems_solved_this_run"] == 24 and a11.size == 6
        assert np.all(a11 == a11[0]), a11
        means.append(a11[0])
    assert np.all(np.diff(means) < 0) and means[-1] > math.sqrt(10), means
    s, a11 = run_app(tmp_path, "on32", ["micro.n=32"])
    assert s["cell_problems_solved_this_run"] == 1 and np.all(a11 == means[-1])
    # a formula that is not periodic in y: every cell differs, so the cache stays off
    s, _ = run_app(tmp_path, "nonper", ["micro.n=8", 'coefficient.kind="formula"', 'coefficient.formula="2 + y1^2"'])
    assert s["cell_problems_solved_this_run"] == 24 and s["cache_hits_this_run"] == 0
