"""Nested SSA building blocks: stream seeding, partition rule, time scale, windows, states;
the same for three levels (nested twice)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmmpar.micro.ssa.model import Reaction, ReactionNetwork
from hmmpar.micro.ssa.nested import (EXACT_STEP, THREE_LEVEL_STEP, TWO_LEVEL_STEP, NestedParameters, WindowError,
                                     WindowRunner, auto_levels, auto_partition, averaged_rates, estimate_rates,
                                     outer_step_levels, plan_step, potential_propensity, run_ensemble, time_scale,
                                     time_scale_between)
from hmmpar.micro.ssa.streams import mix64, stream_state, stream_sub_key

MODELS = Path(__file__).resolve().parents[4] / "drivers" / "configs" / "models"


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


# ----------------------------------------------------------------------------- three levels
THREE = dict(levels=3, tolerance=0.5, ultrafast_tolerance=0.5)


def three_level_network(counts=(2, 2, 2, 0), c=(1e6, 1e3, 1.0)) -> ReactionNetwork:
    """S1 <-> S2 (level 2), S2 <-> S3 (level 1), S3 <-> S4 (level 0)."""
    cu, cf, cs = c
    return ReactionNetwork(dict(zip(("S1", "S2", "S3", "S4"), counts)), [
        Reaction.parse("S1 -> S2", cu, level=2), Reaction.parse("S2 -> S1", cu, level=2),
        Reaction.parse("S2 -> S3", cf, fast=True), Reaction.parse("S3 -> S2", cf, fast=True),
        Reaction.parse("S3 -> S4", cs), Reaction.parse("S4 -> S3", cs)])


@pytest.fixture(scope="module")
def three():
    return three_level_network()


@pytest.fixture(scope="module")
def scales():
    return ReactionNetwork.from_toml(MODELS / "three_scales.toml")


def test_sub_keys_are_the_fifth_splitmix_output():
    """sub_key(key, n, r) = mix(h + 5 g), h the stream hash: distinct from the stream's four
    state words, from other sub-keys and from the parent key (pure-Python reference)."""
    g, mask = 0x9E3779B97F4A7C15, 2**64 - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    for key, n, r in ((7, 3, 5), (2**63 + 11, 0, 2**64 - 2), (0, 0, 0)):
        h = mix((mix((mix((key + g) & mask) + (n + 1) * g) & mask) + ((r + 1) * g)) & mask)
        assert stream_state(key, n, r).tolist() == [mix((h + i * g) & mask) for i in (1, 2, 3, 4)]
        assert stream_sub_key(key, n, r) == mix((h + 5 * g) & mask)
    k = stream_sub_key(7, 3, 5)
    assert k not in stream_state(7, 3, 5).tolist() and k != 7
    assert len({k, stream_sub_key(7, 3, 6), stream_sub_key(7, 4, 5), stream_sub_key(8, 3, 5),
                stream_sub_key(7, 5, 3)}) == 5


def test_auto_levels_apply_the_ratio_test_twice(three, four, scales):
    level = np.empty(6, dtype=np.int64)
    # 6 molecules: every state of the simplex gives the model's levels with theta = 1e-2
    # (a' spans [1e6, 6e6], [1e3, 6e3], [1, 6]: gaps of more than 100 at every level)
    for s1 in range(7):
        for s2 in range(7 - s1):
            for s3 in range(7 - s1 - s2):
                x = np.array([s1, s2, s3, 6 - s1 - s2 - s3], dtype=np.int64)
                auto_levels(x, three.reactants, three.rates, 1e-2, level)
                assert level.tolist() == three.level.tolist(), x
    auto_levels(scales.initial_counts, scales.reactants, scales.rates, 1e-2, level)
    assert level.tolist() == [2, 2, 1, 1, 0, 0]
    # theta = 1e-3 is too fine for a gap of 1e3 spread by the counts: the fast pair joins level 2
    auto_levels(scales.initial_counts, scales.reactants, scales.rates, 1e-3, level)
    assert level.tolist() == [2, 2, 2, 2, 0, 0]
    # one gap (four species: 1e5 against <= 100 within the slow pair): levels 2 and 0 only
    auto_levels(four.initial_counts, four.reactants, four.rates, 1e-3, level)
    assert level.tolist() == [2, 2, 0, 0, 2, 2]
    # no gap: every reaction slow
    net = ReactionNetwork({"A": 30, "B": 0}, [Reaction.parse("A -> B", 1.0), Reaction.parse("B -> A", 0.5)])
    two = np.empty(2, dtype=np.int64)
    auto_levels(net.initial_counts, net.reactants, net.rates, 1e-3, two)
    assert two.tolist() == [0, 0]


def test_plan_and_time_scales_of_three_levels(scales, four):
    net = scales
    x = net.initial_counts
    u, f, s = net.level == 2, net.level == 1, net.level == 0
    # eps1: S3 (coupling species of the slow reactions) leaves at c_F = 1e3 per molecule;
    # eps2: S2 (a reactant of S2 -> S3) leaves by S2 -> S1 at c_U = 1e6 per molecule
    assert time_scale_between(x, f, s, net.reactants, net.rates, net.nu) == pytest.approx(1e-3)
    assert time_scale_between(x, u, ~u, net.reactants, net.rates, net.nu) == pytest.approx(1e-6)
    level = np.empty(6, dtype=np.int64)
    kind, t_f = plan_step(3, x, net.level, False, 1e-3, 0.0, 0.25, net.reactants, net.rates, net.nu, level)
    assert kind == THREE_LEVEL_STEP and t_f == pytest.approx(4e-3) and level.tolist() == [2, 2, 1, 1, 0, 0]
    kind, t_f = plan_step(2, x, net.level, False, 1e-3, 0.0, 0.25, net.reactants, net.rates, net.nu, level)
    assert kind == TWO_LEVEL_STEP and t_f == pytest.approx(4e-3) and level.tolist() == [1, 1, 1, 1, 0, 0]
    # one gap under levels = 3: the two-level step of level >= 1
    kind, t_f = plan_step(3, four.initial_counts, four.level, True, 1e-3, 0.0, 0.5, four.reactants, four.rates,
                          four.nu, level)
    assert kind == TWO_LEVEL_STEP and t_f == pytest.approx(2e-5) and level.tolist() == [2, 2, 0, 0, 2, 2]
    net2 = ReactionNetwork({"A": 30, "B": 0}, [Reaction.parse("A -> B", 1.0), Reaction.parse("B -> A", 0.5)])
    lv = np.empty(2, dtype=np.int64)
    assert plan_step(3, net2.initial_counts, net2.level, True, 1e-3, 0.0, 0.5, net2.reactants, net2.rates,
                     net2.nu, lv) == (EXACT_STEP, 0.0)
    e = estimate_rates(net, x, 3, NestedParameters(tolerance=0.25, levels=3, ultrafast_tolerance=0.5))
    assert e.kind == THREE_LEVEL_STEP and e.eps == pytest.approx(1e-3) and e.t_f == pytest.approx(4e-3)
    assert np.isnan(e.rates[:4]).all() and e.rates[5] == 0.0 and e.rates[4] > 0 and e.middle_events > 0


def test_three_level_auto_partition_matches_the_model_one(three, four):
    """Where the automatic rule gives the model's levels the runs are identical; with one gap
    only, levels = 3 is bitwise the two-level method."""
    times = [0.0, 0.3, 0.6]
    a, ca = run_ensemble(three, "nested", NestedParameters(**THREE), times, 4, 1)
    b, cb = run_ensemble(three, "nested", NestedParameters(**THREE, partition="auto", partition_ratio=1e-2),
                         times, 4, 1)
    assert np.array_equal(a, b) and np.array_equal(ca, cb) and cb[:, 3].sum() == 0
    assert ca[:, 1].sum() > 0  # slow jumps happened
    p2 = NestedParameters(tolerance=0.5, partition="auto")
    p3 = NestedParameters(tolerance=0.5, partition="auto", levels=3, ultrafast_tolerance=0.1)
    c2 = run_ensemble(four, "nested", p2, [0.0, 0.2], 3, 5, x0=[20, 0, 0, 0])
    c3 = run_ensemble(four, "nested", p3, [0.0, 0.2], 3, 5, x0=[20, 0, 0, 0])
    assert np.array_equal(c2[0], c3[0]) and np.array_equal(c2[1], c3[1])


def test_three_level_windows_cut_anywhere_give_the_same_trajectory(three):
    p = NestedParameters(**THREE)
    times = [0.0, 0.1, 0.25, 0.4]
    whole, cw = run_ensemble(three, "nested", p, times, 3, 42)
    part, cp = run_ensemble(three, "nested", p, times, 2, 42, first=1)
    assert np.array_equal(whole[1:], part) and np.array_equal(cw[1:], cp)
    again, _ = run_ensemble(three, "nested", p, times, 3, 42)
    assert np.array_equal(whole, again)
    # a restart at a window boundary: the state of window 2 advanced with window 2's keys
    from hmmpar.core.rng import task_seeds
    x = whole[0, 2].copy()
    WindowRunner(three, "nested", p).advance(x, times[2], times[3], int(task_seeds(42, 2, [0])[0]))
    assert np.array_equal(x, whole[0, 3])
    other, _ = run_ensemble(three, "nested", p, times, 3, 43)
    assert not np.array_equal(whole, other)


def test_three_level_counts_stay_non_negative_and_slow_variables_jump_only_slowly():
    """Two molecules: the resampled end states often cannot fire the chosen reaction, so the
    continuations (both levels) run; fast reactions conserve S4 and the total."""
    net = three_level_network((1, 0, 1, 0), (1e5, 1e2, 3.0))
    p = NestedParameters(levels=3, tolerance=1.0, ultrafast_tolerance=1.0)
    states, counters = run_ensemble(net, "nested", p, np.linspace(0, 2, 11), 30, 9)
    assert (states >= 0).all() and (states.sum(axis=2) == 2).all()
    assert counters[:, 1].sum() > 50 and counters[:, 4].sum() > 0
    # every change of S4 between samples is a slow firing: at most as many as the outer events
    assert np.abs(np.diff(states[:, :, 3], axis=1)).sum() <= counters[:, 1].sum()


def test_outer_continuation_runs_the_middle_process(three):
    """Every middle end state has S3 = 0, so S3 -> S4 cannot be resampled: the middle process of
    replica 0 runs on (key sub_key(key, n, CONTINUATION_STREAM)) until S3 > 0."""
    net = three
    x = np.array([1, 0, 0, 0], dtype=np.int64)
    ends = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.int64)
    slow_idx = np.array([4, 5])
    stats = np.zeros(3, dtype=np.int64)
    outer = stream_state(3, 0, 2**64 - 1)
    status, t_next, fired = outer_step_levels(
        x, 0.0, 10.0, np.array([1.0, 0.0]), slow_idx, ends, 1e-3, np.uint64(3), 0, outer, net.level, 2, 0.0, 0.0,
        0.5, net.reactants, net.rates, net.nu, net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx,
        False, 10**9, stats)
    assert status == 0 and fired and 0 < t_next < 10.0
    assert x.tolist() == [0, 0, 0, 1]  # Z had the molecule in S3, then S3 -> S4
    assert stats[2] >= 1 and stats[1] >= 1 and stats[0] > 0


def test_three_level_parameters_and_errors(three, four):
    p = NestedParameters(levels=3, tolerance=0.25)
    assert p.n_replicas == 4 and p.ultrafast_lambda == 0.25 and p.n_ultrafast_replicas == 4
    p = NestedParameters(levels=3, tolerance=0.25, ultrafast_tolerance=0.5, ultrafast_replicas=3)
    assert p.ultrafast_lambda == 0.5 and p.n_ultrafast_replicas == 3
    for bad, word in ((dict(levels=4, tolerance=0.1), "levels must be 2 or 3"),
                      (dict(levels=3, tolerance=0.1, ultrafast_replicas=-1), "ultrafast_replicas must be >= 0"),
                      (dict(levels=3, tolerance=0.1, ultrafast_averaging_time=-1.0), "ultrafast_averaging_time"),
                      (dict(levels=3, tolerance=0.1, ultrafast_burn_in=float("nan")), "ultrafast_burn_in"),
                      (dict(levels=3, replicas=2, averaging_time=1e-3, ultrafast_replicas=2),
                       "ultrafast_averaging_time is 0")):
        with pytest.raises(ValueError, match=word):
            NestedParameters(**bad).check()
    with pytest.raises(ValueError, match="marks no reaction ultrafast"):
        WindowRunner(four, "nested", NestedParameters(levels=3, tolerance=0.5))
    mid = ReactionNetwork({"A": 3, "B": 0}, [Reaction.parse("A -> B", 1e6, level=2),
                                             Reaction.parse("B -> A", 1.0)])
    with pytest.raises(ValueError, match="marks no reaction fast at level 1"):
        WindowRunner(mid, "nested", NestedParameters(levels=3, tolerance=0.5))
    WindowRunner(four, "nested", NestedParameters(levels=3, tolerance=0.5, partition="auto"))  # fine
    runner = WindowRunner(three, "nested", NestedParameters(**THREE, max_events=200))
    with pytest.raises(WindowError, match="max_events = 200 "):
        runner.advance(three.initial_counts.copy(), 0.0, 1.0, 5)


# ---------------------------------------------------------------------------- reuse of the averaged rates
def _involved(net):
    from hmmpar.micro.ssa.model import FAST, SLOW
    from hmmpar.micro.ssa.nested import fast_species
    level = np.where(net.fast, FAST, SLOW).astype(np.int64)
    involved = np.zeros(net.n_species, dtype=bool)
    fast_species(level, net.reactants, net.nu_ptr, net.nu_species, net.nu_change, involved)
    return involved


def test_involved_species_of_the_heat_shock_model(heat):
    names = {heat.species[i] for i in np.flatnonzero(_involved(heat))}
    assert names == {"Protein", "Unfolded", "DnaJ", "DnaJ.Unfolded"}


def test_slow_factor_carries_every_not_involved_factor(heat):
    """a_j(x) / h_j(x) depends on the involved species only: changing the others leaves it."""
    from hmmpar.micro.ssa.model import propensity
    from hmmpar.micro.ssa.nested import slow_factor
    involved = _involved(heat)
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(50):
        x = rng.integers(0, 50, heat.n_species).astype(np.int64)
        x2 = x.copy()
        x2[~involved] = rng.integers(0, 50, int((~involved).sum()))
        for j in np.flatnonzero(~heat.fast):
            h, h2 = slow_factor(j, x, involved, heat.reactants, heat.rates), \
                slow_factor(j, x2, involved, heat.reactants, heat.rates)
            if h > 0 and h2 > 0:
                g, g2 = propensity(j, x, heat.reactants, heat.rates) / h, propensity(j, x2, heat.reactants, heat.rates) / h2
                assert g == pytest.approx(g2, rel=1e-12, abs=0), heat.reactions[j].equation
                checked += 1
    assert checked > 300


def test_reused_rates_equal_the_fresh_inner_average_after_a_jump_away_from_the_fast_species(heat):
    """Same streams, start states that differ only in species no fast reaction involves:
    the fresh inner runs are the same runs, so the fresh ã equals the reused one (to
    rounding) and their end states differ by the jump."""
    from hmmpar.micro.ssa.nested import (inner_average, jump_keeps_fast_state, remember_fast_factors,
                                         reused_rates)
    net = heat
    involved = _involved(net)
    fast_idx, slow_idx = np.flatnonzero(net.fast), np.flatnonzero(~net.fast)
    s32, rnap = net.species.index("s32"), net.species.index("RNAP.s32")
    j = next(k for k in slow_idx if set(net.nu[k].nonzero()[0]) == {s32, rnap} and net.nu[k, s32] == -1)
    reps, t_f = 3, 2e-3

    def inner(x):
        ends = np.empty((reps, net.n_species), dtype=np.int64)
        avg = np.empty(slow_idx.size)
        status, _ = inner_average(x, np.uint64(12345), 4, reps, 0.0, t_f, fast_idx, slow_idx, net.reactants,
                                  net.rates, net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx,
                                  False, np.iinfo(np.int64).max, ends, avg)
        assert status == 0
        return ends, avg

    x = net.initial_counts.copy()
    ends, avg = inner(x)
    factor, known = np.empty(slow_idx.size), np.empty(slow_idx.size, dtype=bool)
    remember_fast_factors(x, slow_idx, avg, involved, net.reactants, net.rates, factor, known)
    assert jump_keeps_fast_state(j, involved, ends, net.nu_ptr, net.nu_species, net.nu_change)
    x2 = x + net.nu[j]
    out = np.empty(slow_idx.size)
    assert reused_rates(x2, slow_idx, involved, net.reactants, net.rates, factor, known, out)
    ends2, avg2 = inner(x2)
    np.testing.assert_allclose(out, avg2, rtol=1e-12, atol=0)
    assert not np.array_equal(out, avg)  # s32 enters some slow rates: the reuse rescaled them
    assert ends.tobytes() == ends2.tobytes()
    # a jump that changes DnaJ (involved) ends the reuse
    dnaj = net.species.index("DnaJ")
    k = next(k for k in slow_idx if net.nu[k, dnaj] != 0)
    assert not jump_keeps_fast_state(k, involved, ends, net.nu_ptr, net.nu_species, net.nu_change)


def test_reuse_skips_most_inner_runs_on_heat_shock_and_never_on_four_species(heat, four):
    on, off = NestedParameters(tolerance=1.0), NestedParameters(tolerance=1.0, reuse_averages=False)
    _, c_on = run_ensemble(heat, "nested", on, [0.0, 0.5], 4, seed=3)
    _, c_off = run_ensemble(heat, "nested", off, [0.0, 0.5], 4, seed=3)
    steps, reused = c_on[:, 2].sum(), c_on[:, 5].sum()
    assert c_off[:, 5].sum() == 0 and steps > 40
    # about 2/3 of the slow firings leave Protein, Unfolded, DnaJ and DnaJ.Unfolded alone
    assert 0.3 * steps < reused < steps
    assert c_on[:, 0].sum() < 0.7 * c_off[:, 0].sum()  # inner events
    a, ca = run_ensemble(four, "nested", NestedParameters(tolerance=0.2), [0.0, 0.05], 3, seed=5)
    b, cb = run_ensemble(four, "nested", NestedParameters(tolerance=0.2, reuse_averages=False), [0.0, 0.05], 3,
                         seed=5)
    assert a.tobytes() == b.tobytes() and np.array_equal(ca, cb) and ca[:, 5].sum() == 0
