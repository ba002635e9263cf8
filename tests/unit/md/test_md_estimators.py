"""Estimators: blocking error bars against an exactly known autocorrelation, the
Irving-Kirkwood per-atom decomposition against direct pair sums, Galilean invariance of
the box fluxes, and the two-phase test."""
from __future__ import annotations

import numpy as np
import pytest

from hmmpar.micro.md.box import constrained_box, state_point
from hmmpar.micro.md.engine import MDSystem, compute_forces_per_atom
from hmmpar.micro.md.estimators import COLUMN, N_FIELDS, block_average, euler_flux, sample_row
from hmmpar.micro.md.neighbours import shift_table
from hmmpar.micro.md.potentials import make_potential


def test_block_average_matches_the_exact_error_of_an_ar1_series():
    """AR(1) with coefficient a: var(mean) = (1/n)(1 + a)/(1 - a) (unit variance)."""
    rng = np.random.default_rng(0)
    n, a = 2 ** 17, 0.9
    xi = rng.standard_normal((n, 2))
    x = np.empty((n, 2))
    x[0] = xi[0]
    for k in range(1, n):
        x[k] = a * x[k - 1] + np.sqrt(1 - a * a) * xi[k]
    x[:, 1] = xi[:, 1]  # uncorrelated column
    mean, se, conv = block_average(x)
    exact = np.sqrt(np.array([(1 + a) / (1 - a), 1.0]) / n)
    assert np.all(conv)
    assert se == pytest.approx(exact, rel=0.2)
    assert np.all(np.abs(mean) < 4 * exact)
    m1, s1, c1 = block_average(np.full(100, 2.5))
    assert m1 == 2.5 and s1 == 0.0 and c1


def test_ik_fluxes_from_per_atom_terms_equal_direct_pair_sums():
    """Pi = (1/V)[sum v v + 1/2 sum_{i!=j} r_ij f_ij] and
    J = (1/V)[sum e_i v_i + 1/2 sum_{i!=j} r_ij (f_ij . v_i)], summed pair by pair."""
    p = make_potential("lj", 2.5, shift=True, tail_correction=False)
    rng = np.random.default_rng(4)
    s = MDSystem.create(256, 0.6, p, rng, 1.5, velocity=(0.4, -0.2, 0.1), lattice="random")
    s.run(100, 0.005)
    row = s.sample()
    x, v, box, n = s.positions, s.velocities, s.box, s.n_atoms
    d = x[:, None, :] - x[None, :, :]
    d -= box * np.round(d / box)
    r = np.sqrt((d ** 2).sum(-1))
    np.fill_diagonal(r, np.inf)
    fij = p.force_over_r(r)[..., None] * d  # force on i from j
    phi = p.energy(r)
    np.fill_diagonal(phi, 0.0)
    vol = box.prod()
    pi = (np.einsum("ia,ib->ab", v, v) + 0.5 * np.einsum("ija,ijb->ab", d, fij)) / vol
    e_i = 0.5 * (v ** 2).sum(1) + 0.5 * phi.sum(1)
    j_direct = (e_i @ v + 0.5 * np.einsum("ija,ij->a", d, np.einsum("ijb,ib->ij", fij, v))) / vol
    voigt = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
    got_pi = [row[COLUMN["pi_" + "xyz"[a] + "xyz"[b]]] for a, b in voigt]
    assert np.allclose(got_pi, [pi[a, b] for a, b in voigt], rtol=1e-11, atol=1e-13)
    got_j = row[[COLUMN["j_x"], COLUMN["j_y"], COLUMN["j_z"]]]
    assert np.allclose(got_j, j_direct, rtol=1e-11, atol=1e-13)
    parts = sum(row[[COLUMN[f"j_{k}_{c}"] for c in "xyz"]] for k in ("kinetic", "potential", "virial"))
    assert np.allclose(parts, got_j, rtol=1e-13, atol=1e-15)


def test_sample_row_takes_lammps_style_per_atom_arrays():
    """The row is a pure function of (x, v, phi_i, W_i): what LAMMPS pe/atom and
    stress/atom give; the Galilean identity Pi_lab = Pi_rest + rho u u holds per sample."""
    p = make_potential("lj", 2.5)
    s = MDSystem.create(108, 0.5, p, np.random.default_rng(1), 1.0)
    pe, vir = np.zeros(s.n_atoms), np.zeros((s.n_atoms, 6))
    compute_forces_per_atom(s.x, np.empty_like(s.x), p.kind, p.params, s.start, s.nbr, s.img,
                            shift_table(s.box), pe, vir)
    rest, moving = np.zeros(N_FIELDS), np.zeros(N_FIELDS)
    u = np.array([0.7, -0.4, 0.25])
    c = s.v - s.v.mean(axis=0)
    sample_row(s.x, c, pe, vir, s.box, 0.0, 0.0, rest)
    sample_row(s.x, c + u, pe, vir, s.box, 0.0, 0.0, moving)
    rho = s.density
    for k, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]):
        assert moving[10 + k] == pytest.approx(rest[10 + k] + rho * u[a] * u[b], rel=1e-12, abs=1e-12)
    assert moving[COLUMN["pressure"]] == pytest.approx(rest[COLUMN["pressure"]], rel=1e-12)
    assert moving[COLUMN["temperature"]] == pytest.approx(rest[COLUMN["temperature"]], rel=1e-12)


def test_galilean_invariance_of_the_box_fluxes():
    """LJ at a supercritical state (rho = 0.5, e = 0.4, T about 2): the box moving with u
    gives Pi = rho u u + p I and J = (E + p) u within its standard errors, and the same p
    and T as the box at rest built from the same stream."""
    p = make_potential("lj", 2.5, shift=True)
    rho, e = 0.5, 0.4
    u = np.array([0.8, -0.5, 0.3])
    energy_moving = rho * e + 0.5 * rho * u @ u
    rest = constrained_box(rho, np.zeros(3), rho * e, p, 500, np.random.default_rng(21), t_sample=20.0)
    mov = constrained_box(rho, rho * u, energy_moving, p, 500, np.random.default_rng(21), t_sample=20.0)
    assert mov.velocity == pytest.approx(u, abs=1e-12)
    assert rest.temperature == pytest.approx(2.0, abs=0.1)  # supercritical (T_c ~ 1.1 for r_c = 2.5)
    assert not mov.two_phase and not rest.two_phase
    both = lambda a, b: np.sqrt(a ** 2 + b ** 2)  # noqa: E731
    assert abs(mov.pressure - rest.pressure) < 3 * both(mov.pressure_err, rest.pressure_err)
    assert abs(mov.temperature - rest.temperature) < 3 * both(mov.temperature_err, rest.temperature_err)
    assert mov.internal_energy == pytest.approx(e, abs=2e-3)  # the constraint, up to Verlet fluctuation
    assert mov.total_energy == pytest.approx(e + 0.5 * u @ u, abs=2e-3)
    # Euler flux with the measured pressure
    pi_euler, j_euler = euler_flux(rho, rho * u, rho * mov.total_energy, mov.pressure)
    assert np.all(np.abs(mov.momentum_flux - pi_euler) < 3 * mov.momentum_flux_err + 1e-12)
    assert np.all(np.abs(mov.energy_flux - j_euler) < 3 * mov.energy_flux_err)
    # and against the box at rest: Pi_lab - rho u u = Pi_rest
    assert np.all(np.abs(mov.momentum_flux - rho * np.outer(u, u) - rest.momentum_flux)
                  < 3 * both(mov.momentum_flux_err, rest.momentum_flux_err))
    assert np.all(np.abs(rest.energy_flux) < 3 * rest.energy_flux_err)  # q averages to 0 at rest
    # the energy flux is not trivially zero: its convective part dominates
    assert np.all(np.abs(j_euler) > 10 * mov.energy_flux_err)


def test_two_phase_box_is_flagged_and_a_supercritical_one_is_not():
    """LJ (r_c = 2.5, shifted; T_c about 1.1) at rho = 0.3: T = 0.8 lies inside the
    liquid-vapour region and the box demixes (S(k_min) grows to O(N)); T = 2.0 is
    supercritical (S(k_min) about 1). Longer and larger runs: tests/validation/md."""
    p = make_potential("lj", 2.5, shift=True)
    cold = state_point(0.3, p, 500, np.random.default_rng(1), temperature=0.8, t_equilibrate=15.0, t_sample=10.0)
    hot = state_point(0.3, p, 500, np.random.default_rng(1), temperature=2.0, t_equilibrate=15.0, t_sample=10.0)
    assert cold.two_phase and cold.structure_factor_kmin > 20
    assert not hot.two_phase and hot.structure_factor_kmin < 4
