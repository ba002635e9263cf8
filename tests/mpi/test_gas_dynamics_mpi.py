"""The ``gas_dynamics`` app on N ranks equals its run on one rank bitwise, also after a restart.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi/test_gas_dynamics_mpi.py``
(N = 1, 2, 3): the reference runs on rank 0 alone (``COMM_SELF``), the run under test on
all ranks. Verdicts are broadcast from rank 0, so every rank passes or fails together.
The final state, every summary entry (conservation totals and boundary fluxes, task
counts, errors) and the snapshot series must agree.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import hmmpar  # noqa: F401 - MPI h5py
import h5py

from hmmpar.core.config import load_config
from hmmpar.core.log import RankLog
from hmmpar.core.runner import run

comm = MPI.COMM_WORLD

CONFIG = """
[run]
app = "gas_dynamics"
output_dir = "{out}"
progress_interval = 1000.0
[problem]
name = "{problem}"
{problem_keys}
[macro]
scheme = "{scheme}"
order = {order}
dim = {dim}
cells = {cells}
bc = {bc}
cfl = 0.3
t_end = {t_end}
[micro]
{micro}
[output]
plots = false
snapshot_interval = 0.02
[checkpoint]
every_steps = 3
keep = 20
"""

#: name -> (problem, scheme, order, dim, cells, bc, t_end)
CASES = {
    "sod_nt_walls": ("sod", "staggered", 2, 1, [30], '["reflecting", "outflow"]', 0.15),
    "sod_kfvs_muscl": ("sod", "kinetic", 2, 1, [30], '["outflow", "reflecting"]', 0.15),
    "riemann2d_jt": ("riemann2d", "staggered", 2, 2, [12, 18], "[]", 0.1),
    "riemann2d_lxf": ("riemann2d", "staggered", 1, 2, [12, 18], "[]", 0.1),
    "blast_kfvs": ("blast2d", "kinetic", 1, 2, [18, 12], "[]", 0.08),
    "wave_kfvs_muscl_periodic": ("density_wave", "kinetic", 2, 2, [12, 12], "[]", 0.08),
    # MD micro models: each task draws from its own stream, so these too are bitwise
    "sod_lxf_md_free": ("sod", "staggered", 1, 1, [12], '["outflow", "outflow"]', 0.1),
    "sod_kfvs_md_free": ("sod", "kinetic", 1, 1, [12], '["outflow", "outflow"]', 0.1),
    "sod_lxf_md_lj": ("riemann", "staggered", 1, 1, [8], '["outflow", "outflow"]', 0.12),
    "blast_kfvs_md_free": ("blast2d", "kinetic", 1, 2, [6, 6], "[]", 0.15),
}

#: the [micro] section of each case (default: the ideal gas, gamma = 1.4)
MICRO = {
    "sod_lxf_md_free": 'model = "md"\npotential = "none"\natoms = 64\nt_equilibrate = 0.0\nt_sample = 0.1\n'
                       'eos_points = [3, 2]\neos_atoms = 32\neos_t_sample = 0.1',
    "sod_kfvs_md_free": 'model = "md"\npotential = "none"\ninterface_atoms = 500\ninterface_t_sample = 0.05\n'
                        'eos_points = [3, 2]\neos_atoms = 32\neos_t_sample = 0.1',
    "blast_kfvs_md_free": 'model = "md"\npotential = "none"\ninterface_atoms = 500\ninterface_t_sample = 0.05\n'
                          'eos_points = [3, 2]\neos_atoms = 32\neos_t_sample = 0.1',
    "sod_lxf_md_lj": 'model = "md"\natoms = 108\nt_equilibrate = 0.2\nt_sample = 0.2\n'
                     'eos_points = [3, 3]\neos_atoms = 108\neos_t_sample = 0.5\neos_temperatures = [1.5, 6.0]',
}
#: problem keys of the cases that need them
PROBLEM = {"sod_lxf_md_lj": "left = [0.5, 0.0, 1.8]\nright = [0.1, 0.0, 0.15]"}


def shared_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gas") if comm.rank == 0 else None
    return Path(comm.bcast(str(d) if d else None, root=0))


def write_config(d: Path, name: str, case: str) -> Path:
    problem, scheme, order, dim, cells, bc, t_end = CASES[case]
    path = d / f"{name}.toml"
    path.write_text(CONFIG.format(out=d / name, problem=problem, scheme=scheme, order=order, dim=dim,
                                  cells=cells, bc=bc, t_end=t_end, micro=MICRO.get(case, "gamma = 1.4"),
                                  problem_keys=PROBLEM.get(case, "")))
    return path


def config(d: Path, name: str, case: str):
    """The config ``name`` (written by rank 0, read by every rank; collective)."""
    if comm.rank == 0:
        write_config(d, name, case)
    comm.Barrier()
    return load_config(d / f"{name}.toml")


def run_alone(path: Path, restart: str | None = None) -> None:
    """Rank 0 only: the whole run on one rank."""
    run(load_config(path), MPI.COMM_SELF, restart=restart, log=RankLog(MPI.COMM_SELF, quiet=True))


def final_state(out: Path) -> dict[str, bytes]:
    with h5py.File(out / "gas_dynamics.h5", "r") as f:
        return {k: np.array(f[k]).tobytes() for k in f}


def summary(out: Path) -> dict:
    s = json.loads((out / "summary.json").read_text())
    s.pop("timing")
    return s


def snapshots(out: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted((out / "snapshots").glob("gas_dynamics_*.h5")):
        with h5py.File(path, "r") as f:
            found[path.name] = np.array(f["rho"]).tobytes() + np.float64(f.attrs["time"]).tobytes()
    return found


def agree(ok_on_rank0: bool) -> bool:
    return comm.bcast(bool(ok_on_rank0), root=0)


@pytest.mark.mpi
@pytest.mark.parametrize("case", sorted(CASES))
def test_any_rank_count_gives_the_same_run(tmp_path_factory, case):
    d = shared_dir(tmp_path_factory)
    run(config(d, "world", case), comm, log=RankLog(comm, quiet=True))
    ok, why = True, ""
    if comm.rank == 0:
        run_alone(write_config(d, "self", case))
        a, b = final_state(d / "world"), final_state(d / "self")
        sa, sb = summary(d / "world"), summary(d / "self")
        ok = a == b and sa == sb and snapshots(d / "world") == snapshots(d / "self")
        ok = ok and sa["steps"] > 3 and len(snapshots(d / "world")) >= 2
        why = "" if ok else f"{[k for k in a if a[k] != b.get(k)]} {[k for k in sa if sa[k] != sb.get(k)]}"
    assert agree(ok), comm.bcast(why, root=0)


@pytest.mark.mpi
@pytest.mark.parametrize("case", ["sod_nt_walls", "riemann2d_jt", "wave_kfvs_muscl_periodic", "sod_lxf_md_lj"])
def test_restart_on_another_rank_count_is_bitwise_the_straight_run(tmp_path_factory, case):
    """Straight run on one rank, checkpoints every 3 steps; the run restarted on all ranks
    from the checkpoint after step 3 ends bitwise the same (state, summary, snapshots)."""
    d = shared_dir(tmp_path_factory)
    if comm.rank == 0:
        run_alone(write_config(d, "straight", case))
    comm.Barrier()
    ckpt = d / "straight" / "checkpoints" / "ckpt_00000003.h5"
    run(config(d, "continued", case), comm, restart=str(ckpt), log=RankLog(comm, quiet=True))
    ok = True
    if comm.rank == 0:
        sa, sb = summary(d / "straight"), summary(d / "continued")
        ok = final_state(d / "straight") == final_state(d / "continued") and sa == sb
        ok = ok and sa["steps"] > 3
        # the continued run wrote the snapshots after step 3 itself; they equal the straight run's
        mine, theirs = snapshots(d / "continued"), snapshots(d / "straight")
        ok = ok and len(mine) >= 1 and all(theirs.get(name) == data for name, data in mine.items())
    assert agree(ok)
