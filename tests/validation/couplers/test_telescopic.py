"""Telescopic projective integration (Gear & Kevrekidis 2003): a projective forward Euler step
used as the inner step of another level multiplies a mode by the composition of the levels'
amplifications, sigma_2(sigma_1(rho)); with three time scales two levels are stable and
accurate where one level with the same work per unit time is not."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.couplers.projective import (LinearEuler, ProjectiveStepper, amplification, projective_euler,
                                        telescopic_amplification)


def test_measured_amplification_is_the_composition():
    rho = np.linspace(-1.2, 1.2, 2001)
    level1 = ProjectiveStepper(LinearEuler(rho - 1.0, 1.0), 2, 3.0)
    r = projective_euler(level1, np.ones(rho.size), 0.0, 1, 1, 4.0)
    pred = telescopic_amplification(rho, [(2, 3.0), (1, 4.0)])
    assert np.allclose(r.U[-1, 0], pred, rtol=1e-12, atol=1e-12 * np.abs(pred).max())
    assert level1.h == 6.0 and r.t[-1] == pytest.approx(6.0 * 6)
    assert level1.inner_steps == 2 * 3          # two level-1 steps of k + 1 = 3 inner steps


def test_three_time_scales_two_levels_where_one_is_unstable():
    """lambda = -1 (slow), -1e3, -1e6; inner Euler h = 1e-6 (rho = 0 for the fastest).
    Level 1 (k = 1, M = 998): steps of 1e-3 that remove the two fast modes (sigma_1 = 0 and
    1e-3); level 2 (k = 1, M = 98): steps of 0.1 over the slow one. To t = 1: 40 inner steps.
    One level with the same work per unit time (k = 3, M = 99996, steps of 0.1) amplifies the
    middle mode by |sigma| = 98.7 a step."""
    lam = np.array([-1.0, -1e3, -1e6])
    h = 1e-6
    levels = [(1, 998.0), (1, 98.0)]
    level1 = ProjectiveStepper(LinearEuler(lam, h), *levels[0])
    assert level1.h == pytest.approx(1e-3)
    r = projective_euler(level1, np.ones(3), 0.0, 10, *levels[1])
    assert r.t[-1] == pytest.approx(1.0)
    assert level1.inner_steps == 40              # 20 level-1 steps of k + 1 = 2 inner steps
    sigma = telescopic_amplification(1.0 + h * lam, levels)
    assert np.allclose(r.U[-1, 0], sigma ** 10, rtol=1e-10, atol=1e-14)
    # the slow mode: first order in the level-2 step, sigma_2 = e^{-0.1} - O(0.1^2)
    slow = r.U[-1, 0, 0]
    assert abs(slow - math.exp(-1.0)) < 10 * 0.1 ** 2 * math.exp(-1.0)   # 10 steps of error <= h2^2 (|lam| = 1)
    # fast modes removed: sigma_1 = 0 for the fastest, 1e-3 then sigma_2 = -0.098 a step for the middle
    assert abs(r.U[-1, 0, 1]) < 1e-9 and r.U[-1, 0, 2] == 0.0
    one = amplification(1.0 + h * lam, 3, 99996.0)
    assert abs(one[1]) > 50 and abs(one[0] - math.exp(-0.1)) < 0.01     # the middle mode: sigma = -98.7
    r1 = projective_euler(LinearEuler(lam, h), np.ones(3), 0.0, 10, 3, 99996.0)
    assert abs(r1.U[-1, 0, 1]) > 1e15                                    # and the run shows it (98.7^10)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="k must be"):
        ProjectiveStepper(LinearEuler(np.array([-1.0]), 0.1), -1, 2.0)
    with pytest.raises(ValueError, match="M must be"):
        ProjectiveStepper(LinearEuler(np.array([-1.0]), 0.1), 1, float("nan"))
