r"""The constrained MD box: the micro problem of HMM gas dynamics, and state points.

Given a macro state :math:`U = (\rho, \mathbf m, E)` (mass density, momentum density, total
energy per volume; m = 1 so mass and number density agree), :func:`constrained_box`

1. converts it to the box's constraints: number density :math:`\rho`, mean velocity
   :math:`\mathbf u = \mathbf m/\rho` and internal energy per atom
   :math:`e = (E - |\mathbf m|^2/(2\rho))/\rho`;
2. refuses states no box can have: :math:`\rho \le 0`, non-finite values, or
   :math:`e` at or below the ground state of the potential at that density
   (:meth:`~hmmpar.micro.md.potentials.Potential.ground_state_energy`: the thermal kinetic
   energy would have to be negative), with :class:`MDStateError`;
3. builds a periodic cube of N atoms with volume :math:`N/\rho` (fcc lattice when
   :math:`N = 4n^3`, else random placement) and velocities with mean :math:`\mathbf u`;
4. equilibrates for ``t_equilibrate`` with the peculiar velocities rescaled every
   ``rescale_every`` steps so that :math:`K_{\rm th} + U_{\rm pot} = N e` (the potential
   energy is known only as the positions relax, hence the repeated rescaling; the last
   rescaling is at the last equilibration step);
5. runs NVE for ``t_sample``, sampling every ``sample_every`` steps, and returns the
   block-averaged lab-frame fluxes and state variables (:class:`~hmmpar.micro.md.estimators.MDResult`).

After the last rescaling the energy is exactly :math:`N e` up to the :math:`O(\Delta t^2)`
fluctuation of velocity Verlet, so the returned ``internal_energy`` equals the requested
e within that fluctuation. At equilibrium the fluxes are the Euler fluxes
:math:`\rho\mathbf u\otimes\mathbf u + pI` and :math:`(E + p)\mathbf u` with the box's
pressure :math:`p(\rho, e)` (derivation in :mod:`hmmpar.micro.md.estimators`); the samples
carry their statistical error, which an HMM estimator propagates.

If the (ρ, e) state lies in the liquid-vapour coexistence region the box demixes; the
result's ``two_phase`` flag (:func:`~hmmpar.micro.md.estimators.two_phase_test`) reports
it, and the fluxes are then those of a small inhomogeneous box, not of a fluid state.
"""
from __future__ import annotations

import math
import time

import numpy as np

from hmmpar.core.errors import ConfigError

from .engine import DEFAULT_SKIN, MDSystem, _rescale
from .estimators import TWO_PHASE_THRESHOLD, MDResult, summarize
from .potentials import Potential

#: largest box and sample array the functions accept (memory guards)
MAX_ATOMS = 50_000_000
MAX_SAMPLES = 10_000_000
#: temperature used for the first velocities when the target energy is (nearly) all potential
MIN_START_TEMPERATURE = 0.05


class MDStateError(ConfigError):
    """A macro state no MD box can represent (density <= 0, non-finite values, energy at or
    below the ground state, or an energy the box cannot reach). Exit code 2; the message
    is one line naming the state."""


def _finite(option: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}: must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise MDStateError(f"{option}: must be finite, got {value!r}")
    return x


def macro_to_box(density: float, momentum, energy_density: float) -> tuple[float, np.ndarray, float]:
    r"""Constraints of the box for :math:`U = (\rho, \mathbf m, E)`.

    Returns
    -------
    (rho, u, e)
        Number density, mean velocity :math:`\mathbf m/\rho` (3,), internal energy per atom
        :math:`(E - |\mathbf m|^2/(2\rho))/\rho`.

    Raises
    ------
    MDStateError
        :math:`\rho \le 0` or a non-finite component.
    """
    rho = _finite("rho", density)
    if rho <= 0.0:
        raise MDStateError(f"rho: the density must be > 0, got {rho:g}")
    m = np.asarray(momentum, dtype=float).reshape(-1)
    if m.size != 3:
        raise ConfigError(f"momentum: need 3 components, got {m.size}")
    if not np.all(np.isfinite(m)):
        raise MDStateError(f"momentum: must be finite, got {m.tolist()}")
    energy = _finite("energy_density", energy_density)
    u = m / rho
    e = (energy - 0.5 * float(m @ m) / rho) / rho
    if not math.isfinite(e):
        raise MDStateError(f"energy_density: the internal energy per atom is not finite (rho = {rho:g})")
    return rho, u, e


def _steps(option: str, t: float, dt: float, minimum: int = 0) -> int:
    t = float(t)
    if not math.isfinite(t) or t < 0:
        raise ConfigError(f"{option}: must be a finite time >= 0, got {t!r}")
    n = int(round(t / dt))
    if n < minimum:
        raise ConfigError(f"{option}: {t:g} is {n} steps of dt = {dt:g}; need at least {minimum}")
    return n


def _check_common(n_atoms, dt, sample_every, rescale_every) -> tuple[int, float, int, int]:
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, (int, np.integer)) or n_atoms < 2:
        raise ConfigError(f"atoms: must be an integer >= 2, got {n_atoms!r}")
    if n_atoms > MAX_ATOMS:
        raise ConfigError(f"atoms: at most {MAX_ATOMS}, got {n_atoms}")
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ConfigError(f"dt: must be a number, got {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt: must be a finite number > 0, got {dt!r}")
    for option, value in (("sample_every", sample_every), ("rescale_every", rescale_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{option}: must be an integer >= 1, got {value!r}")
    return int(n_atoms), dt, int(sample_every), int(rescale_every)


def _equilibrate_and_sample(system: MDSystem, dt: float, n_eq: int, n_prod: int, sample_every: int,
                            rescale_every: int, temperature: float | None, energy: float | None,
                            two_phase_threshold: float, t0: float) -> MDResult:
    if n_eq > 0:
        n_eq = -(-n_eq // rescale_every) * rescale_every  # the last step rescales
        system.run(n_eq, dt, rescale_every=rescale_every, temperature=temperature, energy=energy)
        if energy is not None and system.last_rescale_target <= 0.0:
            u_pot = (energy * system.n_atoms - system.last_rescale_target) / system.n_atoms
            raise MDStateError(
                f"state not reached: internal energy e = {energy:.6g} per atom is below the potential energy "
                f"{u_pot:.6g} the box still had after {n_eq} equilibration steps (density {system.density:.6g}): "
                "a solid or a state too close to the ground state")
    samples = system.run(n_prod, dt, sample_every=sample_every)
    return summarize(samples, system.n_atoms, system.volume, system.atom_steps, time.perf_counter() - t0,
                     two_phase_threshold)


def constrained_box(rho: float, momentum, energy_density: float, potential: Potential, n_atoms: int,
                    rng: np.random.Generator, dt: float = 0.005, t_equilibrate: float = 5.0,
                    t_sample: float = 20.0, sample_every: int = 10, rescale_every: int = 10,
                    skin: float = DEFAULT_SKIN, lattice: str = "auto",
                    two_phase_threshold: float = TWO_PHASE_THRESHOLD) -> MDResult:
    r"""Lab-frame fluxes of an MD box constrained to the macro state :math:`(\rho, \mathbf m, E)`.

    Parameters
    ----------
    rho, momentum, energy_density
        Macro state: mass (= number) density, momentum density (3,), total energy per volume.
    potential
        :func:`~hmmpar.micro.md.potentials.make_potential`.
    n_atoms
        Atoms in the box (fcc start when ``n_atoms = 4 n^3``).
    rng
        The task's generator (e.g. ``ctx.rng(task_id)``); the same stream gives a bitwise
        identical result.
    dt, t_equilibrate, t_sample
        Time step and the two phases' lengths, in LJ time units.
    sample_every, rescale_every
        Steps between samples (production) and between velocity rescalings (equilibration).
    skin, lattice
        Neighbour-list skin; ``"auto"``, ``"fcc"`` or ``"random"``.
    two_phase_threshold
        :math:`S(k_{\min})` above which ``two_phase`` is set.

    Returns
    -------
    MDResult
        ``momentum_flux`` (3, 3) and ``energy_flux`` (3,) in the lab frame (with kinetic,
        potential and virial parts), ``pressure``, ``temperature``, ``potential_energy``,
        ``internal_energy`` and ``total_energy`` per atom, each with ``*_err`` (standard
        error), plus ``structure_factor_kmin``, ``two_phase``, ``atom_steps`` (equilibration
        and production) and ``seconds``.

    Raises
    ------
    MDStateError
        Density <= 0, non-finite input, internal energy at or below the ground state
        ("state below the ground state"), or not reached during equilibration.
    ConfigError
        Invalid options, or a box side shorter than :math:`2r_c` (too few atoms for the
        density and cutoff).
    """
    t0 = time.perf_counter()
    n_atoms, dt, sample_every, rescale_every = _check_common(n_atoms, dt, sample_every, rescale_every)
    rho, u, e = macro_to_box(rho, momentum, energy_density)
    n_eq = _steps("t_equilibrate", t_equilibrate, dt)
    n_prod = _steps("t_sample", t_sample, dt, minimum=2 * sample_every)
    if n_prod // sample_every > MAX_SAMPLES:
        raise ConfigError(f"t_sample: {n_prod // sample_every} samples, at most {MAX_SAMPLES}; "
                          "raise sample_every")
    e_ground = potential.ground_state_energy(rho)
    if not e > e_ground:
        raise MDStateError(f"state below the ground state: internal energy e = {e:.6g} per atom <= "
                           f"{e_ground:.6g}, the ground state of {potential.describe()} at density {rho:.6g}")
    system = MDSystem.create(n_atoms, rho, potential, rng, temperature=1.0, velocity=u, lattice=lattice,
                             skin=skin)
    # first velocities: all of N e - U0 as thermal energy, or a cold start if U0 is above N e
    target = n_atoms * e - system.potential_energy()
    floor = 1.5 * (n_atoms - 1) * MIN_START_TEMPERATURE
    if n_eq == 0 and target <= floor:
        raise MDStateError(f"state not reached: internal energy e = {e:.6g} per atom needs equilibration from the "
                           f"initial lattice (potential energy {(n_atoms * e - target) / n_atoms:.6g} per atom); "
                           "give t_equilibrate > 0")
    _rescale(system.v, max(target, floor))
    return _equilibrate_and_sample(system, dt, n_eq, n_prod, sample_every, rescale_every, None, e,
                                   two_phase_threshold, t0)


def state_point(rho: float, potential: Potential, n_atoms: int, rng: np.random.Generator,
                temperature: float | None = None, energy: float | None = None, dt: float = 0.005,
                t_equilibrate: float = 5.0, t_sample: float = 20.0, sample_every: int = 10,
                rescale_every: int = 10, skin: float = DEFAULT_SKIN, lattice: str = "auto",
                two_phase_threshold: float = TWO_PHASE_THRESHOLD) -> MDResult:
    """A box at rest at density ``rho`` and a target ``temperature`` or internal ``energy``
    per atom (exactly one), equilibrated by velocity rescaling, then sampled in NVE.

    With ``temperature`` the peculiar velocities are rescaled to
    :math:`K_{\\rm th} = \\tfrac32(N-1)T` every ``rescale_every`` steps of the equilibration;
    the NVE production then fluctuates about a temperature close to T. With ``energy`` it
    is :func:`constrained_box` at zero momentum. Other parameters and the result as there.
    """
    if (temperature is None) == (energy is None):
        raise ConfigError("state: give exactly one of temperature and energy")
    if energy is not None:
        rho_f = _finite("rho", rho)
        e = _finite("energy", energy)
        return constrained_box(rho_f, np.zeros(3), rho_f * e, potential, n_atoms, rng, dt=dt,
                               t_equilibrate=t_equilibrate, t_sample=t_sample, sample_every=sample_every,
                               rescale_every=rescale_every, skin=skin, lattice=lattice,
                               two_phase_threshold=two_phase_threshold)
    t0 = time.perf_counter()
    n_atoms, dt, sample_every, rescale_every = _check_common(n_atoms, dt, sample_every, rescale_every)
    rho_f = _finite("rho", rho)
    if rho_f <= 0:
        raise MDStateError(f"rho: the density must be > 0, got {rho_f:g}")
    temp = _finite("temperature", temperature)
    if temp <= 0:
        raise ConfigError(f"temperature: must be > 0, got {temp:g}")
    n_eq = _steps("t_equilibrate", t_equilibrate, dt)
    n_prod = _steps("t_sample", t_sample, dt, minimum=2 * sample_every)
    if n_prod // sample_every > MAX_SAMPLES:
        raise ConfigError(f"t_sample: {n_prod // sample_every} samples, at most {MAX_SAMPLES}; "
                          "raise sample_every")
    system = MDSystem.create(n_atoms, rho_f, potential, rng, temperature=temp, lattice=lattice, skin=skin)
    return _equilibrate_and_sample(system, dt, n_eq, n_prod, sample_every, rescale_every, temp, None,
                                   two_phase_threshold, t0)
