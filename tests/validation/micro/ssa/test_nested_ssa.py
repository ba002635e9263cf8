"""The Nested SSA against exact results and the exact SSA (docs/ssa.md, Nested SSA validation).

Fixed keys, so every statistic is the same on every run; ``pytest -s`` prints them.
Tolerances are 3 standard errors, significance 0.001 for the two-sample test, and the
error bound of E, Liu & Vanden-Eijnden (J. Chem. Phys. 123 (2005) 194107) with its
constant worked out for the four-species model below.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hmmpar.micro.ssa.nested import NestedParameters, averaged_rates, run_ensemble

MODELS = Path(__file__).resolve().parents[4] / "drivers" / "configs" / "models"
ALPHA = 1e-3


def report(name, **values):
    print(f"\n[nested-ssa-validation] {name}: " + ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))


@pytest.fixture(scope="module")
def four():
    from hmmpar.micro.ssa.model import ReactionNetwork
    return ReactionNetwork.from_toml(MODELS / "four_species.toml")


@pytest.fixture(scope="module")
def heat():
    from hmmpar.micro.ssa.model import ReactionNetwork
    return ReactionNetwork.from_toml(MODELS / "heat_shock.toml")


def y2(states):
    return states[..., 2] + states[..., 3]


# ----------------------------------------------------------------------------- four species
@pytest.mark.parametrize("lam", [1.0, 0.3, 0.1])
def test_averaged_rates_within_the_error_bound(four, lam):
    r"""ã for S2 -> S3 and S3 -> S2 against y1/2 and y2/2, from the worst start (every
    molecule on one side of its fast pair), N = 1/λ, T_f = ε/λ, T_0 = 0.

    Each molecule of a fast pair is a two-state chain with rates c = 1/ε both ways, so
    (s = T_f/ε, g(s) = (1 - e^{-2s})/(2s) <= 1/(1+s)):

    * E ã = ā (1 ∓ g(s)) exactly: |bias| <= ā/(1+s);
    * the covariance of one molecule's indicator is at most e^{-2c|τ|}/4, so
      Var ã <= ā / (N (1+s)) (ā = y/2 >= 1).

    Hence E|ã - ā| <= C (1/(1+s) + 1/sqrt(N(1+s))) with C = ā: the paper's bound.
    """
    x = np.array([60, 0, 40, 0])
    params = NestedParameters(tolerance=lam)
    reps = 200
    est = np.array([averaged_rates(four, x, key, params)[0][[2, 3]] for key in range(1000, 1000 + reps)])
    _, _, eps, t_f = averaged_rates(four, x, 0, params)
    n, s = params.n_replicas, t_f / eps
    assert n == math.ceil(1 / lam) and s == pytest.approx(1 / lam)
    g = (1 - math.exp(-2 * s)) / (2 * s)
    for col, (abar, sign) in enumerate(((30.0, -1.0), (20.0, +1.0))):
        a = est[:, col]
        expected = abar * (1 + sign * g)
        z = (a.mean() - expected) / (a.std(ddof=1) / math.sqrt(reps))
        err = np.abs(a - abar)
        bound = abar * (1 / (1 + s) + 1 / math.sqrt(n * (1 + s)))
        report(f"averaged rate {'y1/2' if col == 0 else 'y2/2'} lambda={lam}", N=n, Tf_over_eps=s,
               mean=float(a.mean()), exact_mean=expected, z=float(z), mean_abs_error=float(err.mean()),
               bound=bound)
        assert abs(z) < 3
        assert err.mean() - 3 * err.std(ddof=1) / math.sqrt(reps) <= bound


def test_averaged_rates_unbiased_from_the_fast_mean(four):
    """Started at the fast equilibrium mean (x2 = y1/2, x3 = y2/2) E ã = y/2 exactly."""
    x = np.array([30, 30, 20, 20])
    params = NestedParameters(tolerance=0.3)
    est = np.array([averaged_rates(four, x, key, params)[0][[2, 3]] for key in range(300)])
    for col, abar in enumerate((30.0, 20.0)):
        z = (est[:, col].mean() - abar) / (est[:, col].std(ddof=1) / math.sqrt(est.shape[0]))
        report("averaged rate at the fast mean", abar=abar, mean=float(est[:, col].mean()), z=float(z))
        assert abs(z) < 3


def test_mean_of_slow_variable_matches_the_averaged_equation(four):
    """E[y2(t)] = 50 (1 - e^{-t}) from y = (100, 0): 400 trajectories, lambda = 0.2."""
    times = [0.0, 0.5, 1.0, 2.0]
    states, counters = run_ensemble(four, "nested", NestedParameters(tolerance=0.2), times, 400, 2005)
    y = y2(states)
    for k, t in enumerate(times[1:], start=1):
        exact = 50 * (1 - math.exp(-t))
        se = y[:, k].std(ddof=1) / math.sqrt(y.shape[0])
        z = (y[:, k].mean() - exact) / se
        report(f"four-species E[y2({t})]", mean=float(y[:, k].mean()), exact=exact, se=float(se), z=float(z),
               inner_events_per_traj=float(counters[:, 0].mean()))
        assert abs(z) < 3


def pooled_contingency(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    """Chi-square test of homogeneity of two integer samples, bins pooled to expected >= 5."""
    lo, hi = int(min(a.min(), b.min())), int(max(a.max(), b.max()))
    ca = np.bincount(a - lo, minlength=hi - lo + 1).astype(float)
    cb = np.bincount(b - lo, minlength=hi - lo + 1).astype(float)
    share = b.size / (a.size + b.size)
    rows, acc = [], np.zeros(2)
    for u, v in zip(ca, cb):
        acc += (u, v)
        if min(acc.sum() * (1 - share), acc.sum() * share) >= 5:
            rows.append(acc.copy())
            acc[:] = 0
    if acc.sum():
        rows[-1] += acc
    table = np.array(rows).T
    chi2, p, dof, _ = stats.chi2_contingency(table)
    return float(chi2), float(p), int(dof)


def test_slow_variable_distribution_matches_the_direct_ssa(four):
    """y2(0.5) from y = (20, 0): 1000 nested (lambda = 0.2) against 150 direct trajectories."""
    x0 = [20, 0, 0, 0]
    times = [0.0, 0.5]
    nested, _ = run_ensemble(four, "nested", NestedParameters(tolerance=0.2), times, 1000, 77, x0=x0)
    direct, dc = run_ensemble(four, "direct", NestedParameters(tolerance=1.0), times, 150, 78, x0=x0)
    a, b = y2(nested[:, -1]), y2(direct[:, -1])
    chi2, p, dof = pooled_contingency(a, b)
    ks = stats.ks_2samp(a, b)
    report("four-species y2(0.5) nested vs direct", nested_mean=float(a.mean()), direct_mean=float(b.mean()),
           chi2=chi2, dof=dof, p=p, ks_p=float(ks.pvalue), direct_events_per_traj=float(dc[:, 1].mean()))
    assert p > ALPHA and ks.pvalue > ALPHA


# ----------------------------------------------------------------------------- heat shock
def test_heat_shock_s32_mean_and_variance_match_the_direct_ssa(heat):
    """s32 at T = 10, the issue's time: 400 nested trajectories (lambda = 1: N = 1, T_f = eps,
    reuse of the averages) against 40 direct ones (the direct SSA costs ~0.6 s per
    trajectory; the benchmark compares 2000 nested and 400 direct trajectories)."""
    times = [0.0, 10.0]
    s32 = heat.species_index("s32")
    nested, _ = run_ensemble(heat, "nested", NestedParameters(tolerance=1.0), times, 400, 32)
    direct, _ = run_ensemble(heat, "direct", NestedParameters(tolerance=1.0), times, 40, 33)
    a, b = nested[:, -1, s32].astype(float), direct[:, -1, s32].astype(float)

    def mean_var(v):
        n, m, var = v.size, v.mean(), v.var(ddof=1)
        m4 = ((v - m) ** 4).mean()
        return m, math.sqrt(var / n), var, math.sqrt(max(m4 - var ** 2 * (n - 3) / (n - 1), 0) / n)

    (ma, sa, va, sva), (mb, sb, vb, svb) = mean_var(a), mean_var(b)
    z_mean = (ma - mb) / math.hypot(sa, sb)
    z_var = (va - vb) / math.hypot(sva, svb)
    report("heat shock s32(10)", nested_mean=ma, direct_mean=mb, z_mean=z_mean, nested_var=va, direct_var=vb,
           z_var=z_var)
    assert abs(z_mean) < 3 and abs(z_var) < 3
