"""The NVE engine: neighbour-list forces against an all-pairs reference, energy
conservation of velocity Verlet (fluctuation ~ dt^2), free particles, reproducibility,
small boxes, the numba cache, and failure modes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hmmpar.core.errors import ConfigError
from hmmpar.micro.md.engine import MDError, MDSystem
from hmmpar.micro.md.estimators import C_ETOT, C_P, C_T, COLUMN, N_FIELDS
from hmmpar.micro.md.lattice import random_positions
from hmmpar.micro.md.potentials import make_potential

ROOT = Path(__file__).resolve().parents[3]


def all_pairs(x, box, potential):
    """Forces, energy and virial tensor by the minimum image over all pairs (numpy)."""
    d = x[:, None, :] - x[None, :, :]
    d -= box * np.round(d / box)
    r = np.sqrt((d ** 2).sum(-1))
    np.fill_diagonal(r, np.inf)
    fr = potential.force_over_r(r)
    e = potential.energy(r)
    np.fill_diagonal(e, 0.0)
    forces = (fr[..., None] * d).sum(axis=1)
    virial = 0.5 * np.einsum("ij,ija,ijb->ab", fr, d, d)
    return forces, 0.5 * e.sum(), virial


@pytest.mark.parametrize("n, rho, box_shape", [
    (500, 0.8442, (1, 1, 1)),     # two cells per reach (liquid)
    (864, 0.3, (1, 1, 1)),        # one cell per reach (gas)
    (108, 0.6, (1, 1, 1)),        # box < 3 cells: all pairs with minimum image
    (600, 0.7, (1.6, 1.0, 0.8)),  # orthorhombic box
])
def test_neighbour_list_forces_equal_all_pairs_before_and_after_rebuilds(n, rho, box_shape):
    p = make_potential("lj", 2.5, shift=True)
    rng = np.random.default_rng(7)
    shape = np.array(box_shape, dtype=float)
    box = shape * (n / rho / shape.prod()) ** (1 / 3)
    x = random_positions(n, box, rng, d_min=0.8)  # random, no pair closer than 0.8
    v = rng.standard_normal((n, 3))
    s = MDSystem(x, v, box, p)
    for _ in range(3):
        f_ref, e_ref, w_ref = all_pairs(s.positions, s.box, p)
        assert np.abs(s.forces() - f_ref).max() <= 1e-11 * max(1.0, np.abs(f_ref).max())
        assert s.potential_energy() == pytest.approx(e_ref, rel=1e-12, abs=1e-10)
        row = s.sample()
        w_trace = (row[C_P] * 3 * s.volume - 2 * row[COLUMN["thermal_kinetic_energy"]] * n)
        assert w_trace == pytest.approx(np.trace(w_ref), rel=1e-10, abs=1e-8)
        builds = s.n_builds
        s.run(40, 0.004)
        assert s.n_builds > builds  # atoms moved more than half the skin: rebuilt


def test_energy_fluctuation_scales_as_dt_squared():
    """Velocity Verlet: the total energy fluctuates by O(dt^2) about a shadow Hamiltonian.
    Same initial state, same total time; the shifted potential keeps E continuous
    (its force still jumps at r_c, which adds a little noise: ratio 3.6-4.1 measured)."""
    p = make_potential("lj", 2.5, shift=True)
    base = MDSystem.create(500, 0.8442, p, np.random.default_rng(5), 1.0)
    base.run(600, 0.005, rescale_every=10, temperature=1.0)
    spread = {}
    for dt in (0.005, 0.0025):
        s = MDSystem(base.positions, base.velocities, base.box, p)
        e = s.run(int(round(3.0 / dt)), dt, sample_every=int(round(0.025 / dt)))[:, C_ETOT]
        spread[dt] = e.std()
        assert abs(e[-1] - e[0]) < 5 * e.std() + 1e-5  # no drift beyond the fluctuation
    assert spread[0.005] < 5e-4  # per atom, at T = 1, rho = 0.8442
    assert 3.0 < spread[0.005] / spread[0.0025] < 5.3


def test_free_particles_are_exact():
    """With no forces the velocities never change: every sample has the same kinetic
    energy, so p V = 2 K_th / 3 = (N - 1) T exactly (temperature with 3(N-1) degrees of
    freedom), i.e. p = (2/3) rho e_kin: the ideal-gas Euler closure, with no 1/N correction
    in terms of the internal energy."""
    p = make_potential("none")
    n, rho, temp = 200, 0.2, 1.7
    s = MDSystem.create(n, rho, p, np.random.default_rng(3), temp, velocity=(0.3, -0.1, 0.2))
    out = s.run(500, 0.01, sample_every=10)
    assert np.allclose(out[:, C_T], temp, rtol=1e-13)
    kth = out[:, COLUMN["thermal_kinetic_energy"]]
    assert np.allclose(out[:, C_P], 2 / 3 * rho * kth, rtol=1e-13)
    assert np.allclose(out[:, C_P], rho * temp * (n - 1) / n, rtol=1e-13)
    assert np.allclose(out[:, COLUMN["internal_energy"]], 1.5 * temp * (n - 1) / n, rtol=1e-13)
    assert np.allclose(out[:, COLUMN["potential_energy"]], 0.0)


def test_same_stream_same_bits_other_stream_other_bits():
    p = make_potential("lj", 2.5)

    def trajectory(seed):
        s = MDSystem.create(256, 0.7, p, np.random.default_rng(seed), 1.5, lattice="random")
        out = s.run(300, 0.005, sample_every=10)
        return out, s.positions, s.velocities

    a, b, c = trajectory(11), trajectory(11), trajectory(12)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (30, N_FIELDS)


def test_small_box_shrinks_the_skin_and_refuses_below_twice_the_cutoff():
    p = make_potential("lj", 2.5)
    s = MDSystem.create(108, 0.7, p, np.random.default_rng(0), 1.0)  # L = 5.36
    assert s.skin == pytest.approx(0.5 * s.box[0] - 2.5) and s.skin < 0.3
    s.run(50, 0.005)
    with pytest.raises(ConfigError, match=r"^box side L = 4.\d+ < 2 r_c = 5 \(108 atoms at density 1.2, cutoff 2.5\)"):
        MDSystem.create(108, 1.2, p, np.random.default_rng(0), 1.0)


def test_blow_up_is_an_error_not_nan():
    p = make_potential("lj", 2.5)
    x = np.array([[1.0, 1.0, 1.0], [1.3, 1.0, 1.0], [4.0, 4.0, 4.0]])
    s = MDSystem(x, np.zeros((3, 3)), 8.0, p)
    with pytest.raises(MDError, match="blew up"):
        s.run(200, 0.05, sample_every=1)
    x = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [4.0, 4.0, 4.0]])  # two atoms on one point
    with pytest.raises(MDError, match="non-finite"):
        MDSystem(x, np.zeros((3, 3)), 8.0, p).run(10, 0.005)


CACHE_SCRIPT = """
import numpy as np, hmmpar
from hmmpar.micro.md.potentials import make_potential
from hmmpar.micro.md.engine import MDSystem, md_loop, prepare
s = MDSystem.create(108, 0.5, make_potential("lj"), np.random.default_rng(0), 1.0)
s.run(20, 0.005, sample_every=10)
print(sum(md_loop.stats.cache_hits.values()), sum(md_loop.stats.cache_misses.values()),
      sum(prepare.stats.cache_misses.values()))
"""


def test_compiled_kernels_are_cached_for_the_next_process():
    """cache=True must work: a second process loads the engine from the cache."""
    env = {k: v for k, v in os.environ.items()}
    runs = [subprocess.run([sys.executable, "-c", CACHE_SCRIPT], capture_output=True, text=True, cwd=ROOT,
                           env=env, timeout=600) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    hits, misses, misses_prepare = map(int, runs[1].stdout.split())
    assert hits == 1 and misses == 0 and misses_prepare == 0
