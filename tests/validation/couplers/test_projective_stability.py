"""Projective forward Euler: its measured amplification and stable set against the formula
sigma(rho) = rho^k ((M + 1) rho - M) (Gear & Kevrekidis 2003), rho = 1 + h lambda.

The method is run (one outer step of hmmpar.couplers.projective.projective_euler with a
forward Euler inner stepper) on a diagonal linear system holding every lambda of a grid; the
state it returns is the measured amplification."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.couplers.projective import LinearEuler, amplification, projective_euler


def measured(rho: np.ndarray, k: int, M: float) -> np.ndarray:
    """One outer step from u = 1 for the eigenvalues lambda = rho - 1 (h = 1)."""
    r = projective_euler(LinearEuler(rho - 1.0, 1.0), np.ones(rho.size), 0.0, 1, k, M)
    assert r.inner_steps == k + 1 and r.t[-1] == pytest.approx(k + 1 + M)
    return r.U[-1, 0]


def intervals(rho: np.ndarray, stable: np.ndarray) -> list[tuple[float, float]]:
    """The maximal runs of stable grid points, as (first, last) values."""
    edges = np.flatnonzero(np.diff(stable.astype(int)))
    starts = [0] + list(edges + 1) if stable[0] else list(edges + 1)
    runs = []
    for s in starts:
        if not stable[s]:
            continue
        e = s
        while e + 1 < stable.size and stable[e + 1]:
            e += 1
        runs.append((rho[s], rho[e]))
    return runs


@pytest.mark.parametrize("k, M", [(1, 3.0), (1, 10.0), (2, 5.0), (4, 20.0)])
def test_measured_amplification_is_the_formula(k, M):
    rho = np.linspace(-1.5, 1.5, 3001)
    sigma = measured(rho, k, M)
    assert np.allclose(sigma, amplification(rho, k, M), rtol=1e-12, atol=1e-12 * M)


@pytest.mark.parametrize("M, pieces", [(4.0, 1), (4.8, 1), (4.9, 2), (6.0, 2), (20.0, 2)])
def test_k1_stable_set_splits_exactly_past_2_plus_2_sqrt2(M, pieces):
    """Below M = 2 + 2 sqrt 2 = 4.828 one interval, above it two, separated by the roots of
    (M + 1) rho^2 - M rho + 1 = 0 (where sigma = -1)."""
    rho = np.linspace(-1.0, 1.0, 200001)           # spacing 1e-5
    stable = np.abs(measured(rho, 1, M)) <= 1.0
    runs = intervals(rho, stable)
    assert len(runs) == pieces, runs
    assert (M > 2.0 + 2.0 * math.sqrt(2.0)) == (pieces == 2)
    if pieces == 2:
        disc = math.sqrt(M * M - 4.0 * (M + 1.0))
        lo, hi = (M - disc) / (2.0 * (M + 1.0)), (M + disc) / (2.0 * (M + 1.0))
        assert runs[0][1] == pytest.approx(lo, abs=2e-5) and runs[1][0] == pytest.approx(hi, abs=2e-5)
        assert runs[1][1] == pytest.approx(1.0, abs=1e-5)   # the slow interval ends at rho = 1


@pytest.mark.parametrize("k", [1, 2, 3])
def test_fast_region_radius_tends_to_M_to_the_minus_1_over_k(k):
    """The half-width of the interval around rho = 0, times M^(1/k), tends to 1, with a
    correction of at most O(M^(-1/k)) (the next term of the roots' expansion)."""
    gaps = []
    for M in (1e2, 1e4, 1e6):
        R = M ** (-1.0 / k)
        rho = np.linspace(-3 * R, 3 * R, 60001)
        stable = np.abs(measured(rho, k, M)) <= 1.0
        run = next(r for r in intervals(rho, stable) if r[0] <= 0.0 <= r[1])
        radius = 0.5 * (run[1] - run[0])
        gaps.append(abs(radius / R - 1.0))
        assert gaps[-1] <= R + 2e-4, (M, radius, R)   # O(R) correction + the grid's 1e-4 R
    assert gaps[-1] < 1e-3, gaps


def test_bad_parameters_are_refused():
    st = LinearEuler(np.array([-1.0]), 0.1)
    for kw, match in ((dict(k=-1, M=2.0), "k must be"), (dict(k=1, M=-1.0), "M must be"),
                      (dict(k=1, M=math.inf), "M must be")):
        with pytest.raises(ValueError, match=match):
            projective_euler(st, [1.0], 0.0, 1, **kw)
    with pytest.raises(ValueError, match="h must be a positive"):
        LinearEuler(np.array([-1.0]), 0.0)


@pytest.mark.parametrize("k, M, window", [(1, 4.0, 2), (1, 8.0, 2), (4, 15.0, 5), (6, 10.0, 3)])
def test_fit_amplification_is_the_least_squares_step(k, M, window):
    """The start-up check's amplification of the least-squares projective step (fit_amplification)
    is what projective_fit_step does to every mode of a linear stepper (to rounding), and is the
    chord formula for window = 2."""
    from hmmpar.couplers.ssa_stepper import projective_fit_step
    from hmmpar.couplers.stability import fit_amplification, worst_mode
    rho = np.linspace(-1.2, 1.2, 241)
    got = projective_fit_step(LinearEuler(rho - 1.0, 1.0), np.ones((1, rho.size)), 0.0, k, M, window)[0]
    want = fit_amplification(rho, k, M, window)
    np.testing.assert_allclose(got, want.real, rtol=0, atol=1e-12 * (1 + M) * 2 ** k)
    if window == 2:
        np.testing.assert_allclose(want.real, amplification(rho, k, M), rtol=0, atol=1e-13 * (1 + M))
    # inner = "exact": rho = e^{h lambda}; the worst non-growing mode is the largest |sigma| > 1
    lam = np.log(rho[rho > 0])
    w = worst_mode(lam, 1.0, [(k, M)], inner="exact", window=window)
    sig = np.abs(fit_amplification(np.exp(lam), k, M, window))
    bad = (lam <= 0) & (sig > 1 + 1e-12)
    assert (w is None) == (not bad.any())
    if w is not None:
        assert w[1] == pytest.approx(sig[bad].max(), rel=1e-14)
