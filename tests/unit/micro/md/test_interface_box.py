"""The MD interface box of the kinetic scheme (hmmpar.micro.md.interface).

Free particles: the time-averaged flux through the face is exactly the kinetic
flux-vector splitting F+(U_L) + F-(U_R) of half-range Maxwellian moments (Pullin 1980,
Deshpande 1986), computed here independently of hmmpar. The MD estimate must agree
within its standard error; over 40 seeds the z-scores must have mean ~0 (bias) and
standard deviation ~1 (the standard error is right).

LJ: both halves in the same state, the flux is the Euler flux of that state with the
pressure of a periodic box (method of planes against the virial route).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from hmmpar.core.errors import ConfigError
from hmmpar.micro.md.engine import MDSystem
from hmmpar.micro.md.estimators import COLUMN
from hmmpar.micro.md.interface import interface_box
from hmmpar.micro.md.potentials import make_potential


def half_range_flux(rho: float, u: float, temperature: float, sign: int) -> np.ndarray:
    """F+ (sign 1) or F- (sign -1) of a 3D Maxwellian (m = 1) along x: mass, momentum x y z, energy.

    With beta = 1/(2T), s = u sqrt(beta), A = (1 + sign erf s)/2,
    B = exp(-s^2) / (2 sqrt(pi beta)): F_rho = rho (u A + sign B),
    F_m = (p + rho u^2) A + sign rho u B, F_E = (E + p) u A + sign (E + p/2) B."""
    beta = 1.0 / (2.0 * temperature)
    s = u * math.sqrt(beta)
    a = 0.5 * (1.0 + sign * erf(s))
    b = math.exp(-s * s) / (2.0 * math.sqrt(math.pi * beta))
    p = rho * temperature
    e_tot = 0.5 * rho * u * u + 1.5 * p
    return np.array([rho * (u * a + sign * b), (p + rho * u * u) * a + sign * rho * u * b, 0.0, 0.0,
                     (e_tot + p) * u * a + sign * (e_tot + 0.5 * p) * b])


def test_free_particles_give_kinetic_flux_vector_splitting():
    pot = make_potential("none")
    left, right = (1.0, [0.3, 0.0, 0.0], 1.5 * 1.0), (0.125, [-0.2, 0.0, 0.0], 1.5 * 0.8)
    exact = half_range_flux(1.0, 0.3, 1.0, 1) + half_range_flux(0.125, -0.2, 0.8, -1)
    z = []
    for seed in range(40):
        r = interface_box(left, right, pot, 5000, np.random.default_rng(seed), t_sample=0.5, patches=4)
        assert r.crossings > 300
        z.append((r.flux - exact) / r.flux_stderr)
    z = np.array(z)
    # 40 z-scores per component: their mean has standard error 1/sqrt(40) = 0.16 (t with
    # 15 dof per score: sd 1.07); 4 standard errors
    assert np.all(np.abs(z.mean(axis=0)) < 0.7), z.mean(axis=0)
    # the standard error is right: sd of z near 1 (chi^2 with 39 dof: 0.7..1.35 is > 99.9 %)
    assert np.all((z.std(axis=0) > 0.7) & (z.std(axis=0) < 1.45)), z.std(axis=0)


def test_uniform_lj_state_gives_the_euler_flux():
    pot = make_potential("lj", cutoff=2.5, shift=True)
    rho, temp = 0.5, 2.0
    box = MDSystem.create(1372, rho, pot, np.random.default_rng(0), temp)
    box.run(400, 0.005, rescale_every=10, temperature=temp)
    s = box.run(4000, 0.005, sample_every=10)
    e = float(s[:, COLUMN["internal_energy"]].mean())
    blocks = s[:, COLUMN["pressure"]].reshape(20, -1).mean(axis=1)
    p, p_err = float(blocks.mean()), float(blocks.std(ddof=1) / math.sqrt(20))
    u = 0.5
    r = interface_box((rho, [u, 0, 0], e), (rho, [u, 0, 0], e), pot, 6000, np.random.default_rng(1),
                      t_sample=0.5, t_equilibrate=2.0)
    e_tot = rho * e + 0.5 * rho * u * u
    exact = np.array([rho * u, rho * u * u + p, 0.0, 0.0, (e_tot + p) * u])
    err = np.hypot(r.flux_stderr, np.array([0, p_err, 0, 0, p_err * u]))
    # 4 standard errors: 9 patches give a t with 8 dof, whose 99.9 % point is 5.0 / sqrt... ~ 4.5
    assert np.all(np.abs(r.flux - exact) < 4.5 * err), (r.flux, exact, err)


def test_bad_states_are_refused():
    pot = make_potential("lj", cutoff=2.5)
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="density"):
        interface_box((-1.0, [0, 0, 0], 1.0), (0.5, [0, 0, 0], 1.0), pot, 4000, rng)
    with pytest.raises(ConfigError, match="finite"):
        interface_box((0.5, [np.nan, 0, 0], 1.0), (0.5, [0, 0, 0], 1.0), pot, 4000, rng)
    with pytest.raises(ConfigError, match="atoms"):
        interface_box((0.5, [0, 0, 0], 1.0), (0.5, [0, 0, 0], 1.0), pot, 50, rng)
