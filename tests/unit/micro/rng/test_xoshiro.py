"""xoshiro256** local-state form and the ziggurat Exp(1) sampler (hmmpar.micro.rng.xoshiro).

The distribution tests use fixed seeds, so they are deterministic; each is a test at
significance 0.001 (p > 0.001 or |z| < 3.29), on 10^7 variates unless stated.
"""
from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numba
import numpy as np
import pytest
from scipy import stats

from hmmpar.micro.rng.xoshiro import (ZIGGURAT_EXP_R, ZIGGURAT_EXP_V, _R_DIGITS, _V_DIGITS, _ZFE, _ZKE, _ZWE,
                                      exponential, exponential_local, exponentials, next_u64, seed_state, step, uniform,
                                      uniform_open0)

ALPHA = 1e-3
Z_CRIT = 3.29  # two-sided 0.001
M53 = 2.0 ** 53


@numba.njit
def _local_outputs(s, n):
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    out = np.empty(n, np.uint64)
    for i in range(n):
        out[i], s0, s1, s2, s3 = step(s0, s1, s2, s3)
    return out


@numba.njit
def _local_exponentials(s, n):
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    out = np.empty(n)
    for i in range(n):
        out[i], s0, s1, s2, s3 = exponential_local(s0, s1, s2, s3)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    return out


@pytest.fixture(scope="module")
def variates():
    return exponentials(seed_state(np.random.SeedSequence(20240611)), 10_000_000)


def edges():
    """x_0 = 0 < x_1 < ... < x_255 = r: the layer edges of the tables."""
    x = _ZWE * M53
    x[0] = 0.0  # we[0] is the base strip's width v/f(r), not an edge
    return x


def test_local_state_is_the_same_stream():
    s = np.array([1, 2, 3, 4], dtype=np.uint64)  # reference C code, state {1, 2, 3, 4}
    assert _local_outputs(s.copy(), 4).tolist() == [11520, 0, 1509978240, 1215971899390074240]
    a, b = seed_state(np.random.SeedSequence(3)), seed_state(np.random.SeedSequence(3))
    assert _local_outputs(a.copy(), 100).tolist() == [int(next_u64(b)) for _ in range(100)]
    # exponential (array state), exponentials and exponential_local agree draw for draw
    a, b, c = (seed_state(np.random.SeedSequence(4)) for _ in range(3))
    one = [exponential(a) for _ in range(5000)]
    assert one == exponentials(b, 5000).tolist() == _local_exponentials(c, 5000).tolist()
    assert a.tolist() == b.tolist() == c.tolist()
    u = [uniform(a) for _ in range(1000)] + [uniform_open0(a) for _ in range(1000)]
    assert 0.0 <= min(u) and max(u) <= 1.0


def test_ziggurat_tables():
    x = edges()
    assert ZIGGURAT_EXP_R == pytest.approx(7.69711747013104972, rel=1e-15)  # Marsaglia & Tsang 2000
    assert x[255] == ZIGGURAT_EXP_R and np.all(np.diff(x) > 0)
    # published x values (e.g. the exponential table of Marsaglia & Tsang's zigset)
    assert x[254] == pytest.approx(6.9410336293772123601, rel=1e-15)
    assert x[253] == pytest.approx(6.4783784938325698538, rel=1e-15)
    assert _ZWE[0] * M53 == pytest.approx(ZIGGURAT_EXP_V / math.exp(-ZIGGURAT_EXP_R), rel=1e-15)
    # every layer has area v: rectangles [0, x_i] x [f(x_i), f(x_{i-1})], base = rectangle + tail
    fe_prev = np.r_[1.0, _ZFE[1:-1]]
    area = x[1:] * (fe_prev - _ZFE[1:])
    assert np.max(np.abs(area / ZIGGURAT_EXP_V - 1.0)) < 1e-13
    assert (ZIGGURAT_EXP_R + 1.0) * math.exp(-ZIGGURAT_EXP_R) == pytest.approx(ZIGGURAT_EXP_V, rel=1e-15)
    assert np.allclose(_ZFE[1:], np.exp(-x[1:]), rtol=1e-15, atol=0)
    # (r, v) close the recursion at x_0 = 0 (in 40 digits), and the fast-accept thresholds
    # are x_{i-1}/x_i 2^53 rounded down: u < ke[i] implies u we[i] < x_{i-1} (points at the
    # edge take the exact wedge test); the top layer (x_0 = 0) always takes it
    assert _ZKE[1] == 0
    with localcontext() as ctx:
        ctx.prec = 40
        r, v, m = Decimal(_R_DIGITS), Decimal(_V_DIGITS), Decimal(2) ** 53
        assert abs((r + 1) * (-r).exp() - v) < Decimal("1e-38")
        xs = [r]  # x_255, x_254, ..., x_0
        for _ in range(255):
            xs.append(-(v / xs[-1] + (-xs[-1]).exp()).ln())
        assert abs(xs[-1]) < Decimal("1e-30")
        xs = xs[::-1]
        for i in range(2, 256):
            exact = xs[i - 1] / xs[i] * m
            assert int(_ZKE[i]) <= exact < int(_ZKE[i]) + 1
            assert _ZWE[i] == float(xs[i] / m)
        q = v / (-r).exp()
        assert int(_ZKE[0]) <= r / q * m < int(_ZKE[0]) + 1


def test_exponential_ks_and_moments(variates):
    e = variates
    assert e.min() >= 0.0 and np.all(np.isfinite(e))
    p = stats.kstest(e, "expon").pvalue
    assert p > ALPHA, p
    n = e.size
    assert abs((e.mean() - 1.0) / math.sqrt(1.0 / n)) < Z_CRIT  # Var(X) = 1
    assert abs((e.var() - 1.0) / math.sqrt(8.0 / n)) < Z_CRIT  # Var(X^2 ...) : mu4 - sigma^4 = 9 - 1


def test_exponential_layer_bins_chi2(variates):
    """Counts between consecutive layer edges x_{i-1}, x_i and beyond r: each bin's mass
    comes from the rectangles of the layers above it and from layer i's wedge test."""
    x = edges()
    counts = np.bincount(np.searchsorted(x, variates, side="right") - 1, minlength=256)
    prob = np.r_[np.exp(-x[:-1]) - np.exp(-x[1:]), math.exp(-ZIGGURAT_EXP_R)]
    assert prob.sum() == pytest.approx(1.0, abs=1e-14)
    expected = prob * variates.size
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    p = stats.chi2.sf(chi2, df=len(prob) - 1)
    assert p > ALPHA, (chi2, p)


def test_exponential_inside_a_wedge(variates):
    """On [x_254, r), the widest band of the base layers, the law is Exp(1) truncated there."""
    x = edges()
    lo, hi = x[254], x[255]
    w = variates[(variates >= lo) & (variates < hi)]
    assert w.size > 3000
    cdf = lambda y: (np.exp(-lo) - np.exp(-y)) / (np.exp(-lo) - np.exp(-hi))  # noqa: E731
    p = stats.kstest(w, cdf).pvalue
    assert p > ALPHA, p


def test_exponential_tail(variates):
    """P(X > r) = e^-r (the base layer's tail branch) and X - r | X > r ~ Exp(1)."""
    n = variates.size
    tail = variates[variates > ZIGGURAT_EXP_R]
    p_r = math.exp(-ZIGGURAT_EXP_R)
    z = (tail.size - n * p_r) / math.sqrt(n * p_r * (1 - p_r))
    assert abs(z) < Z_CRIT, z
    p = stats.kstest(tail - ZIGGURAT_EXP_R, "expon").pvalue
    assert p > ALPHA, p
    # deeper: P(X > 11) = e^-11, ~167 expected; Poisson two-sided at 0.001
    k = int(np.sum(variates > 11.0))
    mu = n * math.exp(-11.0)
    assert stats.poisson.cdf(k, mu) > ALPHA / 2 and stats.poisson.sf(k - 1, mu) > ALPHA / 2, (k, mu)
