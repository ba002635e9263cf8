"""Seamless HMM on the issue's two examples, against exact and published numbers.

Seed example (E, Ren & Vanden-Eijnden 2009): x' = 1 + y, y' = -z/eps, z' = y/eps,
x(0) = 0, (y, z)(0) = (1, 0); the averaged equation gives X(t) = t. With n micro steps of
dtau per macro step dt, the micro rotation advances theta = n dtau per macro step and the
instantaneous estimator's error at t_K = K dt is exactly
dt (sin((K + 1/2) theta) / (2 sin(theta / 2)) - 1/2) for an exact micro solver
(hmmpar.couplers.hmm docstring); RK4's phase and amplitude errors per step,
dtau^5/120 and dtau^6/144, bound the difference.

Dissipative example: x' = -y^3 + cos t + sin(sqrt 2 t), y' = -(y - x)/eps, x(0) = y(0) = 1;
the averaged equation X' = -X^3 + cos t + sin(sqrt 2 t) has X(1) = 1.1536286412 (the issue's
value).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.couplers import SlowFastODE, classical_hmm, seamless_hmm
from hmmpar.couplers.examples import X1_DISSIPATIVE, f_dissipative as f_diss, f_seed, g_dissipative as g_diss, g_seed

def seed(eps: float = 1e-6, dtau: float = 0.1) -> SlowFastODE:
    return SlowFastODE(f_seed, g_seed, 1, 2, eps, dtau, np.array([1.0, 0.0]))


def closed_form(dt: float, K: int, theta: float) -> float:
    return dt * (math.sin((K + 0.5) * theta) / (2.0 * math.sin(theta / 2.0)) - 0.5)


def rk4_bound(dt: float, K: int, n: int, dtau: float) -> float:
    """dt * sum_k (accumulated phase + amplitude error of the micro rotation after k macro steps)."""
    per_step = dtau ** 5 / 120.0 + dtau ** 6 / 144.0
    return dt * sum(k * n * per_step for k in range(1, K + 1))


@pytest.mark.parametrize("eps", [1e-4, 1e-6, 1e-8])
def test_seed_error_is_the_closed_form_whatever_eps_at_the_same_cost(eps):
    dt, n, dtau = 0.01, 10, 0.1          # n dtau = 1
    r = seamless_hmm(seed(eps, dtau), [0.0], 0.0, 1.0, dt, n, estimator="instantaneous")
    err = r.X[-1, 0, 0] - 1.0
    exact = closed_form(dt, 100, n * dtau)
    assert abs(err - exact) <= rk4_bound(dt, 100, n, dtau), (err, exact)
    assert abs(err) == pytest.approx(5.3e-3, abs=1e-4)   # "about 5e-3 at dt = 0.01, n dtau = 1"
    assert r.micro_steps == 1000                         # the same work for every eps
    ref = seamless_hmm(seed(1e-6, dtau), [0.0], 0.0, 1.0, dt, n, estimator="instantaneous")
    assert abs(r.X[-1, 0, 0] - ref.X[-1, 0, 0]) < 1e-12  # eps enters only through rounding


@pytest.mark.parametrize("estimator", ["instantaneous", "window"])
def test_seed_error_is_first_order_in_dt_at_fixed_n_dtau(estimator):
    errs = []
    for dt in (0.02, 0.01, 0.005, 0.0025):
        r = seamless_hmm(seed(), [0.0], 0.0, 1.0, dt, 10, estimator=estimator)
        errs.append(np.abs(r.X[:, 0, 0] - r.t).max())
        # the bound dt (1 + 1/sin(theta/2)) / 2 of the exact rotation, theta = 1
        assert errs[-1] <= dt * (1.0 + 1.0 / math.sin(0.5)) / 2.0 + rk4_bound(dt, round(1 / dt), 10, 0.1)
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all((ratios > 1.8) & (ratios < 2.2)), ratios


def test_seed_error_follows_dt_over_n_dtau():
    """At fixed dt the worst error over [0, 1] is dt max_K |sin((K + 1/2) theta) / (2 sin(theta/2))
    - 1/2|, which tends to dt / theta as theta = n dtau -> 0."""
    dt, dtau = 1e-3, 0.05
    K = np.arange(1, 1001)
    for n in (2, 4, 8, 16):              # theta = 0.1 ... 0.8
        r = seamless_hmm(seed(dtau=dtau), [0.0], 0.0, 1.0, dt, n, estimator="instantaneous")
        theta = n * dtau
        worst = np.abs(r.X[:, 0, 0] - r.t).max()
        predicted = dt * np.abs(np.sin((K + 0.5) * theta) / (2.0 * math.sin(theta / 2.0)) - 0.5).max()
        assert abs(worst - predicted) <= rk4_bound(dt, 1000, n, dtau), (n, worst, predicted)
        if n == 2:
            assert worst * theta / dt == pytest.approx(1.0, abs=0.06)   # theta/2 + O(theta^2) above 1


def test_dissipative_example_converges_to_the_published_value():
    """First order in dt (ratios near 2) at fixed n dtau = 1, and the Richardson extrapolation
    of the two finest runs matches X(1) = 1.1536286412 to its own O(dt^2) error."""
    X1 = []
    for dt in (0.01, 0.005, 0.0025, 0.00125):
        st = SlowFastODE(f_diss, g_diss, 1, 1, 1e-6, 0.1, np.array([1.0]))
        X1.append(seamless_hmm(st, [1.0], 0.0, 1.0, dt, 10).X[-1, 0, 0])
    errs = np.array(X1) - X1_DISSIPATIVE
    ratios = errs[:-1] / errs[1:]
    assert np.all((ratios > 1.9) & (ratios < 2.1)), errs
    rich = 2.0 * X1[-1] - X1[-2]
    rich_prev = 2.0 * X1[-2] - X1[-3]
    # O(dt^2): the previous extrapolation's error over 4 bounds this one's (with a factor 2 margin)
    assert abs(rich - X1_DISSIPATIVE) <= 2.0 * abs(rich_prev - X1_DISSIPATIVE) / 4.0
    assert abs(rich - X1_DISSIPATIVE) < 5e-6


def test_classical_hmm_error_is_the_window_mean_and_does_not_shrink_with_dt():
    """Re-initialised at (y, z) = (1, 0) every macro step, the classical HMM's force is 1 plus
    the window mean of cos over the n micro steps, whatever dt: its error at t = 1 is that mean."""
    n, dtau = 50, 0.1
    mean_cos = np.mean(np.cos(dtau * np.arange(1, n + 1)))
    for dt in (0.02, 0.005):
        r = classical_hmm(seed(dtau=dtau), [0.0], 0.0, 1.0, dt, relax=0, window=n)
        assert r.X[-1, 0, 0] - 1.0 == pytest.approx(mean_cos, abs=1e-6)
        assert r.micro_steps == round(1.0 / dt) * n


def test_a_batch_equals_its_members_alone():
    st = SlowFastODE(f_diss, g_diss, 1, 1, 1e-6, 0.1, np.array([1.0]))
    both = seamless_hmm(st, [[1.0], [0.5]], 0.0, 0.1, 0.01, 5)
    for b, x0 in enumerate((1.0, 0.5)):
        alone = seamless_hmm(st, [x0], 0.0, 0.1, 0.01, 5)
        assert np.array_equal(both.X[:, b], alone.X[:, 0])


@pytest.mark.parametrize("call, match", [
    (lambda: seamless_hmm(seed(), [0.0], 0.0, 1.0, 0.03, 10), "not a whole number of macro steps"),
    (lambda: seamless_hmm(seed(), [0.0], 0.0, 1.0, 0.01, 10, estimator="median"), "estimator must be one of"),
    (lambda: seamless_hmm(seed(), [0.0], 0.0, 1.0, 0.01, 0), "steps must be a whole number >= 1"),
    (lambda: SlowFastODE(f_seed, g_seed, 1, 2, 0.0, 0.1, np.array([1.0, 0.0])), "eps must be a positive"),
    (lambda: SlowFastODE(f_seed, g_seed, 1, 2, 1e-6, 0.1, np.array([1.0])), r"y0 has shape \(1,\)"),
])
def test_bad_input_is_one_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
