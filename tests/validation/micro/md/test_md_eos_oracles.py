"""The EOS oracles of lj_eos.py checked on their own: unit conversions, exact limits, and
published simulation results, before any MD is compared with them."""
from __future__ import annotations

import math

import pytest

pytest.importorskip("teqp")
pytest.importorskip("feos")

import lj_eos  # noqa: E402  (tests/validation/micro/md is on sys.path: pytest's rootdir import mode)

# NIST Standard Reference Simulation Website, "Lennard-Jones Fluid Properties", page 3 (MC):
# NVT Monte Carlo, N = 500, LJ truncated at 3 sigma with analytic long-range corrections,
# mean potential energy per atom u*_res and pressure p* (https://mmlapps.nist.gov/srs/LJ_PURE/mc.htm).
# Transcribed from public copies of that table (HOOMD-blue's validation test for rho* = 0.776,
# T* = 0.85, and an MC project's plotting script for the rest); both agree where they overlap.
NIST_MC_RHO = (0.001, 0.003, 0.005, 0.007, 0.009, 0.776, 0.780, 0.820, 0.860, 0.900)
NIST_MC = {
    0.85: ((-1.0317e-2, -3.1019e-2, -5.1901e-2, -7.2834e-2, -9.3973e-2,
            -5.5121, -5.5386, -5.7947, -6.0305, -6.2391),
           (8.4402e-4, 2.4965e-3, 4.1003e-3, 5.6565e-3, 7.1641e-3,
            6.7714e-3, 4.7924e-2, 5.5355e-1, 1.2660, 2.2314)),
    0.90: ((-9.9165e-3, -2.9787e-2, -4.9771e-2, -6.9805e-2, -8.9936e-2,
            -5.4689, -5.4956, -5.7456, -5.9753, -6.1773),
           (8.9429e-4, 2.6485e-3, 4.3569e-3, 6.0193e-3, 7.6363e-3,
            2.4056e-1, 2.7851e-1, 8.2386e-1, 1.5781, 2.5848)),
}


def test_pets_reduced_results_do_not_depend_on_sigma_and_epsilon():
    """The SI round trip of the FeOs oracle: two unit choices, one reduced answer, p = Z rho T."""
    for rho, temperature in [(0.3, 2.0), (0.7, 1.5), (0.05, 3.0)]:
        a = lj_eos.pets(rho, temperature)
        b = lj_eos.pets(rho, temperature, sigma_angstrom=1.0, epsilon_k=1.0)
        assert a.pressure == pytest.approx(b.pressure, rel=1e-10)
        assert a.u_residual == pytest.approx(b.u_residual, rel=1e-10)
        assert a.pressure == pytest.approx(a.compressibility * rho * temperature, rel=1e-10)


@pytest.mark.parametrize("kind", sorted(lj_eos.TEQP_KINDS))
@pytest.mark.parametrize("temperature", [1.5, 2.0, 3.0])
def test_full_lj_eos_low_density_limit_is_the_lj_pair_potential(kind, temperature):
    """B2 and u_res/rho as rho -> 0 are integrals over u_LJ: a check of units and signs."""
    rho = 1e-5
    point = lj_eos.teqp_lj(kind, rho, temperature)
    b2, u_over_rho = lj_eos.low_density_limits(temperature)
    assert (point.compressibility - 1.0) / rho == pytest.approx(b2, rel=2e-3, abs=2e-3)
    assert point.u_residual / rho == pytest.approx(u_over_rho, rel=3e-3)


@pytest.mark.parametrize("temperature", [1.5, 2.0, 3.0])
def test_pets_describes_the_shifted_potential(temperature):
    """PeTS's second virial coefficient is that of LJ truncated at 2.5 AND shifted.

    PeTS is a perturbation theory, exact in no limit, but its B2 is within 3 % of the
    truncated-and-shifted potential's and far from the truncated-only one's (which differs by
    20 % or more at these temperatures). The energy's low-density slope is coarser (within 7 %);
    at T* >= 2 it too is nearer to the shifted potential's.
    """
    rho = 1e-5
    point = lj_eos.pets(rho, temperature)
    b2_pets = (point.compressibility - 1.0) / rho
    b2_ts, u_ts = lj_eos.low_density_limits(temperature, lj_eos.PETS_CUTOFF, shifted=True)
    b2_t, u_t = lj_eos.low_density_limits(temperature, lj_eos.PETS_CUTOFF, shifted=False)
    assert abs(b2_pets - b2_ts) <= 0.03 * abs(b2_ts) + 0.03
    assert abs(b2_pets - b2_ts) < 0.25 * abs(b2_t - b2_ts)
    u_pets = point.u_residual / rho
    assert u_pets == pytest.approx(u_ts, rel=0.07)
    if temperature >= 2.0:
        assert abs(u_pets - u_ts) < abs(u_pets - u_t)


@pytest.mark.parametrize("kind, p_abs", [("thol2016", 0.005), ("kolafa_nezbeda1994", 0.02)])
@pytest.mark.parametrize("temperature", sorted(NIST_MC))
def test_full_lj_eos_against_nist_monte_carlo(kind, p_abs, temperature):
    """Thol 2016 / Kolafa-Nezbeda vs NIST's MC (r_c = 3 + long-range corrections ~ full LJ).

    Vapour (rho <= 0.009) and liquid (rho >= 0.776) states. Measured: Thol within 0.004 in p*,
    K-N within 0.018 (it is the older fit); both within 0.002 in u*_res in the liquid and 0.4 %
    in the vapour.
    """
    energies, pressures = NIST_MC[temperature]
    for rho, u_mc, p_mc in zip(NIST_MC_RHO, energies, pressures):
        point = lj_eos.teqp_lj(kind, rho, temperature)
        assert abs(point.pressure - p_mc) <= p_abs + 1e-3 * abs(p_mc), (rho, point.pressure, p_mc)
        assert abs(point.u_residual - u_mc) <= 0.003 + 5e-3 * abs(u_mc), (rho, point.u_residual, u_mc)


def test_thol2016_as_implemented_by_the_paper():
    """teqp's Thol 2016 against the paper's own C++ code (ljfeos.cpp, supplementary material):
    alpha_r and its first derivatives at T* = 1.32, rho* = 0.31, as quoted in teqp's test suite
    (src/tests/catch_test_LJmodels.cxx, "Generated with ljfeos.cpp file included with paper")."""
    a00, a10, a01 = lj_eos.teqp_alphar_derivatives("thol2016", 0.31, 1.32)
    assert a00 == pytest.approx(-0.848655028421735, abs=1e-9)
    assert a10 == pytest.approx(-1.72121486947745, abs=1e-9)
    assert a01 == pytest.approx(-0.682159784922984, abs=1e-9)


def vrabec2006_saturated_densities(temperature):
    """Correlation of LJTS (r_c = 2.5) vapour-liquid equilibrium from MD: Vrabec, Kedia, Fuchs &
    Hasse, Mol. Phys. 104, 1509 (2006), Eq. 4 with T_c = 1.0779, rho_c = 0.3190 (coefficients as
    transcribed in ls1-mardyn, tools/ppls1/ppls1/fluids/ljts/ljts.py). PeTS was fitted to these
    simulation data (Heier et al. 2018, Sec. 2.2), so it must reproduce them."""
    dt = 1.0779 - temperature
    liquid = 0.3190 + 0.5649 * dt ** (1 / 3) + 0.1314 * dt + 0.0413 * dt**1.5
    vapour = 0.3190 - 0.5649 * dt ** (1 / 3) + 0.2128 * dt + 0.0702 * dt**1.5
    return liquid, vapour


def test_pets_against_ljts_simulation_vle():
    t_c, rho_c = lj_eos.pets_critical_point()
    assert t_c == pytest.approx(1.0779, rel=0.015)
    assert rho_c == pytest.approx(0.3190, rel=0.05)
    for temperature in (0.7, 0.8, 0.9, 1.0):
        liquid, vapour = lj_eos.pets_saturated_densities(temperature)
        liquid_md, vapour_md = vrabec2006_saturated_densities(temperature)
        assert liquid == pytest.approx(liquid_md, rel=0.005)
        assert vapour == pytest.approx(vapour_md, rel=0.03)


def test_md_states_are_supercritical_and_the_full_lj_eos_agree_there():
    """The MD comparison states are above both critical temperatures, and there the three
    full-LJ EOS agree to 0.75 % in p* and 0.3 % in u*_res (measured), a spread that
    THOL_*_REL_UNCERTAINTY = 1 % covers."""
    t_c_pets, _ = lj_eos.pets_critical_point()
    for rho, temperature in [(0.3, 2.0), (0.5, 2.0), (0.7, 1.5)]:
        assert temperature > 1.1 * max(t_c_pets, 1.32)
        thol = lj_eos.thol2016(rho, temperature)
        for other in (lj_eos.kolafa_nezbeda1994(rho, temperature),
                      lj_eos.johnson1993(rho, temperature)):
            assert math.isclose(other.pressure, thol.pressure,
                                rel_tol=lj_eos.THOL_P_REL_UNCERTAINTY)
            assert math.isclose(other.u_residual, thol.u_residual,
                                rel_tol=lj_eos.THOL_U_REL_UNCERTAINTY)
