r"""``micro.model = "md"``: the gas-dynamics fluxes from molecular dynamics.

State tasks (staggered schemes)
    Each row's conserved state :math:`U = (\rho, \mathbf m, E)` becomes a periodic MD box
    constrained to it (:func:`hmmpar.micro.md.box.constrained_box`: density, mean
    velocity, internal energy). Its Irving-Kirkwood averages give the flux in direction d,

    .. math::

        F_d(U) = \bigl(m_d,\ \Pi_{d1}, \dots, \Pi_{d\,\dim},\ J_d\bigr),

    the mass flux exactly (it is a conserved variable), :math:`\Pi` and :math:`\mathbf J`
    with their block-average standard errors.
Interface tasks (kinetic scheme)
    The two states side by side in an interface box
    (:func:`hmmpar.micro.md.interface.interface_box`); the face normal, axis ``a`` of the
    macro grid, is the box's x axis (the momentum components are permuted in and out).

The macro state is 1D or 2D; the MD box is always 3D, with zero mean velocity along the
directions the macro grid does not have.

Sound speed and initial data
    From a :class:`~hmmpar.macro.finite_volume.eos_table.TabulatedEOS` of MD state points
    :math:`(\rho_k, T_l)` (:meth:`MDGasModel.build_eos`), computed once per run by all
    ranks together (point ``i`` on rank ``i mod R``, each from its own random stream, so
    the table is the same on any rank count) and stored in the checkpoint.
"""
from __future__ import annotations

import math

import numpy as np

from hmmpar.core.errors import ConfigError
from hmmpar.core.farm import TaskContext
from hmmpar.core.rng import task_rng
from hmmpar.macro.finite_volume.eos_table import TabulatedEOS

#: random-stream family of the EOS table's state points (distinct from tasks and instances)
EOS_FAMILY = 2
#: the table's arrays as stored in a checkpoint (attributes ``eos_<name>``)
EOS_ATTRS = ("density", "energy", "pressure", "temperature")


def _potential(micro: dict):
    from hmmpar.micro.md.potentials import make_potential
    name = micro["potential"]
    if name == "none":
        return make_potential("none")
    if name == "wca":
        return make_potential("wca")
    return make_potential("lj", cutoff=micro["cutoff"], shift=micro["shift"],
                          tail_correction=micro["tail_correction"])


class MDGasModel:
    """Fluxes, sound speeds and the equation of state of an MD fluid (module docstring).

    Parameters
    ----------
    micro
        The app's ``[micro]`` section (keys documented in docs/gas_dynamics.md).
    """

    name = "md"

    def __init__(self, micro: dict) -> None:
        self.micro = dict(micro)
        self.potential = _potential(micro)
        self.engine = micro["engine"]
        if self.engine == "lammps":
            from hmmpar.micro.md.lammps_engine import check_available
            check_available()
        #: set by build_eos / load_eos before any flux is asked for
        self.eos: TabulatedEOS | None = None
        #: free particles are exactly a monatomic ideal gas: the exact solutions apply
        self.exact_gamma = 5.0 / 3.0 if micro["potential"] == "none" else None
        self._ground_table: tuple[np.ndarray, np.ndarray] | None = None
        #: the default EOS table stays above the liquid-vapour region
        self.t_floor = LJ_SUPERCRITICAL_T if micro["potential"] == "lj" else 0.0

    def describe(self) -> dict:
        m = self.micro
        return {"model": self.name, "engine": self.engine, "potential": self.potential.describe(),
                "dt": m["dt"], "state_box": {"atoms": m["atoms"], "t_equilibrate": m["t_equilibrate"],
                                             "t_sample": m["t_sample"]},
                "interface_box": {"atoms": m["interface_atoms"], "t_equilibrate": m["interface_t_equilibrate"],
                                  "t_sample": m["interface_t_sample"], "patches": m["patches"]}}

    def inadmissible(self, U: np.ndarray) -> np.ndarray:
        """Mask of states no MD box can have: a non-finite entry, rho <= 0, or an internal
        energy per atom at or below the potential's ground state at that density (for
        interacting atoms e may be negative)."""
        with np.errstate(all="ignore"):
            bad = ~np.all(np.isfinite(U), axis=-1) | ~(U[..., 0] > 0.0)
            rho = np.where(bad, 1.0, U[..., 0])
            e = (U[..., -1] - 0.5 * np.sum(U[..., 1:-1] ** 2, axis=-1) / rho) / rho
        return bad | ~(e > self._ground_floor(rho))

    def _ground_floor(self, rho: np.ndarray) -> np.ndarray:
        """A lower bound of the ground-state energy per atom at each density: the ground
        state is nondecreasing in the density (a crystal at its optimal density plus vacuum
        below it, compressed above), so its value at the tabulated density just below
        (100 points, geometric in [1e-4, 4]) bounds it; 0 for free particles."""
        if not self.potential.interacting:
            return np.zeros_like(rho)
        if self._ground_table is None:
            grid = np.geomspace(1e-4, 4.0, 100)
            self._ground_table = (grid, np.array([self.potential.ground_state_energy(float(r)) for r in grid]))
        grid, values = self._ground_table
        k = np.searchsorted(grid, rho, side="right") - 1
        return np.where(k >= 0, values[np.clip(k, 0, grid.size - 1)], -np.inf)

    # ------------------------------------------------------------------ equation of state
    def eos_points(self, rho_range: tuple[float, float], t_range: tuple[float, float]) -> np.ndarray:
        """The (rho, T) grid of the table: ``micro.eos_points = [K, L]`` points, densities
        evenly spaced in log rho, temperatures evenly spaced in log T."""
        k, l = self.micro["eos_points"]
        rho = np.geomspace(rho_range[0], rho_range[1], k)
        temp = np.geomspace(t_range[0], t_range[1], l)
        return np.array([(r, t) for r in rho for t in temp])

    def state_point(self, rho: float, temperature: float, rng: np.random.Generator):
        """One MD state point at rest (the EOS table's)."""
        from hmmpar.micro.md.box import state_point
        return state_point(rho, self.potential, self.micro["eos_atoms"], rng, temperature=temperature,
                           dt=self.micro["dt"], t_equilibrate=self.micro["t_equilibrate"],
                           t_sample=self.micro["eos_t_sample"])

    def check_box_size(self, rho_max: float) -> None:
        """A state box at the densest state of the table must hold the cutoff: side
        :math:`(N/\rho)^{1/3} > 2 r_c` (ConfigError naming micro.atoms, before any MD)."""
        if not self.potential.interacting:
            return
        side = (self.micro["atoms"] / rho_max) ** (1.0 / 3.0)
        rc = self.potential.cutoff
        if not side > 2.0 * rc:
            need = int(math.ceil(rho_max * (2.0 * rc) ** 3)) + 1
            raise ConfigError(f"config key micro.atoms = {self.micro['atoms']}: a box at density {rho_max:.4g} "
                              f"has side {side:.4g} <= 2 r_c = {2 * rc:g}; use at least {need} atoms")

    def build_eos(self, comm, seed: int, rho_range: tuple[float, float],
                  t_range: tuple[float, float]) -> TabulatedEOS:
        """Compute the table with all ranks of ``comm`` (collective; rank-count independent)."""
        self.check_box_size(rho_range[1])
        points = self.eos_points(rho_range, t_range)
        mine = {}
        problem = None
        for i in range(comm.rank, points.shape[0], comm.size):
            rho, temp = points[i]
            try:
                r = self.state_point(float(rho), float(temp), task_rng(seed, 0, i, family=EOS_FAMILY))
            except ConfigError as exc:
                problem = f"EOS table point rho = {rho:.4g}, T = {temp:.4g}: {exc}"
                break
            if r.two_phase:
                problem = (f"EOS table point rho = {rho:.4g}, T = {temp:.4g} is inside the two-phase region "
                           f"(structure factor S(k_min) = {r.structure_factor_kmin:.3g}); raise the lowest "
                           f"temperature micro.eos_temperatures or change the initial data")
                break
            mine[i] = (r.pressure, r.internal_energy, r.temperature)
        problems = [p for p in comm.allgather(problem) if p]
        if problems:
            raise ConfigError(problems[0])
        table = {}
        for part in comm.allgather(mine):
            table.update(part)
        k, l = self.micro["eos_points"]
        values = np.array([table[i] for i in range(points.shape[0])]).reshape(k, l, 3)
        rho = points[::l, 0]
        try:
            self.eos = TabulatedEOS(rho, values[:, :, 1], values[:, :, 0], values[:, :, 2])
        except ValueError as exc:
            raise ConfigError(f"micro.eos_points: {exc}") from None
        return self.eos

    def load_eos(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore the table from a checkpoint (:meth:`TabulatedEOS.arrays`)."""
        self.eos = TabulatedEOS(arrays["density"], arrays["energy"], arrays["pressure"], arrays["temperature"])

    # ------------------------------------------------------------------ micro tasks
    def _box(self, rho: float, momentum: np.ndarray, energy: float, rng: np.random.Generator):
        kwargs = dict(dt=self.micro["dt"], t_equilibrate=self.micro["t_equilibrate"],
                      t_sample=self.micro["t_sample"])
        if self.engine == "lammps":
            from hmmpar.micro.md.lammps_engine import constrained_box_lammps
            return constrained_box_lammps(rho, momentum, energy, self.potential, self.micro["atoms"], rng, **kwargs)
        from hmmpar.micro.md.box import constrained_box
        return constrained_box(rho, momentum, energy, self.potential, self.micro["atoms"], rng, **kwargs)

    def _sound_speed(self, rho: np.ndarray, rho_e: np.ndarray) -> np.ndarray:
        return self.eos.sound_speed_of(rho, rho_e / rho)

    def state_flux(self, rows: np.ndarray, ctx: TaskContext) -> np.ndarray:
        """Fluxes in every direction of each row's state from a constrained MD box."""
        from hmmpar.apps.gas_micro import state_result_dtype
        U = rows["U"]
        dim = U.shape[-1] - 2
        out = np.zeros(rows.shape[0], dtype=state_result_dtype(dim))
        for i in range(rows.shape[0]):
            rho = float(U[i, 0])
            m = np.zeros(3)
            m[:dim] = U[i, 1:1 + dim]
            r = self._box(rho, m, float(U[i, -1]), ctx.rng(int(rows["task_id"][i])))
            if r.two_phase:
                raise ConfigError(f"the MD box at rho = {rho:.6g}, e = {r.internal_energy:.6g} demixed "
                                  f"(S(k_min) = {r.structure_factor_kmin:.3g}): the state is inside the "
                                  f"two-phase region of {self.potential.describe()}")
            out["atom_steps"][i] = r.atom_steps
            for d in range(dim):
                out["flux"][i, d, 0] = m[d]
                out["flux"][i, d, 1:1 + dim] = r.momentum_flux[d, :dim]
                out["flux_stderr"][i, d, 1:1 + dim] = r.momentum_flux_err[d, :dim]
                out["flux"][i, d, -1] = r.energy_flux[d]
                out["flux_stderr"][i, d, -1] = r.energy_flux_err[d]
        rho_e = U[:, -1] - 0.5 * np.sum(U[:, 1:-1] ** 2, axis=-1) / U[:, 0]
        out["sound_speed"] = self._sound_speed(U[:, 0], rho_e)
        return out

    def interface_flux(self, rows: np.ndarray, ctx: TaskContext) -> np.ndarray:
        """Flux through each row's face from an interface MD box (normal = box x)."""
        from hmmpar.apps.gas_micro import interface_result_dtype
        from hmmpar.micro.md.interface import interface_box
        UL, UR = rows["UL"], rows["UR"]
        dim = UL.shape[-1] - 2
        out = np.zeros(rows.shape[0], dtype=interface_result_dtype(dim))
        for i in range(rows.shape[0]):
            axis = int(rows["axis"][i])
            order = [axis] + [d for d in range(dim) if d != axis]   # macro component of box x, y, ...
            sides = []
            for U in (UL[i], UR[i]):
                rho = float(U[0])
                u = np.zeros(3)
                u[:dim] = U[1:1 + dim][order] / rho
                e = (float(U[-1]) - 0.5 * rho * float(u @ u)) / rho
                sides.append((rho, u, e))
            r = interface_box(sides[0], sides[1], self.potential, self.micro["interface_atoms"],
                              ctx.rng(int(rows["task_id"][i])), dt=self.micro["dt"],
                              t_equilibrate=self.micro["interface_t_equilibrate"],
                              t_sample=self.micro["interface_t_sample"], patches=self.micro["patches"])
            out["flux"][i, 0] = r.flux[0]
            out["flux_stderr"][i, 0] = r.flux_stderr[0]
            for box_axis, macro_axis in enumerate(order):
                out["flux"][i, 1 + macro_axis] = r.flux[1 + box_axis]
                out["flux_stderr"][i, 1 + macro_axis] = r.flux_stderr[1 + box_axis]
            out["flux"][i, -1] = r.flux[4]
            out["flux_stderr"][i, -1] = r.flux_stderr[4]
            out["atom_steps"][i] = r.atom_steps
        for k, U in enumerate((UL, UR)):
            rho_e = U[:, -1] - 0.5 * np.sum(U[:, 1:-1] ** 2, axis=-1) / U[:, 0]
            out["sound_speed"][:, k] = self._sound_speed(U[:, 0], rho_e)
        return out


#: lowest default EOS-table temperature of an LJ fluid: above the critical temperature of
#: every cutoff (truncated and shifted at 2.5: 1.078, Vrabec et al., Mol. Phys. 104, 1509
#: (2006); full LJ: 1.32, Thol et al. 2016), so that no default table point demixes
LJ_SUPERCRITICAL_T = 1.35


def default_eos_ranges(rho: np.ndarray, p: np.ndarray,
                       t_floor: float = 0.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """Table ranges covering initial data (rho, p): densities from 0.7 min to 1.4 max, and
    temperatures from 0.5 to 2.5 times the ideal-gas temperatures p / rho (the table is
    extrapolated in e beyond its hottest point; shocks heat the gas), at least ``t_floor``
    (and the top at least twice that)."""
    r_lo, r_hi = float(np.min(rho)), float(np.max(rho))
    t = np.asarray(p, dtype=float) / np.asarray(rho, dtype=float)
    t_lo, t_hi = max(0.5 * float(np.min(t)), t_floor), 2.5 * float(np.max(t))
    return (0.7 * r_lo, 1.4 * r_hi), (t_lo, max(t_hi, 2.0 * t_lo))


def md_keys() -> dict:
    """The ``[micro]`` keys of the md model (merged into the app's schema)."""
    from hmmpar.core.config import Field
    return {
        "engine": Field(str, "numba", "MD engine: numba (hmmpar's) or lammps (the LAMMPS Python module)",
                        choices=("numba", "lammps")),
        "potential": Field(str, "lj", "pair potential: lj (truncated at cutoff), wca, none (free particles)",
                           choices=("lj", "wca", "none")),
        "cutoff": Field(float, 2.5, "LJ cutoff r_c (sigma)", min=2 ** (1 / 6), max=10.0),
        "shift": Field(bool, True, "shift the LJ energy to 0 at the cutoff"),
        "tail_correction": Field(bool, False, "add the long-range corrections to LJ energy and pressure"),
        "atoms": Field(int, 500, "atoms per state box (staggered schemes)", min=2, max=10**7),
        "dt": Field(float, 0.005, "MD time step (LJ time units)", min=0.0, min_exclusive=True, max=0.05),
        "t_equilibrate": Field(float, 2.0, "equilibration time of each box", min=0.0, max=1e4),
        "t_sample": Field(float, 5.0, "sampling time of each state box", min=0.0, min_exclusive=True, max=1e5),
        "interface_atoms": Field(int, 4000, "atoms per interface box (kinetic scheme)", min=2, max=10**7),
        "interface_t_equilibrate": Field(float, 2.0, "equilibration of the interface box behind its walls",
                                         min=0.0, max=1e4),
        "interface_t_sample": Field(float, 0.5, "measuring time tau of the interface box", min=0.0,
                                    min_exclusive=True, max=100.0),
        "patches": Field(int, 3, "the face is cut into patches^2 pieces for the standard error", min=2, max=64),
        "eos_points": Field(list, [5, 6], "EOS table: [densities, temperatures]", min_len=2, max_len=2),
        "eos_densities": Field(list, [], "EOS table density range [min, max] (default: from the initial data)",
                               max_len=2),
        "eos_temperatures": Field(list, [], "EOS table temperature range [min, max] (default: from the initial "
                                  "data)", max_len=2),
        "eos_atoms": Field(int, 500, "atoms per EOS state point", min=2, max=10**7),
        "eos_t_sample": Field(float, 10.0, "sampling time per EOS state point", min=0.0, min_exclusive=True,
                              max=1e5),
    }


def check_md_keys(micro: dict) -> None:
    """Cross-key checks of the md model's section (one-line ConfigError)."""
    for key in ("t_sample", "eos_t_sample"):  # the box samples every 10 steps and needs 2 samples
        if micro[key] < 20 * micro["dt"] * (1 - 1e-12):
            raise ConfigError(f"config key micro.{key} = {micro[key]:g} is shorter than 20 MD steps of "
                              f"micro.dt = {micro['dt']:g}")
    pts = micro["eos_points"]
    if len(pts) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pts) \
            or not (3 <= pts[0] <= 64 and 2 <= pts[1] <= 64):
        raise ConfigError(f"config key micro.eos_points must be [densities in 3..64, temperatures in 2..64], "
                          f"got {pts!r}")
    for key in ("eos_densities", "eos_temperatures"):
        r = micro[key]
        if r and (len(r) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in r)
                  or not r[0] < r[1]):
            raise ConfigError(f"config key micro.{key} must be [min, max] with 0 < min < max, got {r!r}")
