"""Both SSA engines against exact distributions and means (docs/ssa.md, validation table).

Every statistical test has significance 0.001 (chi-square, KS) or a 3-standard-error band
(means), with fixed seed keys, so a pass is deterministic; ``-s`` prints the statistics.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hmmpar.core.rng import substream, task_seed_sequence
from hmmpar.micro.rng.xoshiro import seed_state
from hmmpar.micro.ssa.direct import MAX_EVENTS, NEGATIVE_COUNT, ensemble, simulate, ssa_kernel
from hmmpar.micro.ssa.model import Reaction, ReactionNetwork

ENGINES = ["direct", "sorting"]
ALPHA = 1e-3
MODELS = Path(__file__).resolve().parents[4] / "drivers" / "configs" / "models"


def pooled_chisquare(samples: np.ndarray, pmf, support_max: int):
    """Chi-square goodness of fit of integer samples to ``pmf(k)``, bins pooled to expected >= 5.

    Bin 0 holds k <= 0 ... the last holds k >= support_max, so expected counts sum to n.
    """
    n = samples.size
    k = np.arange(support_max + 1)
    p = pmf(k).astype(float)
    p[-1] += max(0.0, 1.0 - p.sum())
    observed = np.bincount(np.minimum(samples, support_max), minlength=support_max + 1)
    obs_bins, exp_bins, o, e = [], [], 0.0, 0.0
    for oi, pi in zip(observed, p * n):
        o, e = o + oi, e + pi
        if e >= 5:
            obs_bins.append(o), exp_bins.append(e)
            o = e = 0.0
    obs_bins[-1] += o
    exp_bins[-1] += e
    res = stats.chisquare(obs_bins, exp_bins)
    return res.statistic, res.pvalue, len(obs_bins)


def report(name, **values):
    print(f"\n[ssa-validation] {name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                   for k, v in values.items()))


def birth_death(k=10.0, g=1.0, x0=10):
    return ReactionNetwork({"X": x0}, [Reaction.parse("0 -> X", k), Reaction.parse("X -> 0", g)])


def isomerization(n=40, c1=1.0, c2=0.5):
    return ReactionNetwork({"A": n, "B": 0}, [Reaction.parse("A -> B", c1, name="fwd"),
                                              Reaction.parse("B -> A", c2, name="back")])


def iso_p(t, c1=1.0, c2=0.5):
    return (c2 + c1 * math.exp(-(c1 + c2) * t)) / (c1 + c2)


@pytest.mark.parametrize("method", ENGINES)
def test_birth_death_stationary_poisson(method):
    # one long trajectory, samples 10/g apart (autocorrelation exp(-10) = 4.5e-5)
    k, g, n = 10.0, 1.0, 10000
    times = 10.0 + 10.0 * np.arange(n)
    r = simulate(birth_death(k, g), times[-1], times, seed_key=(11, 0), method=method)
    x = r.states[:, 0]
    chi2, p, bins = pooled_chisquare(x, lambda q: stats.poisson.pmf(q, k / g), 40)
    report(f"birth-death {method}", n=n, mean=float(x.mean()), chi2=float(chi2), bins=bins, p=float(p))
    assert p > ALPHA


@pytest.mark.parametrize("method", ENGINES)
def test_isomerization_binomial(method):
    n, t = 4000, 0.7
    net = isomerization()
    e = ensemble(net, n, t, [t], seed_key=(12, ENGINES.index(method)), method=method)
    a = e.states[:, 0, 0]
    chi2, p, bins = pooled_chisquare(a, lambda q: stats.binom.pmf(q, 40, iso_p(t)), 40)
    report(f"isomerization {method}", n=n, mean=float(a.mean()), exact_mean=40 * iso_p(t),
           chi2=float(chi2), bins=bins, p=float(p))
    assert p > ALPHA
    assert np.all(e.states.sum(axis=2) == 40)


def test_engines_agree_in_distribution():
    n, t = 4000, 0.7
    net = isomerization()
    a = [ensemble(net, n, t, [t], seed_key=(13, i), method=m).states[:, 0, 0] for i, m in enumerate(ENGINES)]
    # contingency table with bins pooled until each column has >= 10 in total (expected >= 5 per cell)
    hi = max(a[0].max(), a[1].max()) + 1
    counts = np.array([np.bincount(x, minlength=hi) for x in a])
    cols, cur = [], np.zeros(2)
    for c in counts.T:
        cur = cur + c
        if cur.sum() >= 10:
            cols.append(cur)
            cur = np.zeros(2)
    cols[-1] = cols[-1] + cur
    chi2, p, dof, _ = stats.chi2_contingency(np.array(cols).T)
    ks = stats.ks_2samp(a[0], a[1])
    report("direct vs sorting", n=n, chi2=float(chi2), dof=int(dof), p=float(p), ks_p=float(ks.pvalue))
    assert p > ALPHA


@pytest.mark.parametrize("method", ENGINES)
def test_four_species_slow_mean(method):
    # all first-order: each molecule is an independent 4-state chain, so y2(t) is binomial with
    # p(t) = (1 - exp(-t))/2 + O(1e-5) (averaged rates y1/2, y2/2), mean (y1(0)+y2(0))/2 (1 - exp(-t))
    net = ReactionNetwork.from_toml(MODELS / "four_species.toml")
    n_mol, n = 20, 30
    times = np.array([0.5, 1.0])
    e = ensemble(net, n, 1.0, times, seed_key=(14, ENGINES.index(method)), method=method,
                 x0=np.array([n_mol, 0, 0, 0]))
    y2 = e.states[:, :, 2] + e.states[:, :, 3]
    for i, t in enumerate(times):
        exact = n_mol / 2 * (1 - math.exp(-t))
        p = (1 - math.exp(-t)) / 2
        se = math.sqrt(n_mol * p * (1 - p) / n)
        z = (y2[:, i].mean() - exact) / se
        report(f"four-species {method} t={t}", n=n, mean=float(y2[:, i].mean()), exact=exact, se=se, z=float(z),
               events_per_traj=float(e.events.sum(axis=1).mean()))
        assert abs(z) < 3


def test_reproducible_bitwise_from_the_key():
    net = ReactionNetwork.from_toml(MODELS / "heat_shock.toml")
    key = task_seed_sequence(7, 3, 42)
    kw = dict(sample_times=np.linspace(0, 0.02, 5), integrate=[4, 12])
    for method in ENGINES:
        r1 = simulate(net, 0.02, seed_key=key, method=method, **kw)
        r2 = simulate(net, 0.02, seed_key=task_seed_sequence(7, 3, 42), method=method, **kw)
        for f in ("states", "events", "integrals", "final_state"):
            assert np.array_equal(getattr(r1, f), getattr(r2, f)), f
        r3 = simulate(net, 0.02, seed_key=task_seed_sequence(7, 3, 43), method=method, **kw)
        assert not np.array_equal(r1.states, r3.states) and not np.array_equal(r1.events, r3.events)
    # trajectory i of an ensemble does not depend on n, first or on which call ran it
    iso = isomerization()
    whole = ensemble(iso, 6, 1.0, [0.5, 1.0], seed_key=key)
    part = ensemble(iso, 2, 1.0, [0.5, 1.0], seed_key=key, first=3)
    one = simulate(iso, 1.0, [0.5, 1.0], seed_key=substream(key, 4))
    assert np.array_equal(whole.states[3:5], part.states)
    assert np.array_equal(whole[4].states, one.states) and np.array_equal(whole[4].events, one.events)


@pytest.mark.parametrize("method", ENGINES)
def test_propensity_integral_of_a_decay_is_gamma(method):
    # X -> 0 from x0: int_0^inf c x dt = sum of x0 independent Exp(1) pieces ~ Gamma(x0, 1)
    x0, n = 20, 2000
    net = ReactionNetwork({"X": x0}, [Reaction.parse("X -> 0", 1.5)])
    e = ensemble(net, n, 40.0, seed_key=(15, ENGINES.index(method)), method=method, integrate=[0])
    assert np.all(e.final_states == 0)  # P(a survivor at t = 40) = 20 exp(-60)
    v = e.integrals[:, 0]
    z = (v.mean() - x0) / math.sqrt(x0 / n)
    ks = stats.kstest(v, stats.gamma(x0).cdf)
    report(f"decay integral {method}", n=n, mean=float(v.mean()), z=float(z), ks_p=float(ks.pvalue))
    assert abs(z) < 3 and ks.pvalue > ALPHA


@pytest.mark.parametrize("method", ENGINES)
def test_integrals_of_inactive_reactions_and_the_compensator(method):
    c1, c2, c3, n_mol, t0, t1, n = 1.0, 0.5, 0.3, 40, 2.0, 3.5, 2000
    net = ReactionNetwork({"A": 0, "B": 0, "C": 0}, [
        Reaction.parse("A -> B", c1, fast=True), Reaction.parse("B -> A", c2, fast=True),
        Reaction.parse("B -> C", c3), Reaction.parse("0 -> C", 2.0)])
    e = ensemble(net, n, t1, [t0, t1], seed_key=(16, ENGINES.index(method)), method=method,
                 active=net.fast_reactions, integrate=[3, 2, 0], x0=np.array([n_mol, 0, 5]), t0=t0)
    # inactive reactions never fire and C stays put, but their propensities are integrated
    assert np.all(e.events[:, 2:] == 0) and np.all(e.states[:, :, 2] == 5)
    assert np.all(e.states[:, 0, :2] == [n_mol, 0])
    assert np.allclose(e.integrals[:, 0], 2.0 * (t1 - t0), rtol=1e-13, atol=0)  # constant a = c
    s, T = c1 + c2, t1 - t0
    exact_b = c3 * n_mol * c1 / s * (T - (1 - math.exp(-s * T)) / s)  # c3 int E[B] dt
    zb = (e.integrals[:, 1].mean() - exact_b) / (e.integrals[:, 1].std(ddof=1) / math.sqrt(n))
    # N_j(T) - int a_j dt is a martingale: the firing count and the integral have equal means
    d = e.events[:, 0] - e.integrals[:, 2]
    zm = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    report(f"integrals {method}", mean_b=float(e.integrals[:, 1].mean()), exact_b=exact_b, z_b=float(zb),
           compensator_z=float(zm))
    assert abs(zb) < 3 and abs(zm) < 3


@pytest.mark.parametrize("method", ENGINES)
def test_guards_zero_propensity_absorption_and_max_events(method):
    net = ReactionNetwork({"A": 0, "B": 0}, [Reaction.parse("A -> B", 1.0)])
    r = simulate(net, 5.0, [0.0, 5.0], method=method, integrate=[0])
    assert r.states.tolist() == [[0, 0], [0, 0]] and r.n_events == 0 and r.integrals[0] == 0.0
    r = simulate(net, 1e3, [0.0, 1e3], method=method, x0=np.array([3, 0]))
    assert r.states[-1].tolist() == [0, 3] and r.n_events == 3 and r.final_state.tolist() == [0, 3]
    with pytest.raises(RuntimeError, match="stopped after max_events=10 events"):
        simulate(birth_death(), 100.0, method=method, max_events=10)


def test_no_negative_counts_and_the_debug_guard_itself():
    net = ReactionNetwork({"A": 3, "B": 1, "C": 0}, [
        Reaction.parse("2 A -> B", 1.0), Reaction.parse("A + B -> C", 2.0), Reaction.parse("C -> 3 A", 1.0),
        Reaction.parse("B -> 0", 0.5), Reaction.parse("0 -> A", 0.2)])
    for method in ENGINES:
        e = ensemble(net, 200, 20.0, np.linspace(0, 20, 401), seed_key=(17,), method=method)
        assert e.states.min() >= 0 and e.final_states.min() >= 0
    # the kernel's own check: arrays whose propensity says "can fire" while nu removes a missing molecule
    def ro(a):  # the network's arrays are read-only; the same types reuse the compiled kernel
        a.setflags(write=False)
        return a

    x = np.array([0], np.int64)
    status, n_ev, _ = ssa_kernel(
        x, 0.0, 1.0, np.zeros(0), ro(np.array([[-1, -1]])), ro(np.array([5.0])), ro(np.array([0, 1])),
        ro(np.array([0])), ro(np.array([-1])), ro(np.array([0, 1])), ro(np.array([0])), np.array([0]),
        np.zeros(0, np.int64), False, 10, seed_state(np.random.SeedSequence(0)),
        np.zeros((0, 1), np.int64), np.zeros(1, np.int64), np.zeros(0))
    assert status == NEGATIVE_COUNT and x[0] == 0 and MAX_EVENTS != NEGATIVE_COUNT  # x: before the event


def test_argument_errors():
    net = isomerization()
    with pytest.raises(ValueError, match="sample_times must be finite, non-decreasing and within"):
        simulate(net, 1.0, [0.5, 0.2])
    with pytest.raises(ValueError, match="sample_times"):
        simulate(net, 1.0, [2.0])
    with pytest.raises(ValueError, match="method must be one of"):
        simulate(net, 1.0, method="nrm")
    with pytest.raises(ValueError, match="x0: negative count -1 of species 'B'"):
        simulate(net, 1.0, x0=np.array([1, -1]))
    with pytest.raises(ValueError, match="unknown reaction name 'fw'"):
        simulate(net, 1.0, active=["fw"])
