"""The LAMMPS engine of the constrained MD box (:mod:`hmmpar.micro.md.lammps_engine`) on its own.

Its fluxes are checked against a direct O(N^2) evaluation in numpy of the same
configuration, its tail corrections against LAMMPS's, its rescaling against the target
energy; the reused instance must give the same numbers as a fresh one.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from hmmpar.core.errors import ConfigError
from hmmpar.micro.md import lammps_engine as le

pytest.importorskip("lammps", reason="python3-lammps is not installed (make setup installs it)")


@pytest.fixture(scope="module", autouse=True)
def _close_lammps():
    yield
    le.close_instance()


def fcc(cells: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    a = (4.0 / rho) ** (1.0 / 3.0)
    g = np.arange(cells) * a
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]) * a
    x = (np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 1, 3) + basis).reshape(-1, 3)
    return x, np.full(3, cells * a)


def thermal(n: int, temperature: float, u, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3)) * math.sqrt(temperature)
    return v - v.mean(axis=0) + np.asarray(u, float)


def direct_fluxes(x, v, L, rc, shift):
    """Momentum and energy flux, pe and ke of one configuration, all pairs in numpy (L > 2 rc)."""
    n = len(x)
    d = x[:, None, :] - x[None, :, :]
    d -= L * np.round(d / L)
    r2 = np.einsum("ijk,ijk->ij", d, d)
    np.fill_diagonal(r2, np.inf)
    inside = r2 < rc * rc
    ir6 = np.where(inside, r2 ** -3, 0.0)
    u = np.where(inside, 4 * (ir6 * ir6 - ir6) - (4 * (rc ** -12 - rc ** -6) if shift else 0.0), 0.0)
    fr = np.where(inside, 24 * (2 * ir6 * ir6 - ir6) / r2, 0.0)  # f_ij = fr * d_ij, force on i from j
    f = fr[:, :, None] * d
    e_atom = 0.5 * u.sum(axis=1) + 0.5 * (v * v).sum(axis=1)
    w = 0.5 * np.einsum("ija,ijb->ab", d, f)  # each pair counted twice
    vol = np.prod(L)
    pi = (np.einsum("ia,ib->ab", v, v) + w) / vol
    jv = 0.25 * np.einsum("ija,ijb,ijb->a", d, f, v[:, None, :] + v[None, :, :])
    j = ((e_atom[:, None] * v).sum(axis=0) + jv) / vol
    return pi, j, 0.5 * u.sum(), 0.5 * (v * v).sum()


@pytest.mark.parametrize("potential", ["lj_cut", "lj_shift"])
def test_fluxes_match_direct_sum(potential):
    x, L = fcc(5, 0.5)
    v = thermal(len(x), 2.0, [0.7, -0.2, 0.1], seed=1)
    r = le.constrained_box_lammps(x, v, L, potential=potential, rc=2.5, sampling_steps=20, sample_every=20,
                                  keep_samples=True)
    pi, j, pe, ke = direct_fluxes(r["positions"], r["velocities"], L, 2.5, potential == "lj_shift")
    s = r["samples"]
    assert s["pe"][0] == pytest.approx(pe, rel=1e-11)
    assert s["ke"][0] == pytest.approx(ke, rel=1e-11)
    np.testing.assert_allclose(r["momentum_flux"], pi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r["energy_flux"], j, rtol=1e-10, atol=1e-12)
    assert r["atom_steps"] == len(x) * 20


def test_tail_corrections_are_lammps_values():
    x, L = fcc(4, 0.6)
    v = thermal(len(x), 1.5, [0.3, 0, 0], seed=2)
    tail = le.constrained_box_lammps(x, v, L, potential="lj_tail", sampling_steps=10, sample_every=10,
                                     keep_samples=True)
    cut = le.constrained_box_lammps(x, v, L, potential="lj_cut", sampling_steps=10, sample_every=10,
                                    keep_samples=True)
    e_tail, p_tail = le.tail_corrections("lj_tail", 2.5, len(x), float(np.prod(L)))
    assert e_tail < 0 and p_tail < 0
    # same trajectory (the tail terms are constants): only the corrections differ
    assert tail["samples"]["pe"][0] - cut["samples"]["pe"][0] == pytest.approx(e_tail, rel=1e-9)
    np.testing.assert_allclose(tail["momentum_flux"] - cut["momentum_flux"], p_tail * np.eye(3), atol=1e-10)
    vol = float(np.prod(L))
    np.testing.assert_allclose(tail["energy_flux"] - cut["energy_flux"], (e_tail / vol + p_tail) * tail["velocity"],
                               atol=1e-10)


def test_ideal_gas_is_exact():
    x, L = fcc(4, 0.3)
    v = thermal(len(x), 1.5, [0.0, 0.4, 0.0], seed=3)
    r = le.constrained_box_lammps(x, v, L, potential="none", sampling_steps=100, sample_every=10)
    vol = float(np.prod(L))
    np.testing.assert_allclose(r["momentum_flux"], np.einsum("ia,ib->ab", v, v) / vol, rtol=1e-12)
    np.testing.assert_allclose(r["energy_flux"], (0.5 * (v * v).sum(axis=1)[:, None] * v).sum(axis=0) / vol,
                               rtol=1e-12)
    t = ((v - v.mean(axis=0)) ** 2).sum() / (3 * len(v) - 3)
    assert r["temperature"] == pytest.approx(t, rel=1e-12)
    assert r["pressure"] == pytest.approx((len(v) - 1) / vol * t, rel=1e-12)  # sum m c^2 / 3V
    assert r["potential_energy"] == 0.0 and r["pressure_stderr"] < 1e-12


def test_rescaling_reaches_target_energy_and_keeps_flow():
    x, L = fcc(4, 0.5)
    u = np.array([0.5, 0.0, -0.25])
    v = thermal(len(x), 3.0, u, seed=4)
    target = 1.0 + 0.5 * u @ u
    r = le.constrained_box_lammps(x, v, L, potential="lj_shift", dt=0.002, equilibration_steps=400,
                                  rescale_every=20, total_energy=target, sampling_steps=400, sample_every=10)
    assert r["total_energy"] == pytest.approx(target, abs=2e-4)  # NVE drift only
    np.testing.assert_allclose(r["velocity"], u, atol=1e-12)
    with pytest.raises(ValueError, match="below the potential"):
        le.constrained_box_lammps(x, v, L, potential="lj_shift", equilibration_steps=20, rescale_every=10,
                                  total_energy=-10.0, sampling_steps=10, sample_every=10)


def test_reused_instance_gives_fresh_results():
    x, L = fcc(4, 0.5)
    v = thermal(len(x), 2.0, [0.2, 0, 0], seed=5)
    kw = dict(potential="lj_shift", equilibration_steps=50, rescale_every=10, total_energy=1.0,
              sampling_steps=100, sample_every=10)
    le.lammps_instance()
    created = le.instance_stats()["created"]
    a = le.constrained_box_lammps(x, v, L, **kw)
    b = le.constrained_box_lammps(x, v, L, **kw)
    assert le.instance_stats()["created"] == created  # reused, not recreated
    le.close_instance()
    c = le.constrained_box_lammps(x, v, L, **kw)
    assert le.instance_stats()["created"] == created + 1
    for key in ("momentum_flux", "energy_flux", "pressure", "total_energy"):
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key], c[key])


def test_bad_inputs_raise_before_lammps():
    x, L = fcc(3, 0.5)
    v = thermal(len(x), 1.0, [0, 0, 0], seed=6)
    with pytest.raises(ValueError, match="potential"):
        le.constrained_box_lammps(x, v, L, potential="morse")
    with pytest.raises(ValueError, match="shape"):
        le.constrained_box_lammps(x, v[:-1], L)
    with pytest.raises(ValueError, match="finite"):
        le.constrained_box_lammps(x, np.where(v > 1, np.nan, v), L)
    x2 = x.copy()
    x2[1] = x2[0] + 0.1
    with pytest.raises(ValueError, match="apart"):
        le.constrained_box_lammps(x2, v, L)
    with pytest.raises(ValueError, match="one step"):
        le.constrained_box_lammps(x, v * 1e4, L)
    with pytest.raises(ValueError, match="sample_every"):
        le.constrained_box_lammps(x, v, L, sampling_steps=5, sample_every=10)


def test_missing_lammps_is_a_config_error(monkeypatch):
    le.close_instance()
    monkeypatch.setitem(sys.modules, "lammps", None)  # import lammps raises ImportError
    with pytest.raises(ConfigError, match=r"micro.engine = 'lammps' needs the LAMMPS Python module "
                                          r"\(Debian package python3-lammps\): \w*Error"):
        le.check_available()
    x, L = fcc(3, 0.5)
    with pytest.raises(ConfigError, match="python3-lammps"):
        le.constrained_box_lammps(x, thermal(len(x), 1.0, [0, 0, 0], 7), L, sampling_steps=10, sample_every=10)


def test_missing_library_is_a_config_error(monkeypatch):
    import lammps
    le.close_instance()

    def no_library(*args, **kwargs):
        raise OSError("liblammps.so: cannot open shared object file: No such file or directory")
    monkeypatch.setattr(lammps, "lammps", no_library)
    with pytest.raises(ConfigError, match="liblammps-dev"):
        le.check_available()
