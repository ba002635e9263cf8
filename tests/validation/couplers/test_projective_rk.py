"""Projective Runge--Kutta (Lee & Gear 2007): its order on a stiff linear system with a
spectral gap equals the outer method's.

u' = A u, A = Q diag(-1, -0.5, -1e9, -1.4e9) Q^T (Q a seeded random rotation, so slow and
fast modes mix in every component), u(0) = (1, 1, 1, 1); exact u(1) = Q e^{diag(lambda)} Q^T u(0).
Inner forward Euler steps of h = 1e-9 give the fast modes rho = 0 and -0.4, which K = 60
steps damp below rounding even after an extrapolation over dt / h = 5e8 steps; the slow
modes see an O(h) slope bias and an O(eps_mach / h) rounding error, 1e-9 to 1e-8, far below
the errors measured here. Orders are log2 of successive error ratios at dt halving; the
leading-order constant's correction is O(dt), so the finest pair is within 0.25 of p.
"""
from __future__ import annotations

import numpy as np
import pytest

from hmmpar.couplers.projective import LinearEuler, projective_rk

LAM = np.array([-1.0, -0.5, -1e9, -1.4e9])
Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))
A = Q @ np.diag(LAM) @ Q.T
U0 = np.ones(4)
EXACT = Q @ (np.exp(LAM) * (Q.T @ U0))


@pytest.mark.parametrize("method, order, dts", [
    ("euler", 1, (0.2, 0.1, 0.05)),
    ("rk2", 2, (0.2, 0.1, 0.05)),
    ("rk4", 4, (0.5, 0.25, 0.125)),
])
def test_order_on_a_stiff_system_is_the_outer_methods(method, order, dts):
    errs = []
    for dt in dts:
        r = projective_rk(LinearEuler(A, 1e-9), U0, 0.0, round(1.0 / dt), dt, 60, method)
        assert r.t[-1] == pytest.approx(1.0)
        errs.append(np.abs(r.U[-1, 0] - EXACT).max())
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert abs(rates[-1] - order) < 0.25, (errs, rates)
    assert np.all(rates > order - 0.25), rates
    # forward Euler at dt = 0.05 on lambda = -1e9 would multiply the fast modes by 5e7 a step;
    # the inner steps damp them: the error is that of the slow dynamics alone
    assert errs[-1] < 0.02


def test_bad_parameters_are_refused():
    st = LinearEuler(LAM, 1e-9)
    with pytest.raises(ValueError, match="method must be one of"):
        projective_rk(st, U0, 0.0, 1, 0.1, 10, "rk3")
    with pytest.raises(ValueError, match=r"must exceed the inner steps' \(K \+ 1\) h"):
        projective_rk(st, U0, 0.0, 1, 1e-8, 60, "rk2")
    with pytest.raises(FloatingPointError, match="do not damp the fast modes"):
        projective_rk(LinearEuler(np.array([-1.0, -3e9]), 1e-9), [1.0, 1.0], 0.0, 200, 0.5, 2, "euler")
