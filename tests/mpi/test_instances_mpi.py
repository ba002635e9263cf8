"""Persistent micro instances over MPI: results independent of ranks and placement.

Run with, e.g., ``mpirun -n 3 python -m pytest --with-mpi tests/mpi/test_instances_mpi.py``.
Every assertion is evaluated so that all ranks agree on it (rank 0's verdicts are
broadcast), so a failure cannot leave the other ranks waiting in a collective.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core.errors import HmmparError, TaskError
from hmmpar.core.instances import InstancePool
from hmmpar.core.timing import FarmStats

comm = MPI.COMM_WORLD

M = 11
DT = np.dtype([("x", np.float64, (2, 3)), ("walks", np.int64), ("tag", "S4")])
RES = np.dtype([("id", np.int64), ("last", np.float64, (3,))])
COSTS_A = 1.0 + (np.arange(M) * 7 % 5)  # uneven: placement interleaves ids
COSTS_B = 1.0 + np.arange(M)[::-1] ** 2  # another placement


def init(ids):
    s = np.zeros(ids.size, dtype=DT)
    s["x"] = ids[:, None, None] + np.arange(6.0).reshape(2, 3) / 10
    s["tag"] = [b"i%03d" % i for i in ids]
    return s


def walk(states, ids, ctx, nsub=4, scale=1.0):
    """A random walk of ``nsub`` steps per instance, from the instance's own stream."""
    res = np.empty(ids.size, dtype=RES)
    res["id"] = ids
    for k, i in enumerate(ids):
        incr = scale * ctx.rng(int(i)).normal(size=(nsub, 2, 3))
        states["x"][k] += incr.sum(axis=0)
        res["last"][k] = incr[-1, 0]
    states["walks"] += nsub
    return res


def reference(steps, seed, m=M):
    """Serial reference: one COMM_SELF pool, every instance in one batch."""
    pool = InstancePool(MPI.COMM_SELF, DT, np.ones(m), init)
    assert pool.ids.tolist() == list(range(m))
    results = [pool.step(walk, step=s, seed=seed, nsub=4, scale=0.5) for s in steps]
    return pool.states.copy(), results


def same(a, b) -> bool:
    return a is not None and b is not None and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def everyone(ok: bool) -> bool:
    """True only if ``ok`` holds on every rank (collective)."""
    return comm.allreduce(bool(ok), op=MPI.LAND)


def on_root(check) -> bool:
    """Rank 0's verdict of ``check()``, on every rank (collective)."""
    return comm.bcast(bool(check()) if comm.rank == 0 else None, root=0)


@pytest.mark.mpi
def test_stochastic_steps_match_serial_reference():
    stats = FarmStats()
    pool = InstancePool(comm, DT, COSTS_A, init, stats=stats)
    assert everyone(np.array_equal(pool.ids, np.sort(pool.ids)))
    assert comm.allreduce(pool.ids.size) == M
    assert sorted(np.concatenate(comm.allgather(pool.ids)).tolist()) == list(range(M))
    gathered = []
    for s in range(5):
        res = pool.step(walk, step=s, seed=2024, nsub=4, scale=0.5)
        assert everyone(same(res["id"], pool.ids.astype(np.int64)))
        gathered.append(pool.gather_results(res))
    states = pool.gather_states()
    ref_states, ref_results = reference(range(5), 2024) if comm.rank == 0 else (None, None)
    assert on_root(lambda: same(states, ref_states))
    assert on_root(lambda: all(same(g, r) for g, r in zip(gathered, ref_results)))
    assert on_root(lambda: (states["walks"] == 20).all())
    assert everyone(comm.rank == 0 or (states is None and all(g is None for g in gathered)))
    assert stats.calls == 5 and stats.tasks == 5 * pool.ids.size
    assert everyone(np.isclose(comm.allreduce(pool.local_cost), COSTS_A.sum()))


@pytest.mark.mpi
def test_global_block_load_block_round_trip_onto_other_placement():
    pool = InstancePool(comm, DT, COSTS_A, init)
    for s in range(3):
        pool.step(walk, step=s, seed=7, nsub=4, scale=0.5)
    ref_states, _ = reference(range(3), 7)  # every rank: compare blocks locally
    first, rows = pool.global_block()
    lo, hi = M * comm.rank // comm.size, M * (comm.rank + 1) // comm.size
    assert everyone(first == lo and same(rows, ref_states[lo:hi]))
    assert everyone(same(pool.states, ref_states[pool.ids]))  # global_block left the pool alone

    # (a) a new pool with another placement loads the blocks
    other = InstancePool(comm, DT, COSTS_B)  # zero states until loaded
    if comm.size > 1:
        assert not np.array_equal(other.owner, pool.owner)
    other.load_block(first, rows)
    assert everyone(same(other.states, ref_states[other.ids]))
    # and carries on exactly like the reference
    other.step(walk, step=3, seed=7, nsub=4, scale=0.5)
    ref4, _ = reference(range(4), 7)
    assert everyone(same(other.states, ref4[other.ids]))

    # (b) the same pool after a rebalance, blocks written before it
    pool.rebalance(COSTS_B)
    pool.load_block(first, rows)
    assert everyone(same(pool.states, ref_states[pool.ids]))
    # (c) a block round trip under the new placement
    first2, rows2 = pool.global_block()
    assert everyone(first2 == first and same(rows2, rows))


@pytest.mark.mpi
def test_rebalance_moves_rows_and_results_still_match():
    pool = InstancePool(comm, DT, COSTS_A, init)
    results = []
    for s in range(2):
        results.append(pool.gather_results(pool.step(walk, step=s, seed=11, nsub=4, scale=0.5)))
    old_owner, old_ids = pool.owner.copy(), pool.ids.copy()
    moved = pool.rebalance(COSTS_B)
    assert everyone(moved == int(np.count_nonzero(old_owner != pool.owner)))
    assert everyone(len(set(comm.allgather(moved))) == 1)
    if comm.size > 1:
        assert moved > 0
        assert not everyone(np.array_equal(old_ids, pool.ids))
    assert everyone(np.array_equal(pool.costs, COSTS_B))
    assert sorted(np.concatenate(comm.allgather(pool.ids)).tolist()) == list(range(M))
    ref2, _ = reference(range(2), 11)
    assert everyone(same(pool.states, ref2[pool.ids]))  # rows arrived with their owners
    for s in range(2, 5):
        results.append(pool.gather_results(pool.step(walk, step=s, seed=11, nsub=4, scale=0.5)))
    # rebalance on "measured" costs assembled from the owners
    measured = pool.global_costs(1.0 + pool.ids % 4)
    assert everyone(np.array_equal(measured, 1.0 + np.arange(M) % 4))
    pool.rebalance(measured)
    states = pool.gather_states()
    ref_states, ref_results = reference(range(5), 11) if comm.rank == 0 else (None, None)
    assert on_root(lambda: same(states, ref_states))
    assert on_root(lambda: all(same(g, r) for g, r in zip(results, ref_results)))


@pytest.mark.mpi(min_size=2)
def test_failure_on_rank_1_raises_everywhere():
    pool = InstancePool(comm, DT, COSTS_A, init)
    assert everyone(pool.ids.size > 0)

    def fragile(states, ids, ctx):
        if ctx.rank == 1:
            raise RuntimeError(f"column {int(ids[0])} blew up")
        states["walks"] += 1

    with pytest.raises(TaskError) as info:
        pool.step(fragile, step=3, seed=0)
    msg = str(info.value)
    assert "rank 1" in msg and "RuntimeError: column" in msg and "step 3" in msg
    assert len(set(comm.allgather(msg))) == 1
    # the pool is still usable collectively afterwards
    assert pool.step(lambda s, i, c: None, step=4, seed=0) is None


@pytest.mark.mpi(min_size=2)
def test_ranks_disagreeing_on_instance_count_raise_everywhere():
    with pytest.raises(HmmparError, match="number of instances"):
        InstancePool(comm, DT, np.ones(M + (comm.rank == 1)))
    with pytest.raises(HmmparError, match="costs"):
        InstancePool(comm, DT, np.ones(M) + (comm.rank == 1))
    pool = InstancePool(comm, DT, np.ones(M))
    with pytest.raises(HmmparError, match="rank 1"):
        first, rows = pool.global_block()
        pool.load_block(first + (comm.rank == 1), rows)


@pytest.mark.mpi
def test_fewer_instances_than_ranks():
    m = 2
    pool = InstancePool(comm, DT, np.array([1.0, 2.0]), init)
    for s in range(3):
        res = pool.step(walk, step=s, seed=5, nsub=4, scale=0.5)
        assert everyone(res is not None and res.shape == pool.ids.shape and res.dtype == RES)
    first, rows = pool.global_block()
    assert everyone(rows.shape[0] == m * (comm.rank + 1) // comm.size - first)
    pool.rebalance(np.array([2.0, 1.0]))
    pool.load_block(first, rows)
    states = pool.gather_states()
    ref_states, _ = reference(range(3), 5, m=m) if comm.rank == 0 else (None, None)
    assert on_root(lambda: same(states, ref_states))


@pytest.mark.mpi
def test_rows_move_between_a_block_layout_and_the_placement_and_back():
    """A macro model's block decomposition (columns [M r/P, M (r+1)/P) on rank r) and the
    pool's cost placement: from_layout delivers each instance's row to its owner, to_layout
    returns them, both in ascending id order."""
    pool = InstancePool(comm, DT, COSTS_A, init)
    p, r = comm.size, comm.rank
    holder = np.repeat(np.arange(p), np.diff([M * q // p for q in range(p + 1)]))
    mine = np.flatnonzero(holder == r)
    rows = np.zeros(mine.size, dtype=RES)
    rows["id"] = mine
    rows["last"] = mine[:, None] * np.array([1.0, 2.0, 3.0])
    got = pool.from_layout(rows, holder)
    assert everyone(np.array_equal(got["id"], pool.ids))
    assert everyone(np.array_equal(got["last"][:, 2], 3.0 * pool.ids))
    back = pool.to_layout(got, holder)
    assert everyone(back.tobytes() == rows.tobytes())
    with pytest.raises(HmmparError, match="holder must give a rank"):
        pool.from_layout(rows, holder[:-1])


@pytest.mark.mpi
def test_a_move_marks_the_stats_and_the_report_measures_each_placement():
    """A rebalance that moves instances marks the stats (the same on every rank); one that
    moves none does not. The report's per-placement imbalance is max/mean over the ranks
    of the busy time between the marks (here set by hand: rank r busy r + 1 s before the
    move, 1 s after)."""
    from hmmpar.core.timing import Timers, gather_report
    stats = FarmStats()
    pool = InstancePool(comm, DT, COSTS_A, init, stats=stats)
    assert pool.rebalance(COSTS_A) == 0 and stats.marks == []
    stats.busy = float(comm.rank + 1)
    moved = pool.rebalance(COSTS_B)
    assert everyone(len(stats.marks) == (1 if moved else 0))
    stats.busy += 1.0
    report = gather_report(comm, Timers(), stats, wall=1.0)
    if comm.size > 1:  # on one rank nothing can move
        assert everyone(moved > 0)
        want = comm.size / ((comm.size + 1) / 2)  # max/mean of 1 .. P
        assert on_root(lambda: [p["load_imbalance"] for p in report["farm"]["placements"]]
                       == [pytest.approx(want), 1.0])


@pytest.mark.mpi
def test_a_rebalance_that_gains_less_than_min_gain_moves_nothing():
    """With ``min_gain`` the pool keeps its placement unless the new one lowers the largest
    rank's cost by that fraction: the same costs again never move (the placement is the
    optimum's own), new costs move only when their placement is clearly better."""
    pool = InstancePool(comm, DT, COSTS_A, init)
    before = pool.owner.copy()
    assert pool.rebalance(COSTS_A, min_gain=0.0) == 0
    assert everyone(np.array_equal(pool.owner, before))
    old_max = np.bincount(before, weights=COSTS_B, minlength=comm.size).max()
    moved = pool.rebalance(COSTS_B, min_gain=0.05)
    new_max = np.bincount(pool.owner, weights=COSTS_B, minlength=comm.size).max()
    if moved:
        assert everyone(new_max < 0.95 * old_max)
    else:
        assert everyone(np.array_equal(pool.owner, before))
    if comm.size > 1:  # COSTS_B's placement beats COSTS_A's on COSTS_B by far
        assert everyone(moved > 0)
