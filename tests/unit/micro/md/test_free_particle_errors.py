"""Free particles never collide, so a free-particle box's samples are all equal and the
block average reports a zero standard error; the errors are taken over the atoms
(:func:`hmmpar.micro.md.box.free_particle_errors`). Over 300 seeds the z-scores of the
lab-frame fluxes against their exact values must have mean ~0 and standard deviation ~1
(300 scores: the mean's standard error is 0.058, the sd's about 0.041)."""
from __future__ import annotations

import numpy as np

from hmmpar.micro.md.box import constrained_box
from hmmpar.micro.md.potentials import make_potential


def test_free_particle_flux_errors_are_right():
    pot = make_potential("none")
    rho, u, e = 1.0, 0.2, 1.5                      # T = 1
    p = rho * 2.0 / 3.0 * e
    e_tot = rho * e + 0.5 * rho * u * u
    z = []
    for seed in range(300):
        r = constrained_box(rho, [rho * u, 0.0, 0.0], e_tot, pot, 500, np.random.default_rng(seed),
                            t_equilibrate=0.0, t_sample=0.1)
        assert r.momentum_flux_err[0, 0] > 0 and r.energy_flux_err[0] > 0
        z.append([(r.momentum_flux[0, 0] - (rho * u * u + p)) / r.momentum_flux_err[0, 0],
                  (r.energy_flux[0] - (e_tot + p) * u) / r.energy_flux_err[0],
                  r.momentum_flux[0, 1] / r.momentum_flux_err[0, 1],
                  r.energy_flux[1] / r.energy_flux_err[1]])
    z = np.array(z)
    assert np.all(np.abs(z.mean(axis=0)) < 4 * 0.058), z.mean(axis=0)
    assert np.all(np.abs(z.std(axis=0) - 1.0) < 4 * 0.041 + 0.05), z.std(axis=0)  # + O(1/N) of the error model
