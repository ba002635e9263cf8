"""Nested SSA building blocks: stream seeding, partition rule, time scale, windows, states."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmmpar.micro.nested_ssa import (NestedParameters, WindowError, WindowRunner, auto_partition,
                                     averaged_rates, potential_propensity, run_ensemble, time_scale)
from hmmpar.micro.splitmix import mix64, stream_state
from hmmpar.micro.ssa_model import Reaction, ReactionNetwork

MODELS = Path(__file__).resolve().parents[2] / "drivers" / "configs" / "models"


@pytest.fixture(scope="module")
def four():
    return ReactionNetwork.from_toml(MODELS / "four_species.toml")


@pytest.fixture(scope="module")
def heat():
    return ReactionNetwork.from_toml(MODELS / "heat_shock.toml")


def test_splitmix64_reference_values():
    # SplitMix64 from state 0 (reference: Vigna's splitmix64.c): the outputs are
    # mix64(k * golden_gamma) for k = 1, 2, 3
    g = 0x9E3779B97F4A7C15
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    got = [int(mix64(np.uint64((k * g) % 2**64))) for k in (1, 2, 3)]
    assert got == expected


def test_streams_depend_only_on_their_keys():
    a = stream_state(7, 3, 5)
    assert np.array_equal(a, stream_state(7, 3, 5))
    others = [stream_state(8, 3, 5), stream_state(7, 4, 5), stream_state(7, 3, 6), stream_state(7, 5, 3),
              stream_state(7, 3, -1)]
    assert all(not np.array_equal(a, b) for b in others)
    assert a.dtype == np.uint64 and a.any()


def test_potential_propensity_floors_reactant_counts():
    net = ReactionNetwork({"A": 0, "B": 5}, [Reaction.parse("A -> B", 2.0), Reaction.parse("A + B -> 0", 3.0),
                                             Reaction.parse("2 A -> B", 4.0), Reaction.parse("0 -> A", 0.5)])
    x = np.array([0, 5])
    got = [potential_propensity(k, x, net.reactants, net.rates) for k in range(4)]
    assert got == [2.0, 15.0, 4.0, 0.5]  # A -> 1, 2 A -> 2 molecules (one pair)
    x = np.array([3, 5])
    assert [potential_propensity(k, x, net.reactants, net.rates) for k in range(4)] == \
        pytest.approx(list(net.propensities(x)))


@pytest.mark.parametrize("model", ["four", "heat"])
def test_auto_partition_gives_the_papers_partition(model, request):
    net = request.getfixturevalue(model)
    fast = np.empty(net.n_reactions, dtype=bool)
    states = [net.initial_counts]
    if model == "four":  # every corner of the state space the slow dynamics visits
        states += [np.array(s) for s in ([0, 0, 100, 0], [0, 0, 0, 100], [1, 0, 99, 0], [50, 50, 0, 0],
                                         [0, 1, 0, 99], [0, 0, 0, 0])]
    else:
        states += [r for r in run_ensemble(net, "nested", NestedParameters(tolerance=1.0), [0, 2, 5], 2, 3)[0][:, -1]]
    for x in states:
        auto_partition(np.asarray(x, dtype=np.int64), net.reactants, net.rates, 1e-3, fast)
        assert fast.tolist() == net.fast.tolist(), x


def test_time_scale(four, heat):
    assert time_scale(four.initial_counts, four.fast, four.reactants, four.rates, four.nu) == pytest.approx(1e-5)
    # heat shock: DnaJ (the only fast species in a slow propensity) is consumed at
    # 1.08e-2 * Unfolded per molecule
    unfolded = heat.initial_counts[heat.species_index("Unfolded")]
    assert time_scale(heat.initial_counts, heat.fast, heat.reactants, heat.rates, heat.nu) == \
        pytest.approx(1 / (1.08e-2 * unfolded))
    # nothing slow depends on the fast species: eps from every species fast reactions consume
    net = ReactionNetwork({"A": 10, "B": 0, "C": 3}, [Reaction.parse("A -> B", 50.0, fast=True),
                                                      Reaction.parse("B -> A", 50.0, fast=True),
                                                      Reaction.parse("C -> 0", 1.0)])
    assert time_scale(net.initial_counts, net.fast, net.reactants, net.rates, net.nu) == pytest.approx(1 / 50)


def test_parameters_from_tolerance(four):
    p = NestedParameters(tolerance=0.1)
    assert p.n_replicas == 10
    rates, fast, eps, t_f = averaged_rates(four, np.array([30, 30, 20, 20]), 5, p)
    assert eps == pytest.approx(1e-5) and t_f == pytest.approx(1e-4)
    assert np.isnan(rates[fast]).all() and np.isfinite(rates[~fast]).all()
    assert NestedParameters(tolerance=0.3).n_replicas == 4 and NestedParameters(tolerance=1).n_replicas == 1
    assert NestedParameters(replicas=7, tolerance=0.1).n_replicas == 7
    for bad, word in ((dict(replicas=-1), "replicas"), (dict(), "tolerance"), (dict(tolerance=0.1, partition="x"),
                                                                              "partition"),
                      (dict(tolerance=0.1, partition_ratio=2.0), "partition_ratio")):
        with pytest.raises(ValueError, match=word):
            NestedParameters(**bad).check()


@pytest.mark.parametrize("method", ["nested", "direct"])
def test_windows_cut_anywhere_give_the_same_trajectory(four, method):
    """A window's result depends only on its key: continuing from a sample equals the whole run."""
    p = NestedParameters(tolerance=0.3)
    times = [0.0, 0.1, 0.25, 0.3]
    whole, _ = run_ensemble(four, method, p, times, 3, 42, x0=[20, 0, 0, 0])
    part, _ = run_ensemble(four, method, p, times, 2, 42, first=1, x0=[20, 0, 0, 0])
    assert np.array_equal(whole[1:], part)
    # the same trajectory again: bitwise
    again, _ = run_ensemble(four, method, p, times, 3, 42, x0=[20, 0, 0, 0])
    assert np.array_equal(whole, again)
    other, _ = run_ensemble(four, method, p, times, 3, 43, x0=[20, 0, 0, 0])
    assert not np.array_equal(whole, other)


def test_slow_variables_change_only_by_slow_jumps_and_counts_stay_non_negative(four):
    """Fast reactions conserve y1 = S1 + S2 and y2 = S3 + S4; from few molecules (where the
    replica end states often cannot fire the chosen slow reaction) counts stay >= 0."""
    p = NestedParameters(tolerance=1.0)
    states, counters = run_ensemble(four, "nested", p, np.linspace(0, 3, 31), 40, 9, x0=[1, 0, 1, 0])
    assert (states >= 0).all()
    assert (states.sum(axis=2) == 2).all()  # S2 <-> S3 moves one molecule at a time
    assert counters[:, 1].sum() > 100  # slow firings happened
    assert counters[:, 4].sum() > 0  # the continuation path was exercised


def test_auto_partition_run_matches_model_partition(four):
    """Where the automatic rule gives the model's partition, trajectories are identical."""
    times = [0.0, 0.2, 0.4]
    a, ca = run_ensemble(four, "nested", NestedParameters(tolerance=0.5), times, 4, 1, x0=[30, 0, 0, 0])
    b, cb = run_ensemble(four, "nested", NestedParameters(tolerance=0.5, partition="auto"), times, 4, 1,
                         x0=[30, 0, 0, 0])
    assert np.array_equal(a, b) and np.array_equal(ca, cb)
    assert cb[:, 3].sum() == 0  # no partition change


def test_no_fast_reactions_is_the_exact_ssa_of_the_slow_ones():
    net = ReactionNetwork({"A": 30, "B": 0}, [Reaction.parse("A -> B", 1.0), Reaction.parse("B -> A", 0.5)])
    with pytest.raises(ValueError, match="marks no reaction fast"):
        WindowRunner(net, "nested", NestedParameters(tolerance=0.5))
    every = ReactionNetwork({"A": 30, "B": 0}, [Reaction.parse("A -> B", 1.0, fast=True),
                                                Reaction.parse("B -> A", 0.5, fast=True)])
    with pytest.raises(ValueError, match="marks every reaction fast"):
        WindowRunner(every, "nested", NestedParameters(tolerance=0.5))
    # the automatic rule finds no gap (both within 1e3 of each other): exact SSA steps
    p = NestedParameters(tolerance=0.5, partition="auto")
    states, counters = run_ensemble(net, "nested", p, [0, 0.7], 2000, 3)
    mean_b = states[:, -1, 1].mean()
    exact = 30 * (1 - np.exp(-1.5 * 0.7)) / 1.5  # E[B] of A <-> B from B = 0
    assert abs(mean_b - exact) < 3 * states[:, -1, 1].std() / np.sqrt(2000)
    assert counters[:, 0].sum() == 0  # no inner events


def test_event_limit_is_an_error(heat):
    runner = WindowRunner(heat, "direct", NestedParameters(tolerance=1.0, max_events=1000))
    with pytest.raises(WindowError, match="max_events = 1000"):
        runner.advance(heat.initial_counts.copy(), 0.0, 1.0, 5)
