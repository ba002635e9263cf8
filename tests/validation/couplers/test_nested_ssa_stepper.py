"""Projective Euler over a Nested-SSA ensemble, against the four-species model's exact mean.

Model (E, Liu & Vanden-Eijnden, J. Chem. Phys. 123 (2005) 194107; drivers/configs/models/
four_species.toml; the reference of tests/validation/micro/ssa/test_nested_ssa.py): S1 <-> S2,
S3 <-> S4 fast (1e5), S2 <-> S3 slow (1). Slow variables y1 = x1 + x2, y2 = x3 + x4,
y1 + y2 = 100; averaged, each molecule flips between the y1 and y2 groups at rate 1/2 each
way, so E[y2](t) = 50 + (y2(0) - 50) e^{-t} exactly.

Stepper: R = 200 Nested-SSA trajectories (lambda = 0.2: N = 5, T_f = 5 eps) per macro state,
inner step h = 0.05; projective Euler with k = 1, M = 8 (outer step 0.5), 3 outer steps to
t = 1.5, from four macro states y2(0) = 0, 30, 80, 100.

Error budget of U2 at t = 1.5:

* projective (deterministic): the mean is the exact linear flow, rho = e^{-h} per inner step,
  so the deviation from 50 is multiplied by sigma = rho^k ((M+1) rho - M) = 0.5337 per outer step
  instead of e^{-0.5} = 0.6065: U_det - exact = (y2(0) - 50)(sigma^3 - e^{-1.5}) = 1.4 .. 3.6;
* lifting: the lifted ensemble mean is the macro state to 1/(2R) (rounding), <= 0.0025 x 3;
* statistics: per outer step, given the lifted counts, U2^+ = (M+1) ybar(2h) - M ybar(h) over R
  replicas of 100 independent two-state molecules (total flip rate 1): per molecule with
  p_i(t) = 1/2 + (p0 - 1/2) e^{-t}, q_i = p_i (1 - p_i), Cov(I(h), I(2h)) = q_1 e^{-h},
  Var = (M+1)^2 q_2 + M^2 q_1 - 2 M (M+1) q_1 e^{-h}; carried over outer steps by sigma^2:
  sd 1.15;
* Nested SSA: O(eps) = 1e-5 and the rate-noise term, which enters the mean only through
  the rate noise's correlations (neglected; the 12 z-scores of seeds 0-2 have mean z^2 1.02).

Checks: z = (U2 - U_det) / sd: every |z| < 4 (P(any of 4 beyond) ~ 2.5e-4), sum z^2 < 18.47
(chi^2_4, 0.1 %); |U2 - exact| <= |U_det - exact| + lifting + 4 sd. And the projective error
is resolved: sum ((U2 - exact)/sd)^2 > sum z^2, i.e. the amplification formula explains the
run better than the exact flow does (fails with probability Phi(-|delta|/2) = 0.7 %,
|delta| = 4.9 the projective errors in sd).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hmmpar.couplers import FreeStepper, amplification, projective_euler
from hmmpar.couplers.nested_ssa_stepper import NestedSSAEnsembleStepper
from hmmpar.micro.ssa.model import ReactionNetwork
from hmmpar.micro.ssa.nested import NestedParameters, run_ensemble

MODELS = Path(__file__).resolve().parents[3] / "drivers" / "configs" / "models"
SLOW = [["S1", "S2"], ["S3", "S4"]]
R, H, K, M, OUTER = 200, 0.05, 1, 8.0, 3
PARAMS = NestedParameters(tolerance=0.2)


@pytest.fixture(scope="module")
def four() -> ReactionNetwork:
    return ReactionNetwork.from_toml(MODELS / "four_species.toml")


def molecule_variance(p0: float) -> float:
    """Var((M+1) I(2h) - M I(h)) of one two-state molecule (flip rate 1/2 each way) started in
    the y2 group with probability p0 (0 or 1)."""
    p1 = 0.5 + (p0 - 0.5) * math.exp(-K * H)
    p2 = 0.5 + (p0 - 0.5) * math.exp(-(K + 1) * H)
    q1, q2 = p1 * (1 - p1), p2 * (1 - p2)
    return (M + 1) ** 2 * q2 + M ** 2 * q1 - 2 * M * (M + 1) * q1 * math.exp(-H)


def test_projective_euler_on_the_nested_ssa_reproduces_the_exact_mean(four):
    st = NestedSSAEnsembleStepper(four, SLOW, R, H, PARAMS, seed=0)
    assert isinstance(st, FreeStepper)
    y20 = np.array([0.0, 30.0, 80.0, 100.0])
    r = projective_euler(st, np.stack([100.0 - y20, y20], axis=1), 0.0, OUTER, K, M)
    T = r.t[-1]
    assert T == pytest.approx(1.5)
    sigma = float(amplification(math.exp(-H), K, M))
    d, var, lift = y20 - 50.0, np.zeros(4), 0.0
    for _ in range(OUTER):
        n2 = d + 50.0
        var = sigma ** 2 * var + (n2 * molecule_variance(1.0) + (100 - n2) * molecule_variance(0.0)) / R
        lift = abs(sigma) * (lift + 1.0 / (2 * R))
        d = sigma * d
    det, sd = 50.0 + d, np.sqrt(var)
    exact = 50.0 + (y20 - 50.0) * math.exp(-T)
    U2 = r.U[-1, :, 1]
    z = (U2 - det) / sd
    print(f"\n[nested-ssa-stepper] U2={U2} det={det} exact={exact} sd={sd} z={z} "
          f"inner_events={st.inner_events} outer_events={st.outer_events}")
    assert np.max(np.abs(z)) < 4.0
    assert np.sum(z ** 2) < 18.47
    assert np.all(np.abs(U2 - exact) <= np.abs(det - exact) + lift + 4.0 * sd)
    assert np.sum(((U2 - exact) / sd) ** 2) > np.sum(z ** 2)
    assert np.all(np.abs(r.U[-1].sum(axis=1) - 100.0) <= 1.0 / R)   # y1 + y2 conserved
    assert r.inner_steps == OUTER * (K + 1)


def test_lifting_and_streams_are_the_ssa_apps(four):
    """Lift: the slow-variable means are U to 1/(2R), each count split evenly over its group.
    Evolve call 0: replica r of row b is bitwise the ssa app's trajectory b R + r, window 0."""
    st = NestedSSAEnsembleStepper(four, SLOW, 4, 0.02, PARAMS, seed=11)
    U = np.array([[60.3, 39.7], [10.0, 90.0]])
    S = st.lift(U, 0.0)
    assert np.all(np.abs(st.restrict(S) - U) <= 1.0 / (2 * 4) + 1e-12)
    assert np.all(np.abs(S[..., 0] - S[..., 1]) <= 1) and np.all(np.abs(S[..., 2] - S[..., 3]) <= 1)
    start = S.copy()
    st.evolve(S, 0.0, 1)
    for b in range(2):
        for rep in range(4):
            ref, _ = run_ensemble(four, "nested", PARAMS, [0.0, 0.02], 1, 11, first=b * 4 + rep, x0=start[b, rep])
            assert np.array_equal(S[b, rep], ref[0, -1])
    assert st.calls == 1 and st.replica_time == pytest.approx(8 * 0.02)


@pytest.mark.parametrize("kwargs, match", [
    (dict(R=1), "R must be a whole number >= 2"),
    (dict(h=0.0), "h must be a positive"),
    (dict(seed=-2), "seed must be a whole number"),
    (dict(slow=[["S1", "S2"], ["S2", "S3"]]), "disjoint groups"),
    (dict(slow=[[]]), "non-empty lists of species"),
    (dict(params=NestedParameters(replicas=0)), "replicas is 0"),
])
def test_bad_input_is_one_clear_error(four, kwargs, match):
    args = dict(slow=SLOW, R=4, h=0.1, params=PARAMS, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        NestedSSAEnsembleStepper(four, **args)
