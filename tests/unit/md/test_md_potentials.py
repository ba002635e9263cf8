"""Potentials: validation of make_potential, pair energies and forces, tail corrections
(against numerical integration of their defining integrals), and the ground state."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from hmmpar.core.errors import ConfigError
from hmmpar.micro.md.potentials import WCA_CUTOFF, make_potential, pair_energy_force


def lj(r):
    return 4.0 * (r ** -12 - r ** -6)


def test_lj_energy_force_truncated_and_shifted():
    p = make_potential("lj", 2.5)
    ps = make_potential("lj", 2.5, shift=True)
    r = np.array([0.95, 1.0, 2 ** (1 / 6), 1.5, 2.49, 2.5, 3.0])
    assert np.allclose(p.energy(r), np.where(r < 2.5, lj(r), 0.0), rtol=1e-14, atol=0)
    assert np.allclose(ps.energy(r), np.where(r < 2.5, lj(r) - lj(2.5), 0.0), rtol=1e-14, atol=1e-16)
    assert ps.energy(2.5 - 1e-12) == pytest.approx(0.0, abs=1e-11)  # continuous at r_c
    # F = -phi'/r, checked by central differences
    h = 1e-6
    for x in (0.97, 1.12, 1.7, 2.3):
        dphi = (lj(x + h) - lj(x - h)) / (2 * h)
        assert p.force_over_r(x) == pytest.approx(-dphi / x, rel=1e-7)
        e, fr = pair_energy_force(p.kind, p.params, x * x)
        assert e == pytest.approx(lj(x), rel=1e-14) and fr == pytest.approx(-dphi / x, rel=1e-7)
    assert p.force_over_r(2.5) == 0.0 and p.force_over_r(2.6) == 0.0


def test_wca_is_repulsive_continuous_and_zero_beyond_its_minimum():
    w = make_potential("wca")
    assert w.cutoff == pytest.approx(WCA_CUTOFF) and w.shift
    r = np.linspace(0.9, 1.5, 601)
    e = w.energy(r)
    assert np.all(e >= -1e-15) and np.all(e[r >= WCA_CUTOFF] == 0.0)
    assert np.allclose(e[r < WCA_CUTOFF], lj(r[r < WCA_CUTOFF]) + 1.0)
    assert w.energy(WCA_CUTOFF * (1 - 1e-9)) == pytest.approx(0.0, abs=1e-12)
    assert np.all(w.force_over_r(r[r < WCA_CUTOFF]) > 0)


def test_none_is_free_particles():
    n = make_potential("none")
    assert not n.interacting and n.energy(0.5) == 0.0 and n.force_over_r(0.5) == 0.0
    assert n.ground_state_energy(0.3) == 0.0


@pytest.mark.parametrize("rc", [2.5, 3.0, 4.0])
def test_tail_corrections_equal_their_integrals(rc):
    """u_tail/N = 2 pi rho int r^2 phi, p_tail = -(2/3) pi rho^2 int r^3 phi' (Allen & Tildesley)."""
    rho = 0.7
    p = make_potential("lj", rc, tail_correction=True)
    u_int = 2 * math.pi * rho * quad(lambda r: r * r * lj(r), rc, np.inf, epsabs=1e-13)[0]
    dlj = lambda r: 4 * (-12 * r ** -13 + 6 * r ** -7)  # noqa: E731
    p_int = -2 / 3 * math.pi * rho ** 2 * quad(lambda r: r ** 3 * dlj(r), rc, np.inf, epsabs=1e-13)[0]
    assert p.tail_energy_per_atom(rho) == pytest.approx(u_int, rel=1e-9)
    assert p.tail_pressure(rho) == pytest.approx(p_int, rel=1e-9)
    # the closed forms of the brief
    assert p.tail_energy_per_atom(rho) == pytest.approx(8 / 3 * math.pi * rho * (rc ** -9 / 3 - rc ** -3), rel=1e-14)
    assert p.tail_pressure(rho) == pytest.approx(16 / 3 * math.pi * rho ** 2 * (2 / 3 * rc ** -9 - rc ** -3), rel=1e-14)
    assert make_potential("lj", rc).tail_pressure(rho) == 0.0


def test_ground_state_is_the_fcc_lattice_energy():
    """Full-range LJ fcc: -8.61 per atom at its optimal density (a classic number;
    with r_c = 8 the truncation costs ~0.01). Below that density the ground state does
    not depend on density (crystal + vacuum)."""
    p = make_potential("lj", 8.0)
    e = p.ground_state_energy(0.5)
    assert -8.62 < e < -8.58
    assert p.ground_state_energy(0.1) == pytest.approx(e, abs=1e-3)
    assert p.ground_state_energy(1.3) > e + 0.5  # compressed crystal
    assert make_potential("wca").ground_state_energy(0.8) == 0.0
    assert make_potential("wca").ground_state_energy(1.2) > 0.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="lj2"), "potential: must be one of lj, wca, none, got 'lj2'"),
    (dict(name="lj", cutoff=-1.0), "cutoff: must be a finite number > 0, got -1.0"),
    (dict(name="lj", cutoff=float("nan")), "cutoff: must be a finite number > 0, got nan"),
    (dict(name="lj", cutoff="x"), "cutoff: must be a number, got 'x'"),
    (dict(name="wca", cutoff=2.5), "cutoff: WCA is cut at 2^(1/6)"),
    (dict(name="wca", tail_correction=True), "tail_correction: WCA is zero beyond its cutoff"),
    (dict(name="none", cutoff=2.5), "cutoff: the 'none' potential"),
    (dict(name="lj", shift="yes"), "shift: must be true or false, got 'yes'"),
])
def test_bad_options_are_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as exc:
        make_potential(**kwargs)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)
