r"""Irving-Kirkwood estimators of the box-averaged fluxes, block averages, and the
Galilean (lab-frame) form of the fluxes.

Box-averaged Irving-Kirkwood fluxes
-----------------------------------
For N atoms of mass m in a periodic box of volume V, the Irving-Kirkwood momentum and
energy fluxes (Irving & Kirkwood, J. Chem. Phys. 18, 817 (1950); Hardy, J. Chem. Phys. 76,
622 (1982)) averaged over the whole box have no localisation kernel left (Todd, Evans &
Daivis, Phys. Rev. E 52, 1627 (1995)):

.. math::

    \Pi = \frac{1}{V}\Big[\sum_i m\,\mathbf v_i\otimes\mathbf v_i
          + \frac{1}{2}\sum_{i\ne j}\mathbf r_{ij}\otimes\mathbf f_{ij}\Big],
    \qquad
    \mathbf J = \frac{1}{V}\Big[\sum_i e_i\mathbf v_i
          + \frac{1}{2}\sum_{i\ne j}\mathbf r_{ij}\,(\mathbf f_{ij}\cdot\mathbf v_i)\Big],

with :math:`\mathbf r_{ij} = \mathbf x_i - \mathbf x_j` (minimum image),
:math:`\mathbf f_{ij}` the force on *i* from *j* and
:math:`e_i = \tfrac{1}{2}m|\mathbf v_i|^2 + \tfrac{1}{2}\sum_j\phi(r_{ij})`. For pair forces
:math:`\mathbf f_{ij} = F(r_{ij})\mathbf r_{ij}`, so the virial is symmetric. The kernels
accumulate per atom :math:`\phi_i = \tfrac12\sum_j\phi(r_{ij})` and the per-atom virial
:math:`W_i = \tfrac{1}{2}\sum_{j}\mathbf r_{ij}\otimes\mathbf f_{ij}` (6 components
xx, yy, zz, xy, xz, yz) from the half list, half of each pair to each atom; then

.. math::

    \Pi = \frac{1}{V}\Big[\sum_i m\mathbf v_i\otimes\mathbf v_i + \sum_i W_i\Big],\qquad
    \mathbf J = \underbrace{\frac{1}{V}\sum_i \tfrac12 m|\mathbf v_i|^2\mathbf v_i}_{\rm kinetic}
        + \underbrace{\frac{1}{V}\sum_i \phi_i\mathbf v_i}_{\rm potential}
        + \underbrace{\frac{1}{V}\sum_i W_i\mathbf v_i}_{\rm virial},

since :math:`\tfrac12\sum_{i\ne j}\mathbf r_{ij}(\mathbf f_{ij}\cdot\mathbf v_i)
= \sum_i W_i\mathbf v_i` for symmetric :math:`\mathbf r_{ij}\otimes\mathbf f_{ij}`.
(LAMMPS ``compute stress/atom`` returns :math:`-(m\mathbf v_i\otimes\mathbf v_i + W_i)`
in the same component order and pressure-volume units, and ``compute pe/atom``
returns :math:`\phi_i`: :func:`sample_row` takes exactly these per-atom arrays.)

Scalars per sample: with the box mean velocity :math:`\mathbf u = \sum_i\mathbf v_i/N`
(m = 1) and the peculiar velocities :math:`\mathbf c_i = \mathbf v_i - \mathbf u`,
the thermal kinetic energy is :math:`K_{\rm th} = \tfrac12\sum_i|\mathbf c_i|^2`, the
temperature :math:`T = 2K_{\rm th}/(3(N-1)k_B)` (**3(N-1) degrees of freedom**: the total
momentum is fixed, which removes 3), and the pressure
:math:`p = [2K_{\rm th} + \mathrm{tr}\sum_i W_i]/(3V)`. With tail corrections
(:mod:`hmmpar.micro.md.potentials`) the energy per atom gets :math:`u_{\rm tail}`,
:math:`p` and the diagonal of :math:`\Pi` get :math:`p_{\rm tail}`, and, in the same
mean-field sense (each atom carries :math:`u_{\rm tail}` and the isotropic virial
:math:`p_{\rm tail}V/N`), :math:`\mathbf J_{\rm pot}` gets :math:`\rho u_{\rm tail}\mathbf u`
and :math:`\mathbf J_{\rm vir}` gets :math:`p_{\rm tail}\mathbf u`.

Lab-frame fluxes and the Euler flux (Galilean transformation)
-------------------------------------------------------------
Write :math:`\mathbf v_i = \mathbf u + \mathbf c_i` with :math:`\sum_i\mathbf c_i = 0`
exactly. Then, per sample and without approximation,

.. math::

    \sum_i m\mathbf v_i\otimes\mathbf v_i
        = \sum_i m\mathbf c_i\otimes\mathbf c_i + Nm\,\mathbf u\otimes\mathbf u
    \;\Rightarrow\;
    \Pi = \rho\,\mathbf u\otimes\mathbf u + P,\qquad
    P = \frac1V\Big[\sum_i m\mathbf c_i\otimes\mathbf c_i + \sum_i W_i\Big]

(:math:`\rho = Nm/V`; the virial depends on positions only). For the energy flux,
:math:`\tfrac12|\mathbf v_i|^2\mathbf v_i = \tfrac12|\mathbf c_i|^2\mathbf c_i
+ (\mathbf u\cdot\mathbf c_i)\mathbf c_i + \tfrac12|\mathbf c_i|^2\mathbf u
+ (\mathbf u\cdot\mathbf c_i)\mathbf u + \tfrac12|\mathbf u|^2(\mathbf u + \mathbf c_i)`;
summing, the terms linear in :math:`\mathbf c_i` alone vanish, and

.. math::

    V\mathbf J = V\mathbf q
        + \Big(K_{\rm th} + \tfrac12 Nm|\mathbf u|^2 + \sum_i\phi_i\Big)\mathbf u
        + \Big(\sum_i m\mathbf c_i\otimes\mathbf c_i + \sum_i W_i\Big)\mathbf u
    \;\Rightarrow\;
    \mathbf J = (E + P)\,\mathbf u + \mathbf q,

with the total energy density :math:`E = \rho e + \tfrac12\rho|\mathbf u|^2` and the heat
flux of the rest frame
:math:`\mathbf q = \frac1V\sum_i[(\tfrac12 m|\mathbf c_i|^2 + \phi_i)\mathbf c_i + W_i\mathbf c_i]`.
At equilibrium the stress is isotropic on average, :math:`\langle P\rangle = p\,I` (the
viscous stress averages to zero), and :math:`\langle\mathbf q\rangle = 0` (no gradients, no
heat flux), so the box flux is the Euler flux

.. math::

    \langle\Pi\rangle = \rho\,\mathbf u\otimes\mathbf u + p(\rho, e)\,I,\qquad
    \langle\mathbf J\rangle = (E + p(\rho, e))\,\mathbf u,

with the pressure :math:`p(\rho, e)` of the micro model measured at the box's density and
internal energy. :func:`euler_flux` evaluates this form for a given pressure.

Block averages
--------------
Samples are correlated in time. :func:`block_average` uses the blocking transformation of
Flyvbjerg & Petersen (J. Chem. Phys. 91, 461 (1989)): pairs of neighbouring samples are
averaged repeatedly; at level k the estimate of the standard error is
:math:`\sqrt{s_k^2/(n_k - 1)}` (:math:`s_k^2` the variance of the :math:`n_k` block means),
which grows with k until the blocks are longer than the correlation time and then stays
on a plateau. The level is chosen by the rule of Lee, Conduit, Nemec, Lopez Rios &
Drummond (Phys. Rev. E 83, 066706 (2011), as in the ``pyblock`` package): the smallest
block size :math:`B = 2^k` with :math:`B^3 > 2 n (\sigma_k/\sigma_0)^4`; when no level
qualifies (a run too short for its correlation time) the largest estimate over levels
with at least 8 blocks is used and the quantity is reported as not converged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

#: columns of a sample row (energies per atom; fluxes per volume)
FIELDS = (
    "potential_energy", "kinetic_energy", "thermal_kinetic_energy", "internal_energy", "total_energy",
    "temperature", "pressure",
    "velocity_x", "velocity_y", "velocity_z",
    "pi_xx", "pi_yy", "pi_zz", "pi_xy", "pi_xz", "pi_yz",
    "j_x", "j_y", "j_z",
    "j_kinetic_x", "j_kinetic_y", "j_kinetic_z",
    "j_potential_x", "j_potential_y", "j_potential_z",
    "j_virial_x", "j_virial_y", "j_virial_z",
    "s_kmin_x", "s_kmin_y", "s_kmin_z",
)
N_FIELDS = len(FIELDS)
COLUMN = {name: k for k, name in enumerate(FIELDS)}
C_PE, C_KE, C_KTH, C_EINT, C_ETOT, C_T, C_P = range(7)
C_U, C_PI, C_J, C_JK, C_JP, C_JV, C_SK = 7, 10, 16, 19, 22, 25, 28

#: pairs (a, b) of the 6 stored components xx, yy, zz, xy, xz, yz
VOIGT = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))

#: S(k_min) above which a box is flagged as two-phase (see :func:`two_phase_test`)
TWO_PHASE_THRESHOLD = 10.0


@numba.njit(cache=True, error_model="numpy")
def sample_row(x: np.ndarray, v: np.ndarray, pe_atom: np.ndarray, vir_atom: np.ndarray,
               box: np.ndarray, tail_e: float, tail_p: float, row: np.ndarray) -> None:
    r"""Fill one sample ``row`` (columns :data:`FIELDS`) from per-atom data.

    Parameters
    ----------
    x, v
        (N, 3) positions (any periodic image) and velocities, m = 1.
    pe_atom
        (N,) :math:`\phi_i = \tfrac12\sum_j\phi(r_{ij})`.
    vir_atom
        (N, 6) :math:`W_i = \tfrac12\sum_j\mathbf r_{ij}\otimes\mathbf f_{ij}`
        (xx, yy, zz, xy, xz, yz).
    tail_e, tail_p
        :math:`u_{\rm tail}` per atom and :math:`p_{\rm tail}` (0 without corrections).
    """
    n = x.shape[0]
    vol = box[0] * box[1] * box[2]
    inv_v = 1.0 / vol
    rho = n * inv_v
    p0 = 0.0
    p1 = 0.0
    p2 = 0.0
    ke = 0.0
    pe = 0.0
    k00 = k11 = k22 = k01 = k02 = k12 = 0.0
    w00 = w11 = w22 = w01 = w02 = w12 = 0.0
    jk0 = jk1 = jk2 = 0.0
    jp0 = jp1 = jp2 = 0.0
    jv0 = jv1 = jv2 = 0.0
    # structure factor at the smallest wavevector along each axis
    c0 = s0 = c1 = s1 = c2 = s2 = 0.0
    t0 = 2.0 * math.pi / box[0]
    t1 = 2.0 * math.pi / box[1]
    t2 = 2.0 * math.pi / box[2]
    for i in range(n):
        a = v[i, 0]
        b = v[i, 1]
        c = v[i, 2]
        p0 += a
        p1 += b
        p2 += c
        e_k = 0.5 * (a * a + b * b + c * c)
        ke += e_k
        phi = pe_atom[i]
        pe += phi
        k00 += a * a
        k11 += b * b
        k22 += c * c
        k01 += a * b
        k02 += a * c
        k12 += b * c
        wxx = vir_atom[i, 0]
        wyy = vir_atom[i, 1]
        wzz = vir_atom[i, 2]
        wxy = vir_atom[i, 3]
        wxz = vir_atom[i, 4]
        wyz = vir_atom[i, 5]
        w00 += wxx
        w11 += wyy
        w22 += wzz
        w01 += wxy
        w02 += wxz
        w12 += wyz
        jk0 += e_k * a
        jk1 += e_k * b
        jk2 += e_k * c
        jp0 += phi * a
        jp1 += phi * b
        jp2 += phi * c
        jv0 += wxx * a + wxy * b + wxz * c
        jv1 += wxy * a + wyy * b + wyz * c
        jv2 += wxz * a + wyz * b + wzz * c
        q = t0 * x[i, 0]
        c0 += math.cos(q)
        s0 += math.sin(q)
        q = t1 * x[i, 1]
        c1 += math.cos(q)
        s1 += math.sin(q)
        q = t2 * x[i, 2]
        c2 += math.cos(q)
        s2 += math.sin(q)
    u0 = p0 / n
    u1 = p1 / n
    u2 = p2 / n
    kth = ke - 0.5 * (p0 * p0 + p1 * p1 + p2 * p2) / n
    pe_total = pe + n * tail_e
    row[0] = pe_total / n
    row[1] = ke / n
    row[2] = kth / n
    row[3] = (kth + pe_total) / n
    row[4] = (ke + pe_total) / n
    row[5] = 2.0 * kth / (3.0 * (n - 1)) if n > 1 else 0.0
    row[6] = (2.0 * kth + w00 + w11 + w22) * inv_v / 3.0 + tail_p
    row[7] = u0
    row[8] = u1
    row[9] = u2
    row[10] = (k00 + w00) * inv_v + tail_p
    row[11] = (k11 + w11) * inv_v + tail_p
    row[12] = (k22 + w22) * inv_v + tail_p
    row[13] = (k01 + w01) * inv_v
    row[14] = (k02 + w02) * inv_v
    row[15] = (k12 + w12) * inv_v
    row[19] = jk0 * inv_v
    row[20] = jk1 * inv_v
    row[21] = jk2 * inv_v
    row[22] = jp0 * inv_v + rho * tail_e * u0
    row[23] = jp1 * inv_v + rho * tail_e * u1
    row[24] = jp2 * inv_v + rho * tail_e * u2
    row[25] = jv0 * inv_v + tail_p * u0
    row[26] = jv1 * inv_v + tail_p * u1
    row[27] = jv2 * inv_v + tail_p * u2
    for d in range(3):
        row[16 + d] = row[19 + d] + row[22 + d] + row[25 + d]
    row[28] = (c0 * c0 + s0 * s0) / n
    row[29] = (c1 * c1 + s1 * s1) / n
    row[30] = (c2 * c2 + s2 * s2) / n


def block_average(data: np.ndarray, min_blocks: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard error of each column of ``data`` by Flyvbjerg-Petersen blocking.

    Parameters
    ----------
    data
        (n,) or (n, m) samples in time order.
    min_blocks
        Fewest blocks a level may have to be used as the fallback.

    Returns
    -------
    mean, stderr
        Per column (the mean is over all samples).
    converged
        Per column, True when a level met the criterion of Lee et al. (2011) (see the
        module docstring); a column with zero variance counts as converged.
    """
    x = np.asarray(data, dtype=float)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    n, m = x.shape
    mean = x.mean(axis=0) if n else np.full(m, np.nan)
    if n < 2:
        se = np.full(m, np.nan)
        conv = np.zeros(m, dtype=bool)
        return (mean[0], se[0], conv[0]) if squeeze else (mean, se, conv)
    ses, sizes, counts = [], [], []
    block, size = x, 1
    while block.shape[0] >= 2:
        k = block.shape[0]
        ses.append(np.sqrt(np.maximum(block.var(axis=0), 0.0) / (k - 1)))
        sizes.append(size)
        counts.append(k)
        half = k // 2
        block = 0.5 * (block[0:2 * half:2] + block[1:2 * half:2])
        size *= 2
    ses = np.array(ses)  # (levels, m)
    se0 = ses[0]
    se = np.empty(m)
    conv = np.zeros(m, dtype=bool)
    for col in range(m):
        if se0[col] == 0.0 or not np.isfinite(se0[col]):
            se[col] = se0[col]
            conv[col] = se0[col] == 0.0
            continue
        chosen = None
        for lev, b in enumerate(sizes):
            if float(b) ** 3 > 2.0 * n * (ses[lev, col] / se0[col]) ** 4:
                chosen = lev
                break
        if chosen is not None and counts[chosen] >= 2:
            se[col] = ses[chosen, col]
            conv[col] = True
        else:
            usable = [lev for lev, c in enumerate(counts) if c >= min_blocks] or [0]
            se[col] = float(np.max(ses[usable, col]))
    return (mean[0], se[0], conv[0]) if squeeze else (mean, se, conv)


def two_phase_test(s_kmin: np.ndarray, threshold: float = TWO_PHASE_THRESHOLD) -> tuple[bool, float]:
    r"""Flag a box that has demixed into two phases, from its structure factor.

    The statistic is :math:`S_{\max} = \max_\alpha\langle S(\mathbf k_\alpha)\rangle` over the
    three smallest wavevectors :math:`\mathbf k_\alpha = 2\pi\mathbf e_\alpha/L_\alpha`, with
    :math:`S(\mathbf k) = |\sum_j e^{i\mathbf k\cdot\mathbf x_j}|^2/N` averaged over the
    samples (columns ``s_kmin_*``).

    Why it works: for a homogeneous fluid :math:`S(k\to 0) = \rho k_B T\kappa_T`, of order
    one (1 for the ideal gas, about 0.05 for the LJ liquid near the triple point, about 2
    for LJ at :math:`\rho = 0.3, T = 2`); it grows only close to the critical point. A box
    that has split into a liquid slab (density :math:`\rho_l`, volume fraction
    :math:`\varphi`) and its vapour has a density wave at the box wavelength, and
    :math:`S(k_{\min}) \approx N(\Delta\rho/\rho)^2\sin^2(\pi\varphi)/\pi^2` along the slab
    normal, which is proportional to N: about 0.5 N for LJ at :math:`\rho = 0.3, T = 0.8`.
    A droplet gives a similar O(N) signal on all three axes.

    The default threshold 10 lies far above every homogeneous state except those within a
    few per cent of the critical temperature (where a small box cannot represent the
    homogeneous fluid either) and far below a demixed box of a few hundred atoms or more.

    Returns
    -------
    (flag, statistic)
    """
    s = np.asarray(s_kmin, dtype=float).reshape(-1, 3)
    stat = float(np.max(s.mean(axis=0))) if s.shape[0] else float("nan")
    return bool(stat > threshold), stat


def euler_flux(density: float, momentum: np.ndarray, energy_density: float,
               pressure: float) -> tuple[np.ndarray, np.ndarray]:
    r"""The Euler flux :math:`(\rho\mathbf u\otimes\mathbf u + pI,\ (E + p)\mathbf u)`.

    ``momentum`` is :math:`\rho\mathbf u`, ``energy_density`` is E (per volume); see the
    module docstring for why the equilibrium box flux takes this form.
    """
    m = np.asarray(momentum, dtype=float)
    u = m / density
    return np.outer(m, u) + pressure * np.eye(3), (energy_density + pressure) * u


def _tensor(values: np.ndarray) -> np.ndarray:
    t = np.empty((3, 3))
    for k, (a, b) in enumerate(VOIGT):
        t[a, b] = t[b, a] = values[k]
    return t


@dataclass(frozen=True, eq=False)
class MDResult:
    """Time averages of one MD box and their standard errors (``*_err``).

    Energies are per atom, fluxes per unit volume, everything in reduced LJ units and in
    the lab frame (the box moves with ``velocity``).
    """

    n_atoms: int
    density: float
    volume: float
    velocity: np.ndarray                 # (3,) mean velocity u of the box
    momentum_flux: np.ndarray            # (3, 3) Pi
    momentum_flux_err: np.ndarray
    energy_flux: np.ndarray              # (3,) J = kinetic + potential + virial
    energy_flux_err: np.ndarray
    energy_flux_kinetic: np.ndarray
    energy_flux_kinetic_err: np.ndarray
    energy_flux_potential: np.ndarray
    energy_flux_potential_err: np.ndarray
    energy_flux_virial: np.ndarray
    energy_flux_virial_err: np.ndarray
    pressure: float
    pressure_err: float
    temperature: float
    temperature_err: float
    potential_energy: float              # per atom, with tail correction if enabled
    potential_energy_err: float
    kinetic_energy: float                # per atom, lab frame (includes |u|^2/2)
    kinetic_energy_err: float
    thermal_kinetic_energy: float        # per atom, peculiar velocities: 3 (N-1) T / (2 N)
    thermal_kinetic_energy_err: float
    internal_energy: float               # per atom: thermal kinetic + potential
    internal_energy_err: float
    total_energy: float                  # per atom: lab-frame kinetic + potential
    total_energy_err: float
    structure_factor_kmin: float         # two-phase statistic, see two_phase_test
    two_phase: bool
    n_samples: int
    converged: bool                      # the error bars of p, T, U, Pi and J met the blocking criterion
    atom_steps: int
    seconds: float
    samples: np.ndarray = field(repr=False)   # (n_samples, N_FIELDS), columns FIELDS

    @property
    def atom_steps_per_second(self) -> float:
        return self.atom_steps / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict:
        """Plain Python values (lists for arrays), without the samples: JSON-ready."""
        out = {}
        for name in self.__dataclass_fields__:
            if name == "samples":
                continue
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, (np.floating, np.integer, np.bool_)):
                value = value.item()
            out[name] = value
        out["atom_steps_per_second"] = self.atom_steps_per_second
        return out


# the fluctuating outputs whose error bars must converge (not the conserved mean velocity
# and internal energy, whose round-off-level series say nothing about the run length)
_CONVERGENCE_COLUMNS = np.array([C_PE, C_T, C_P] + list(range(C_PI, C_PI + 6)) + list(range(C_J, C_J + 3)))


def summarize(samples: np.ndarray, n_atoms: int, volume: float, atom_steps: int, seconds: float,
              two_phase_threshold: float = TWO_PHASE_THRESHOLD) -> MDResult:
    """Block-average the sample rows of a run into an :class:`MDResult`."""
    mean, se, conv = block_average(samples)
    flag, stat = two_phase_test(samples[:, C_SK:C_SK + 3], two_phase_threshold)
    sl = slice
    return MDResult(
        n_atoms=int(n_atoms), density=n_atoms / volume, volume=float(volume),
        velocity=mean[sl(C_U, C_U + 3)].copy(),
        momentum_flux=_tensor(mean[C_PI:C_PI + 6]), momentum_flux_err=_tensor(se[C_PI:C_PI + 6]),
        energy_flux=mean[C_J:C_J + 3].copy(), energy_flux_err=se[C_J:C_J + 3].copy(),
        energy_flux_kinetic=mean[C_JK:C_JK + 3].copy(), energy_flux_kinetic_err=se[C_JK:C_JK + 3].copy(),
        energy_flux_potential=mean[C_JP:C_JP + 3].copy(), energy_flux_potential_err=se[C_JP:C_JP + 3].copy(),
        energy_flux_virial=mean[C_JV:C_JV + 3].copy(), energy_flux_virial_err=se[C_JV:C_JV + 3].copy(),
        pressure=float(mean[C_P]), pressure_err=float(se[C_P]),
        temperature=float(mean[C_T]), temperature_err=float(se[C_T]),
        potential_energy=float(mean[C_PE]), potential_energy_err=float(se[C_PE]),
        kinetic_energy=float(mean[C_KE]), kinetic_energy_err=float(se[C_KE]),
        thermal_kinetic_energy=float(mean[C_KTH]), thermal_kinetic_energy_err=float(se[C_KTH]),
        internal_energy=float(mean[C_EINT]), internal_energy_err=float(se[C_EINT]),
        total_energy=float(mean[C_ETOT]), total_energy_err=float(se[C_ETOT]),
        structure_factor_kmin=stat, two_phase=flag,
        n_samples=int(samples.shape[0]), converged=bool(np.all(conv[_CONVERGENCE_COLUMNS])),
        atom_steps=int(atom_steps), seconds=float(seconds), samples=samples,
    )
