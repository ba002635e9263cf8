"""LJ equation of state from the MD engine against the NIST Standard Reference Simulation
Website (SRSW) Lennard-Jones benchmark, and the two-phase test on larger boxes.

Reference: NIST, "Lennard-Jones Fluid Properties",
https://www.nist.gov/mml/csd/chemical-informatics-research-group/lennard-jones-fluid-properties ,
NVT Monte Carlo table (https://mmlapps.nist.gov/srs/LJ_PURE/mc.htm): LJ truncated at
r_c = 3.0 with the analytic long-range corrections in both U and p, N = 500, isotherms
T* = 0.85 and 0.90. The values below were taken from that table as reproduced (identically)
in several public code repositories that test against it; NIST's pages themselves were not
reachable from here.

    rho*   U*/N (T=0.85)  p* (T=0.85)   U*/N (T=0.90)  p* (T=0.90)
    0.82   -5.7947        5.5355E-01    -5.7456        8.2386E-01
    0.86   -6.0305        1.2660E+00    -5.9753        1.5781E+00

(NIST quotes standard deviations of U of a few 1e-4; 2.3e-4 at rho = 0.86, T = 0.85.)

Our run is NVE MD after velocity rescaling to T = 0.875, so the production temperature is
not exactly a tabulated one: the NIST values are interpolated linearly in T between the two
isotherms to our measured mean temperature (it lands between them).

Tolerances: 3 standard errors of our means (blocking) combined with the spread that the
error of our mean temperature induces through dU/dT and dp/dT of the table. The energy
also gets an allowance of 0.005 for the ensemble: MD with a truncated potential has no
impulsive force at r_c, so it samples the truncated-and-*shifted* potential's ensemble
(with the unshifted energy reported), while the MC samples the truncated one; NIST's own
NVE MD table (https://mmlapps.nist.gov/srs/LJ_PURE/md.htm, N = 500, r_c = 3 + corrections)
gives U/N = -6.027(1) at rho = 0.86, T = 0.849 against -6.0305 from the MC at T = 0.85.
Measured here (seed 1): rho 0.82, T 0.8779: dU = +0.0020 (2.4 se), dp = -0.0008 (0.2 se);
rho 0.86, T 0.8497: dU = +0.0016, dp = -0.0007.
"""
from __future__ import annotations

import numpy as np
import pytest

from hmmpar.micro.md.box import state_point
from hmmpar.micro.md.potentials import make_potential

NIST_MC = {  # rho: ((U, p) at T = 0.85, (U, p) at T = 0.90)
    0.82: ((-5.7947, 5.5355e-01), (-5.7456, 8.2386e-01)),
    0.86: ((-6.0305, 1.2660e+00), (-5.9753, 1.5781e+00)),
}
ENSEMBLE_ALLOWANCE_U = 0.005


@pytest.mark.slow
@pytest.mark.parametrize("rho", sorted(NIST_MC))
def test_lj_liquid_energy_and_pressure_match_nist_monte_carlo(rho):
    p = make_potential("lj", 3.0, shift=False, tail_correction=True)
    r = state_point(rho, p, 500, np.random.default_rng(1), temperature=0.875, t_equilibrate=10.0,
                    t_sample=100.0)
    assert r.converged and not r.two_phase
    (u85, p85), (u90, p90) = NIST_MC[rho]
    du_dt, dp_dt = (u90 - u85) / 0.05, (p90 - p85) / 0.05
    assert 0.84 < r.temperature < 0.91
    u_ref = u85 + du_dt * (r.temperature - 0.85)
    p_ref = p85 + dp_dt * (r.temperature - 0.85)
    tol_u = 3 * np.hypot(r.potential_energy_err, du_dt * r.temperature_err) + ENSEMBLE_ALLOWANCE_U
    tol_p = 3 * np.hypot(r.pressure_err, dp_dt * r.temperature_err)
    assert abs(r.potential_energy - u_ref) < tol_u, (r.potential_energy, u_ref, tol_u)
    assert abs(r.pressure - p_ref) < tol_p, (r.pressure, p_ref, tol_p)


@pytest.mark.slow
def test_two_phase_detection_on_a_larger_box():
    """2048 atoms, LJ r_c = 2.5 shifted, rho = 0.3: T = 0.8 demixes (measured S(k_min)
    about 70 and growing), T = 2.0 stays homogeneous (about 0.9)."""
    p = make_potential("lj", 2.5, shift=True)
    cold = state_point(0.3, p, 2048, np.random.default_rng(1), temperature=0.8, t_equilibrate=20.0, t_sample=20.0)
    hot = state_point(0.3, p, 2048, np.random.default_rng(1), temperature=2.0, t_equilibrate=20.0, t_sample=20.0)
    assert cold.two_phase and cold.structure_factor_kmin > 30
    assert not hot.two_phase and hot.structure_factor_kmin < 3
