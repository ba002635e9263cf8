"""The LAMMPS engine (:mod:`hmmpar.micro.md.lammps_engine`) on its own.

Its sample rows are checked against a direct O(N^2) evaluation in numpy of the same
configuration and against LAMMPS's own ``compute heat/flux``, its tail corrections
against LAMMPS's energy, its rescaling against the target; a reused instance must give
the same numbers as a fresh one; bad input and a missing LAMMPS raise before LAMMPS runs.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from hmmpar.core.errors import ConfigError
from hmmpar.micro.md import lammps_engine as le
from hmmpar.micro.md.engine import MDError
from hmmpar.micro.md.estimators import COLUMN, summarize
from hmmpar.micro.md.lattice import fcc_positions
from hmmpar.micro.md.potentials import make_potential

pytest.importorskip("lammps", reason="python3-lammps is not installed (make setup installs it)")

C = COLUMN


@pytest.fixture(scope="module", autouse=True)
def _close_lammps():
    yield
    le.close_instance()


def thermal(n: int, temperature: float, u, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3)) * math.sqrt(temperature)
    return v - v.mean(axis=0) + np.asarray(u, float)


def direct(x, v, L, rc, shift):
    """Pi, J (kinetic, potential, virial), pe and ke of one configuration, all pairs in numpy."""
    d = x[:, None, :] - x[None, :, :]
    d -= L * np.round(d / L)
    r2 = np.einsum("ijk,ijk->ij", d, d)
    np.fill_diagonal(r2, np.inf)
    inside = r2 < rc * rc
    ir6 = np.where(inside, r2 ** -3, 0.0)
    u = np.where(inside, 4 * (ir6 * ir6 - ir6) - (4 * (rc ** -12 - rc ** -6) if shift else 0.0), 0.0)
    f = np.where(inside, 24 * (2 * ir6 * ir6 - ir6) / r2, 0.0)[:, :, None] * d  # on i from j
    vol = np.prod(L)
    w = 0.5 * np.einsum("ija,ijb->ab", d, f)
    pi = (np.einsum("ia,ib->ab", v, v) + w) / vol
    jk = (0.5 * (v * v).sum(axis=1)[:, None] * v).sum(axis=0) / vol
    jp = (0.5 * u.sum(axis=1)[:, None] * v).sum(axis=0) / vol
    jv = 0.25 * np.einsum("ija,ijb,ijb->a", d, f, v[:, None, :] + v[None, :, :]) / vol
    return pi, jk, jp, jv, 0.5 * u.sum(), 0.5 * (v * v).sum()


def voigt(t):
    return np.array([t[0, 0], t[1, 1], t[2, 2], t[0, 1], t[0, 2], t[1, 2]])


@pytest.mark.parametrize("shift", [False, True])
def test_sample_row_matches_direct_sum_and_lammps_heat_flux(shift):
    x, L = fcc_positions(5, 0.5)
    v = thermal(len(x), 2.0, [0.7, -0.2, 0.1], seed=1)
    s = le.LammpsSystem(x, v, L, make_potential("lj", cutoff=2.5, shift=shift))
    row = s.run(20, 0.005, sample_every=20)[0]
    pi, jk, jp, jv, pe, ke = direct(s.positions, s.velocities, L, 2.5, shift)
    n = len(x)
    assert row[C["potential_energy"]] == pytest.approx(pe / n, rel=1e-11)
    assert row[C["kinetic_energy"]] == pytest.approx(ke / n, rel=1e-11)
    np.testing.assert_allclose(row[C["pi_xx"]:C["pi_xx"] + 6], voigt(pi), rtol=1e-10, atol=1e-12)
    for name, j in (("j_kinetic_x", jk), ("j_potential_x", jp), ("j_virial_x", jv), ("j_x", jk + jp + jv)):
        np.testing.assert_allclose(row[C[name]:C[name] + 3], j, rtol=1e-10, atol=1e-12, err_msg=name)
    # LAMMPS's own compute heat/flux of the same per-atom arrays
    np.testing.assert_allclose(s.lammps_heat_flux[0], row[C["j_x"]:C["j_x"] + 3], rtol=1e-12, atol=1e-12)
    assert s.atom_steps == n * 20


def test_tail_correction_matches_lammps():
    x, L = fcc_positions(4, 0.6)
    v = thermal(len(x), 1.5, [0.3, 0, 0], seed=2)
    pot = make_potential("lj", cutoff=2.5, tail_correction=True)
    s = le.LammpsSystem(x, v, L, pot)
    row = s.run(10, 0.005, sample_every=10)[0]
    n = len(x)
    assert s.potential_energy() == pytest.approx(n * row[C["potential_energy"]], rel=1e-12)  # LAMMPS's tail
    cut = le.LammpsSystem(x, v, L, make_potential("lj", cutoff=2.5))
    row_cut = cut.run(10, 0.005, sample_every=10)[0]
    # the same trajectory (the tail terms are constants): only the corrections differ
    rho = n / np.prod(L)
    assert row[C["potential_energy"]] - row_cut[C["potential_energy"]] == pytest.approx(
        pot.tail_energy_per_atom(rho), rel=1e-9)
    assert row[C["pressure"]] - row_cut[C["pressure"]] == pytest.approx(pot.tail_pressure(rho), rel=1e-9)


def test_ideal_gas_is_exact():
    x, L = fcc_positions(4, 0.3)
    v = thermal(len(x), 1.5, [0.0, 0.4, 0.0], seed=3)
    s = le.LammpsSystem(x, v, L, make_potential("none"))
    samples = s.run(100, 0.005, sample_every=10)
    vol = float(np.prod(L))
    np.testing.assert_allclose(samples[:, C["pi_xx"]:C["pi_xx"] + 6],
                               np.tile(voigt(np.einsum("ia,ib->ab", v, v) / vol), (10, 1)), rtol=1e-12)
    c = v - v.mean(axis=0)
    np.testing.assert_allclose(samples[:, C["pressure"]], (c * c).sum() / (3 * vol), rtol=1e-12)
    d = s.positions - (x + 0.5 * v)  # free flight over 100 steps of 0.005, up to periodic images
    np.testing.assert_allclose(d - L * np.round(d / L), 0.0, atol=1e-12)


def test_energy_rescaling_reaches_target_and_keeps_flow():
    x, L = fcc_positions(4, 0.5)
    u = np.array([0.5, 0.0, -0.25])
    v = thermal(len(x), 3.0, u, seed=4)
    s = le.LammpsSystem(x, v, L, make_potential("lj", cutoff=2.5, shift=True))
    s.run(400, 0.002, rescale_every=20, energy=1.0)
    assert s.quenches == 0
    res = summarize(s.run(400, 0.002, sample_every=10), s.n_atoms, s.volume, s.atom_steps, s.seconds)
    assert res.internal_energy == pytest.approx(1.0, abs=2e-4)  # NVE drift only
    np.testing.assert_allclose(res.velocity, u, atol=1e-12)
    s.run(20, 0.002, rescale_every=10, energy=-10.0)
    assert s.quenches == 2 and s.last_rescale_target < 0
    s.run(20, 0.002, rescale_every=10, temperature=2.0)
    row = s.run(1, 0.002, sample_every=1)[0]
    assert row[C["temperature"]] == pytest.approx(2.0, rel=0.05)


def test_reused_instance_gives_fresh_results():
    x, L = fcc_positions(4, 0.5)
    v = thermal(len(x), 2.0, [0.2, 0, 0], seed=5)
    pot = make_potential("lj", cutoff=2.5, shift=True)

    def box():
        s = le.LammpsSystem(x, v, L, pot)
        s.run(50, 0.005, rescale_every=10, energy=0.5)
        return s.run(100, 0.005, sample_every=10)

    le.lammps_instance()
    created = le.instance_stats()["created"]
    a, b = box(), box()
    assert le.instance_stats()["created"] == created  # reused, not recreated
    le.close_instance()
    c = box()
    assert le.instance_stats()["created"] == created + 1
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_only_the_newest_box_runs():
    x, L = fcc_positions(3, 0.5)
    v = thermal(len(x), 1.0, [0, 0, 0], seed=6)
    old = le.LammpsSystem(x, v, L, make_potential("wca"))
    le.LammpsSystem(x, v, L, make_potential("wca"))
    with pytest.raises(MDError, match="replaced"):
        old.run(10, 0.005)


def test_bad_inputs_raise_before_lammps():
    x, L = fcc_positions(3, 0.5)
    v = thermal(len(x), 1.0, [0, 0, 0], seed=6)
    pot = make_potential("lj")
    with pytest.raises(ConfigError, match="positions/velocities"):
        le.LammpsSystem(x, v[:-1], L, pot)
    with pytest.raises(ConfigError, match="finite"):
        le.LammpsSystem(x, np.where(v > 1, np.nan, v), L, pot)
    with pytest.raises(ConfigError, match="box"):
        le.LammpsSystem(x, v, [1.0, -1.0, 1.0], pot)
    x2 = x.copy()
    x2[1] = x2[0] + 0.1
    with pytest.raises(MDError, match="apart"):
        le.LammpsSystem(x2, v, L, pot)
    s = le.LammpsSystem(x, v * 1e4, L, pot)
    with pytest.raises(MDError, match="one step"):
        s.run(10, 0.005)
    with pytest.raises(ConfigError, match="not both"):
        le.LammpsSystem(x, v, L, pot).run(10, 0.005, rescale_every=5, temperature=1.0, energy=1.0)


def test_missing_lammps_is_a_config_error(monkeypatch):
    le.close_instance()
    monkeypatch.setitem(sys.modules, "lammps", None)  # import lammps raises ImportError
    with pytest.raises(ConfigError, match=r"micro.engine = 'lammps' needs the LAMMPS Python module "
                                          r"\(Debian package python3-lammps\): \w*Error"):
        le.check_available()
    x, L = fcc_positions(3, 0.5)
    with pytest.raises(ConfigError, match="python3-lammps"):
        le.LammpsSystem(x, thermal(len(x), 1.0, [0, 0, 0], 7), L, make_potential("lj"))


def test_missing_library_is_a_config_error(monkeypatch):
    import lammps
    le.close_instance()

    def no_library(*args, **kwargs):
        raise OSError("liblammps.so: cannot open shared object file: No such file or directory")
    monkeypatch.setattr(lammps, "lammps", no_library)
    with pytest.raises(ConfigError, match="liblammps-dev"):
        le.check_available()


def test_constrained_box_lammps_has_the_numba_signature():
    import inspect
    from hmmpar.micro.md.box import constrained_box
    assert inspect.signature(le.constrained_box_lammps) == inspect.signature(constrained_box)


def test_constrained_box_lammps_small_state():
    pot = make_potential("lj", cutoff=2.5, shift=True)
    u = np.array([0.3, 0.0, -0.1])
    rho, e = 0.4, 1.0
    r = le.constrained_box_lammps(rho, rho * u, rho * (e + 0.5 * u @ u), pot, 256, np.random.default_rng(1),
                                  t_equilibrate=1.0, t_sample=2.0)
    assert r.n_atoms == 256 and r.density == pytest.approx(rho)
    assert r.internal_energy == pytest.approx(e, abs=2e-3)
    np.testing.assert_allclose(r.velocity, u, atol=1e-12)
    assert r.atom_steps == 256 * (200 + 400) and r.n_samples == 40


def test_constrained_box_lammps_refuses_before_any_work(monkeypatch):
    from hmmpar.micro.md import box
    from hmmpar.micro.md.engine import MDSystem

    def no_work(*args, **kwargs):
        raise AssertionError("micro work started")
    monkeypatch.setattr(MDSystem, "create", no_work)
    pot = make_potential("lj")
    with pytest.raises(box.MDStateError, match="ground state"):
        le.constrained_box_lammps(0.8, np.zeros(3), 0.8 * -9.0, pot, 256, np.random.default_rng(1))
    le.close_instance()
    monkeypatch.setitem(sys.modules, "lammps", None)
    with pytest.raises(ConfigError, match="python3-lammps"):
        le.constrained_box_lammps(0.5, np.zeros(3), 0.5, pot, 256, np.random.default_rng(1))
