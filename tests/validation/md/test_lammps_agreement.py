"""Both MD engines agree on the same Lennard-Jones state within their standard errors.

A moving box of 500 atoms (fcc start, rho* = 0.5, LJ cut and shifted at 2.5), internal
energy e = 0.6 per atom (T* about 2, supercritical), flow velocity u = (0.6, -0.3, 0.2):
hmmpar's numba engine (:class:`~hmmpar.micro.md.engine.MDSystem`) and the LAMMPS engine
(:class:`~hmmpar.micro.md.lammps_engine.LammpsSystem`) start from the same positions and
velocities (hmmpar's lattice and Maxwell-Boltzmann code, one seed), equilibrate 2000
steps with the energy rescaled every 10 steps, then sample NVE every 10 steps. Their
trajectories decorrelate within a few hundred steps (chaos amplifies round-off), so the
two averages are independent estimates of the same equilibrium values: pressure,
temperature, potential energy, every component of the lab-frame momentum flux and energy
flux must agree within 3 combined standard errors (blocking, Flyvbjerg-Petersen). The
internal energy is fixed by the rescaling, not sampled: it must agree to the NVE drift.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lammps", reason="python3-lammps is not installed (make setup installs it)")

from hmmpar.micro.md import lammps_engine as le  # noqa: E402
from hmmpar.micro.md.engine import MDSystem  # noqa: E402
from hmmpar.micro.md.estimators import summarize  # noqa: E402
from hmmpar.micro.md.potentials import make_potential  # noqa: E402

DT = 0.005
ENERGY = 0.6
U = (0.6, -0.3, 0.2)
EQUILIBRATE, SAMPLE, EVERY = 2000, 10000, 10


@pytest.fixture(scope="module")
def results():
    pot = make_potential("lj", cutoff=2.5, shift=True)
    start = MDSystem.create(500, 0.5, pot, np.random.default_rng(2024), temperature=2.0, velocity=U)
    x, v, box = start.positions, start.velocities, start.box
    out = {}
    for name, cls in (("numba", MDSystem), ("lammps", le.LammpsSystem)):
        s = cls(x, v, box, pot, skin=0.3)
        s.run(EQUILIBRATE, DT, rescale_every=10, energy=ENERGY)
        assert s.quenches == 0
        s.atom_steps, s.seconds = 0, 0.0
        samples = s.run(SAMPLE, DT, sample_every=EVERY)
        out[name] = summarize(samples, s.n_atoms, s.volume, s.atom_steps, s.seconds)
    yield out
    le.close_instance()


def fmt(a: np.ndarray, spec: str) -> str:
    return "[" + " ".join(format(float(q), spec) for q in a.ravel()) + "]"


def test_engines_agree_within_standard_errors(results):
    a, b = results["numba"], results["lammps"]
    lines, worst = [], 0.0
    for name in ("pressure", "temperature", "potential_energy", "momentum_flux", "energy_flux",
                 "energy_flux_kinetic", "energy_flux_potential", "energy_flux_virial"):
        va, vb = np.atleast_1d(getattr(a, name)), np.atleast_1d(getattr(b, name))
        sa, sb = np.atleast_1d(getattr(a, name + "_err")), np.atleast_1d(getattr(b, name + "_err"))
        z = np.abs(va - vb) / np.sqrt(sa ** 2 + sb ** 2)
        worst = max(worst, float(z.max()))
        lines.append(f"{name}: numba {fmt(va, '.4f')} lammps {fmt(vb, '.4f')} "
                     f"(stderr {fmt(sa, '.1e')}, {fmt(sb, '.1e')}; max |z| {z.max():.2f})")
        assert np.all(z <= 3.0), lines[-1]
    print("\n".join(lines) + f"\nworst |z| = {worst:.2f}")


def test_same_internal_energy_and_flow(results):
    a, b = results["numba"], results["lammps"]
    assert a.internal_energy == pytest.approx(ENERGY, abs=1e-3)
    assert b.internal_energy == pytest.approx(ENERGY, abs=1e-3)
    np.testing.assert_allclose(a.velocity, U, atol=1e-12)
    np.testing.assert_allclose(b.velocity, U, atol=1e-12)
    assert not a.two_phase and not b.two_phase
