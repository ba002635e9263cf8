"""The constrained box: macro state to box constraints, refusals, the energy constraint,
bitwise reproducibility, and the ideal gas as an exact Euler closure."""
from __future__ import annotations

import numpy as np
import pytest

from hmmpar.core.errors import ConfigError
from hmmpar.micro.md.box import MDStateError, constrained_box, macro_to_box, state_point
from hmmpar.micro.md.potentials import make_potential

LJ = make_potential("lj", 2.5, shift=True)


def test_macro_to_box():
    rho, u, e = macro_to_box(0.5, [0.25, -0.5, 0.0], 1.0)
    assert rho == 0.5 and u == pytest.approx([0.5, -1.0, 0.0])
    assert e == pytest.approx((1.0 - 0.5 * (0.25 ** 2 + 0.5 ** 2) / 0.5) / 0.5)


@pytest.mark.parametrize("args, message", [
    ((-0.1, np.zeros(3), 1.0), "rho: the density must be > 0, got -0.1"),
    ((0.0, np.zeros(3), 1.0), "rho: the density must be > 0, got 0"),
    ((float("nan"), np.zeros(3), 1.0), "rho: must be finite, got nan"),
    ((0.5, [0.0, np.inf, 0.0], 1.0), "momentum: must be finite"),
    ((0.5, np.zeros(3), float("inf")), "energy_density: must be finite, got inf"),
    ((0.5, np.zeros(3), -5.0), "state below the ground state: internal energy e = -10 per atom <= -7.4"),
    # kinetic energy of the flow alone exceeds E: e < 0 for free particles
    ((0.5, [0.5, 0.0, 0.0], 0.2), "state below the ground state: internal energy e = -0.1 per atom <= 0"),
])
def test_impossible_states_are_refused_in_one_line(args, message):
    pot = make_potential("none") if "<= 0" in message else LJ
    with pytest.raises(MDStateError) as exc:
        constrained_box(*args, pot, 500, np.random.default_rng(0))
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)
    assert isinstance(exc.value, ConfigError) and exc.value.exit_code == 2


def test_box_smaller_than_twice_the_cutoff_is_refused_naming_atoms_density_cutoff():
    with pytest.raises(ConfigError, match=r"^box side L = 3.175 < 2 r_c = 5 \(32 atoms at density 1, cutoff 2.5\)"):
        constrained_box(1.0, np.zeros(3), 0.0, LJ, 32, np.random.default_rng(0))


def test_unreachable_energy_just_above_the_ground_state_is_reported():
    """e slightly above the fcc ground state at a liquid density: a fluid box cannot get
    there by rescaling (it would have to crystallise): one-line MDStateError."""
    rho = 1.0
    e = LJ.ground_state_energy(rho) + 0.05
    with pytest.raises(MDStateError, match=r"^state not reached: internal energy e = -\d\.\d+ per atom is below"):
        constrained_box(rho, np.zeros(3), rho * e, LJ, 256, np.random.default_rng(0), lattice="random",
                        t_equilibrate=1.0, t_sample=0.1)


def test_energy_constraint_is_met_and_results_are_bitwise_reproducible():
    rho, e = 0.6, -1.0
    args = (rho, np.array([0.0, 0.3, 0.0]) * rho, rho * e + 0.5 * rho * 0.09, LJ, 256)
    a = constrained_box(*args, np.random.default_rng(99), t_equilibrate=3.0, t_sample=5.0)
    b = constrained_box(*args, np.random.default_rng(99), t_equilibrate=3.0, t_sample=5.0)
    c = constrained_box(*args, np.random.default_rng(100), t_equilibrate=3.0, t_sample=5.0)
    assert a.internal_energy == pytest.approx(e, abs=1e-3)
    assert a.internal_energy == pytest.approx(a.thermal_kinetic_energy + a.potential_energy, abs=1e-12)
    assert a.total_energy == pytest.approx(a.kinetic_energy + a.potential_energy, abs=1e-12)
    assert a.thermal_kinetic_energy == pytest.approx(1.5 * a.temperature * 255 / 256, rel=1e-12)
    assert a.atom_steps == 256 * (600 + 1000)
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)
    da, db = a.as_dict(), b.as_dict()
    for k in ("seconds", "atom_steps_per_second"):
        da.pop(k), db.pop(k)
    assert da == db


def test_state_point_temperature_and_energy_agree():
    """The same state reached by a temperature target and by the energy it gives."""
    t = state_point(0.5, LJ, 500, np.random.default_rng(5), temperature=2.0)
    e = state_point(0.5, LJ, 500, np.random.default_rng(6), energy=t.internal_energy)
    assert t.temperature == pytest.approx(2.0, abs=0.05)
    assert abs(e.temperature - t.temperature) < 3 * np.hypot(e.temperature_err, t.temperature_err) + 0.01
    assert abs(e.pressure - t.pressure) < 3 * np.hypot(e.pressure_err, t.pressure_err)
    with pytest.raises(ConfigError, match="exactly one of temperature and energy"):
        state_point(0.5, LJ, 500, np.random.default_rng(5))
    with pytest.raises(ConfigError, match="exactly one of temperature and energy"):
        state_point(0.5, LJ, 500, np.random.default_rng(5), temperature=1.0, energy=1.0)


def test_ideal_gas_box_gives_the_exact_euler_flux():
    """Free particles: p = (2/3) rho e exactly (gamma = 5/3) and Pi = rho u u + P in every
    sample with tr P = 3 p; without collisions the velocities are frozen, so P's deviatoric
    part and the heat flux q in J = (E + P) u + q are random O(N^-1/2) constants of the box,
    not fluctuations that average out."""
    none = make_potential("none")
    rho, u, e = 0.2, np.array([0.5, 0.0, -1.0]), 1.2
    energy = rho * e + 0.5 * rho * u @ u
    r = constrained_box(rho, rho * u, energy, none, 300, np.random.default_rng(8), lattice="random")
    assert r.internal_energy == pytest.approx(e, rel=1e-12)
    assert r.pressure == pytest.approx(2 / 3 * rho * e, rel=1e-12) and r.pressure_err < 1e-12
    assert r.temperature == pytest.approx(2 / 3 * e * 300 / 299, rel=1e-12)
    stress = r.momentum_flux - rho * np.outer(u, u)
    assert np.trace(stress) == pytest.approx(3 * r.pressure, rel=1e-12)
    assert np.all(np.abs(stress - r.pressure * np.eye(3)) < 0.2 * r.pressure)
    q = r.energy_flux - (energy * np.eye(3) + stress) @ u
    # |q_a| has standard deviation rho T^{3/2} sqrt(35/4) / sqrt(N) = 0.025 here
    assert np.all(np.abs(q) < 0.5 * rho * e ** 1.5)
    # the errors are over the atoms (free_particle_errors): with kT = 2e/3 and the sums of
    # (1, |c|^2, c) fixed, the residual variances per atom are 4T^2/3 (v_a^2), T^2 (v_a v_b)
    # and 5T^3/2 + T^2 (|u|^2 + u_a^2/3) (|v|^2 v_a / 2); a standard deviation from 300
    # atoms is known to about 10 %, so 3.5 of those
    temp, n = 2 / 3 * e, 300
    assert np.diag(r.momentum_flux_err) == pytest.approx(np.full(3, rho * temp * np.sqrt(4 / 3 / n)), rel=0.35)
    assert r.momentum_flux_err[0, 1] == pytest.approx(rho * temp / np.sqrt(n), rel=0.35)
    expected_j = rho * np.sqrt((2.5 * temp ** 3 + temp ** 2 * (u @ u + u ** 2 / 3)) / n)
    assert r.energy_flux_err == pytest.approx(expected_j, rel=0.35)
