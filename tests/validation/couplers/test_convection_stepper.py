"""Projective Euler over convection columns below onset, against the heat equation's exact decay.

Below onset (Ra = Ra_c / 2, Ra_c = 27 pi^4 / 4 for free-slip walls; Pr = inf; box 2 sqrt 2 x 1,
nx = 16, nz = 17) a fluid at rest stays at rest and the horizontal-mean temperature obeys the
heat equation with diffusivity 1 (time in diffusion times): T = 1 - z + A sin(pi z) has
A(t) = A0 e^{-pi^2 t} exactly.

Projective Euler (k inner steps, then one, extrapolation over M h) multiplies A by
sigma = rho_K ((M + 1) rho_1 - M) per outer step, rho_K the micro model's factor over K inner
steps. Error budget of the measured factor:

* projective (the method's known error): with the exact inner flow rho = e^{-pi^2 h},
  sigma(rho) = rho^k ((M+1) rho - M) (hmmpar.couplers.projective.amplification) instead of
  e^{-pi^2 (k+1+M) h}; the decay rate -ln(sigma)/((k+1+M) h) is 12.84 instead of pi^2 = 9.87 at
  h = 0.01, k = 2, M = 5, and its error is first order in the outer step;
* time stepping of the micro model: ARS(2,2,2) with n IMEX steps over a call multiplies the
  mode by R(-pi^2 dt)^n, R the implicit part's stability function (imex_stability), n recorded
  per call (ConvectionStepper.substeps): rho_K = R(-pi^2 K h / n_K)^{n_K}; |sigma_num / sigma(rho)
  - 1| ~ 3.5e-5 at dt_max = h / 4;
* space: sin(pi z) on 17 Chebyshev points, spectrally accurate (the profile stays a multiple
  of sin(pi z) to 1e-14);
* rounding of the projection and the IMEX solves: 1e-9 relative.

So the measured factor must equal sigma_num to 1e-9 and sigma(e^{-pi^2 h}) within the IMEX
error, and the measured decay rate the projective formula's within that error. Lifting with
memory and a convective perturbation of amplitude a changes the mean only through the
eddy flux <wT>, quadratic in a: the deviation from the rest run quadruples when a doubles
(to O(a) = 1e-3 relative; accepted [3.9, 4.1]).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.core.errors import ConfigError
from hmmpar.couplers import FreeStepper, amplification, projective_euler
from hmmpar.couplers.convection_stepper import ConvectionStepper, imex_stability
from hmmpar.micro.convection import RA_C_FREE_SLIP, ConvectionParams

K, M, N = 2, 5.0, 5
LAM = -math.pi ** 2


def params(h: float) -> ConvectionParams:
    return ConvectionParams(ra=0.5 * RA_C_FREE_SLIP, aspect=2 * math.sqrt(2), nx=16, nz=17, dt_max=h / 4)


def run(h: float, **kw) -> tuple[ConvectionStepper, np.ndarray, float]:
    """Projective Euler from A0 = (0.1, -0.05); the sin(pi z) amplitudes (N + 1, 2) and t_N."""
    st = ConvectionStepper(params(h), h, seed=3, **kw)
    z = st.model.z
    s = np.sin(np.pi * z)
    U0 = (1 - z)[None, :] + np.array([0.1, -0.05])[:, None] * s[None, :]
    r = projective_euler(st, U0, 0.0, N, K, M)
    dev = r.U - (1 - z)
    A = dev @ s / (s @ s)
    if st.amplitude == 0:
        assert np.abs(dev - A[..., None] * s).max() < 1e-12      # the profile stays a sine
    return st, A, float(r.t[-1])


def sigma_num(st: ConvectionStepper, h: float) -> np.ndarray:
    out = []
    for n in range(N):
        nK, n1 = st.substeps[2 * n], st.substeps[2 * n + 1]
        rK = imex_stability(st.model.tableau, LAM * K * h / nK) ** nK
        r1 = imex_stability(st.model.tableau, LAM * h / n1) ** n1
        out.append((rK * ((M + 1) * r1 - M)).real)
    return np.array(out)


@pytest.mark.parametrize("h", [0.01, 0.005])
def test_below_onset_the_mean_decays_at_the_projective_rate_of_the_heat_equation(h):
    st, A, T = run(h, amplitude=0.0, memory=False)
    assert isinstance(st, FreeStepper)
    measured = A[1:] / A[:-1]                                   # (N, 2)
    num = sigma_num(st, h)
    assert np.all(np.abs(measured / num[:, None] - 1) < 1e-9)
    formula = float(amplification(math.exp(LAM * h), K, M))
    imex = np.abs(num / formula - 1).max()
    assert imex < 1e-4                                          # second order, dt = h / 4
    assert np.all(np.abs(measured / formula - 1) <= imex + 1e-9)
    step = (K + 1 + M) * h
    rate = -np.log(A[-1] / A[0]) / T
    rate_formula = -math.log(formula) / step
    assert np.all(np.abs(rate - rate_formula) <= rate_formula * N * (imex + 1e-9))
    exact_error = rate_formula - math.pi ** 2                   # the projective method's known error
    print(f"\n[convection-stepper] h={h} rate={rate} formula={rate_formula} pi^2={math.pi ** 2} "
          f"projective error={exact_error} imex={imex} substeps={st.substeps}")
    assert exact_error > 0                                      # extrapolation over-damps this mode


def test_projective_rate_error_is_first_order_in_the_outer_step():
    """The formula's rate error (the method's, not the stepper's): ln sigma = (k+1+M) lambda h
    - M (M+1) (lambda h)^2 / 2 + O(h^3), so the rate is pi^2 + c h + O(h^2) with
    c = M (M+1) pi^4 / (2 (k+1+M)) = 182.6; e / (c h) - 1 is O(h)."""
    c = M * (M + 1) * math.pi ** 4 / (2 * (K + 1 + M))
    dev = [(-math.log(float(amplification(math.exp(LAM * h), K, M))) / ((K + 1 + M) * h) - math.pi ** 2) / (c * h) - 1
           for h in (1e-3, 1e-4)]
    assert abs(dev[1]) < 0.01 and abs(dev[1]) < 0.2 * abs(dev[0])


def test_lifting_with_memory_changes_the_mean_only_through_the_quadratic_eddy_flux():
    h = 0.01
    _, rest, _ = run(h, amplitude=0.0, memory=False)
    _, a1, _ = run(h, amplitude=1e-3, memory=True)
    _, a2, _ = run(h, amplitude=2e-3, memory=True)
    d1, d2 = np.abs(a1 - rest).max(), np.abs(a2 - rest).max()
    assert 0 < d1 < 1e-6
    assert 3.9 < d2 / d1 < 4.1


def test_lift_keeps_the_last_micro_state_and_replaces_its_mean():
    st = ConvectionStepper(params(0.01), 0.01, seed=1, amplitude=1e-3)
    z = st.model.z
    S = st.lift((1 - z)[None, :], 0.0)
    st.evolve(S, 0.0, 1)
    U = (1 - z + 0.01 * np.sin(np.pi * z))[None, :]
    L = st.lift(U, 0.5)
    assert np.array_equal(L["T"][:, :, 1:], S["T"][:, :, 1:]) and L["t"][0] == 0.5
    assert np.array_equal(st.restrict(L), U)
    fresh = ConvectionStepper(params(0.01), 0.01, seed=1, amplitude=1e-3, memory=False)
    fresh.evolve(fresh.lift(U, 0.0), 0.0, 1)
    assert not np.array_equal(fresh.lift(U, 0.0)["T"][:, :, 1:], S["T"][:, :, 1:])


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ConvectionStepper(params(0.01), 0.0), ValueError, "h must be a positive"),
    (lambda: ConvectionStepper(params(0.01), 0.01, amplitude=-1.0), ValueError, "amplitude must be"),
    (lambda: ConvectionStepper(params(0.01), 0.01, seed=1.5), ValueError, "seed must be a whole number"),
    (lambda: ConvectionStepper(params(0.01), 0.01).lift(np.zeros((1, 5)), 0.0), ValueError, r"U must have shape"),
    (lambda: ConvectionStepper(ConvectionParams(ra=-1.0), 0.01), ConfigError, "ra: must be > 0"),
])
def test_bad_input_is_one_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def farm_run(make, U0: np.ndarray, farmed: bool, outer: int = N) -> np.ndarray:
    """Projective Euler (k = 2, M = 5) of ``make()``, serial or over a one-rank farm."""
    from mpi4py import MPI

    from hmmpar.core.farm import Farm
    from hmmpar.couplers.farmed import FarmedStepper
    st = make()
    stepper = FarmedStepper(st, Farm(MPI.COMM_SELF), seed=11) if farmed else st
    return projective_euler(stepper, U0, 0.0, outer, K, M).U


@pytest.mark.parametrize("ra", [0.5, 2.0], ids=["below_onset", "above_onset"])
def test_farmed_projective_euler_with_lifting_memory_is_the_serial_run_bitwise(ra):
    """The farm returns every column's state after the last inner step and the stepper
    remembers the gathered batch (hmmpar/couplers/farmed.py): the next lift starts from the
    state the serial evolve stored, so the farmed run is the serial one to the bit, with a
    convective perturbation (amplitude 1e-2) whose memory matters above onset."""
    p = ConvectionParams(ra=ra * RA_C_FREE_SLIP, aspect=2 * math.sqrt(2), nx=16, nz=17, dt_max=0.0025)
    z = ConvectionStepper(p, 0.01).model.z
    U0 = (1 - z)[None, :] + np.array([0.1, -0.05, 0.0])[:, None] * np.sin(np.pi * z)[None, :]
    serial = farm_run(lambda: ConvectionStepper(p, 0.01, seed=3, amplitude=1e-2), U0, False)
    farmed = farm_run(lambda: ConvectionStepper(p, 0.01, seed=3, amplitude=1e-2), U0, True)
    fresh = farm_run(lambda: ConvectionStepper(p, 0.01, seed=3, amplitude=1e-2, memory=False), U0, True)
    assert farmed.tobytes() == serial.tobytes()
    assert np.abs(farmed - fresh).max() > (1e-4 if ra > 1 else 1e-7)   # the memory was used


def test_a_column_advances_bitwise_alone_or_in_any_batch():
    """What the farm relies on: ConvectionModel.advance chooses each column's IMEX steps from
    that column alone, so a sub-batch gives the whole batch's rows to the bit (above onset,
    where the columns' CFL limits differ)."""
    from hmmpar.core.rng import task_rng
    st = ConvectionStepper(ConvectionParams(ra=4 * RA_C_FREE_SLIP, aspect=2 * math.sqrt(2), nx=16, nz=17), 0.01)
    S = st.model.initial_states([task_rng(5, 0, b) for b in range(3)], amplitude=0.3)
    S["T"][2, :, 1:] *= 0.1                                      # a weaker perturbation: other CFL steps
    whole = S.copy()
    d = st.model.advance(whole, 0.05)
    assert len(set(d["steps"].tolist())) > 1                     # the columns took different steps
    for b in range(3):
        one = S[b:b + 1].copy()
        st.model.advance(one, 0.05)
        assert one.tobytes() == whole[b:b + 1].tobytes()


def test_memory_state_restores_the_lift_bitwise():
    st = ConvectionStepper(params(0.01), 0.01, seed=1, amplitude=1e-3)
    assert st.memory_state() is None
    z = st.model.z
    S = st.lift((1 - z)[None, :].repeat(2, 0), 0.0)
    st.evolve(S, 0.0, 2)
    raw = st.memory_state().view(np.uint8).reshape(2, -1)        # the app's checkpoint form
    other = ConvectionStepper(params(0.01), 0.01, seed=1, amplitude=1e-3)
    other.restore_memory(raw)
    U = (1 - z + 0.02 * np.sin(np.pi * z))[None, :].repeat(2, 0)
    assert other.lift(U, 0.3).tobytes() == st.lift(U, 0.3).tobytes()
    other.restore_memory(None)
    assert other.lift(U, 0.3).tobytes() != st.lift(U, 0.3).tobytes()
    with pytest.raises(ValueError, match="memory rows"):
        other.restore_memory(np.zeros((2, 3), np.uint8))
