"""Linear stability of the conductive state against the exact growth rates (Chandrasekhar 1961).

Free-slip walls: a box of width 2 sqrt(2) holds one wavelength of the critical mode
k = pi/sqrt(2); the column starts on the exact eigenvector of the 2x2 problem
(:func:`growth_rate_free_slip`, amplitude 1e-5: the nonlinear terms are 1e-10 relative) and
the growth rate is measured from the kinetic energy, KE ~ exp(2 sigma t), between t = 0.5
and t = 1. Near Ra_c = 27 pi^4 / 4 = 657.51 the mode decays at Ra = 640 and grows at 675.

Tolerance from the time-stepping error: ARS(2,2,2) is second order, so with steps dt and
dt/2 the error of the finer run is estimated by Richardson as (s(dt) - s(dt/2))/3. The test
asserts that the error ratio is that of order 2 (3.0-5.0; measured 3.93-3.97) and that the
finer run's error is within 1.5 times its Richardson estimate (measured: the estimate is
right to 2 %). The Chebyshev error of sin(pi z) on 17 points is below 1e-12, and
nothing else enters. Measured errors at dt = 2e-3: 1.4e-5 (Pr = 1) and 2.7e-5 (Pr = inf)
on rates of about 0.2 and 0.4. ARS(4,4,3) is checked for order 3 the same way.

No-slip walls (no closed form): Ra_c = 1707.76 at k = 3.117 (Chandrasekhar 1961, table III):
the mode of a box of width 2 pi / 3.117 decays at Ra = 1690 and grows at Ra = 1725.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.micro.convection import ConvectionModel, ConvectionParams, growth_rate_free_slip
from hmmpar.micro.convection.linear import K_C_FREE_SLIP, RA_C_FREE_SLIP, eigenvector_free_slip


def measured_rate(ra: float, pr: float, dt: float, scheme: str = "ars222", walls: str = "free-slip",
                  aspect: float = 2.0 * math.sqrt(2.0), t_half: float = 0.5, amplitude: float = 1e-5) -> float:
    p = ConvectionParams(ra=ra, pr=pr, aspect=aspect, nx=8, nz=17, walls=walls, dt_max=dt, scheme=scheme)
    m = ConvectionModel(p)
    st = m.initial_states([np.random.default_rng(0)], amplitude=0.0)
    k = m.k[1]
    t_hat = 0.5 * amplitude * np.sin(np.pi * m.z)              # T' = amplitude sin(pi z) cos(k x)
    st["T"][0, :, 1] = t_hat
    if math.isfinite(pr) and walls == "free-slip":
        st["omega"][0, :, 1] = -(k * k + np.pi ** 2) * eigenvector_free_slip(ra, pr, k) * t_hat
    d1 = m.advance(st, t_half)
    assert d1["steps"][0] == math.ceil(t_half / dt)
    d2 = m.advance(st, t_half)
    return math.log(d2["ke"][0] / d1["ke"][0]) / (2.0 * t_half)


@pytest.mark.parametrize("pr", [1.0, math.inf])
@pytest.mark.parametrize("ra", [640.0, 675.0])
def test_free_slip_growth_rate_near_onset(ra, pr):
    exact = growth_rate_free_slip(ra, pr, K_C_FREE_SLIP)
    coarse, fine = measured_rate(ra, pr, 4e-3), measured_rate(ra, pr, 2e-3)
    assert (exact < 0) == (ra < RA_C_FREE_SLIP)
    ratio = (coarse - exact) / (fine - exact)
    assert 3.0 < ratio < 5.0, ratio
    richardson = abs(coarse - fine) / 3.0
    assert abs(fine - exact) < 1.5 * richardson, (fine, exact, richardson)
    assert abs(fine - exact) < 1e-4 * abs(exact) / 0.2          # and small: 1e-4 of a rate of 0.2
    assert np.sign(fine) == np.sign(exact)


def test_free_slip_growth_rate_third_order_with_ars443():
    ra, pr = 675.0, 1.0
    exact = growth_rate_free_slip(ra, pr, K_C_FREE_SLIP)
    coarse = measured_rate(ra, pr, 1e-2, scheme="ars443")
    fine = measured_rate(ra, pr, 5e-3, scheme="ars443")
    ratio = (coarse - exact) / (fine - exact)
    assert 6.0 < ratio < 10.0, ratio                               # order 3: 8
    assert abs(fine - exact) < 1.5 * abs(coarse - fine) / 7.0


def test_growth_rate_of_a_higher_mode_far_from_onset():
    """Ra = 5000, Pr = 7, k = 2 pi / L with L = 2: sigma = 65.98, a fast-growing mode (amplitude
    1e-12 at the start, 7e-7 at t = 0.2: still linear)."""
    ra, pr = 5000.0, 7.0
    k = math.pi
    exact = growth_rate_free_slip(ra, pr, k)
    coarse = measured_rate(ra, pr, 1e-3, aspect=2.0, t_half=0.1, amplitude=1e-12)
    fine = measured_rate(ra, pr, 5e-4, aspect=2.0, t_half=0.1, amplitude=1e-12)
    assert 3.0 < (coarse - exact) / (fine - exact) < 5.0
    assert abs(fine - exact) < 1.5 * abs(coarse - fine) / 3.0
    assert abs(fine / exact - 1) < 1e-3


@pytest.mark.parametrize("ra, grows", [(1690.0, False), (1725.0, True)])
def test_no_slip_onset(ra, grows):
    rate = measured_rate(ra, 1.0, 4e-3, walls="no-slip", aspect=2.0 * math.pi / 3.117, t_half=1.0)
    assert (rate > 0) == grows, rate
    assert abs(rate) < 0.2                                         # near onset: a slow mode
