"""The standard error of the box fluxes falls like 1/sqrt(atoms x averaging time).

For a homogeneous box at equilibrium the variance of a box-averaged flux is proportional to
1/N and the variance of its time average over t to tau/t, so se = C (N t)^b with b = -1/2
(:mod:`hmmpar.micro.md.noise`). The state is supercritical LJ (r_c = 2.5, shifted),
rho = 0.5, internal energy 0.38 per atom (T = 2.0), in a box moving with u = (1, 0, 0), as
:func:`~hmmpar.micro.md.box.constrained_box` makes it from U = (rho, m, E). One run per
(N, t) point: N = 108 at t = 10, 20, 40, 80, 160 and N = 108, 256, 500, 864 at t = 20; for
the pressure, the momentum flux Pi_xx and the energy flux J_x of each run we take the
blocking standard error the engine reports and the standard error of that standard error,
se / sqrt(2 (n_blocks - 1)) (Flyvbjerg & Petersen 1989), and fit ln se = a + b ln(N t) by
weighted least squares with those errors.

The interval is fixed by the statistics, not by a run: b within 3 standard errors of the
fitted slope (errors propagated from the blocking error of each point, not rescaled by the
scatter) of -1/2; the fit's chi^2 compatible with those errors (p > 0.001, so the errors
the interval rests on are not too small); and the test must have power: 3 sigma_b < 0.25,
so that it tells -1/2 from -1/4 and from -1. With 3 quantities at 3 sigma and the chi^2
checks, a correct engine fails with probability about 1 %. Seeds are fixed (one stream per
point, default_rng([7, k])). Measured: b = -0.470 +- 0.060 (pressure, chi^2 4.2 for 6
dof), -0.470 +- 0.067 (Pi_xx, 11.7), -0.585 +- 0.064 (J_x, 12.1); about 7 s on a quiet
core. The bigger run of benchmarks/md_noise.py (atom counts to 2048, times to 160, 8 seeds
per point; docs/md.md) resolves what this design (sigma_b about 0.06) cannot: Pi_xx at
-0.499 +- 0.016, the pressure at -0.455 +- 0.015 (its se sqrt(N t) rises about 10 % from
N = 256 to 1372) and J_x at -0.465 +- 0.018 (runs of t <= 10 understate its error).
"""
from __future__ import annotations

import numpy as np
import pytest

from hmmpar.micro.md.box import constrained_box
from hmmpar.micro.md.noise import NOISE_QUANTITIES, fit_power_law, flux_noise
from hmmpar.micro.md.potentials import make_potential

RHO, E_INT, U = 0.5, 0.38, np.array([1.0, 0.0, 0.0])
POINTS = [(108, 10.0), (108, 20.0), (108, 40.0), (108, 80.0), (108, 160.0), (256, 20.0), (500, 20.0), (864, 20.0)]
Z = 3.0


@pytest.fixture(scope="module")
def runs():
    p = make_potential("lj", 2.5, shift=True)
    energy = RHO * E_INT + 0.5 * RHO * float(U @ U)
    out = []
    for k, (n, t) in enumerate(POINTS):
        r = constrained_box(RHO, RHO * U, energy, p, n, np.random.default_rng([7, k]), t_equilibrate=2.0,
                            t_sample=t)
        assert not r.two_phase and 1.8 < r.temperature < 2.2
        out.append((n, t, flux_noise(r), r))
    return out


def test_reported_errors_are_the_blocking_errors(runs):
    for n, t, noise, r in runs:
        assert noise["pressure"].stderr == r.pressure_err
        assert noise["pi_xx"].stderr == r.momentum_flux_err[0, 0]
        assert noise["j_x"].stderr == r.energy_flux_err[0]
        assert all(0 < v.stderr_err < 0.5 * v.stderr for v in noise.values())


@pytest.mark.parametrize("quantity", NOISE_QUANTITIES)
def test_stderr_falls_like_one_over_sqrt_atoms_times_time(runs, quantity):
    nt = np.array([n * t for n, t, _, _ in runs])
    se = np.array([noise[quantity].stderr for _, _, noise, _ in runs])
    se_err = np.array([noise[quantity].stderr_err for _, _, noise, _ in runs])
    fit = fit_power_law(nt, se, se_err)
    b, db = fit.exponent, fit.exponent_err
    print(f"{quantity}: b = {b:.4f} +- {db:.4f}, chi2 = {fit.chi2:.2f} / {fit.dof}, p = {fit.p_value:.3f}")
    assert Z * db < 0.25, f"the design has no power: sigma_b = {db:.3f}"
    assert abs(b + 0.5) < Z * db, f"{quantity}: b = {b:.4f} +- {db:.4f}, expected -1/2"
    assert fit.p_value > 1e-3, f"{quantity}: chi2 = {fit.chi2:.1f} for {fit.dof} dof: the errors are too small"
