r"""Coarse projective integration of a direct-SSA ensemble reproduces the plain SSA's mean.

Birth--death, 0 -> A at k1 = 200, A -> 0 at k2 A (k2 = 1), from A = 0: the mean is exactly
m(t) = m* + (m0 - m*) e^{-k2 t}, m* = k1/k2 (linear propensities: the mean ODE is closed).
The time scales: an event every 1/a0 ~ 1/400, the mean relaxes in 1/k2 = 1.

Everything the projective run should give is exact here, so the tolerance is derived, not
tuned. A replica from x0 (the "round" lifting starts each at floor or ceil of U) has
X_s = Bin(x0, p_s) + Poisson(m* (1 - p_s)), p_s = e^{-k2 s}, so with rho = e^{-k2 h}:

* one outer step (restricted values U_j after j = 1..k+1 inner steps, U+ = sum_j c_j U_j) maps
  the error e = U - m* to sigma e in expectation, sigma = sum_j c_j rho^j: the expected
  projective trajectory is m* + (m0 - m*) sigma^n, whose distance to m(t_n) is the method's
  truncation error (computed, not bounded);
* it adds a noise xi of variance c^T C c / R, C_ij = Var X_{min(i,j) h} rho^{|i-j|},
  Var X_s = x0 p_s (1 - p_s) + m* (1 - p_s); the variance propagates as
  V_{n+1} = sigma^2 V_n + Var xi_n;
* the lifting's mean is U to 1/(2R), a bias below n/(2R) after n steps.

Asserted: |U_n - m(t_n)| <= 4 sqrt(V_n) + |truncation| + n/(2R) at every outer time, the same
against the plain ensemble's mean with its standard error added in quadrature, the spread
of U_N over 16 seeds matches sqrt(V_N) (the noise model is neither too small nor too large),
and the projective run costs less than the plain one (SSA events) at the same ensemble size.
Printed besides: what it would cost at the plain run's standard error, frac (se_proj/se_plain)^2,
which is above 1 for every configuration here (docs/couplers.md).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.couplers.projective import LinearEuler, projective_euler
from hmmpar.couplers.ssa_stepper import SSAEnsembleStepper, fit_weights, projective_euler_fit
from hmmpar.micro.ssa.direct import ensemble
from hmmpar.micro.ssa.model import Reaction, ReactionNetwork

K1, K2, M0, T = 200.0, 1.0, 0.0, 4.0
MSTAR = K1 / K2
NET = ReactionNetwork({"A": int(M0)}, [Reaction.parse("0 -> A", K1), Reaction.parse("A -> 0", K2)])
R, H = 1000, 0.01
#: (k, M, window): outer step (k + 1 + M) h = 0.2, 20 outer steps; window 2 is the chord
#: (projective_euler), longer ones the least-squares slope (projective_euler_fit)
CONFIGS = [(4, 15, 2), (4, 15, 5), (9, 10, 10)]
N = 20


def exact_mean(t):
    return MSTAR + (M0 - MSTAR) * np.exp(-K2 * np.asarray(t))


def coefficients(K, M, window):
    """c_j, j = 1..k+1: U+ = sum_j c_j U_j (chord: window 2)."""
    c = np.zeros(K + 1)
    c[-1] = 1.0
    c[K + 1 - window:] += M * H * fit_weights(window, H)
    return c


def predicted(K, M, window):
    """Expected projective trajectory and the variance of U_n about it (module docstring)."""
    c = coefficients(K, M, window)
    rho = math.exp(-K2 * H)
    s = H * np.arange(1, K + 2)
    sigma = float(c @ rho ** np.arange(1, K + 2))
    mean, V = [M0], [0.0]
    for _ in range(N):
        x0 = mean[-1]
        p = np.exp(-K2 * s)
        var = x0 * p * (1 - p) + MSTAR * (1 - p)
        i = np.arange(K + 1)
        C = var[np.minimum.outer(i, i)] * rho ** np.abs(np.subtract.outer(i, i))
        V.append(sigma ** 2 * V[-1] + float(c @ C @ c) / R)
        mean.append(MSTAR + sigma * (mean[-1] - MSTAR))
    return np.array(mean), np.array(V), sigma


def run(K, M, window, seed):
    st = SSAEnsembleStepper(NET, R, H, seed=seed)
    if window == 2:
        res = projective_euler(st, [[M0]], 0.0, N, K, M)
    else:
        res = projective_euler_fit(st, [[M0]], 0.0, N, K, M, window=window)
    return res, st


@pytest.fixture(scope="module")
def plain():
    t = T / N * np.arange(N + 1)
    e = ensemble(NET, R, T, t, 20261207)
    x = e.states[:, :, 0].astype(float)
    return t, x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(R), int(e.events.sum())


@pytest.mark.parametrize("K, M, window", CONFIGS)
def test_projective_ssa_mean_within_the_statistical_error(plain, K, M, window):
    t, ref, ref_se, plain_events = plain
    res, st = run(K, M, window, seed=5)
    assert np.allclose(res.t, t)
    U = res.U[:, 0, 0]
    mean, V, sigma = predicted(K, M, window)
    se = np.sqrt(V)
    trunc = np.abs(mean - exact_mean(t))
    lift_bias = np.arange(N + 1) / (2 * R)
    # the plain ensemble itself agrees with the exact mean
    assert np.all(np.abs(ref - exact_mean(t)) <= 4 * ref_se + 1e-12)
    err = np.abs(U - exact_mean(t))
    tol = 4 * se + trunc + lift_bias
    assert np.all(err <= tol), (err, se, trunc)
    assert np.all(np.abs(U - ref) <= 4 * np.sqrt(V + ref_se ** 2) + trunc + lift_bias)
    z = (U[1:] - mean[1:]) / se[1:]
    frac_events = st.events / plain_events
    frac_time = st.replica_time / (R * T)
    plain_se = math.sqrt(exact_mean(T) / R)  # Var X_T = m(T): Poisson from A = 0
    print(f"\n(k, M, window) = ({K}, {M}, {window}): sigma={sigma:.5f} (exact e^-dt={math.exp(-K2 * 0.2):.5f}); "
          f"max|U-m|/tol={np.max(err[1:] / tol[1:]):.2f}, |U-m|/se at T={err[-1] / se[-1]:.2f}, "
          f"max|z| about the expected trajectory={np.max(np.abs(z)):.2f}, rms z={np.sqrt(np.mean(z ** 2)):.2f}; "
          f"se(T)={se[-1]:.3f} (plain {ref_se[-1]:.3f}), truncation(T)={trunc[-1]:.3f}; "
          f"cost: events {st.events} / {plain_events} = {frac_events:.3f}, replica-time fraction {frac_time:.3f}; "
          f"at the plain run's standard error: {frac_events * (se[-1] / plain_se) ** 2:.2f}")
    assert frac_time == pytest.approx((K + 1) / (K + 1 + M))
    assert frac_events < 1.0
    assert frac_events < 1.05 * frac_time


@pytest.mark.parametrize("K, M, window", CONFIGS)
def test_noise_model_matches_the_spread_over_seeds(K, M, window):
    """The propagated standard error sqrt(V_N) is the spread of U_N over seeds: the sample
    variance of 16 runs over V_N lies in [0.3, 2.2] (chi^2_15 / 15 outside it with
    probability < 1e-3)."""
    mean, V, _ = predicted(K, M, window)
    finals = np.array([run(K, M, window, seed)[0].U[-1, 0, 0] for seed in range(100, 116)])
    ratio = finals.var(ddof=1) / V[-1]
    print(f"\n(k, M, window) = ({K}, {M}, {window}): spread of U(T) over 16 seeds {finals.std(ddof=1):.3f}, predicted se "
          f"{math.sqrt(V[-1]):.3f} (variance ratio {ratio:.2f}); mean {finals.mean():.3f}, expected {mean[-1]:.3f}")
    assert 0.3 < ratio < 2.2
    assert abs(finals.mean() - mean[-1]) <= 4 * math.sqrt(V[-1] / 16) + N / (2 * R)


def test_streams_are_reproducible_and_lifting_keeps_the_mean():
    a, _ = run(4, 15, 2, seed=3)
    b, _ = run(4, 15, 2, seed=3)
    c, _ = run(4, 15, 2, seed=4)
    assert np.array_equal(a.U, b.U) and not np.array_equal(a.U, c.U)
    st = SSAEnsembleStepper(NET, 400, H, seed=1)
    U = np.array([[0.0], [7.3], [123.4567]])
    S = st.lift(U, 0.0)
    assert S.shape == (3, 400, 1) and S.dtype == np.int64
    assert np.all(np.abs(st.restrict(S) - U) <= 1 / (2 * 400) + 1e-12)
    assert set(np.unique(S[1])) == {7, 8}
    P = SSAEnsembleStepper(NET, 400, H, seed=1, lifting="poisson").lift(U, 0.0)
    assert np.all(np.abs(P.mean(axis=1) - U) <= 4 * np.sqrt(U / 400) + 1e-12)
    assert abs(P[2, :, 0].var(ddof=1) / 123.4567 - 1) < 0.3  # Poisson: variance = mean


def test_fit_with_a_two_point_window_is_projective_euler():
    st = LinearEuler(np.array([-1.0, -50.0]), 0.01)
    a = projective_euler(st, [1.0, 1.0], 0.0, 10, 3, 6.0)
    b = projective_euler_fit(st, [1.0, 1.0], 0.0, 10, 3, 6.0, window=2)
    assert np.allclose(a.U, b.U, rtol=1e-12, atol=1e-15) and np.allclose(a.t, b.t)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="^h must be"):
        SSAEnsembleStepper(NET, 10, 0.0)
    with pytest.raises(ValueError, match="^h must be"):
        SSAEnsembleStepper(NET, 10, -1.0)
    with pytest.raises(ValueError, match="^R must be"):
        SSAEnsembleStepper(NET, 1, 0.1)
    with pytest.raises(ValueError, match="^lifting must be"):
        SSAEnsembleStepper(NET, 10, 0.1, lifting="gauss")
    st = SSAEnsembleStepper(NET, 10, 0.1)
    with pytest.raises(ValueError, match="^U must be >= 0"):
        st.lift([[-0.5]], 0.0)
    with pytest.raises(ValueError, match="^U must be finite"):
        st.lift([[math.nan]], 0.0)
    with pytest.raises(ValueError, match="^window must be"):
        projective_euler_fit(st, [[1.0]], 0.0, 1, 2, 3.0, window=4)
    with pytest.raises(ValueError) as info:
        st.lift([[-0.5]], 0.0)
    assert "\n" not in str(info.value)
