"""Serial tests of persistent micro instances: LPT placement and a one-rank pool."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core.errors import HmmparError, TaskError
from hmmpar.core.instances import InstancePool, placement
from hmmpar.core.rng import INSTANCES, task_rng
from hmmpar.core.timing import FarmStats


def loads(costs, owner, size):
    return np.bincount(owner, weights=np.asarray(costs, dtype=float), minlength=size)


# ---------------------------------------------------------------------- placement
def test_graham_worst_case_exact():
    # Graham's tight example for P = 3: LPT makespan 11, optimum 9 = 11 / (4/3 - 1/9).
    costs = [5, 5, 4, 4, 3, 3, 3]
    owner = placement(costs, 3)
    assert owner.tolist() == [0, 1, 2, 2, 0, 1, 0]
    assert loads(costs, owner, 3).tolist() == [11, 8, 8]


def test_ties_by_id_then_lowest_rank():
    assert placement(np.ones(7), 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    # cost-3 instances (ids 1, 3) first, in id order; then the cost-1 ones.
    assert placement([1.0, 3.0, 1.0, 3.0], 2).tolist() == [0, 0, 1, 1]


def test_trivial_cases():
    assert placement(np.array([]), 4).dtype == np.int64
    assert placement(np.array([]), 4).size == 0
    assert placement([2.0, 1.0, 7.0], 1).tolist() == [0, 0, 0]
    # more ranks than instances: each on its own rank, largest first
    assert placement([1.0, 3.0, 2.0], 5).tolist() == [2, 0, 1]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 16])
def test_random_costs_properties(size):
    rng = np.random.default_rng(size)
    for _ in range(20):
        m = int(rng.integers(0, 200))
        costs = rng.lognormal(0.0, 1.0, m)
        owner = placement(costs, size)
        assert owner.shape == (m,) and owner.dtype == np.int64
        assert ((owner >= 0) & (owner < size)).all()  # every instance placed on a rank
        assert np.array_equal(owner, placement(costs.copy(), size))  # deterministic
        if m:
            ms = loads(costs, owner, size).max()
            # the list-scheduling bound (holds for any greedy list schedule)
            assert ms <= costs.sum() / size + (1 - 1 / size) * costs.max() + 1e-9
            assert ms <= costs.sum() / size + costs.max()
            assert ms >= max(costs.sum() / size, costs.max()) - 1e-9


@pytest.mark.parametrize("size", [2, 3])
def test_graham_bound_against_brute_force_optimum(size):
    rng = np.random.default_rng(10 + size)
    for _ in range(25):
        m = int(rng.integers(1, 8))
        costs = rng.integers(1, 20, m).astype(float)
        ms = loads(costs, placement(costs, size), size).max()
        opt = min(loads(costs, np.array(a), size).max()
                  for a in itertools.product(range(size), repeat=m))
        assert ms <= (4 / 3 - 1 / (3 * size)) * opt + 1e-9


def test_placement_is_lpt_greedy():
    # every instance went to a least-loaded rank at the time it was placed
    rng = np.random.default_rng(3)
    costs = rng.random(60) + 0.1
    owner = placement(costs, 4)
    load = np.zeros(4)
    for i in np.argsort(-costs, kind="stable"):
        assert owner[i] == int(np.argmin(load))
        load[owner[i]] += costs[i]


@pytest.mark.parametrize("bad", [[1.0, 0.0], [1.0, -2.0], [np.nan], [np.inf], [[1.0]], ["x"]])
def test_placement_rejects_bad_costs(bad):
    with pytest.raises(ValueError):
        placement(bad, 2)


def test_placement_rejects_no_ranks():
    with pytest.raises(ValueError):
        placement([1.0], 0)


# ---------------------------------------------------------------------- serial pool
DT = np.dtype([("x", np.float64, (3,)), ("n", np.int64)])
RES = np.dtype([("id", np.int64), ("norm", np.float64)])


def init(ids):
    s = np.zeros(ids.size, dtype=DT)
    s["x"] = ids[:, None] * np.array([0.1, 0.2, 0.3])
    return s


def walk(states, ids, ctx, nsub=2):
    for k, i in enumerate(ids):
        states["x"][k] += ctx.rng(int(i)).normal(size=(nsub, 3)).sum(axis=0)
    states["n"] += 1
    res = np.empty(ids.size, dtype=RES)
    res["id"] = ids
    res["norm"] = np.linalg.norm(states["x"], axis=1)
    return res


def test_serial_pool_step_and_gather():
    stats = FarmStats()
    pool = InstancePool(MPI.COMM_SELF, DT, np.arange(1.0, 6.0), init, stats=stats)
    assert pool.size == 5 and pool.ids.tolist() == [0, 1, 2, 3, 4]
    assert pool.local_cost == 15.0
    res = pool.step(walk, step=4, seed=9, nsub=3)
    assert res.dtype == RES and res["id"].tolist() == [0, 1, 2, 3, 4]
    expect = init(np.arange(5))
    for i in range(5):
        expect["x"][i] += task_rng(9, 4, i, family=INSTANCES).normal(size=(3, 3)).sum(axis=0)
    assert np.array_equal(pool.states["x"], expect["x"])
    assert pool.states["n"].tolist() == [1] * 5
    assert pool.gather_results(res).tobytes() == res.tobytes()
    assert pool.gather_states().tobytes() == pool.states.tobytes()
    assert stats.tasks == 5 and stats.calls == 1 and stats.busy > 0


def test_serial_pool_blocks_and_rebalance():
    pool = InstancePool(MPI.COMM_SELF, DT, np.ones(4), init)
    first, rows = pool.global_block()
    assert first == 0 and rows.tobytes() == init(np.arange(4)).tobytes()
    rows["n"] = 7
    pool.load_block(0, rows)
    assert pool.states["n"].tolist() == [7] * 4
    assert pool.rebalance(np.arange(1.0, 5.0)) == 0
    assert pool.costs.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert np.array_equal(pool.global_costs(np.full(4, 2.0)), np.full(4, 2.0))


def test_serial_pool_errors():
    pool = InstancePool(MPI.COMM_SELF, DT, np.ones(3))
    assert pool.states.tobytes() == np.zeros(3, dtype=DT).tobytes()

    def boom(states, ids, ctx):
        raise ValueError("bad column")

    with pytest.raises(TaskError, match=r"step 2 failed on rank 0: ValueError: bad column"):
        pool.step(boom, step=2, seed=0)
    with pytest.raises(TaskError, match="rows"):
        pool.step(lambda s, i, c: np.zeros(2, dtype=RES), step=0, seed=0)
    assert pool.step(lambda s, i, c: None, step=0, seed=0) is None
    with pytest.raises(HmmparError, match="expected 0"):
        pool.load_block(1, np.zeros(3, dtype=DT))
    with pytest.raises(HmmparError, match="rows"):
        pool.load_block(0, np.zeros(2, dtype=DT))
    with pytest.raises(HmmparError):
        pool.rebalance(np.ones(4))
    with pytest.raises(HmmparError, match="structured"):
        InstancePool(MPI.COMM_SELF, np.float64, np.ones(3))
    with pytest.raises(HmmparError, match="positive"):
        InstancePool(MPI.COMM_SELF, DT, np.zeros(3))
    with pytest.raises(TaskError, match="init failed"):
        InstancePool(MPI.COMM_SELF, DT, np.ones(3), lambda ids: np.zeros(2, dtype=DT))
