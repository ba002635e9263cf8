"""The finite-volume library (hmmpar.macro.finite_volume) piece by piece: exact identities
of the Euler fluxes, the KFVS half fluxes against numerical half-range moments, the
staggered kernels on data they must reproduce exactly, ghost values, time steps, the
grid partition."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from hmmpar.macro.finite_volume import staggered as stg
from hmmpar.macro.finite_volume.boundary import fill_ghosts, reflection_signs
from hmmpar.macro.finite_volume.euler import (IdealGas, all_fluxes, conserved, flux, inadmissible,
                                              internal_energy_density, primitive, wave_speeds)
from hmmpar.macro.finite_volume.grid import process_grid, split_counts
from hmmpar.macro.finite_volume.kfvs import interface_flux, split_fluxes
from hmmpar.macro.finite_volume.limiters import limited_differences, minmod
from hmmpar.macro.finite_volume.muscl import face_states, to_conserved, to_primitive
from hmmpar.macro.finite_volume.timestep import cfl_limit, courant_limit, courant_numbers, stable_dt

RNG = np.random.default_rng(4)


def random_states(n: int, dim: int, eos, mach: float = 1.0) -> np.ndarray:
    rho = RNG.uniform(0.2, 2.0, n)
    p = RNG.uniform(0.1, 3.0, n)
    c = eos.sound_speed(rho, p)
    vel = RNG.uniform(-mach, mach, (n, dim)) * c[:, None]
    return conserved(rho, vel, p, eos)


@pytest.mark.parametrize("dim", [1, 2])
def test_conserved_primitive_round_trip_and_flux_formula(dim):
    eos = IdealGas(1.4)
    U = random_states(50, dim, eos)
    rho, vel, p = primitive(U, eos)
    assert np.allclose(conserved(rho, vel, p, eos), U, rtol=1e-14, atol=1e-14)
    assert np.allclose(p, (1.4 - 1) * (U[:, -1] - 0.5 * rho * np.sum(vel**2, axis=1)), rtol=1e-13)
    F = all_fluxes(U, eos)
    for d in range(dim):
        want = np.column_stack([rho * vel[:, d], *(rho * vel[:, d] * vel[:, e] + (d == e) * p for e in range(dim)),
                                (U[:, -1] + p) * vel[:, d]])
        assert np.allclose(F[:, d], want, rtol=1e-13, atol=1e-13)
    assert np.allclose(wave_speeds(U, eos), np.abs(vel) + np.sqrt(1.4 * p / rho)[:, None])


def test_2d_state_without_y_motion_has_the_1d_fluxes_bitwise():
    eos = IdealGas()
    U1 = random_states(40, 1, eos)
    U2 = np.column_stack([U1[:, :2], np.zeros(40), U1[:, 2:]])
    F1, F2 = flux(U1, 0, eos), flux(U2, 0, eos)
    assert F2[:, [0, 1, 3]].tobytes() == F1.tobytes() and not F2[:, 2].any()
    assert internal_energy_density(U2).tobytes() == internal_energy_density(U1).tobytes()


def test_inadmissible_states():
    eos = IdealGas()
    U = conserved(np.array([1.0, 1.0, 1.0, 1.0]), np.zeros((4, 1)), np.array([1.0, 1.0, 1.0, 1.0]), eos)
    U[1, 0] = -1.0            # negative density
    U[2, -1] = 0.4 * U[2, -1]  # fine
    U[3, 1] = np.nan
    U = np.vstack([U, [1.0, 2.0, 1.5]])  # E < m^2 / 2 rho: negative internal energy
    assert inadmissible(U).tolist() == [False, True, False, True, True]


def test_minmod_and_limited_differences():
    assert minmod(np.array([1.0, -1.0, 2.0, -3.0]), np.array([2.0, 1.0, 0.5, -1.0])).tolist() == [1.0, 0.0, 0.5, -1.0]
    q = np.array([0.0, 1.0, 3.0, 2.0, 2.0])[:, None]
    assert limited_differences(q, 0)[:, 0].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    q2 = np.arange(12.0).reshape(3, 4)[..., None] ** 2
    s = limited_differences(q2, 1)
    assert s[:, 0].sum() == 0 and s[:, -1].sum() == 0 and np.all(s[:, 1:-1] > 0)


# ---------------------------------------------------------------------- staggered kernels
def test_nt_and_lxf_reproduce_translation_of_linear_data_under_linear_flux():
    """F(U) = a U, U linear in j: NT's slopes are exact and its corrector is the exact
    average of the translated line, V_{j+1/2} = alpha + beta (j + 1/2 - a lam)."""
    a, lam = 0.7, 0.4
    j = np.arange(8.0)[:, None]
    U = 1.5 + 0.25 * j * np.array([1.0, -2.0, 0.5])
    F = a * U
    Us = limited_differences(U, 0)
    Fs = limited_differences(F, 0)
    pred = stg.nt_predictor_1d(U, Fs, lam)
    out = stg.nt_corrector_1d(U[1:-1], Us[1:-1], a * pred[1:-1], lam)
    jj = np.arange(1.0, 6.0)[:, None]  # output i combines inputs j = i + 1 and j + 1
    want = 1.5 + 0.25 * (jj + 0.5 - a * lam) * np.array([1.0, -2.0, 0.5])
    assert np.allclose(out, want, rtol=0, atol=1e-14)
    lxf = stg.lax_friedrichs_1d(U, F, lam)  # LxF: the same for a linear profile, no slope term
    assert np.allclose(lxf, 1.5 + 0.25 * (np.arange(7.0)[:, None] + 0.5 - a * lam) * np.array([1.0, -2.0, 0.5]))


def test_jt_equals_nt_bitwise_for_data_constant_in_y_and_is_exact_for_2d_translation():
    eos = IdealGas(1.4)
    U1 = random_states(9, 1, eos)
    U2 = np.column_stack([U1[:, :2], np.zeros(9), U1[:, 2:]])
    U2 = np.repeat(U2[None], 5, axis=0)  # (ny, nx, nvar)
    lam, mu = 0.2, 0.1
    F1 = flux(U1, 0, eos)
    F2, G2 = flux(U2, 0, eos), flux(U2, 1, eos)
    pred1 = stg.nt_predictor_1d(U1, limited_differences(F1, 0), lam)
    pred2 = stg.jt_predictor_2d(U2, limited_differences(F2, 1), limited_differences(G2, 0), lam, mu)
    assert pred2[2][:, [0, 1, 3]].tobytes() == pred1.tobytes()
    out1 = stg.nt_corrector_1d(U1, limited_differences(U1, 0), flux(pred1, 0, eos), lam)
    out2 = stg.jt_corrector_2d(U2, limited_differences(U2, 1), limited_differences(U2, 0), flux(pred2, 0, eos),
                               flux(pred2, 1, eos), lam, mu)
    assert out2[1][:, [0, 1, 3]].tobytes() == out1.tobytes()
    # linear advection in 2D: exact for a linear profile
    a, b = 0.6, -0.3
    jj, kk = np.meshgrid(np.arange(6.0), np.arange(5.0))
    W = (2.0 + 0.1 * jj + 0.3 * kk)[..., None]
    pred = stg.jt_predictor_2d(W, a * limited_differences(W, 1), b * limited_differences(W, 0), lam, mu)
    inner = np.s_[1:-1, 1:-1]
    out = stg.jt_corrector_2d(W[inner], limited_differences(W, 1)[inner], limited_differences(W, 0)[inner],
                              a * pred[inner], b * pred[inner], lam, mu)
    want = 2.0 + 0.1 * (jj[1:-2, 1:-2] + 0.5 - a * lam) + 0.3 * (kk[1:-2, 1:-2] + 0.5 - b * mu)
    assert np.allclose(out[..., 0], want, atol=1e-14)
    assert np.allclose(stg.lax_friedrichs_2d(U2, F2, G2, lam, mu)[0][:, [0, 1, 3]],
                       stg.lax_friedrichs_1d(U1, F1, lam), rtol=0, atol=0)


# ---------------------------------------------------------------------- KFVS
def half_range_numeric(rho, vel, p, gamma, axis):
    """F+ by quadrature over the normal velocity of the Maxwellian (see kfvs docstring)."""
    u = vel[axis]
    beta = rho / (2 * p)
    f = lambda xi: rho * math.sqrt(beta / math.pi) * math.exp(-beta * (xi - u) ** 2)  # noqa: E731
    E = p / (gamma - 1) + 0.5 * rho * float(np.dot(vel, vel))
    I_mean = (E - 0.5 * rho * u * u - 0.5 * p) / rho  # everything but the normal motion, per mass
    lo, hi = 0.0, u + 40 / math.sqrt(beta)
    mass = quad(lambda xi: xi * f(xi), lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
    mom_n = quad(lambda xi: xi * xi * f(xi), lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
    energy = quad(lambda xi: xi * (0.5 * xi * xi + I_mean) * f(xi), lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
    mom = vel * mass
    mom[axis] = mom_n
    return np.array([mass, *mom, energy])


@pytest.mark.parametrize("gamma", [5.0 / 3.0, 1.4])
@pytest.mark.parametrize("dim", [1, 2])
def test_kfvs_half_fluxes_are_the_half_range_moments(gamma, dim):
    eos = IdealGas(gamma)
    for U in random_states(6, dim, eos, mach=2.5):
        rho, vel, p = primitive(U, eos)
        for axis in range(dim):
            plus, minus = split_fluxes(U, axis, eos)
            numeric = half_range_numeric(float(rho), vel.copy(), float(p), gamma, axis)
            assert np.allclose(plus, numeric, rtol=1e-9, atol=1e-12)
            assert np.allclose(plus + minus, flux(U, axis, eos), rtol=1e-14, atol=1e-14)


def test_kfvs_limits_and_wall():
    eos = IdealGas()
    U = conserved(np.array([1.0]), np.array([[30.0]]), np.array([1.0]), eos)  # Mach 23
    plus, minus = split_fluxes(U, 0, eos)
    assert np.allclose(plus, flux(U, 0, eos), rtol=1e-15) and np.all(np.abs(minus) < 1e-150)
    inner = random_states(5, 2, eos)
    mirror = inner * reflection_signs(4, 0)
    wall = interface_flux(mirror, inner, 0, eos)  # the wall face: ghost | interior
    assert np.allclose(wall[:, [0, 2, 3]], 0.0, atol=1e-15) and np.all(wall[:, 1] > 0)


# ---------------------------------------------------------------------- MUSCL
def test_muscl_face_states():
    eos = IdealGas()
    U = random_states(7, 2, eos)
    assert np.allclose(to_conserved(to_primitive(U)), U, rtol=1e-14)
    x = np.arange(6.0)
    W = np.column_stack([1 + 0.1 * x, 0.5 - 0.05 * x, 0.2 * x, 2 + 0.3 * x])
    low, high = face_states(to_conserved(W), 0, 2)
    assert np.allclose(to_primitive(low)[1:-1], W[1:-1] - 0.5 * (W[1] - W[0]), atol=1e-14)
    assert np.allclose(to_primitive(high)[1:-1], W[1:-1] + 0.5 * (W[1] - W[0]), atol=1e-14)
    same = face_states(U, 0, 1)
    assert same[0] is U and same[1] is U


# ---------------------------------------------------------------------- ghosts
def test_ghost_fill_cell_and_vertex_placement():
    a = np.arange(1.0, 8.0)[:, None] * np.array([1.0, 10.0, 100.0])  # 2 ghosts, 3 owned, 2 ghosts
    b = a.copy()
    fill_ghosts(b, 0, 0, "reflecting", 2, "cell", reflection_signs(3, 0))
    assert b[1].tolist() == [3.0, -30.0, 300.0] and b[0].tolist() == [4.0, -40.0, 400.0]
    c = a.copy()
    fill_ghosts(c, 0, 1, "reflecting", 2, "vertex", reflection_signs(3, 0))
    assert c[5].tolist() == [4.0, -40.0, 400.0] and c[6].tolist() == [3.0, -30.0, 300.0]
    d = a.copy()
    fill_ghosts(d, 0, 0, "outflow", 2, "cell")
    assert d[0].tolist() == d[1].tolist() == a[2].tolist()
    with pytest.raises(ValueError):
        fill_ghosts(d, 0, 0, "periodic", 2, "cell")


def test_flux_of_mirrored_state_is_the_signed_mirror_of_the_flux():
    eos = IdealGas(1.4)
    U = random_states(10, 2, eos)
    for normal in (0, 1):
        R = reflection_signs(4, normal)
        for d in (0, 1):
            assert np.allclose(flux(U * R, d, eos), flux(U, d, eos) * reflection_signs(4, normal, d), rtol=1e-15)


# ---------------------------------------------------------------------- time step, partition
def test_cfl_limits_and_time_step():
    assert cfl_limit("staggered", 2, 2) == 0.5 and cfl_limit("kinetic", 1, 2) == 0.5
    assert cfl_limit("kinetic", 2, 1) == pytest.approx(2 / 3) and courant_limit("kinetic", 2) == 1.0
    assert courant_limit("staggered", 1) == 0.5
    dt = stable_dt(0.4, np.array([0.1, 0.2]), np.array([2.0, 1.0]))
    assert dt == pytest.approx(0.02)
    nu = courant_numbers(dt, np.array([0.1, 0.2]), np.array([[2.0, 1.0]]), "kinetic")
    assert nu[0] == pytest.approx(0.5)
    assert courant_numbers(dt, np.array([0.1, 0.2]), np.array([[2.0, 1.0]]))[0] == pytest.approx(0.4)


def test_partition():
    assert split_counts(10, 3) == [4, 3, 3]
    assert process_grid([10], 3) == (3,) and process_grid([5], 3) is None
    assert process_grid([40, 9], 2) == (2, 1) and process_grid([12, 30], 4) == (1, 4)
    assert process_grid([16, 16], 4) == (2, 2) and process_grid([3, 3], 2) is None
