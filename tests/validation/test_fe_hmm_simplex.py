"""FE-HMM on unstructured triangle meshes from Gmsh files (issue 3 validation, simplex part).

The case of test_elliptic_macro.py: a(y) = 1 / (2 + cos(2 pi y_1)) homogenizes to
A_0 = diag(1/2, 1/sqrt(3)); f = pi^2 (1/2 + 1/sqrt(3)) sin(pi x) sin(pi y), u = 0 on all
four physical groups of the unit square, so u_0 = sin(pi x) sin(pi y). P1 macro elements
give O(H^2) in L2 and O(H) in H1 (Abdulle 2005); the meshes are jittered, randomly
numbered triangulations (tests/data/make_meshes.py) with 8 .. 64 grid cells per side,
written next to the config and named relative to it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

from hmmpar.core.config import load_config
from hmmpar.core.log import RankLog
from hmmpar.core.runner import run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import make_meshes as mm  # noqa: E402

SOURCE = "pi^2*(1/2 + 1/sqrt(3))*sin(pi*x)*sin(pi*y)"
EXACT = "sin(pi*x)*sin(pi*y)"


def run_gmsh(tmp_path: Path, n: int) -> dict:
    mm.write_msh22(tmp_path / f"square{n}.msh", mm.box_mesh([n, n], seed=n))
    cfg = tmp_path / f"g{n}.toml"
    cfg.write_text(f"""
[run]
app = "elliptic"
output_dir = "{tmp_path / f'g{n}'}"
[macro]
mesh = "square{n}.msh"
[problem]
source = "{SOURCE}"
exact = "{EXACT}"
dirichlet = ["left", "right", "bottom", "top"]
[coefficient]
kind = "inverse_cosine"
[micro]
eps = 0.001
n = 128
batches = 2
[checkpoint]
at_end = false
[output]
plots = false
""")
    run(load_config(cfg), MPI.COMM_WORLD, log=RankLog(MPI.COMM_WORLD, quiet=True))
    return json.loads((tmp_path / f"g{n}" / "summary.json").read_text())


def test_fe_hmm_on_triangles_rates_l2_two_h1_one(tmp_path):
    sizes = (8, 16, 32, 64)
    runs = [run_gmsh(tmp_path, n) for n in sizes]
    for n, s in zip(sizes, runs):
        assert s["mesh"]["file"] == f"square{n}.msh" and s["mesh"]["n_elements"] == 2 * n * n
        assert s["cell_problems"] == 3 * 2 * n * n and s["cell_problems_solved_this_run"] == 1
    e = np.array([(s["error_vs_exact"]["l2"], s["error_vs_exact"]["h1"]) for s in runs])
    l2_rates = np.log2(e[:-1, 0] / e[1:, 0])
    h1_rates = np.log2(e[:-1, 1] / e[1:, 1])
    assert np.all(np.abs(l2_rates - 2) < 0.2), (e, l2_rates)
    assert np.all(np.abs(h1_rates - 1) < 0.2), (e, h1_rates)
    assert e[-1, 0] < 5e-4
    np.testing.assert_allclose(runs[-1]["A_H_mean"], np.diag([0.5, 1 / np.sqrt(3)]), rtol=1e-4, atol=1e-12)
