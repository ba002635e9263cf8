"""The exact Riemann solver (hmmpar.macro.finite_volume.riemann_exact) against Toro's
published star states (Riemann Solvers and Numerical Methods for Fluid Dynamics, 3rd ed.,
Table 4.3, gamma = 1.4) and the gamma = 5/3 Sod values of issue 12, plus the jump
conditions its sampled solution must satisfy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.macro.finite_volume.riemann_exact import sample, solution, star_state

#: Toro Table 4.3: (left, right) as (rho, u, p); published p*, u*, rho*_L, rho*_R
TORO = {
    1: ((1.0, 0.0, 1.0), (0.125, 0.0, 0.1), 0.30313, 0.92745, 0.42632, 0.26557),
    2: ((1.0, -2.0, 0.4), (1.0, 2.0, 0.4), 0.00189, 0.00000, 0.02185, 0.02185),
    3: ((1.0, 0.0, 1000.0), (1.0, 0.0, 0.01), 460.894, 19.5975, 0.57506, 5.99924),
    4: ((1.0, 0.0, 0.01), (1.0, 0.0, 100.0), 46.0950, -6.19633, 5.99242, 0.57511),
    5: ((5.99924, 19.5975, 460.894), (5.99242, -6.19633, 46.0950), 1691.64, 8.68975, 14.2823, 31.0426),
}


def digits_agree(ours: float, published: float, decimals: int) -> bool:
    """``ours`` rounds to ``published`` at the printed number of decimals."""
    return abs(ours - published) <= 0.5 * 10.0**-decimals + 1e-12


@pytest.mark.parametrize("test", sorted(TORO))
def test_star_state_matches_toro_table_4_3(test):
    left, right, p, u, rl, rr = TORO[test]
    star = star_state(left, right, 1.4)
    if test == 5:
        # Test 5's data are tests 3 and 4's star states rounded to 6 digits, and Toro's
        # Newton iteration stops at a relative change of 1e-6: his p* = 1691.64 and
        # u* = 8.68975 differ from the converged root of these data (1691.647, 8.689774)
        # by 4e-6 and 3e-6 relative. We require that relative agreement, not the digits.
        for ours, published in ((star.p, p), (star.u, u), (star.rho_left, rl), (star.rho_right, rr)):
            assert abs(ours - published) <= 5e-6 * abs(published)
        return
    decimals = {1: 5, 2: 5, 3: (3, 4, 5, 5), 4: (4, 5, 5, 5)}[test]
    decimals = decimals if isinstance(decimals, tuple) else (decimals,) * 4
    for ours, published, dec in zip((star.p, star.u, star.rho_left, star.rho_right), (p, u, rl, rr), decimals):
        assert digits_agree(ours, published, dec), (test, ours, published)


def test_monatomic_sod_star_state():
    """gamma = 5/3 Sod: the values given in the issue, p* = 0.29395, u* = 0.84119."""
    star = star_state((1.0, 0.0, 1.0), (0.125, 0.0, 0.1), 5.0 / 3.0)
    assert digits_agree(star.p, 0.29395, 5) and digits_agree(star.u, 0.84119, 5)
    assert (star.left_wave, star.right_wave) == ("rarefaction", "shock")


@pytest.mark.parametrize("gamma", [1.4, 5.0 / 3.0])
def test_sampled_sod_solution_obeys_the_jump_conditions(gamma):
    left, right = (1.0, 0.0, 1.0), (0.125, 0.0, 0.1)
    star = star_state(left, right, gamma)
    cr = math.sqrt(gamma * right[2] / right[0])
    shock = right[1] + cr * math.sqrt((gamma + 1) / (2 * gamma) * star.p / right[2] + (gamma - 1) / (2 * gamma))
    # Rankine-Hugoniot across the shock (mass and momentum in the shock frame)
    m = star.rho_right * (star.u - shock)
    assert m == pytest.approx(right[0] * (right[1] - shock), rel=1e-13)
    assert star.p + m * (star.u - shock) == pytest.approx(right[2] + m * (right[1] - shock), rel=1e-13)
    # isentropic rarefaction: p / rho^gamma constant
    assert star.p / star.rho_left**gamma == pytest.approx(left[2] / left[0] ** gamma, rel=1e-13)
    xi = np.array([-5.0, star.u - 1e-9, star.u + 1e-9, shock - 1e-9, shock + 1e-9, 5.0])
    rho, u, p = sample(left, right, gamma, xi)
    assert rho.tolist()[0] == 1.0 and rho[-1] == 0.125
    assert rho[1] == pytest.approx(star.rho_left) and rho[2] == pytest.approx(star.rho_right)
    assert p[3] == pytest.approx(star.p) and p[4] == 0.1
    # the rarefaction fan is continuous at its head and tail
    cl = math.sqrt(gamma * left[2] / left[0])
    tail = star.u - cl * (star.p / left[2]) ** ((gamma - 1) / (2 * gamma))
    r_head, _, _ = sample(left, right, gamma, np.array([-cl + 1e-12]))
    r_tail, u_tail, _ = sample(left, right, gamma, np.array([tail - 1e-12]))
    assert r_head[0] == pytest.approx(1.0, abs=1e-10)
    assert r_tail[0] == pytest.approx(star.rho_left, abs=1e-10) and u_tail[0] == pytest.approx(star.u, abs=1e-10)


def test_initial_data_and_vacuum():
    rho, u, p = solution((1.0, 0.0, 1.0), (0.125, 0.0, 0.1), 1.4, np.array([0.2, 0.8]), 0.0, 0.5)
    assert rho.tolist() == [1.0, 0.125] and p.tolist() == [1.0, 0.1]
    with pytest.raises(ValueError, match="vacuum"):
        star_state((1.0, -10.0, 0.4), (1.0, 10.0, 0.4), 1.4)
    with pytest.raises(ValueError, match="rho > 0"):
        star_state((1.0, 0.0, -1.0), (1.0, 0.0, 1.0), 1.4)
