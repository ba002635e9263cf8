"""The micro-task farm over MPI: results independent of ranks, mode and ownership.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi`` (N = 1, 2, 3).
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core.errors import TaskError
from hmmpar.core.farm import Farm

comm = MPI.COMM_WORLD
N_TASKS = 157  # not a multiple of 2 or 3
TASK = np.dtype([("task_id", "i8"), ("cost", "f8"), ("x", "f8", (3,))])
# the same bytes with the seconds not called "cost": the farm gets no cost estimate and
# dispatches in gathered order instead of longest first
TASK_UNHINTED = np.dtype([("task_id", "i8"), ("seconds", "f8"), ("x", "f8", (3,))])
RESULT = np.dtype([("mean", "f8"), ("draws", "f8", (4,)), ("n", "i8")])


def make_tasks(rank: int, size: int, layout: str) -> np.ndarray:
    """This rank's tasks; ownership and local order depend on ``layout``."""
    ids = np.arange(N_TASKS)
    if layout == "round_robin":
        mine = ids[rank::size][::-1]
    elif layout == "blocks_uneven":  # rank 0 owns nothing when size > 1
        cuts = np.linspace(0, N_TASKS, size + 1).astype(int)
        cuts[1] = 0 if size > 1 else cuts[1]
        mine = ids[cuts[rank]:cuts[rank + 1]] if rank > 0 or size == 1 else ids[:0]
        if size > 1 and rank == 1:
            mine = ids[:cuts[2]]
    else:
        raise ValueError(layout)
    rows = np.zeros(mine.size, dtype=TASK)
    rows["task_id"] = mine
    # random costs spanning 10x, drawn from the task id (not the rank)
    rows["cost"] = 1e-4 * (1 + 9 * np.random.default_rng(99).random(N_TASKS)[mine])
    rows["x"] = mine[:, None] * np.array([1.0, -0.5, 0.25])
    return rows


def random_cost_solve(rows, ctx):
    """A stochastic micro model whose cost varies: busy-waits ``cost`` seconds per task."""
    out = np.empty(rows.shape[0], dtype=RESULT)
    for i in range(rows.shape[0]):
        rng = ctx.rng(int(rows["task_id"][i]))
        seconds = rows[rows.dtype.names[1]][i]  # "cost" or "seconds"
        n = 1 + int(seconds * 1e5)
        draws = rng.standard_normal(n)
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            pass
        out["mean"][i] = draws.mean() + rows["x"][i].sum()
        out["draws"][i] = draws[:4] if n >= 4 else np.pad(draws, (0, 4 - n))
        out["n"][i] = n
    return out


def reference() -> np.ndarray:
    """All results in task_id order, computed serially on this rank (COMM_SELF farm)."""
    rows = make_tasks(0, 1, "round_robin")
    res = Farm(MPI.COMM_SELF).map(random_cost_solve, rows, RESULT, step=4, seed=11)
    out = np.empty(N_TASKS, dtype=RESULT)
    out[rows["task_id"]] = res
    return out


def agree(flag: bool) -> bool:
    """True only if every rank's flag is True (so all ranks assert the same)."""
    return comm.allreduce(bool(flag), op=MPI.LAND)


@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["dynamic", "static"])
@pytest.mark.parametrize("layout", ["round_robin", "blocks_uneven"])
@pytest.mark.parametrize("hinted", [True, False], ids=["cost-ordered", "gathered-order"])
def test_results_bitwise_equal_to_serial(mode, layout, hinted):
    ref = reference()
    rows = make_tasks(comm.rank, comm.size, layout)
    if not hinted:
        rows = rows.view(TASK_UNHINTED)
    farm = Farm(comm, mode=mode)
    res = farm.map(random_cost_solve, rows, RESULT, step=4, seed=11)
    assert res.shape == rows.shape
    # bitwise: compare raw bytes of each row against the serial reference
    ok = res.tobytes() == ref[rows["task_id"]].tobytes()
    assert agree(ok)
    assert farm.last_total == N_TASKS
    assert comm.allreduce(farm.stats.tasks) == N_TASKS


@pytest.mark.mpi
def test_dynamic_balances_random_costs():
    """Every rank computes some tasks in dynamic mode (the master too)."""
    rows = make_tasks(comm.rank, comm.size, "blocks_uneven")
    farm = Farm(comm)
    farm.map(random_cost_solve, rows, RESULT, step=0, seed=1)
    done = comm.allgather(farm.stats.tasks)
    assert sum(done) == N_TASKS
    assert min(done) > 0


@pytest.mark.mpi
def test_different_seed_or_step_changes_results():
    rows = make_tasks(comm.rank, comm.size, "round_robin")
    a = Farm(comm).map(random_cost_solve, rows, RESULT, step=4, seed=11)
    b = Farm(comm).map(random_cost_solve, rows, RESULT, step=5, seed=11)
    c = Farm(comm).map(random_cost_solve, rows, RESULT, step=4, seed=12)
    assert agree(rows.size == 0 or (np.all(a["mean"] != b["mean"]) and np.all(a["mean"] != c["mean"])))


def failing_solve(rows, ctx):
    if (rows["task_id"] == 42).any():
        raise ZeroDivisionError("cell problem singular")
    return random_cost_solve(rows, ctx)


@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_task_failure_is_collective_and_names_task(mode):
    rows = make_tasks(comm.rank, comm.size, "round_robin")
    with pytest.raises(TaskError) as info:
        Farm(comm, mode=mode).map(failing_solve, rows, RESULT, step=0, seed=0)
    msg = str(info.value)
    assert "micro task 42" in msg and "ZeroDivisionError: cell problem singular" in msg
    # every rank raised the same message
    assert agree(comm.allgather(msg) == [msg] * comm.size)
    # the farm is usable again afterwards (no message left in flight)
    res = Farm(comm, mode=mode).map(random_cost_solve, rows, RESULT, step=4, seed=11)
    assert agree(res.tobytes() == reference()[rows["task_id"]].tobytes())


def flaky_solve(rows, ctx):
    """Fails on the first attempt of task 7 only: a retry (attempt 1) succeeds."""
    if ctx.attempt == 0 and (rows["task_id"] == 7).any():
        raise RuntimeError("SSA replica blew up")
    return random_cost_solve(rows, ctx)


@pytest.mark.mpi
def test_retry_uses_fresh_substream_and_is_rank_independent():
    rows = make_tasks(comm.rank, comm.size, "round_robin")
    farm = Farm(comm, retry=True)
    res = farm.map(flaky_solve, rows, RESULT, step=4, seed=11)
    ref = reference()
    # task 7 ran with attempt=1: its stream differs; everything else is the reference
    sel = rows["task_id"] == 7
    from hmmpar.core.farm import TaskContext
    retried = random_cost_solve(make_tasks(0, 1, "round_robin")[::-1][7:8], TaskContext(11, 4, 1))
    ok = res[~sel].tobytes() == ref[rows["task_id"][~sel]].tobytes()
    ok &= (not sel.any()) or (res[sel].tobytes() == retried.tobytes() and res[sel]["mean"][0] != ref[7]["mean"])
    assert agree(ok)
    assert comm.allreduce(farm.retries) == 1


def nan_solve(rows, ctx):
    out = random_cost_solve(rows, ctx)
    out["draws"][rows["task_id"] == 13, 2] = np.nan
    return out


@pytest.mark.mpi
def test_nan_result_is_a_task_failure():
    rows = make_tasks(comm.rank, comm.size, "round_robin")
    with pytest.raises(TaskError, match=r"micro task 13 .*'draws' is NaN or Inf"):
        Farm(comm).map(nan_solve, rows, RESULT, step=0, seed=0)


@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_duplicate_task_ids_are_an_error(mode):
    rows = make_tasks(comm.rank, comm.size, "round_robin")
    if comm.rank == comm.size - 1:
        rows = np.concatenate([rows, rows[:1]]) if rows.size else make_tasks(0, 1, "round_robin")[:2]
    if comm.size == 1:
        rows = np.concatenate([rows, rows[:1]])
    with pytest.raises(TaskError, match="appears more than once"):
        Farm(comm, mode=mode).map(random_cost_solve, rows, RESULT)


@pytest.mark.mpi
def test_bad_task_array_on_one_rank_is_reported_everywhere():
    rows = make_tasks(comm.rank, comm.size, "round_robin")
    if comm.rank == comm.size - 1:
        rows = np.zeros(3)  # not a structured array
    with pytest.raises(TaskError, match=f"rank {comm.size - 1}: tasks must be a NumPy structured array"):
        Farm(comm).map(random_cost_solve, rows, RESULT)


@pytest.mark.mpi
@pytest.mark.parametrize("bad", [-1.0, np.nan])
def test_bad_cost_estimate_is_reported_everywhere(bad):
    rows = make_tasks(comm.rank, comm.size, "round_robin")
    if comm.rank == comm.size - 1:
        rows["cost"][:1] = bad
    with pytest.raises(TaskError, match=f"rank {comm.size - 1}: the 'cost' field must hold one finite"):
        Farm(comm).map(random_cost_solve, rows, RESULT)


def sleepy_solve(rows, ctx):
    """Task 42 never ends (an interruptible Python sleep); the rest take 1 ms."""
    for tid in rows["task_id"]:
        time.sleep(3600 if tid == 42 else 1e-3)
    return {"mean": rows["x"][:, 0], "draws": np.zeros((rows.shape[0], 4)), "n": rows["task_id"]}


@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_task_over_time_limit_is_collective_and_names_task(mode):
    rows = make_tasks(comm.rank, comm.size, "round_robin")
    farm = Farm(comm, mode=mode, task_time_limit=0.05)
    farm.map(random_cost_solve, rows, RESULT, step=0, seed=0)  # measures the time per task
    t0 = time.monotonic()
    with pytest.raises(TaskError) as info:
        farm.map(sleepy_solve, rows, RESULT, step=3, seed=0)
    msg = str(info.value)
    assert msg.startswith("micro task 42 (step 3) failed on rank ")
    assert msg.endswith("TaskTimeout: ran past the time limit farm.task_time_limit = 0.05 s")
    assert agree(comm.allgather(msg) == [msg] * comm.size)
    assert time.monotonic() - t0 < 30
    # the farm is usable again, and the limit does not change results
    res = farm.map(random_cost_solve, rows, RESULT, step=4, seed=11)
    assert agree(res.tobytes() == reference()[rows["task_id"]].tobytes())
