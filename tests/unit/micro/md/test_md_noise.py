"""The error of the blocking standard error, and the weighted power-law fit used by the
noise-scaling validation (tests/validation/micro/md/test_flux_noise.py)."""
from __future__ import annotations

import numpy as np
import pytest

from hmmpar.micro.md.estimators import block_average, blocking
from hmmpar.micro.md.noise import fit_power_law


def ar1(rng: np.random.Generator, n: int, m: int, a: float) -> np.ndarray:
    """m independent AR(1) series of length n, unit variance, coefficient a (columns)."""
    xi = rng.standard_normal((n, m))
    x = np.empty((n, m))
    x[0] = xi[0]
    s = np.sqrt(1 - a * a)
    for k in range(1, n):
        x[k] = a * x[k - 1] + s * xi[k]
    return x


def test_blocking_matches_block_average_and_its_error_of_the_error_matches_the_spread():
    """Over 2000 independent AR(1) series (a = 0.6, n = 1024) the standard errors scatter as
    Flyvbjerg-Petersen's se / sqrt(2 (n_k - 1)) says (ratio 1 within 15 %; measured 1.04 to
    1.06 over three seeds: the level is chosen from the same data, which adds a little
    scatter), and their mean is the exact sqrt((1 + a) / ((1 - a) n)) within the blocking
    bias (< 8 %; measured 3 %)."""
    rng = np.random.default_rng(11)
    n, m, a = 1024, 2000, 0.6
    x = ar1(rng, n, m, a)
    b = blocking(x)
    mean, se, conv = block_average(x)
    assert np.array_equal(b.mean, mean) and np.array_equal(b.stderr, se) and np.array_equal(b.converged, conv)
    assert np.all(b.block_size * b.blocks <= n) and np.all(b.blocks >= 2)
    assert np.allclose(b.stderr_err, b.stderr / np.sqrt(2 * (b.blocks - 1)))
    exact = np.sqrt((1 + a) / (1 - a) / n)
    assert b.stderr.mean() == pytest.approx(exact, rel=0.08)
    # relative scatter of se against the predicted relative error, per chosen level
    rel_pred = np.sqrt(np.mean((b.stderr_err / b.stderr) ** 2))
    rel_seen = b.stderr.std() / b.stderr.mean()
    assert rel_seen / rel_pred == pytest.approx(1.0, abs=0.15), (rel_seen, rel_pred)


def test_blocking_of_a_single_series_and_degenerate_inputs():
    b = blocking(np.arange(64.0) % 2)
    assert b.mean.ndim == 0 and b.blocks.ndim == 0 and float(b.mean) == 0.5
    c = blocking(np.full(10, 3.0))
    assert float(c.stderr) == 0.0 and float(c.stderr_err) == 0.0 and bool(c.converged)
    d = blocking(np.array([1.0]))
    assert np.isnan(d.stderr) and np.isnan(d.stderr_err) and not bool(d.converged)


def test_power_law_fit_is_exact_on_a_power_law_and_its_errors_are_right():
    x = np.array([1.0, 2.0, 5.0, 10.0, 40.0])
    fit = fit_power_law(x, 3.0 * x ** -0.5, 0.1 * np.ones(5))
    assert fit.exponent == pytest.approx(-0.5, abs=1e-12) and np.exp(fit.log_prefactor) == pytest.approx(3.0)
    assert fit.chi2 == pytest.approx(0.0, abs=1e-20) and fit.dof == 3
    # two variables
    n = np.array([100, 200, 400, 100, 100, 300.0])
    t = np.array([10, 10, 10, 20, 40, 30.0])
    two = fit_power_law(np.column_stack([n, t]), 2.0 * n ** -0.5 * t ** -0.4, np.full(6, 0.05))
    assert two.exponents == pytest.approx([-0.5, -0.4], abs=1e-12)
    with pytest.raises(ValueError):
        _ = two.exponent
    # Monte Carlo: scatter of the fitted slope and chi^2 against the stated errors
    rng = np.random.default_rng(5)
    sigma = np.array([0.3, 0.2, 0.1, 0.1, 0.05])
    slopes, chi2 = [], []
    for _ in range(4000):
        y = 3.0 * x ** -0.5 * np.exp(sigma * rng.standard_normal(5))
        f = fit_power_law(x, y, sigma * y)
        slopes.append(f.exponent)
        chi2.append(f.chi2)
    assert np.std(slopes) == pytest.approx(f.exponent_err, rel=0.05)
    assert np.mean(slopes) == pytest.approx(-0.5, abs=3 * f.exponent_err / np.sqrt(4000))
    assert np.mean(chi2) == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("x, y, e", [
    ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], [0.1, 0.1, 0.1]),    # x does not vary
    ([2.0], [1.0], [0.1]),                                  # fewer points than parameters
    ([1.0, 2.0, 3.0], [1.0, -2.0, 3.0], [0.1, 0.1, 0.1]),   # y <= 0
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.1, 0.0, 0.1]),    # zero error
])
def test_power_law_fit_refuses_bad_input(x, y, e):
    with pytest.raises(ValueError):
        fit_power_law(np.array(x), np.array(y), np.array(e))
