r"""The Nested SSA nested twice (three time scales) against exact results
(docs/ssa.md, "Three time scales (nested twice)").

Model ``drivers/configs/models/three_scales.toml``: S1 <-> S2 ultrafast (c_U = 1e6 both
ways, level 2), S2 <-> S3 fast (c_F = 1e3 both ways, level 1), S3 -> S4 and S4 -> S3 slow
(c_S = 1, level 0). Every reaction is first order, so each molecule is an independent
chain. The fast reactions conserve y = S1 + S2 + S3; detailed balance of both fast pairs
with equal rates gives S1 : S2 : S3 = 1 : 1 : 1, so E[S3 | y] = y/3 and the averaged slow
process is an isomerization pool -> S4 at rate y/3, S4 -> pool at rate S4. A molecule is
in S4 at time t with probability p(t) = (1 - e^{-4t/3})/4 (from S4 = 0), so

    E[S4(t)] = n (1 - e^{-4t/3}) / 4,   S4(t) ~ Binomial(n, p(t)).

(The exact 4-state chain, by matrix exponential, differs from this by 3e-4 relative.)
Time scales: ε₂ = 1/c_U = 1e-6 (S2 -> S1), ε₁ = 1/c_F = 1e-3 (S3 -> S2), slow 1.

Fixed keys, so every number is the same on every run; ``pytest -s`` prints them.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hmmpar.micro.ssa.model import ReactionNetwork
from hmmpar.micro.ssa.nested import THREE_LEVEL_STEP, NestedParameters, estimate_rates, run_ensemble

MODELS = Path(__file__).resolve().parents[4] / "drivers" / "configs" / "models"
C_U, C_F, C_S = 1e6, 1e3, 1.0
S3_TO_S4 = 4


def report(name, **values):
    print(f"\n[nested-ssa-three-scales] {name}: " + ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))


@pytest.fixture(scope="module")
def net():
    n = ReactionNetwork.from_toml(MODELS / "three_scales.toml")
    assert n.level.tolist() == [2, 2, 1, 1, 0, 0] and n.rates.tolist() == [C_U, C_U, C_F, C_F, C_S, C_S]
    return n


def exact_mean_s4(n: int, t: float) -> float:
    return n * (1 - math.exp(-4 * t / 3)) / 4


def time_average_variance(u: float) -> float:
    """h(u): variance of the time average over T of a two-state indicator with relaxation
    rate κ, started in equilibrium, in units of its variance; u = κT."""
    return (2 / u) * (1 - (1 - math.exp(-u)) / u)


def test_averaged_slow_rate_of_one_outer_step_within_the_bound(net):
    r"""ã of S3 -> S4 from x = (10, 10, 10, 0), the fast equilibrium mean: ā = c_S y/3 = 10.

    λ = 0.25: N = 4 middle replicas over T_f = ε₁/λ = 4e-3 (s₁ = T_f/ε₁ = 4); λ₂ = 0.5:
    N₂ = 2 inner replicas over T_f₂ = ε₂/λ₂ = 2e-6 (s₂ = 2). 400 independent estimates.

    Bias. The fast reactions are linear and x is the mean of their equilibrium, so under
    the exact fast dynamics E[S3(τ)] = 10 for all τ: no relaxation term of the outer level.
    The middle process departs from the exact averaged one only through its up-rate
    c_F Ŝ2, Ŝ2 the inner replicas' average of S2 (S3 -> S2 and S3 -> S4 do not depend on
    the ultrafast state and are exact):

    * an inner run starts from a post-jump state whose S2 is off the ultrafast
      equilibrium by at most 1/2 molecule in the mean (resampled end state ± one
      molecule), which decays as e^{-2 c_U σ}: |bias Ŝ2| <= g(s₂)/2 <= 1/(2(1+s₂)), a
      relative error of the up-rate <= 1/((1+s₂) y₁₂), y₁₂ = S1 + S2 ≈ 20;
    * the noise of Ŝ2 (relative variance v₂ = h(2 s₂)/(N₂ y₁₂), each molecule a two-state
      chain with relaxation rate 2 c_U) lowers the effective up-rate of the semi-Markov
      middle process by at most the factor 1 - v₂ (Jensen on the holding time and the
      jump choice).

    The stationary mean of S3, y k/(1+k) with k the up/down rate ratio, moves by 2/3 of
    a relative rate error, so |E ã - ā| <= b = ā (2/3) (1/((1+s₂) y₁₂) + v₂) = 0.17.
    The test: |mean - ā| <= 3 SE + b.

    Spread. Each molecule's S3 indicator has variance <= 1/4 and autocovariance decaying
    at the middle relaxation rate 1.5 c_F = 1.5/ε₁ (both ultrafast and fast pairs in
    equilibrium), so Var ã <= (3y/4) h(1.5 s₁)/N <= (9/4) ā/(N (1 + s₁)) and
    E|ã - ā| <= b + (3/2) sqrt(ā/(N(1+s₁))): the paper's bound
    C (ε + e^{-α T₀/ε}/(1+T_f/ε) + 1/sqrt(N(1+T_f/ε))) with the relaxation term 0 here.
    """
    x = np.array([10, 10, 10, 0])
    params = NestedParameters(levels=3, tolerance=0.25, ultrafast_tolerance=0.5)
    reps = 400
    est = [estimate_rates(net, x, key, params) for key in range(reps)]
    assert all(e.kind == THREE_LEVEL_STEP for e in est)
    a = np.array([e.rates[S3_TO_S4] for e in est])
    eps1, t_f = est[0].eps, est[0].t_f
    assert eps1 == pytest.approx(1 / C_F) and t_f == pytest.approx(4e-3)
    n, n2 = params.n_replicas, params.n_ultrafast_replicas
    s1, s2 = t_f / eps1, (1 / C_U / params.ultrafast_lambda) / (1 / C_U)
    assert (n, n2, s1, s2) == (4, 2, pytest.approx(4.0), pytest.approx(2.0))
    abar, y12 = C_S * 30 / 3, 20.0
    v2 = time_average_variance(2 * s2) / (n2 * y12)
    b = abar * (2 / 3) * (1 / ((1 + s2) * y12) + v2)
    se = a.std(ddof=1) / math.sqrt(reps)
    z = (a.mean() - abar) / se
    err = np.abs(a - abar)
    bound = b + 1.5 * math.sqrt(abar / (n * (1 + s1)))
    report("averaged slow rate S3->S4 at (10,10,10,0)", N=n, N2=n2, mean=float(a.mean()), exact=abar, se=float(se),
           z=float(z), bias_bound=b, mean_abs_error=float(err.mean()), bound=bound, sd=float(a.std(ddof=1)),
           middle_events=float(np.mean([e.middle_events for e in est])),
           inner_events=float(np.mean([e.inner_events for e in est])))
    assert abs(a.mean() - abar) <= 3 * se + b
    assert err.mean() - 3 * err.std(ddof=1) / math.sqrt(reps) <= bound


def test_mean_of_the_slow_variable_matches_the_exact_mean(net):
    """E[S4(t)] = n (1 - e^{-4t/3})/4 at t = 0.5, 1 from x0 = (4, 4, 4, 0) (n = 12, the fast
    equilibrium mean): 800 trajectories, λ = 0.1 (N = 10, T_f = 10 ε₁), λ₂ = 0.5 (N₂ = 2,
    T_f₂ = 2 ε₂). Coarser λ leaves an O(λ) bias (docs/ssa.md, measured outside CI at
    n = 30, t = 0.5: -1.7 % at λ = 0.25, -2.4 % at λ = 0.5, where the two-level method is
    -3.9 % off), which 800 trajectories would resolve. At this setting it is
    -1.0 % ± 0.6 % at t = 0.5 and -0.1 % ± 0.6 % at t = 1 (17 400 trajectories in 31
    ensembles, outside CI): at most 0.4 of this test's standard error."""
    x0 = [4, 4, 4, 0]
    times = [0.0, 0.5, 1.0]
    params = NestedParameters(levels=3, tolerance=0.1, ultrafast_tolerance=0.5)
    states, counters = run_ensemble(net, "nested", params, times, 800, 1, x0=x0)
    assert (states >= 0).all() and (states.sum(axis=2) == 12).all()
    s4 = states[:, :, 3].astype(float)
    for k, t in enumerate(times[1:], start=1):
        exact = exact_mean_s4(12, t)
        p = exact / 12
        se = s4[:, k].std(ddof=1) / math.sqrt(s4.shape[0])
        z = (s4[:, k].mean() - exact) / se
        report(f"E[S4({t})] from (4,4,4,0)", mean=float(s4[:, k].mean()), exact=exact, se=float(se), z=float(z),
               variance=float(s4[:, k].var(ddof=1)), binomial_variance=12 * p * (1 - p),
               inner_events_per_traj=float(counters[:, 0].mean()), outer_steps=float(counters[:, 2].mean()),
               continuations=int(counters[:, 4].sum()))
        assert abs(z) < 3


def test_nesting_saves_inner_events(net):
    r"""Inner events of one outer step from (10, 10, 10, 0) at the same outer parameters
    (λ = 0.25: N = 4, T_f = 4e-3; the two-level T_f is also ε/λ with ε = 1/c_F, since S3 is
    the coupling species in both), against their expected values:

    * two levels (F ∪ U fast): N T_f E[a₀^{F∪U}] = N T_f (c_U (S1+S2) + c_F (S2+S3)) = 3.20e5
      (the means stay at the start, the equilibrium mean);
    * three levels: middle events M = N T_f c_F E[S2+S3] = 320, inner events
      (M + N) N₂ T_f₂ c_U E[S1+S2] = 2.59e4 (one inner average per middle step, the last
      one truncated).

    The ratio (inner + middle, three levels)/(inner, two levels) is then 0.082 =
    c_F E[S2+S3] N₂ T_f₂: nesting pays as long as many ultrafast events separate two fast
    ones. Means of 40 (three levels) and 12 (two levels) estimates, within 5 %."""
    x = np.array([10, 10, 10, 0])
    p3 = NestedParameters(levels=3, tolerance=0.25, ultrafast_tolerance=0.5)
    p2 = NestedParameters(levels=2, tolerance=0.25)
    e3 = [estimate_rates(net, x, key, p3) for key in range(40)]
    e2 = [estimate_rates(net, x, key, p2) for key in range(12)]
    n, t_f = p3.n_replicas, e3[0].t_f
    assert e2[0].t_f == t_f and p2.n_replicas == n
    n2, t_f2 = p3.n_ultrafast_replicas, 1 / C_U / p3.ultrafast_lambda
    two = float(np.mean([e.inner_events for e in e2]))
    middle = float(np.mean([e.middle_events for e in e3]))
    inner = float(np.mean([e.inner_events for e in e3]))
    two_expected = n * t_f * (C_U * 20 + C_F * 20)
    middle_expected = n * t_f * C_F * 20
    inner_expected = (middle_expected + n) * n2 * t_f2 * C_U * 20
    ratio = (inner + middle) / two
    report("inner events per outer step", two_levels=two, two_levels_expected=two_expected, middle=middle,
           middle_expected=middle_expected, inner=inner, inner_expected=inner_expected, ratio=ratio,
           ratio_expected=(inner_expected + middle_expected) / two_expected)
    assert two == pytest.approx(two_expected, rel=0.05)
    assert middle == pytest.approx(middle_expected, rel=0.05)
    assert inner == pytest.approx(inner_expected, rel=0.05)
    assert ratio < 0.1
