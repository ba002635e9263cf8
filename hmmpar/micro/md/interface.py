r"""The interface box: MD flux through a plane between two macro states (the kinetic scheme).

The kinetic schemes of gas dynamics (Pullin, J. Comput. Phys. 34, 231 (1980); Deshpande,
NASA TP 2613 (1986)) take the flux through a cell face :math:`x_{j+1/2}` from the solution
of the kinetic equation started from local equilibria: the state :math:`U_j` on the left of
the face, :math:`U_{j+1}` on the right, averaged over a short time :math:`\tau`. For free
particles the solution is free flight, and the time-averaged flux is exactly the kinetic
flux-vector splitting :math:`F^+(U_j) + F^-(U_{j+1})` of half-range Maxwellian moments for
any :math:`\tau` for which no particle reaches the face from beyond the box. With
interacting atoms the same experiment is run by MD, which is what this module does.

Construction
------------
A periodic box :math:`[0, 2L_h) \times [0, L_y) \times [0, L_z)` with the face at
:math:`x_p = L_h`: :math:`N_L = \rho_L A L_h` atoms in the left half, :math:`N_R = \rho_R A
L_h` in the right half (:math:`A = L_y L_z`).

1. Placement: random sequential addition, each half at its own density, no two atoms
   closer than :math:`d_{\min}` across the halves either (free particles: uniform, no
   exclusion -- the ideal gas is Poisson).
2. Equilibration (interacting potentials only), :math:`n_{eq}` steps of velocity Verlet with
   both halves at rest and a specular wall at :math:`x_p` and at the periodic seam
   :math:`x = 0`: an atom that crosses the wall of its half is reflected
   (:math:`x \to 2x_w - x`, :math:`v_x \to -v_x`). All pair forces act, across the walls as
   well, so the atoms next to a wall see a fluid, not a vacuum. Every ``rescale_every``
   steps the peculiar velocities of each half are scaled so that its thermal kinetic
   energy is :math:`N_s e_s - \Phi_s` (:math:`e_s` the internal energy per atom of the
   state, :math:`\Phi_s = \sum_{i \in s}\phi_i` its potential energy, half of every pair to
   each atom), as in :func:`hmmpar.micro.md.engine.md_loop`; once more at the end.
3. Measurement, :math:`n_m` steps of NVE with the walls removed and the mean velocities
   :math:`\mathbf u_L`, :math:`\mathbf u_R` added to the halves. The flux through the plane
   :math:`x = x_p` by the method of planes (Todd, Evans & Daivis, Phys. Rev. E 52, 1627
   (1995)), per unit area and time:

   .. math::

       F_\rho = \frac{1}{A\tau}\sum_{\rm crossings} s_k, \quad
       \mathbf F_{\mathbf m} = \frac{1}{A\tau}\sum_{\rm crossings} s_k \mathbf v_k
           + \frac{1}{A\tau}\int_0^\tau \sum_{i \in -,\, j \in +} \mathbf f_{ji}\,dt,

       F_E = \frac{1}{A\tau}\sum_{\rm crossings} s_k \left(\tfrac12 v_k^2 + \phi_k\right)
           + \frac{1}{A\tau}\int_0^\tau \sum_{i \in -,\, j \in +}
             \tfrac12 \mathbf f_{ji}\cdot(\mathbf v_i + \mathbf v_j)\,dt,

   with :math:`s_k = \pm 1` for an atom crossing to the right / left (its velocity
   :math:`\mathbf v_k` the drift velocity of that step), and the second sums over the pairs
   that straddle the plane (:math:`i` on the left, :math:`j` on the right,
   :math:`\mathbf f_{ji}` the force on :math:`j` from :math:`i`: the momentum the left
   pushes into the right; the energy term is the work rate of the pair forces with the
   pair energy shared equally, so that :math:`\tfrac12\dot\phi_{ij}` is accounted). The
   integral is the trapezoidal rule over the steps, exact for free particles (no pairs).

The face normal is the box x axis; a face of another axis is rotated by the caller.

Standard error
--------------
The face is cut into :math:`P = p \times p` equal patches in (y, z); each crossing counts
in the patch where it crosses, each pair where its segment crosses the plane. The flux
is the mean of the patch fluxes and its standard error their standard deviation over
:math:`\sqrt P` (patches farther apart than the correlation length are independent).

Validity
--------
Waves from the seam at :math:`x = 0` must not reach the face within :math:`\tau`:
:math:`L_h \ge \tau\,(|u| + 5\sqrt{T})` is enforced (the fastest thermal atoms, five
standard deviations), which also makes free particles from beyond the box negligible
(:math:`< 10^{-6}` of the crossings).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numba
import numpy as np

from hmmpar.core.errors import ConfigError

from .engine import MDError, compute_forces_per_atom
from .lattice import random_positions_in_slabs
from .neighbours import build, initial_capacity, max_relative_displacement2, shift_table
from .potentials import Potential, pair_energy_force

#: accumulator columns: mass, momentum x y z, energy
N_FLUX = 5
#: thermal speeds (standard deviations) an atom may have and still not reach the face from
#: the far seam within the measuring time
SPEED_SIGMAS = 5.0


@dataclass(frozen=True, eq=False)
class InterfaceResult:
    """The flux through the face of an interface box and its standard error.

    ``flux`` and ``flux_stderr`` are ``(5,)``: mass, momentum (x, y, z), energy, per unit
    area and time, along +x (from the left state into the right)."""

    flux: np.ndarray
    flux_stderr: np.ndarray
    crossings: int
    atoms: int
    atom_steps: int
    seconds: float
    box: np.ndarray


@numba.njit(cache=True)
def _reflect(x, v, ids, n_left, x_p, length) -> None:
    """Specular walls of the equilibration: left atoms stay in [0, x_p], right in [x_p, L];
    a reflected atom has its x mirrored in the wall and its v_x reversed."""
    for i in range(x.shape[0]):
        if ids[i] < n_left:
            lo, hi = 0.0, x_p
        else:
            lo, hi = x_p, length
        if x[i, 0] < lo:
            x[i, 0] = 2.0 * lo - x[i, 0]
            v[i, 0] = -v[i, 0]
        elif x[i, 0] > hi:
            x[i, 0] = 2.0 * hi - x[i, 0]
            v[i, 0] = -v[i, 0]


@numba.njit(cache=True)
def _side_rescale(v, ids, n_left, pe_atom, targets, quench) -> int:
    """Scale the peculiar velocities of each half to ``targets[s] - Phi_s`` (mean kept)."""
    quenched = 0
    for s in range(2):
        u = np.zeros(3)
        cnt = 0
        pe = 0.0
        for i in range(v.shape[0]):
            if (ids[i] < n_left) == (s == 0):
                cnt += 1
                pe += pe_atom[i]
                for d in range(3):
                    u[d] += v[i, d]
        if cnt == 0:
            continue
        u /= cnt
        kth = 0.0
        for i in range(v.shape[0]):
            if (ids[i] < n_left) == (s == 0):
                for d in range(3):
                    c = v[i, d] - u[d]
                    kth += 0.5 * c * c
        target = targets[s] - pe
        if target <= 0.0:
            target = quench * cnt
            quenched += 1
        if kth > 0.0:
            f = math.sqrt(target / kth)
            for i in range(v.shape[0]):
                if (ids[i] < n_left) == (s == 0):
                    for d in range(3):
                        v[i, d] = u[d] + f * (v[i, d] - u[d])
    return quenched


@numba.njit(cache=True)
def _set_means(v, ids, n_left, u_left, u_right) -> None:
    """Make each half's mean velocity exactly u_left / u_right."""
    for s in range(2):
        m = np.zeros(3)
        cnt = 0
        for i in range(v.shape[0]):
            if (ids[i] < n_left) == (s == 0):
                cnt += 1
                for d in range(3):
                    m[d] += v[i, d]
        if cnt == 0:
            continue
        target = u_left if s == 0 else u_right
        for i in range(v.shape[0]):
            if (ids[i] < n_left) == (s == 0):
                for d in range(3):
                    v[i, d] += target[d] - m[d] / cnt


@numba.njit(cache=True)
def _patch(y, z, box, p) -> int:
    a = y - box[1] * math.floor(y / box[1])
    b = z - box[2] * math.floor(z / box[2])
    iy = min(int(a / box[1] * p), p - 1)
    iz = min(int(b / box[2] * p), p - 1)
    return iy * p + iz


@numba.njit(cache=True)
def _pair_flux(x, v, kind, params, start, nbr, img, sh, x_p, reach, box, p, weight, acc) -> None:
    """Add ``weight`` times the pair (configurational) flux through x = x_p to ``acc``."""
    rc2 = params[0]
    for i in range(x.shape[0]):
        if abs(x[i, 0] - x_p) >= reach:
            continue
        for k in range(start[i], start[i + 1]):
            j = nbr[k]
            c = img[k]
            xj0 = x[j, 0] + sh[c, 0]
            xj1 = x[j, 1] + sh[c, 1]
            xj2 = x[j, 2] + sh[c, 2]
            a_left = x[i, 0] < x_p
            b_left = xj0 < x_p
            if a_left == b_left:
                continue
            d0 = x[i, 0] - xj0
            d1 = x[i, 1] - xj1
            d2 = x[i, 2] - xj2
            r2 = d0 * d0 + d1 * d1 + d2 * d2
            if r2 >= rc2:
                continue
            phi, fr = pair_energy_force(kind, params, r2)
            # force on i from j is fr * d; on the right atom from the left one:
            s = -1.0 if a_left else 1.0
            g0 = s * fr * d0
            g1 = s * fr * d1
            g2 = s * fr * d2
            t = (x_p - x[i, 0]) / (xj0 - x[i, 0])
            q = _patch(x[i, 1] + t * (xj1 - x[i, 1]), x[i, 2] + t * (xj2 - x[i, 2]), box, p)
            acc[q, 1] += weight * g0
            acc[q, 2] += weight * g1
            acc[q, 3] += weight * g2
            acc[q, 4] += weight * 0.5 * (g0 * (v[i, 0] + v[j, 0]) + g1 * (v[i, 1] + v[j, 1])
                                         + g2 * (v[i, 2] + v[j, 2]))


@numba.njit(cache=True)
def interface_loop(x, v, ids, f, box, kind, params, reach, skin, dt, n_left, n_eq, rescale_every,
                   targets, quench, n_meas, u_left, u_right, x_p, p, x_ref, start, nbr, img, pe_atom,
                   vir_atom, acc, stats):
    """Equilibrate behind walls, then measure the flux through x = x_p (module docstring).

    ``stats``: [status (0 ok, 1 non-finite), builds, crossings, quenches]. Returns
    ``(nbr, img)``."""
    n = x.shape[0]
    half_dt = 0.5 * dt
    limit2 = 0.25 * skin * skin
    sh = shift_table(box)
    interacting = kind != 0
    length = box[0]
    x_old = np.empty_like(x)
    pe_now = np.zeros(n)
    if interacting:
        nbr, img, k = build(x, v, ids, box, reach, x_ref, start, nbr, img)
        if k < 0:
            stats[0] = 1
            return nbr, img
        stats[1] += 1
        compute_forces_per_atom(x, f, kind, params, start, nbr, img, sh, pe_atom, vir_atom)
    else:
        f[:, :] = 0.0
        pe_atom[:] = 0.0
    for step in range(1, n_eq + n_meas + 1):
        measuring = step > n_eq
        if step == n_eq + 1:
            # end of equilibration: exact energies, then the mean velocities
            if n_eq > 0:
                stats[3] += _side_rescale(v, ids, n_left, pe_atom, targets, quench)
            _set_means(v, ids, n_left, u_left, u_right)
            if interacting:
                _pair_flux(x, v, kind, params, start, nbr, img, sh, x_p, reach, box, p, 0.5 * dt, acc)
        for i in range(n):
            pe_now[i] = pe_atom[i]
            for d in range(3):
                v[i, d] += half_dt * f[i, d]
                x_old[i, d] = x[i, d]
                x[i, d] += dt * v[i, d]
        if measuring:
            for i in range(n):
                a = x_old[i, 0] - x_p
                b = x[i, 0] - x_p
                if (a < 0.0) != (b < 0.0) and abs(a) < 0.5 * length:
                    s = 1.0 if b >= 0.0 else -1.0
                    t = a / (a - b)
                    q = _patch(x_old[i, 1] + t * (x[i, 1] - x_old[i, 1]),
                               x_old[i, 2] + t * (x[i, 2] - x_old[i, 2]), box, p)
                    acc[q, 0] += s
                    acc[q, 1] += s * v[i, 0]
                    acc[q, 2] += s * v[i, 1]
                    acc[q, 3] += s * v[i, 2]
                    acc[q, 4] += s * (0.5 * (v[i, 0] * v[i, 0] + v[i, 1] * v[i, 1] + v[i, 2] * v[i, 2])
                                      + pe_now[i])
                    stats[2] += 1
        else:
            _reflect(x, v, ids, n_left, x_p, length)
        if interacting:
            worst = max_relative_displacement2(x, x_ref)
            if not worst <= limit2:
                nbr, img, k = build(x, v, ids, box, reach, x_ref, start, nbr, img)
                if k < 0:
                    stats[0] = 1
                    return nbr, img
                stats[1] += 1
            compute_forces_per_atom(x, f, kind, params, start, nbr, img, sh, pe_atom, vir_atom)
        for i in range(n):
            for d in range(3):
                v[i, d] += half_dt * f[i, d]
        if not measuring and rescale_every > 0 and step % rescale_every == 0:
            stats[3] += _side_rescale(v, ids, n_left, pe_atom, targets, quench)
        if measuring and interacting:
            w = 0.5 * dt if step == n_eq + n_meas else dt
            _pair_flux(x, v, kind, params, start, nbr, img, sh, x_p, reach, box, p, w, acc)
        if not math.isfinite(x[0, 0] + v[0, 0] + pe_atom[0]):
            stats[0] = 1
            return nbr, img
    for i in range(n):
        if not (math.isfinite(x[i, 0] + x[i, 1] + x[i, 2]) and math.isfinite(v[i, 0] + v[i, 1] + v[i, 2])):
            stats[0] = 1
    return nbr, img


def _state(name: str, rho: float, velocity, e_internal: float) -> tuple[float, np.ndarray, float]:
    u = np.asarray(velocity, dtype=float).reshape(-1)
    if u.size != 3:
        raise ConfigError(f"{name} state: velocity needs 3 components, got {u.size}")
    if not (math.isfinite(rho) and rho > 0):
        raise ConfigError(f"{name} state: density must be a finite number > 0, got {rho!r}")
    if not (np.all(np.isfinite(u)) and math.isfinite(e_internal)):
        raise ConfigError(f"{name} state: velocity and energy must be finite, got u = {u}, e = {e_internal!r}")
    return float(rho), u, float(e_internal)


def interface_box(left: tuple, right: tuple, potential: Potential, n_atoms: int, rng: np.random.Generator,
                  dt: float = 0.005, t_equilibrate: float = 2.0, t_sample: float = 0.5,
                  rescale_every: int = 10, patches: int = 3, skin: float = 0.3,
                  d_min: float | None = None) -> InterfaceResult:
    r"""MD flux through the face between two states (module docstring).

    Parameters
    ----------
    left, right
        ``(rho, velocity (3,), e)``: number density, mean velocity and internal energy per
        atom of the state on each side of the face (m = 1).
    potential
        The pair potential (:func:`~hmmpar.micro.md.potentials.make_potential`).
    n_atoms
        Atoms in the box (both halves; the split follows the densities).
    rng
        The task's random stream: placement, then velocities.
    dt, t_equilibrate, t_sample
        Time step, equilibration time behind the walls (not used for free particles),
        measuring time :math:`\tau`.
    patches
        :math:`p`: the face is cut into :math:`p^2` patches for the standard error.

    Returns
    -------
    InterfaceResult
        Flux (mass, momentum x/y/z, energy) per unit area and time through the face, from
        left to right, with its standard error.

    Raises
    ------
    ConfigError
        A state that is not finite or has a density <= 0; a box too small for the cutoff
        or for the measuring time (the message says what to raise).
    MDError
        Non-finite positions (time step too large for the state).
    """
    rho_l, u_l, e_l = _state("left", *left)
    rho_r, u_r, e_r = _state("right", *right)
    if not (math.isfinite(dt) and dt > 0 and math.isfinite(t_sample) and t_sample > 0
            and math.isfinite(t_equilibrate) and t_equilibrate >= 0):
        raise ConfigError(f"interface box: dt, t_sample must be > 0 and t_equilibrate >= 0, got "
                          f"{dt!r}, {t_sample!r}, {t_equilibrate!r}")
    patches = int(patches)
    if patches < 2:
        raise ConfigError(f"interface box: patches must be >= 2 (the standard error), got {patches}")
    interacting = potential.interacting
    # temperature scale for the speed bound: free particles e = 3/2 T; else a bound from e
    # above the ground state is not known here, so the kinetic part after equilibration is
    # bounded by the state's e minus the lowest pair energy per atom (-8 for LJ at contact)
    t_max = max(e_l, e_r) * 2.0 / 3.0 + (16.0 / 3.0 if interacting else 0.0)
    t_max = max(t_max, 1e-12)
    u_max = max(abs(u_l[0]), abs(u_r[0]))
    half_min = t_sample * (u_max + SPEED_SIGMAS * math.sqrt(t_max))
    rc = potential.cutoff if interacting else 0.0
    side_min = 2.0 * (rc + skin) if interacting else 0.0
    # geometry: N = (rho_l + rho_r) A L_h with the thinnest halves allowed (the flux is
    # measured at the face; atoms farther than the fastest ones travel in tau only cost)
    n_atoms = int(n_atoms)
    dens = rho_l + rho_r
    half = max(half_min, rc + skin)
    side = math.sqrt(n_atoms / (dens * half))
    if interacting and side <= side_min:
        need = int(math.ceil(dens * side_min ** 2 * max(half_min, side_min))) + 1
        raise ConfigError(f"interface box: {n_atoms} atoms give a face of side {side:.3g} <= 2 (r_c + skin) = "
                          f"{side_min:.3g} (densities {rho_l:g} | {rho_r:g}, measuring time {t_sample:g}); "
                          f"use at least {need} atoms")
    box = np.array([2.0 * half, side, side])
    x_p = half
    n_left = max(1, int(round(rho_l * side * side * half)))
    n_right = max(1, int(round(rho_r * side * side * half)))
    n = n_left + n_right
    # placement
    if interacting:
        if d_min is None:
            d_min = min(0.9, 0.7 * max(rho_l, rho_r) ** (-1.0 / 3.0))
        try:
            x = random_positions_in_slabs([n_left, n_right], box, rng, d_min)
        except ConfigError:
            raise ConfigError(f"interface box: could not place {n} atoms at densities {rho_l:g} | {rho_r:g} at "
                              f"least {d_min:g} apart") from None
    else:
        x = rng.random((n, 3)) * np.array([half, side, side])
        x[n_left:, 0] += half
    v = np.empty((n, 3))
    for sl, e, cnt in ((slice(0, n_left), e_l, n_left), (slice(n_left, n), e_r, n_right)):
        temp = max(2.0 / 3.0 * e, 0.1) if interacting else 2.0 / 3.0 * e
        c = rng.standard_normal((cnt, 3)) * math.sqrt(max(temp, 0.0))
        c -= c.mean(axis=0)
        ke = 0.5 * float(np.sum(c * c))
        if not interacting:  # the ideal gas: exactly N e of thermal energy
            if e < 0:
                raise ConfigError(f"interface box: free particles need an internal energy >= 0, got {e:g}")
            if ke > 0:
                c *= math.sqrt(cnt * e / ke)
        v[sl] = c
    n_eq = int(round(t_equilibrate / dt)) if interacting else 0
    n_meas = max(1, int(round(t_sample / dt)))
    reach = rc + skin
    ids = np.arange(n, dtype=np.int64)
    f = np.zeros_like(x)
    x_ref = x.copy()
    start = np.zeros(n + 1, dtype=np.int64)
    cap = initial_capacity(n, n / float(np.prod(box)), reach) if interacting else 1
    nbr = np.zeros(cap, dtype=np.int32)
    img = np.zeros(cap, dtype=np.int8)
    pe_atom = np.zeros(n)
    vir_atom = np.zeros((n, 6))
    acc = np.zeros((patches * patches, N_FLUX))
    stats = np.zeros(4)
    targets = np.array([n_left * e_l, n_right * e_r])
    t0 = time.perf_counter()
    interface_loop(x, v, ids, f, box, potential.kind, potential.params, reach, skin, float(dt), n_left, n_eq,
                   int(rescale_every), targets, 1e-3, n_meas, u_l, u_r, x_p, patches, x_ref, start, nbr, img,
                   pe_atom, vir_atom, acc, stats)
    seconds = time.perf_counter() - t0
    if stats[0] != 0:
        raise MDError(f"MD interface box: positions became non-finite (states rho = {rho_l:g} | {rho_r:g}, "
                      f"e = {e_l:g} | {e_r:g}; time step {dt:g} too large?)")
    tau = n_meas * dt
    patch_area = side * side / (patches * patches)
    per_patch = acc / (patch_area * tau)
    flux = per_patch.mean(axis=0)
    stderr = per_patch.std(axis=0, ddof=1) / math.sqrt(per_patch.shape[0])
    return InterfaceResult(flux=flux, flux_stderr=stderr, crossings=int(stats[2]), atoms=n,
                           atom_steps=n * (n_eq + n_meas), seconds=seconds, box=box)
