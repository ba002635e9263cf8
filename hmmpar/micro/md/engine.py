r"""The compiled NVE molecular-dynamics engine: velocity Verlet with Verlet neighbour lists.

Integrator (Verlet, Phys. Rev. 159, 98 (1967); velocity form of Swope, Andersen, Berens &
Wilson, J. Chem. Phys. 76, 637 (1982)), m = 1:

.. math::

    \mathbf v(t + \tfrac{\Delta t}{2}) = \mathbf v(t) + \tfrac{\Delta t}{2}\mathbf f(t),\quad
    \mathbf x(t + \Delta t) = \mathbf x(t) + \Delta t\,\mathbf v(t + \tfrac{\Delta t}{2}),\quad
    \mathbf v(t + \Delta t) = \mathbf v(t + \tfrac{\Delta t}{2})
        + \tfrac{\Delta t}{2}\mathbf f(t + \Delta t).

It is symplectic and time reversible: the energy does not drift but fluctuates by
:math:`O(\Delta t^2)` about a shadow Hamiltonian.

A whole run of ``n_steps`` steps, with its neighbour-list rebuilds
(:mod:`hmmpar.micro.md.neighbours`), its samples every ``sample_every`` steps
(:func:`hmmpar.micro.md.estimators.sample_row`) into a preallocated array, and optional
velocity rescaling every ``rescale_every`` steps, is **one** call of the compiled
:func:`md_loop`. Rescaling scales the peculiar velocities
:math:`\mathbf c_i = \mathbf v_i - \mathbf u` (the box mean velocity u is kept) so that the
thermal kinetic energy is

* ``RESCALE_TEMPERATURE``: :math:`K_{\rm th} = \tfrac32(N-1)T` (target temperature), or
* ``RESCALE_ENERGY``: :math:`K_{\rm th} = N e - U` with the current potential energy U
  (with tail correction): target internal energy e per atom. When :math:`N e - U \le 0`
  the thermal energy is set to :math:`10^{-3}N` (a quench) and the event is counted.

Atoms are reordered by cell at each rebuild; :class:`MDSystem` keeps their ids and returns
positions and velocities in the original order.
"""
from __future__ import annotations

import math
import time

import numba
import numpy as np

from hmmpar.core.errors import ConfigError, HmmparError

from .estimators import N_FIELDS, sample_row
from .lattice import fcc_cells, fcc_positions, maxwell_boltzmann, random_positions
from .neighbours import build, initial_capacity, max_relative_displacement2, shift_table
from .potentials import KIND_NONE, Potential, pair_energy_force

RESCALE_NONE, RESCALE_TEMPERATURE, RESCALE_ENERGY = 0, 1, 2
#: thermal kinetic energy per atom set when an energy target is below the current U
QUENCH_KE_PER_ATOM = 1e-3

# stats array slots
S_BUILDS, S_STEPS, S_STATUS, S_LAST_TARGET, S_QUENCHES, S_PAIRS, S_SAMPLES = range(7)
N_STATS = 8
STATUS_OK, STATUS_NONFINITE, STATUS_BLOWUP = 0, 1, 2

DEFAULT_SKIN = 0.3


class MDError(HmmparError):
    """The MD integration failed (non-finite positions: time step too large, or overlapping
    atoms). Exit code 1."""


@numba.njit(cache=True, error_model="numpy")
def compute_forces(x, f, kind, params, start, nbr, img, sh, want_energy) -> float:
    """Forces into ``f`` from the half list; the total potential energy (no tail) when
    ``want_energy``, else 0.

    The cutoff test is a multiplication by 0 or 1 rather than a branch: about 30 % of the
    listed pairs lie in the skin, and a mispredicted branch costs more than evaluating
    the pair function (measured: 8.5 against 12 ns per pair on the 32,000-atom liquid).
    The pair function must therefore be finite beyond the cutoff."""
    n = x.shape[0]
    rc2 = params[0]
    for i in range(n):
        f[i, 0] = 0.0
        f[i, 1] = 0.0
        f[i, 2] = 0.0
    pe = 0.0
    for i in range(n):
        xi0 = x[i, 0]
        xi1 = x[i, 1]
        xi2 = x[i, 2]
        fi0 = 0.0
        fi1 = 0.0
        fi2 = 0.0
        for k in range(start[i], start[i + 1]):
            j = nbr[k]
            c = img[k]
            d0 = xi0 - x[j, 0] - sh[c, 0]
            d1 = xi1 - x[j, 1] - sh[c, 1]
            d2 = xi2 - x[j, 2] - sh[c, 2]
            r2 = d0 * d0 + d1 * d1 + d2 * d2
            m = 1.0 if r2 < rc2 else 0.0
            phi, fr = pair_energy_force(kind, params, r2)
            if want_energy:
                pe += m * phi
            fr *= m
            a = fr * d0
            b = fr * d1
            e = fr * d2
            fi0 += a
            fi1 += b
            fi2 += e
            f[j, 0] -= a
            f[j, 1] -= b
            f[j, 2] -= e
        f[i, 0] += fi0
        f[i, 1] += fi1
        f[i, 2] += fi2
    return pe


@numba.njit(cache=True, error_model="numpy")
def compute_forces_per_atom(x, f, kind, params, start, nbr, img, sh, pe_atom, vir_atom) -> float:
    r"""As :func:`compute_forces`, also per-atom energy :math:`\phi_i` and virial
    :math:`W_i` (half of each pair to each atom)."""
    n = x.shape[0]
    rc2 = params[0]
    for i in range(n):
        f[i, 0] = 0.0
        f[i, 1] = 0.0
        f[i, 2] = 0.0
        pe_atom[i] = 0.0
        for q in range(6):
            vir_atom[i, q] = 0.0
    pe = 0.0
    for i in range(n):
        xi0 = x[i, 0]
        xi1 = x[i, 1]
        xi2 = x[i, 2]
        for k in range(start[i], start[i + 1]):
            j = nbr[k]
            c = img[k]
            d0 = xi0 - x[j, 0] - sh[c, 0]
            d1 = xi1 - x[j, 1] - sh[c, 1]
            d2 = xi2 - x[j, 2] - sh[c, 2]
            r2 = d0 * d0 + d1 * d1 + d2 * d2
            if r2 < rc2:
                phi, fr = pair_energy_force(kind, params, r2)
                pe += phi
                a = fr * d0
                b = fr * d1
                e = fr * d2
                f[i, 0] += a
                f[i, 1] += b
                f[i, 2] += e
                f[j, 0] -= a
                f[j, 1] -= b
                f[j, 2] -= e
                h = 0.5 * phi
                pe_atom[i] += h
                pe_atom[j] += h
                w00 = 0.5 * a * d0
                w11 = 0.5 * b * d1
                w22 = 0.5 * e * d2
                w01 = 0.5 * a * d1
                w02 = 0.5 * a * d2
                w12 = 0.5 * b * d2
                vir_atom[i, 0] += w00
                vir_atom[i, 1] += w11
                vir_atom[i, 2] += w22
                vir_atom[i, 3] += w01
                vir_atom[i, 4] += w02
                vir_atom[i, 5] += w12
                vir_atom[j, 0] += w00
                vir_atom[j, 1] += w11
                vir_atom[j, 2] += w22
                vir_atom[j, 3] += w01
                vir_atom[j, 4] += w02
                vir_atom[j, 5] += w12
    return pe


@numba.njit(cache=True, error_model="numpy")
def prepare(x, v, ids, f, box, kind, params, reach, x_ref, start, nbr, img, stats):
    """Build the list and compute the forces of the current positions.

    Returns ``(nbr, img, pe)``; sets ``stats[S_STATUS]`` to STATUS_NONFINITE on failure."""
    if kind == KIND_NONE:
        for i in range(x.shape[0]):
            f[i, 0] = 0.0
            f[i, 1] = 0.0
            f[i, 2] = 0.0
        return nbr, img, 0.0
    nbr, img, k = build(x, v, ids, box, reach, x_ref, start, nbr, img)
    if k < 0:
        stats[S_STATUS] = STATUS_NONFINITE
        return nbr, img, np.nan
    stats[S_BUILDS] += 1
    stats[S_PAIRS] = k
    sh = shift_table(box)
    return nbr, img, compute_forces(x, f, kind, params, start, nbr, img, sh, True)


@numba.njit(cache=True, error_model="numpy")
def _rescale(v, target_kth):
    n = v.shape[0]
    u0 = 0.0
    u1 = 0.0
    u2 = 0.0
    for i in range(n):
        u0 += v[i, 0]
        u1 += v[i, 1]
        u2 += v[i, 2]
    u0 /= n
    u1 /= n
    u2 /= n
    kth = 0.0
    for i in range(n):
        a = v[i, 0] - u0
        b = v[i, 1] - u1
        c = v[i, 2] - u2
        kth += 0.5 * (a * a + b * b + c * c)
    if kth <= 0.0:
        return
    s = math.sqrt(target_kth / kth)
    for i in range(n):
        v[i, 0] = u0 + s * (v[i, 0] - u0)
        v[i, 1] = u1 + s * (v[i, 1] - u1)
        v[i, 2] = u2 + s * (v[i, 2] - u2)


@numba.njit(cache=True, error_model="numpy")
def md_loop(x, v, ids, f, box, kind, params, reach, skin, dt, n_steps, sample_every, samples,
            rescale_every, rescale_mode, rescale_value, tail_e, tail_p,
            x_ref, start, nbr, img, pe_atom, vir_atom, stats):
    """Run ``n_steps`` velocity-Verlet steps (see the module docstring).

    ``f`` must hold the forces of ``x`` on entry (:func:`prepare`). Samples go to rows
    ``0, 1, ...`` of ``samples`` after steps ``sample_every, 2 sample_every, ...``
    (``sample_every = 0``: none). Returns ``(nbr, img)`` (they may have grown).
    """
    n = x.shape[0]
    half_dt = 0.5 * dt
    limit2 = 0.25 * skin * skin
    sh = shift_table(box)
    interacting = kind != KIND_NONE
    # an atom that jumps half the box between two list builds (which come at the latest
    # when one has moved skin/2) has moved several sigma in one step: the integration
    # has blown up (time step too large for the forces, or overlapping atoms)
    blowup2 = 0.25 * min(box[0], min(box[1], box[2])) ** 2
    n_sample = 0
    for step in range(1, n_steps + 1):
        for i in range(n):
            v[i, 0] += half_dt * f[i, 0]
            v[i, 1] += half_dt * f[i, 1]
            v[i, 2] += half_dt * f[i, 2]
            x[i, 0] += dt * v[i, 0]
            x[i, 1] += dt * v[i, 1]
            x[i, 2] += dt * v[i, 2]
        sample_now = sample_every > 0 and step % sample_every == 0
        rescale_now = rescale_every > 0 and step % rescale_every == 0
        pe = 0.0
        if interacting:
            worst = max_relative_displacement2(x, x_ref)
            if worst > blowup2:
                stats[S_STATUS] = STATUS_BLOWUP
                stats[S_STEPS] += step - 1
                return nbr, img
            if not worst <= limit2:
                nbr, img, k = build(x, v, ids, box, reach, x_ref, start, nbr, img)
                if k < 0:
                    stats[S_STATUS] = STATUS_NONFINITE
                    stats[S_STEPS] += step - 1
                    return nbr, img
                stats[S_BUILDS] += 1
                stats[S_PAIRS] = k
            if sample_now:
                pe = compute_forces_per_atom(x, f, kind, params, start, nbr, img, sh, pe_atom, vir_atom)
            else:
                pe = compute_forces(x, f, kind, params, start, nbr, img, sh, rescale_now)
        elif sample_now:
            for i in range(n):
                pe_atom[i] = 0.0
                for q in range(6):
                    vir_atom[i, q] = 0.0
        for i in range(n):
            v[i, 0] += half_dt * f[i, 0]
            v[i, 1] += half_dt * f[i, 1]
            v[i, 2] += half_dt * f[i, 2]
        if rescale_now and rescale_mode != 0:
            if rescale_mode == 1:
                target = rescale_value
            else:
                target = rescale_value - pe - n * tail_e
            stats[S_LAST_TARGET] = target
            if target <= 0.0:
                stats[S_QUENCHES] += 1
                target = QUENCH_KE_PER_ATOM * n
            _rescale(v, target)
        if sample_now:
            sample_row(x, v, pe_atom, vir_atom, box, tail_e, tail_p, samples[n_sample])
            n_sample += 1
            if not math.isfinite(samples[n_sample - 1, 0] + samples[n_sample - 1, 1]):
                stats[S_STATUS] = STATUS_NONFINITE
                stats[S_STEPS] += step
                stats[S_SAMPLES] += n_sample
                return nbr, img
    stats[S_STEPS] += n_steps
    stats[S_SAMPLES] += n_sample
    return nbr, img


def _as_box(box) -> np.ndarray:
    b = np.asarray(box, dtype=float).reshape(-1)
    if b.size == 1:
        b = np.repeat(b, 3)
    if b.size != 3 or not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise ConfigError(f"box: must be 3 finite side lengths > 0, got {box!r}")
    return np.ascontiguousarray(b)


class MDSystem:
    """N atoms (m = 1) in a periodic orthorhombic box, integrated by :func:`md_loop`.

    Parameters
    ----------
    positions, velocities
        (N, 3) arrays (copied).
    box
        Side lengths (3,) or one number for a cube.
    potential
        From :func:`hmmpar.micro.md.potentials.make_potential`.
    skin
        Neighbour-list skin :math:`r_s`; reduced to :math:`L_{\\min}/2 - r_c` when the box
        is too small for it (then the list is rebuilt more often, never wrong).

    Raises
    ------
    ConfigError
        A box side :math:`L \\le 2 r_c`: the minimum image would miss interactions.
    """

    def __init__(self, positions: np.ndarray, velocities: np.ndarray, box, potential: Potential,
                 skin: float = DEFAULT_SKIN) -> None:
        x = np.array(positions, dtype=float, order="C")
        v = np.array(velocities, dtype=float, order="C")
        if x.ndim != 2 or x.shape[1] != 3 or v.shape != x.shape:
            raise ConfigError(f"positions/velocities: need two (N, 3) arrays, got {x.shape} and {v.shape}")
        n = x.shape[0]
        if n < 2:
            raise ConfigError(f"atoms: need at least 2 atoms, got {n}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(v))):
            raise ConfigError("positions/velocities: not all finite")
        self.box = _as_box(box)
        self.potential = potential
        self.n_atoms = n
        self.volume = float(np.prod(self.box))
        self.density = n / self.volume
        if not (math.isfinite(skin) and skin > 0):
            raise ConfigError(f"skin: must be a finite number > 0, got {skin!r}")
        rc = potential.cutoff
        if potential.interacting:
            lmin = float(self.box.min())
            if not lmin > 2.0 * rc:
                raise ConfigError(
                    f"box side L = {lmin:.4g} < 2 r_c = {2 * rc:.4g} ({n} atoms at density {self.density:.4g}, "
                    f"cutoff {rc:g}): use more atoms or a smaller cutoff")
            self.skin = min(float(skin), 0.5 * lmin - rc)
        else:
            self.skin = float(skin)
        self.reach = rc + self.skin
        self.x, self.v = x, v
        self.ids = np.arange(n, dtype=np.int64)
        self.f = np.zeros_like(x)
        self.x_ref = x.copy()
        self.start = np.zeros(n + 1, dtype=np.int64)
        cap = initial_capacity(n, self.density, self.reach) if potential.interacting else 1
        self.nbr = np.zeros(cap, dtype=np.int32)
        self.img = np.zeros(cap, dtype=np.int8)
        self.pe_atom = np.zeros(n)
        self.vir_atom = np.zeros((n, 6))
        self.stats = np.zeros(N_STATS)
        self.tail_e = potential.tail_energy_per_atom(self.density)
        self.tail_p = potential.tail_pressure(self.density)
        self.time = 0.0
        self.atom_steps = 0
        self.seconds = 0.0
        self.nbr, self.img, self._pe = prepare(self.x, self.v, self.ids, self.f, self.box, potential.kind,
                                               potential.params, self.reach, self.x_ref, self.start,
                                               self.nbr, self.img, self.stats)
        self._check("the initial configuration")

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, n_atoms: int, density: float, potential: Potential, rng: np.random.Generator,
               temperature: float, velocity=(0.0, 0.0, 0.0), lattice: str = "auto",
               skin: float = DEFAULT_SKIN) -> "MDSystem":
        """A cubic box of ``n_atoms`` at ``density`` with Maxwell-Boltzmann velocities.

        ``lattice``: ``"fcc"`` (needs ``n_atoms = 4 n^3``), ``"random"`` (random sequential
        addition, :func:`~hmmpar.micro.md.lattice.random_positions`) or ``"auto"`` (fcc when
        possible). Random numbers come from ``rng`` only: positions first (random
        placement), then velocities (:func:`~hmmpar.micro.md.lattice.maxwell_boltzmann`).
        """
        n_atoms = int(n_atoms)
        if n_atoms < 2:
            raise ConfigError(f"atoms: need at least 2, got {n_atoms}")
        if not (math.isfinite(density) and density > 0):
            raise ConfigError(f"density: must be a finite number > 0, got {density!r}")
        cells = fcc_cells(n_atoms)
        if lattice not in ("auto", "fcc", "random"):
            raise ConfigError(f"lattice: must be auto, fcc or random, got {lattice!r}")
        if lattice == "fcc" and cells is None:
            raise ConfigError(f"lattice: fcc needs 4 n^3 atoms (32, 108, 256, 500, 864, ...), got {n_atoms}")
        side = (n_atoms / density) ** (1.0 / 3.0)
        if potential.interacting and not side > 2.0 * potential.cutoff:
            raise ConfigError(
                f"box side L = {side:.4g} < 2 r_c = {2 * potential.cutoff:.4g} ({n_atoms} atoms at density "
                f"{density:.4g}, cutoff {potential.cutoff:g}): use more atoms or a smaller cutoff")
        if cells is not None and lattice != "random":
            x, box = fcc_positions(cells, density)
        else:
            box = np.full(3, side)
            x = random_positions(n_atoms, box, rng)
        v = maxwell_boltzmann(n_atoms, temperature, rng, velocity)
        return cls(x, v, box, potential, skin)

    # ------------------------------------------------------------------ running
    def run(self, n_steps: int, dt: float, sample_every: int = 0, rescale_every: int = 0,
            temperature: float | None = None, energy: float | None = None) -> np.ndarray:
        """Integrate ``n_steps`` steps of ``dt`` in one compiled call.

        Parameters
        ----------
        sample_every
            Record a sample row (:data:`~hmmpar.micro.md.estimators.FIELDS`) after every
            ``sample_every`` steps; 0 for none.
        rescale_every, temperature, energy
            Rescale the peculiar velocities every ``rescale_every`` steps to the
            ``temperature`` or to the internal ``energy`` per atom (at most one of them).

        Returns
        -------
        (n_steps // sample_every, len(FIELDS)) array of samples.
        """
        n_steps = int(n_steps)
        if n_steps < 0:
            raise ConfigError(f"steps: must be >= 0, got {n_steps}")
        if not (math.isfinite(dt) and dt > 0):
            raise ConfigError(f"dt: must be a finite number > 0, got {dt!r}")
        sample_every = int(sample_every)
        n_samples = n_steps // sample_every if sample_every > 0 else 0
        samples = np.zeros((n_samples, N_FIELDS))
        mode, value = RESCALE_NONE, 0.0
        if temperature is not None and energy is not None:
            raise ConfigError("rescale: give a temperature or an energy, not both")
        if temperature is not None:
            mode, value = RESCALE_TEMPERATURE, 1.5 * (self.n_atoms - 1) * float(temperature)
        elif energy is not None:
            mode, value = RESCALE_ENERGY, self.n_atoms * float(energy)
        if mode != RESCALE_NONE and int(rescale_every) <= 0:
            raise ConfigError("rescale_every: must be > 0 with a temperature or energy target")
        self.stats[S_QUENCHES] = 0
        t0 = time.perf_counter()
        self.nbr, self.img = md_loop(
            self.x, self.v, self.ids, self.f, self.box, self.potential.kind, self.potential.params,
            self.reach, self.skin, float(dt), n_steps, sample_every, samples,
            int(rescale_every) if mode else 0, mode, value, self.tail_e, self.tail_p,
            self.x_ref, self.start, self.nbr, self.img, self.pe_atom, self.vir_atom, self.stats)
        self.seconds += time.perf_counter() - t0
        self.time += n_steps * dt
        self.atom_steps += n_steps * self.n_atoms
        self._check(f"the run of {n_steps} steps of dt = {dt:g}")
        return samples

    def _check(self, what: str) -> None:
        status = self.stats[S_STATUS]
        if status == STATUS_NONFINITE:
            raise MDError(f"MD: positions became non-finite during {what} (time step too large, or "
                          f"atoms overlapping)")
        if status == STATUS_BLOWUP:
            raise MDError(f"MD: an atom jumped half the box in one step during {what}: the integration blew up "
                          f"(time step too large, or atoms overlapping)")

    # ------------------------------------------------------------------ observables
    @property
    def positions(self) -> np.ndarray:
        """(N, 3) positions in the original atom order (wrapped at the last list build)."""
        out = np.empty_like(self.x)
        out[self.ids] = self.x
        return out

    @property
    def velocities(self) -> np.ndarray:
        """(N, 3) velocities in the original atom order."""
        out = np.empty_like(self.v)
        out[self.ids] = self.v
        return out

    def forces(self) -> np.ndarray:
        """(N, 3) forces of the current positions, in the original atom order."""
        out = np.empty_like(self.f)
        out[self.ids] = self.f
        return out

    def potential_energy(self) -> float:
        """Total potential energy of the current positions, with the tail correction."""
        if not self.potential.interacting:
            return 0.0
        sh = shift_table(self.box)
        f = np.empty_like(self.x)
        pe = compute_forces(self.x, f, self.potential.kind, self.potential.params, self.start,
                            self.nbr, self.img, sh, True)
        return pe + self.n_atoms * self.tail_e

    def sample(self) -> np.ndarray:
        """One sample row of the current state (columns FIELDS)."""
        row = np.zeros(N_FIELDS)
        f = np.empty_like(self.x)
        if self.potential.interacting:
            compute_forces_per_atom(self.x, f, self.potential.kind, self.potential.params, self.start,
                                    self.nbr, self.img, shift_table(self.box), self.pe_atom, self.vir_atom)
        else:
            self.pe_atom[:] = 0.0
            self.vir_atom[:] = 0.0
        sample_row(self.x, self.v, self.pe_atom, self.vir_atom, self.box, self.tail_e, self.tail_p, row)
        return row

    @property
    def n_builds(self) -> int:
        return int(self.stats[S_BUILDS])

    @property
    def quenches(self) -> int:
        """Rescalings of the last run whose energy target was below the potential energy."""
        return int(self.stats[S_QUENCHES])

    @property
    def last_rescale_target(self) -> float:
        """Thermal kinetic energy asked for at the last rescaling (negative: unreachable)."""
        return float(self.stats[S_LAST_TARGET])
