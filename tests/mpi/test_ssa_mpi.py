"""The ``ssa`` application on N ranks equals its run on one rank bitwise, also after a restart.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi/test_ssa_mpi.py`` (N = 1, 2, 3):
the reference runs on rank 0 alone (``COMM_SELF``), the run under test on all ranks.
Verdicts are broadcast from rank 0, so every rank passes or fails together.
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

MODEL = """
name = "four_species_small"
[species]
S1 = 20
S2 = 0
S3 = 0
S4 = 0
[[reactions]]
equation = "S1 -> S2"
rate = 1e5
fast = true
[[reactions]]
equation = "S2 -> S1"
rate = 1e5
fast = true
[[reactions]]
equation = "S2 -> S3"
rate = 1.0
[[reactions]]
equation = "S3 -> S2"
rate = 1.0
[[reactions]]
equation = "S3 -> S4"
rate = 1e5
fast = true
[[reactions]]
equation = "S4 -> S3"
rate = 1e5
fast = true
"""

MODEL3 = """
name = "three_scales_small"
[species]
S1 = 2
S2 = 2
S3 = 2
S4 = 0
[[reactions]]
equation = "S1 -> S2"
rate = 1e6
level = 2
[[reactions]]
equation = "S2 -> S1"
rate = 1e6
level = 2
[[reactions]]
equation = "S2 -> S3"
rate = 1e3
fast = true
[[reactions]]
equation = "S3 -> S2"
rate = 1e3
fast = true
[[reactions]]
equation = "S3 -> S4"
rate = 2.0
[[reactions]]
equation = "S4 -> S3"
rate = 2.0
"""

#: [nested] lines of a three-level run: theta = 1e-2 finds the model's levels in every
#: state of 6 molecules (tests/unit/micro/ssa/test_nested_ssa_kernel.py)
THREE_LEVELS = "levels = 3\nultrafast_tolerance = 0.5\npartition_ratio = 1e-2\n"

CONFIG = """
[run]
app = "ssa"
seed = 99
output_dir = "{out}"
progress_interval = 1000.0
[model]
file = "{model}"
[ensemble]
method = "{method}"
trajectories = {trajectories}
parallel = "{parallel}"
t_end = 0.4
samples = 4
[nested]
tolerance = 0.25
partition = "{partition}"
{extra}[output]
plots = false
species = ["S3 + S4", "S1"]
[checkpoint]
every_steps = 1
keep = 10
"""


#: MODEL with a product P made and degraded by slow reactions that change no species of
#: the fast reactions: outer steps after those jumps reuse the averaged rates
MODEL_REUSE = MODEL.replace('S4 = 0', 'S4 = 0\nP = 0') + """
[[reactions]]
equation = "S1 -> S1 + P"
rate = 2.0
[[reactions]]
equation = "P -> 0"
rate = 0.5
"""


def shared_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ssa") if comm.rank == 0 else None
    d = Path(comm.bcast(str(d) if d else None, root=0))
    if comm.rank == 0:
        (d / "small.toml").write_text(MODEL)
        (d / "small3.toml").write_text(MODEL3)
        (d / "small_reuse.toml").write_text(MODEL_REUSE)
    comm.Barrier()
    return d


def write_config(d: Path, name: str, method: str, partition: str = "model", parallel: str = "trajectories",
                 trajectories: int = 13, levels: int = 2, model: str = "small.toml") -> Path:
    path = d / f"{name}.toml"
    model, extra = ("small3.toml", THREE_LEVELS) if levels == 3 else (model, "")
    path.write_text(CONFIG.format(out=d / name, method=method, partition=partition, parallel=parallel,
                                  trajectories=trajectories, model=model, extra=extra))
    return path


def config(d: Path, name: str, *args, **kwargs):
    """The config ``name`` (written by rank 0, read by every rank; collective)."""
    if comm.rank == 0:
        write_config(d, name, *args, **kwargs)
    comm.Barrier()
    return load_config(d / f"{name}.toml")


def trajectories(out: Path) -> np.ndarray:
    with h5py.File(out / "ssa.h5", "r") as f:
        return np.array(f["trajectories"])


def agree(ok_on_rank0: bool) -> bool:
    return comm.bcast(bool(ok_on_rank0), root=0)


def run_alone(path: Path) -> None:
    """Rank 0 only: the whole run on one rank."""
    run(load_config(path), MPI.COMM_SELF, log=RankLog(MPI.COMM_SELF, quiet=True))


@pytest.mark.mpi
@pytest.mark.parametrize("method,partition", [("nested", "model"), ("nested", "auto"), ("direct", "model")])
def test_any_rank_count_gives_the_same_trajectories(tmp_path_factory, method, partition):
    d = shared_dir(tmp_path_factory)
    run(config(d, "world", method, partition), comm, log=RankLog(comm, quiet=True))
    ok = True
    if comm.rank == 0:
        run_alone(write_config(d, "self", method, partition))
        a, b = trajectories(d / "world"), trajectories(d / "self")
        sa = json.loads((d / "world" / "summary.json").read_text())
        sb = json.loads((d / "self" / "summary.json").read_text())
        ok = a.shape == (13, 5, 4) and a.tobytes() == b.tobytes()
        ok = ok and sa["events"] == sb["events"] and sa["final"] == sb["final"]
        ok = ok and bool((a[:, -1, 2:].sum(axis=1) > 0).any())  # slow jumps happened
    assert agree(ok)


@pytest.mark.mpi
@pytest.mark.parametrize("partition", ["model", "auto"])
def test_replicas_as_tasks_give_the_trajectory_modes_results(tmp_path_factory, partition):
    """Two trajectories, N = 4 replicas per outer step spread over the ranks: bitwise the
    one-rank trajectory mode."""
    d = shared_dir(tmp_path_factory)
    run(config(d, "replicas", "nested", partition, "replicas", 2), comm, log=RankLog(comm, quiet=True))
    ok = True
    if comm.rank == 0:
        run_alone(write_config(d, "reference", "nested", partition, "trajectories", 2))
        a, b = trajectories(d / "replicas"), trajectories(d / "reference")
        sa = json.loads((d / "replicas" / "summary.json").read_text())
        sb = json.loads((d / "reference" / "summary.json").read_text())
        ok = a.shape == (2, 5, 4) and a.tobytes() == b.tobytes() and sa["events"] == sb["events"]
        ok = ok and sa["parallel"] == "replicas" and sb["parallel"] == "trajectories"
        ok = ok and sa["replica_rounds"] >= sa["outer_steps"] / 2 > 0
    assert agree(ok)


@pytest.mark.mpi
def test_reused_averages_in_both_modes_and_on_any_rank_count(tmp_path_factory):
    """With steps that reuse ã: replicas as tasks over the ranks, the trajectory mode over
    the ranks and the trajectory mode on one rank give bitwise the same trajectories."""
    d = shared_dir(tmp_path_factory)
    run(config(d, "reuse_replicas", "nested", "model", "replicas", 2, model="small_reuse.toml"), comm,
        log=RankLog(comm, quiet=True))
    run(config(d, "reuse_world", "nested", "model", "trajectories", 2, model="small_reuse.toml"), comm,
        log=RankLog(comm, quiet=True))
    ok = True
    if comm.rank == 0:
        run_alone(write_config(d, "reuse_self", "nested", "model", "trajectories", 2, model="small_reuse.toml"))
        a, b, c = (trajectories(d / name) for name in ("reuse_replicas", "reuse_world", "reuse_self"))
        sa, sc = (json.loads((d / name / "summary.json").read_text()) for name in ("reuse_replicas", "reuse_self"))
        ok = a.shape == (2, 5, 5) and a.tobytes() == b.tobytes() == c.tobytes()
        ok = ok and sa["events"] == sc["events"] and sa["reused_averages"] == sc["reused_averages"] > 0
        # rounds in which both trajectories reused their averages make no farm call
        ok = ok and 0 < sa["replica_rounds"] <= sa["outer_steps"] - sa["reused_averages"]
    assert agree(ok)


@pytest.mark.mpi
@pytest.mark.parametrize("levels", [2, 3])
def test_restart_on_another_rank_count_is_bitwise_the_straight_run(tmp_path_factory, levels):
    """Straight run on one rank with a checkpoint after every window; the run restarted
    from the checkpoint after window 2 of 4 on all ranks ends bitwise the same (Nested SSA
    with two and with three levels)."""
    d = shared_dir(tmp_path_factory)
    straight, continued = f"straight{levels}", f"continued{levels}"
    if comm.rank == 0:
        run_alone(write_config(d, straight, "nested", levels=levels))
    comm.Barrier()
    ckpt = d / straight / "checkpoints" / "ckpt_00000002.h5"
    run(config(d, continued, "nested", levels=levels), comm, restart=str(ckpt), log=RankLog(comm, quiet=True))
    ok = True
    if comm.rank == 0:
        a, b = trajectories(d / straight), trajectories(d / continued)
        sa = json.loads((d / straight / "summary.json").read_text())
        sb = json.loads((d / continued / "summary.json").read_text())
        ok = a.tobytes() == b.tobytes() and sa["events"] == sb["events"]
    assert agree(ok)


# ----------------------------------------------------------------------------- three levels
@pytest.mark.mpi
@pytest.mark.parametrize("partition", ["model", "auto"])
def test_three_levels_any_rank_count_gives_the_same_trajectories(tmp_path_factory, partition):
    """The Nested SSA nested twice: trajectories (13, as tasks) and the run's counters on N
    ranks equal those of one rank bitwise."""
    d = shared_dir(tmp_path_factory)
    run(config(d, "world3", "nested", partition, levels=3), comm, log=RankLog(comm, quiet=True))
    ok = True
    if comm.rank == 0:
        run_alone(write_config(d, "self3", "nested", partition, levels=3))
        a, b = trajectories(d / "world3"), trajectories(d / "self3")
        sa = json.loads((d / "world3" / "summary.json").read_text())
        sb = json.loads((d / "self3" / "summary.json").read_text())
        ok = a.shape == (13, 5, 4) and a.tobytes() == b.tobytes()
        ok = ok and sa["events"] == sb["events"] and sa["final"] == sb["final"]
        ok = ok and sa["parameters"]["levels"] == 3 and sa["partition_changes"] == 0
        ok = ok and bool((a[:, -1, 3] > 0).any()) and bool((a.sum(axis=2) == 6).all())
    assert agree(ok)


@pytest.mark.mpi
def test_three_levels_replicas_as_tasks_give_the_trajectory_modes_results(tmp_path_factory):
    """Two trajectories, N = 4 middle replicas (each a Nested SSA of its own) per outer step
    spread over the ranks: bitwise the one-rank trajectory mode."""
    d = shared_dir(tmp_path_factory)
    run(config(d, "replicas3", "nested", "model", "replicas", 2, levels=3), comm, log=RankLog(comm, quiet=True))
    ok = True
    if comm.rank == 0:
        run_alone(write_config(d, "reference3", "nested", "model", "trajectories", 2, levels=3))
        a, b = trajectories(d / "replicas3"), trajectories(d / "reference3")
        sa = json.loads((d / "replicas3" / "summary.json").read_text())
        sb = json.loads((d / "reference3" / "summary.json").read_text())
        ok = a.shape == (2, 5, 4) and a.tobytes() == b.tobytes() and sa["events"] == sb["events"]
        ok = ok and sa["continuations"] == sb["continuations"] and sa["outer_steps"] == sb["outer_steps"]
        ok = ok and sa["parallel"] == "replicas" and sa["replica_rounds"] >= sa["outer_steps"] / 2 > 0
    assert agree(ok)
