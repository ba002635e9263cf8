"""The averaging demo against its exact answer, with tolerances from the statistics.

The HMM result differs from the exact averaged solution by (i) the forward-Euler error,
which is deterministic: it equals the gap between the Euler scheme run with the exact
coefficient E[Y^2] = 1 + X^2 and the exact solution; and (ii) the statistical error of
the time-average estimator, whose variance per step is (2 + 4X^2) tau / M. Propagating
(ii) linearly through the Euler steps gives a standard deviation for each point.
"""
from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from hmmpar.apps.ou_averaging import exact_solution, initial_values
from hmmpar.core.config import load_config
from hmmpar.core.log import RankLog
from hmmpar.core.runner import run
from hmmpar.micro.ou import integrated_autocorrelation_y2

POINTS, DT, T, SAMPLES, RATIO = 64, 0.05, 1.0, 4000, 0.5


def euler_with_exact_coefficient_and_sd(x0, dt, steps, samples, a):
    """Euler trajectory with E[Y^2] exact, and the linearised sd of the HMM around it."""
    x = x0.copy()
    var = np.zeros_like(x)
    for _ in range(steps):
        tau = np.array([integrated_autocorrelation_y2(xi, a) for xi in x])
        var_f = (2 + 4 * x**2) * tau / samples
        g = 1 - dt * (1 + 3 * x**2)  # d/dX of X - dt (1 + X^2) X
        var = g**2 * var + (dt * x) ** 2 * var_f
        x = x - dt * (1 + x**2) * x
    return x, np.sqrt(var)


def run_demo(tmp_path, **overrides):
    text = f"""
[run]
app = "ou_averaging"
seed = 3
output_dir = "{tmp_path}"
[model]
points = {POINTS}
[macro]
dt = {DT}
t_end = {T}
[micro]
samples = {SAMPLES}
dt_over_eps = {RATIO}
[checkpoint]
at_end = false
[output]
plots = false
"""
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(text)
    cfg = load_config(cfg_file, [f"{k}={v}" for k, v in overrides.items()])
    summary = run(cfg, MPI.COMM_WORLD, log=RankLog(MPI.COMM_WORLD, quiet=True))
    return np.load(tmp_path / "X.npy"), summary


def test_hmm_matches_euler_with_exact_coefficient_within_statistics(tmp_path):
    x_hmm, summary = run_demo(tmp_path)
    x0 = initial_values(POINTS, 0.2, 2.0)
    steps = round(T / DT)
    x_euler, sd = euler_with_exact_coefficient_and_sd(x0, DT, steps, SAMPLES, math.exp(-RATIO))
    z = (x_hmm - x_euler) / sd
    # every point within 4.5 sd (P(any of 64 beyond) ~ 4e-4), and the spread is the predicted one:
    # mean z^2 of 64 standard normals is 1 +- 0.18 (1 sd); accept [0.4, 1.8]
    assert np.max(np.abs(z)) < 4.5
    assert 0.4 < np.mean(z**2) < 1.8
    # the summary's error against the exact averaged solution is the Euler error + noise
    exact = exact_solution(x0, T)
    assert abs(summary["max_abs_error_vs_exact"] - np.max(np.abs(x_hmm - exact))) < 1e-15


def test_euler_error_is_first_order():
    """The deterministic part: halving dt halves the error against the exact solution."""
    x0 = initial_values(POINTS, 0.2, 2.0)
    errs = []
    for dt in (0.05, 0.025, 0.0125):
        x, _ = euler_with_exact_coefficient_and_sd(x0, dt, round(T / dt), SAMPLES, 0.5)
        errs.append(np.max(np.abs(x - exact_solution(x0, T))))
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(rates - 1.0) < 0.1), rates
