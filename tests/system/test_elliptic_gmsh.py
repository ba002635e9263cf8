"""The elliptic app on a Gmsh triangle mesh (macro.mesh) as users run it: 1, 2 and 3 ranks,
restart on another rank count, bad mesh inputs, the example config."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hmmpar  # noqa: F401 - MPI h5py
import h5py

from conftest import ROOT, hmmpar_lines, run_mpi

MESH = ROOT / "tests" / "data" / "square.msh"

CONFIG = """
[run]
app = "elliptic"
output_dir = "{out}"
progress_interval = 0.0
[macro]
mesh = "{mesh}"
[problem]
source = "1 + x*y"
dirichlet = ["left", "bottom", "top"]
neumann = ["right"]
neumann_value = "0.5*y"
[coefficient]
kind = "formula"
formula = "(1 + 0.5*x1*x2) * (2 + sin(2*pi*y1)) / (2 + cos(2*pi*y2))"
[micro]
eps = 0.01
n = 10
batches = 4
[checkpoint]
every_steps = 1
keep = 10
[output]
plots = {plots}
"""


def config(directory: Path, name: str, mesh: str = "square.msh", plots: bool = False) -> Path:
    """A config in ``directory`` naming the mesh relative to it (copied there)."""
    if not (directory / "square.msh").exists():
        shutil.copy(MESH, directory / "square.msh")
    f = directory / f"{name}.toml"
    f.write_text(CONFIG.format(out=directory / name, mesh=mesh, plots=str(plots).lower()))
    return f


def hmmpar(n, *args, timeout=240):
    return run_mpi(n, ["-m", "hmmpar.cli", "run", *map(str, args)], timeout=timeout)


def read(out: Path) -> dict:
    with h5py.File(out / "elliptic.h5", "r") as f:
        data = {k: np.array(f[k]) for k in ("nodal/U", "cell/A_H_00", "cell/A_H_11", "mesh/topology")}
    data["summary"] = json.loads((out / "summary.json").read_text())
    return data


@pytest.fixture(scope="module")
def rank_runs(tmp_path_factory):
    """The same run on 1, 2 and 3 ranks (plots on at 2 ranks)."""
    d = tmp_path_factory.mktemp("gmsh")
    out = {}
    for n in (1, 2, 3):
        p = hmmpar(n, config(d, f"r{n}", plots=(n == 2)))
        assert p.returncode == 0, p.stderr
        out[n] = read(d / f"r{n}")
    return d, out


def test_one_two_three_ranks_same_solution_and_cells(rank_runs):
    d, runs = rank_runs
    ref = runs[1]
    s = ref["summary"]
    assert s["mesh"] == {"file": "square.msh", "dim": 2, "n_elements": 72, "n_vertices": 49,
                         "h_max": pytest.approx(0.2907, abs=1e-4), "h_min": pytest.approx(0.1197, abs=1e-4)}
    assert s["cell_problems"] == 72 * 3 == s["cell_problems_solved_this_run"]
    scale = np.abs(ref["nodal/U"]).max()
    assert scale > 0.01
    for n in (2, 3):
        assert np.abs(runs[n]["nodal/U"] - ref["nodal/U"]).max() < 1e-8 * scale
        for key in ("cell/A_H_00", "cell/A_H_11", "mesh/topology"):  # element ids rank-independent
            assert runs[n][key].tobytes() == ref[key].tobytes(), key
    with h5py.File(d / "r1" / "checkpoints" / "ckpt_00000004.h5", "r") as a, \
            h5py.File(d / "r3" / "checkpoints" / "ckpt_00000004.h5", "r") as b:
        assert np.array(a["fields/A_H"]).tobytes() == np.array(b["fields/A_H"]).tobytes()
    for name in ("elliptic.h5", "elliptic.xdmf", "elliptic.png", "summary.json"):
        assert (d / "r2" / name).is_file(), name
    import xml.etree.ElementTree as ET
    assert ET.parse(d / "r2" / "elliptic.xdmf").getroot().find("Domain/Grid/Topology").get(
        "TopologyType") == "Triangle"


def test_restart_on_three_ranks_from_one_rank_checkpoint(rank_runs):
    d, runs = rank_runs
    out = d / "killed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy(d / "r1" / "checkpoints" / "ckpt_00000002.h5", out / "checkpoints")
    p = hmmpar(3, config(d, "killed"), "--restart", "latest")
    assert p.returncode == 0, p.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["cell_problems_solved_this_run"] == s["cell_problems"] // 2
    ref = runs[1]["nodal/U"]
    assert np.abs(read(out)["nodal/U"] - ref).max() < 1e-8 * np.abs(ref).max()


def test_bad_mesh_file_and_unknown_group_are_one_line_config_errors(tmp_path):
    p = hmmpar(2, config(tmp_path, "missing", mesh="nope.msh"))
    assert p.returncode == 2
    assert hmmpar_lines(p.stderr) == [f"hmmpar: error: config key macro.mesh: cannot read "
                                      f"{tmp_path / 'nope.msh'}: no such file"]
    (tmp_path / "junk.msh").write_text("$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n3\n1 0 0 0\n")
    p = hmmpar(2, config(tmp_path, "junk", mesh="junk.msh"))
    assert p.returncode == 2
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and lines[0].startswith(
        f"hmmpar: error: config key macro.mesh: cannot read mesh file {tmp_path / 'junk.msh'}: "), lines
    p = hmmpar(2, config(tmp_path, "group"), "--set", 'problem.neumann=["right", "x+"]')
    assert p.returncode == 2
    assert hmmpar_lines(p.stderr) == [
        "hmmpar: error: config key problem.neumann: unknown Neumann physical group 'x+' in mesh file "
        "square.msh; its boundary groups are left, right, bottom, top"]


def test_example_config_runs(tmp_path):
    """drivers/elliptic.py with drivers/configs/elliptic_gmsh.toml (small micro mesh), 2 ranks."""
    p = run_mpi(2, [str(ROOT / "drivers" / "elliptic.py"), str(ROOT / "drivers" / "configs" / "elliptic_gmsh.toml"),
                    "--set", f'run.output_dir="{tmp_path}"', "--set", "micro.n=8", "--set", "output.plots=false"],
                timeout=240)
    assert p.returncode == 0, p.stderr
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["mesh"]["file"] == "square.msh" and s["cell_problems_solved_this_run"] == 3 * s["mesh"]["n_elements"]
