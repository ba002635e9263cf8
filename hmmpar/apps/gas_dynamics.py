r"""HMM for gas dynamics: a central / kinetic finite-volume macro solver, fluxes from micro tasks.

Macro model: the compressible Euler equations in conservation form (1D or 2D)

.. math::

    \partial_t U + \nabla\cdot F(U) = 0, \qquad U = (\rho, \rho\mathbf u, E),

whose flux :math:`F(U)` (and, for the time step, the sound speed) the macro solver does not
know: at every state it needs, a micro task computes it (E & Engquist, Commun. Math. Sci.
1 (2003) 87, section 3). ``micro.model = "ideal"`` answers with the exact flux of an
ideal gas (:mod:`hmmpar.apps.gas_micro`), which makes the HMM path testable against
exact solutions; a molecular-dynamics model plugs into the same rows.

Schemes (``macro.scheme``, ``macro.order``; :mod:`hmmpar.macro.finite_volume`)

* ``staggered`` 1: staggered Lax-Friedrichs; 2: Nessyahu-Tadmor (1D), Jiang-Tadmor (2D).
  One macro step is two half steps, cells -> corners -> cells, so every step begins and
  ends on the cell grid (checkpoints, outputs and boundary data never see the staggered
  grid). Each half step has its own CFL time step. Farm rounds per half step: order 1,
  one (the fluxes at the states, whose limited differences also give NT's flux slopes);
  order 2, two (the fluxes at the states, then at the predicted midpoint states). Tasks:
  one per cell (or corner) and round.
* ``kinetic`` 1: KFVS with forward Euler; 2: KFVS with MUSCL (minmod) face states and
  Heun's method (SSP-RK2). Tasks: one per face and round; one round (order 1) or two
  (order 2) per step.

Each round's fluxes come from ``farm.map(app.solve, rows)``: :meth:`GasDynamics.absorb`
returns the next round's rows (see :mod:`hmmpar.apps.base`). The time step follows from
the sound speeds the micro results report; a Courant number above the scheme's limit
met during a step (at the predicted states), or a non-physical state, stops the run with
an error naming the cell and the state.

Distribution: the cell states are a PETSc DMDA vector (dof = dim + 2), ghosts exchanged
through the DMDAs of :class:`hmmpar.macro.finite_volume.grid.FVGrid`; task ids are global
point numbers (:mod:`hmmpar.apps.gas_micro`), the time step is a global maximum, and every
formula is evaluated pointwise, so results are bitwise the same on any rank count and
after a restart.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from mpi4py import MPI

from hmmpar.apps.base import Application
from hmmpar.apps.gas_md import EOS_ATTRS, check_md_keys, default_eos_ranges, md_keys
from hmmpar.apps.gas_micro import (MICRO_MODELS, interface_result_dtype, interface_task_dtype, state_result_dtype,
                                   state_task_dtype)
from hmmpar.apps.gas_problems import PROBLEMS, Problem, problem_from_config
from hmmpar.core.checkpoint import Block, CheckpointReader
from hmmpar.core.config import RUNTIME_SCHEMA, Field
from hmmpar.core.errors import CheckpointError, ConfigError, HmmparError
from hmmpar.core.farm import TaskContext
from hmmpar.core.preflight import check_memory
from hmmpar.macro.finite_volume import staggered as stg
from hmmpar.macro.finite_volume.boundary import BCS, fill_ghosts, reflection_signs
from hmmpar.macro.finite_volume.euler import conserved, inadmissible, internal_energy_density, n_vars, primitive
from hmmpar.macro.finite_volume.grid import WIDTH, FVGrid, Layout, process_grid
from hmmpar.macro.finite_volume.limiters import limited_differences
from hmmpar.macro.finite_volume.muscl import face_states
from hmmpar.macro.finite_volume.timestep import cfl_limit, courant_limit, courant_numbers, stable_dt

SIDES = ("x-", "x+", "y-", "y+")
VARIABLES = {1: ("rho", "m", "E"), 2: ("rho", "mx", "my", "E")}
#: scalar output fields
FIELDS = {1: ("rho", "u", "p", "E"), 2: ("rho", "u", "v", "p", "E")}
#: totals named in the conservation report
TOTALS = {1: ("mass", "momentum", "energy"), 2: ("mass", "momentum_x", "momentum_y", "energy")}
#: fixed-point unit and cap of the flux standard errors summed for the summary's mean
#: (an integer sum is exact, so the mean is the same on any rank count; 2^20 * 2^24 per
#: value leaves room for 2^19 values per round in int64, and the float64 checkpoint
#: attribute holds the sum exactly up to 2^53 units, 5e8 in flux units)
STDERR_SCALE, STDERR_CAP = float(2**24), float(2**20)
#: the largest box: beyond it cell widths and positions lose their precision
BOX_SPAN = (1e-100, 1e100)


class GasDynamics(Application):
    """Euler equations with micro-computed fluxes on a staggered-central or kinetic FV scheme."""

    name = "gas_dynamics"
    steps_estimated = True
    result_dtype = state_result_dtype(1)  # replaced per instance (scheme and dimension)
    schema = {
        "problem": {
            "name": Field(str, "sod", "initial data: " + ", ".join(PROBLEMS), choices=PROBLEMS),
            "x0": Field(float, 0.5, "position of the initial discontinuity (sod, lax, riemann; riemann2d: "
                        "the x of the quadrant corner)"),
            "left": Field(list, [1.0, 0.0, 1.0], "riemann: (rho, u, p) left of x0", item_type=float),
            "right": Field(list, [0.125, 0.0, 0.1], "riemann: (rho, u, p) right of x0", item_type=float),
            "amplitude": Field(float, 0.2, "density_wave: amplitude A of rho = 1 + A sin(...)"),
            "rho": Field(str, "1", "custom: density formula in x, y", min_len=1),
            "u": Field(str, "0", "custom: x velocity formula", min_len=1),
            "v": Field(str, "0", "custom: y velocity formula (2D)", min_len=1),
            "p": Field(str, "1", "custom: pressure formula", min_len=1),
        },
        "macro": {
            "scheme": Field(str, "staggered", "staggered (central: Lax-Friedrichs / Nessyahu-Tadmor / "
                            "Jiang-Tadmor) or kinetic (KFVS)", choices=("staggered", "kinetic")),
            "order": Field(int, 2, "1 or 2 (staggered: LxF, NT/JT; kinetic: KFVS, KFVS + MUSCL + Heun)",
                           choices=(1, 2)),
            "dim": Field(int, 1, "space dimensions, 1 or 2", choices=(1, 2)),
            "cells": Field(list, [200], "cells per direction (dim entries, each >= 3)", item_type=int),
            "lower": Field(list, [], "lower corner of the domain (default 0)", item_type=float),
            "upper": Field(list, [], "upper corner of the domain (default 1)", item_type=float),
            "bc": Field(list, [], "boundary conditions per side x-, x+[, y-, y+] (periodic, reflecting, "
                        "outflow); one entry: all sides; empty: the problem's default", item_type=str),
            "cfl": Field(float, 0.3, "CFL number, at most the scheme's limit (docs/gas_dynamics.md); 0.3 suits "
                         "every scheme", min=0.0, min_exclusive=True),
            "t_end": Field(float, 0.2, "final time", min=0.0, min_exclusive=True, physics=False),
        },
        "micro": {
            "model": Field(str, "ideal", "micro model of the flux: ideal (exact Euler flux of an ideal gas)",
                           choices=tuple(MICRO_MODELS)),
            "gamma": Field(float, 5.0 / 3.0, "ideal: ratio of specific heats (5/3 monatomic, 1.4 Toro's tests)",
                           min=1.0, min_exclusive=True, max=3.0),
            **md_keys(),
        },
        "output": {
            **RUNTIME_SCHEMA["output"],
            "snapshot_interval": Field(float, 0.0, "simulated time between HDF5 snapshots of the XDMF time "
                                       "series (0: initial and final state only)", min=0.0, physics=False),
        },
    }
    memory_keys = ("macro.cells",)

    # ------------------------------------------------------------------ set-up
    def __init__(self, config, comm, timers) -> None:
        super().__init__(config, comm, timers)
        m = config.section("macro")
        self.scheme, self.order, self.dim = m["scheme"], m["order"], m["dim"]
        dim = self.dim
        self.nvar = n_vars(dim)
        self.cells = _cells(m["cells"], dim)
        self.lower, self.upper = _box(config, dim)
        self.cfl, self.t_end = m["cfl"], m["t_end"]
        self.cfl_limit = cfl_limit(self.scheme, self.order, dim)
        self.courant_limit = courant_limit(self.scheme, self.order)
        if self.cfl > self.cfl_limit:
            raise ConfigError(f"config key macro.cfl = {self.cfl:g} exceeds the stability limit "
                              f"{self.cfl_limit:g} of the {self.scheme} scheme of order {self.order} in "
                              f"{dim}D (docs/gas_dynamics.md, CFL)")
        if config["micro.model"] == "md":
            check_md_keys(config.section("micro"))
        self.model = MICRO_MODELS[config["micro.model"]](config.section("micro"))
        #: the macro EOS: the ideal gas's, or (md) the table built by initialize / read by load_checkpoint
        self.eos = self.model.eos
        #: gamma of the exact solutions (None: the micro model's gas has none)
        self.exact_gamma = self.model.exact_gamma
        self.problem: Problem = problem_from_config(config.section("problem"), dim, self.lower, self.upper,
                                                    self.exact_gamma or 5.0 / 3.0)
        self.bc = _boundary_conditions(m["bc"], dim, self.problem)
        self.periodic = tuple(self.bc[d][0] == "periodic" for d in range(dim))
        self.proc = process_grid(self.cells, comm.size)
        if self.proc is None:
            raise ConfigError(f"config key macro.cells = {self.cells}: {comm.size} ranks cannot each get at least "
                              f"{WIDTH} cells per direction (the stencil's ghost width); use more cells or "
                              "fewer ranks")
        check_memory(comm, self)  # before the DMDAs and the arrays
        self.grid = FVGrid(comm, self.cells, self.lower, self.upper, self.periodic, self.nvar, self.proc)
        self.h = self.grid.h
        self.cell_volume = float(np.prod(self.h))
        self.U = self.grid.cell.global_vec()
        self.initial = self._initial_state()  # checked: rho > 0, p > 0 at every cell; (rho, velocity, p)
        if self.scheme == "staggered":
            self.task_dtype, self.result_dtype = state_task_dtype(dim), state_result_dtype(dim)
        else:
            self.task_dtype, self.result_dtype = interface_task_dtype(dim), interface_result_dtype(dim)
        self.stride = int(np.prod([c + 1 for c in self.cells]))
        self.time = 0.0
        self.step = 0
        self._vecs: dict[int, object] = {}
        self._stage: dict = {}
        self._reset_statistics()

    def _reset_statistics(self) -> None:
        self.micro_tasks = 0       # global count, all rounds so far
        self.farm_rounds = 0
        self.max_courant = 0.0     # largest Courant number met (all stages)
        self.dt_min, self.dt_max = math.inf, 0.0
        # this rank's part; the sum in fixed point (STDERR_SCALE units, an exact integer sum,
        # so that the mean is the same on any rank count)
        self.stderr_max, self.stderr_sum, self.stderr_count = 0.0, 0, 0
        self.atom_steps = 0        # MD atom-steps of the micro tasks (this rank's part)
        self.q0 = np.zeros(self.nvar)           # totals at t = 0
        self.outflow = np.zeros(self.nvar)      # time integral of the net outflow through the boundary
        self.snapshot_times: list[float] = []
        self.last_step_dt = 0.0

    def memory_estimate(self) -> int:
        r"""Peak bytes of a rank: its share of the cells times about 60 arrays of ``nvar``
        doubles (states, ghosted copies, slopes, fluxes per direction, task and result
        rows, PETSc vectors of the cell, corner and face DMDAs), plus the global fields rank
        0 gathers for the outputs (about 12 arrays of ``nvar`` doubles per cell)."""
        n = int(np.prod(self.cells))
        share = -(-int(np.prod([c + 4 for c in self.cells])) // self.comm.size)
        nv = n_vars(self.dim)
        return int(8 * nv * (60 * share * self.dim + 12 * n))

    def _initial_state(self) -> np.ndarray:
        """The owned cells' initial conserved states; a ConfigError on every rank naming the
        key and the first cell (natural number) with non-finite values, rho <= 0 or p <= 0."""
        pts = self.grid.cell_centres()
        message, where = None, np.iinfo(np.int64).max
        try:
            rho, vel, p = self.problem.initial(pts)
        except ConfigError as exc:  # a formula not finite at some point
            message, where = str(exc), -1
        if message is None:
            ids = self.grid.cell.natural_ids()
            for name, values in (("rho", rho), ("p", p), ("velocity", vel)):
                vals = values.reshape(values.shape[0], -1)
                bad = ~np.all(np.isfinite(vals), axis=1) | ((vals[:, 0] <= 0) if name != "velocity" else False)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    if ids[i] < where:
                        where = int(ids[i])
                        message = (f"config key {self.problem.keys[name]} gives {name} = "
                                   f"{_numbers(vals[i])}{' (must be > 0)' if name != 'velocity' else ''} "
                                   f"at {self._where(self.grid.cell, ids[i])}")
        first = self.comm.allreduce(where, op=MPI.MIN)
        if first != np.iinfo(np.int64).max:
            messages = [msg for w, msg in self.comm.allgather((where, message)) if w == first and msg]
            raise ConfigError(messages[0])
        return rho, vel, p

    def _initial_conserved(self) -> np.ndarray:
        """The owned cells' initial conserved states, E from the micro model's EOS; a
        ConfigError on every rank naming the first cell the EOS does not reach (a table
        that does not cover the data) or whose state the micro model cannot have."""
        rho, vel, p = self.initial
        message = None
        U = np.zeros(rho.shape + (self.nvar,))
        try:
            U = conserved(rho, vel, p, self.eos)
        except ValueError as exc:  # a tabulated EOS that does not cover the initial data
            message = (f"initial data: {exc}; set micro.eos_densities / micro.eos_temperatures to cover it "
                       f"(table: densities {self.eos.density[0]:.4g} .. {self.eos.density[-1]:.4g})")
        if message is None:
            bad = self.model.inadmissible(U.reshape(-1, self.nvar))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                natural = int(self.grid.cell.natural_ids()[i])
                message = (f"initial data at {self._where(self.grid.cell, natural)}: rho = {rho.ravel()[i]:.6g}, "
                           f"p = {p.ravel()[i]:.6g} gives E = {U.reshape(-1, self.nvar)[i, -1]:.6g}, a state the "
                           f"{self.model.name} micro model cannot have (below its ground state: the EOS table is too "
                           "coarse there; raise micro.eos_points or narrow micro.eos_densities)")
        problems = [m for m in self.comm.allgather(message) if m]
        if problems:
            raise ConfigError(problems[0])
        return U.reshape(self.grid.cell.owned_shape + (self.nvar,))

    def _build_eos(self) -> None:
        """md: the EOS table from MD state points covering the initial data (collective)."""
        rho, _, p = self.initial
        lo = self._all(np.array([-np.min(rho, initial=np.inf), -np.min(p / rho, initial=np.inf)]), MPI.MAX)
        hi = self._all(np.array([np.max(rho, initial=0.0), np.max(p / rho, initial=0.0)]), MPI.MAX)
        rho_range, t_range = default_eos_ranges(np.array([-lo[0], hi[0]]), np.array([-lo[0] * -lo[1], hi[0] * hi[1]]),
                                                   self.model.t_floor)
        micro = self.config.section("micro")
        rho_range = tuple(micro["eos_densities"]) or rho_range
        t_range = tuple(micro["eos_temperatures"]) or t_range
        with self.timers.phase("micro_solve"):
            self.eos = self.model.build_eos(self.comm, self.config["run.seed"], rho_range, t_range)

    def _where(self, layout: Layout, natural: int) -> str:
        index = layout.unravel(natural)
        kind = "cell" if layout is self.grid.cell else "corner" if self.scheme == "staggered" else "face"
        return f"{kind} {index[0] if self.dim == 1 else index} (x = {_numbers(self.grid.coordinates(layout, index))})"

    # ------------------------------------------------------------------ the run
    @property
    def n_steps(self) -> int:
        if self.time >= self.t_end:
            return self.step
        per_step = self.last_step_dt or self._initial_step_estimate()
        return self.step + max(1, math.ceil((self.t_end - self.time) / per_step))

    def _initial_step_estimate(self) -> float:
        """Simulated time of one macro step from the EOS's sound speeds of the current
        state (only for the step-count estimate; the run's steps use the micro data)."""
        if self.eos is None:  # md before its table: one step as the estimate
            return self.t_end
        U = self.grid.cell.owned(self.U, readonly=True).reshape(-1, self.nvar)
        rho, vel, p = primitive(U, self.eos)
        speed = np.max(np.abs(vel) + self.eos.sound_speed(rho, p)[:, None], axis=0) if U.size else np.zeros(self.dim)
        speed = self._all(speed, MPI.MAX)
        dt = stable_dt(self.cfl, self.h, speed)
        halves = 2 if self.scheme == "staggered" else 1
        return halves * dt if math.isfinite(dt) and dt > 0 else self.t_end

    @property
    def sim_time(self) -> float:
        return self.time

    def more_steps(self, done: int) -> bool:
        return self.time < self.t_end

    def initialize(self) -> None:
        if self.eos is None:
            self._build_eos()
        self.grid.cell.set_owned(self.U, self._initial_conserved())
        self.step, self.time = 0, 0.0
        self._reset_statistics()
        self.q0 = self._totals()
        self._snapshot()

    def tasks(self, step: int) -> np.ndarray:
        self._stage = {"round": 0, "half": 0, "t0": self.time, "dt": [], "finish": False}
        if self.scheme == "staggered":
            return self._state_rows(self.grid.cell, self.grid.cell.owned(self.U, readonly=True))
        return self._face_rows(self.grid.cell.owned(self.U, readonly=True))

    def solve(self, rows: np.ndarray, ctx: TaskContext) -> np.ndarray:
        """The micro solve: the model's fluxes at the rows' states (or faces). An error of
        the micro model (a state it cannot represent) names the point and its state."""
        face = "UL" in rows.dtype.names
        try:
            if face:
                return self.model.interface_flux(rows, ctx)
            return self.model.state_flux(rows, ctx)
        except (HmmparError, ValueError) as exc:
            if rows.shape[0] != 1:
                raise  # the farm solves the rows one by one to find the failing task
            tid = int(rows["task_id"][0])
            layout = self.grid.face[int(rows["axis"][0])] if face else self._stage.get("layout", self.grid.cell)
            where = self._where(layout, tid % self.stride)
            if face:
                state = f"states {_numbers(rows['UL'][0])} | {_numbers(rows['UR'][0])}"
            else:
                state = f"state {_numbers(rows['U'][0])}"
            raise type(exc)(f"micro model {self.model.name} at {where}, {state}: {exc}") from None

    def absorb(self, step: int, results: np.ndarray) -> np.ndarray | None:
        with self.timers.phase("macro_solve"):
            self._count(results)
            if self.scheme == "staggered":
                rows = self._staggered_round(results)
            else:
                rows = self._kinetic_round(results)
            self._stage["round"] += 1
            if rows is None:
                self._end_step()
            return rows

    def _count(self, results: np.ndarray) -> None:
        self.farm_rounds += 1
        self.micro_tasks += self._round_tasks
        self.atom_steps += int(np.sum(results["atom_steps"]))
        err = results["flux_stderr"]
        if err.size:
            self.stderr_max = max(self.stderr_max, float(np.max(err)))
            fixed = np.round(np.minimum(err, STDERR_CAP) * STDERR_SCALE).astype(np.int64)
            self.stderr_sum += int(np.sum(fixed))
            self.stderr_count += int(err.size)

    def _end_step(self) -> None:
        st = self._stage
        self.time = self.t_end if st["finish"] else min(st["t0"] + sum(st["dt"]), self.t_end)
        self.last_step_dt = self.time - st["t0"]
        self.step += 1
        interval = self.config["output.snapshot_interval"]
        if interval > 0 and self.time >= len(self.snapshot_times) * interval and self.time < self.t_end:
            self._snapshot()

    # ------------------------------------------------------------------ task rows
    def _task_ids(self, layout: Layout, axis: int = 0) -> np.ndarray:
        return (self._stage["round"] * self.dim + axis) * self.stride + layout.natural_ids()

    def _state_rows(self, layout: Layout, U_owned: np.ndarray) -> np.ndarray:
        self._round_tasks = layout.n_global
        rows = np.empty(layout.n_owned, dtype=self.task_dtype)
        rows["task_id"] = self._task_ids(layout)
        rows["U"] = U_owned.reshape(-1, self.nvar)
        self._stage["layout"] = layout
        self._stage["states"] = U_owned.reshape(-1, self.nvar).copy()
        return rows

    def _face_rows(self, U_owned: np.ndarray) -> np.ndarray:
        """Kinetic-scheme tasks: one per owned face and direction, with the (MUSCL) states
        on both sides."""
        cell = self.grid.cell
        Ug = self._exchange(cell, U_owned, "state")
        parts = []
        self._round_tasks = 0
        for d in range(self.dim):
            face = self.grid.face[d]
            ax = cell.axis(d)
            low, high = face_states(Ug, ax, self.order)
            lo = [face.start[e] if e == d else cell.start[e] for e in range(self.dim)]
            hi = [face.stop[e] if e == d else cell.stop[e] for e in range(self.dim)]
            left_cells = cell.range_in_ghosted([a - (e == d) for e, a in enumerate(lo)],
                                               [b - (e == d) for e, b in enumerate(hi)])
            right_cells = cell.range_in_ghosted(lo, hi)
            rows = np.empty(face.n_owned, dtype=self.task_dtype)
            rows["task_id"] = self._task_ids(face, d)
            rows["axis"] = d
            rows["UL"] = high[left_cells].reshape(-1, self.nvar)
            rows["UR"] = low[right_cells].reshape(-1, self.nvar)
            parts.append(rows)
            self._round_tasks += face.n_global
        rows = np.concatenate(parts)
        self._stage["rows"] = rows
        self._stage["bounds"] = np.cumsum([0] + [p.shape[0] for p in parts])
        return rows

    # ------------------------------------------------------------------ ghosts
    def _vec(self, layout: Layout):
        key = id(layout)
        if key not in self._vecs:
            self._vecs[key] = layout.global_vec()
        return self._vecs[key]

    def _exchange(self, layout: Layout, owned: np.ndarray, kind: str, direction: int | None = None) -> np.ndarray:
        """Owned values -> ghosted array, neighbours' values through the DMDA and the
        physical boundary's ghosts by the boundary conditions. ``kind`` "state", or "flux"
        (the flux in ``direction``: reflection flips its sign across a wall normal to it)."""
        vec = self._vec(layout)
        layout.set_owned(vec, owned)
        a = layout.ghosted(vec)
        for e in range(self.dim):  # x first, then y over the x-ghost columns too (corners)
            if self.periodic[e]:
                continue
            placement = "vertex" if (layout is self.grid.vertex or layout is self.grid.face[e]) else "cell"
            signs = reflection_signs(self.nvar, e, direction if kind == "flux" else None)
            if layout.start[e] == 0:
                fill_ghosts(a, layout.axis(e), 0, self.bc[e][0], WIDTH, placement, signs)
            if layout.stop[e] == layout.sizes[e]:
                fill_ghosts(a, layout.axis(e), 1, self.bc[e][1], WIDTH, placement, signs)
        return a

    # ------------------------------------------------------------------ checks
    def _verify(self, dt: float, courant_sets: list, state_sets: list) -> None:
        """The checks of a farm round, with one reduction over the ranks.

        ``courant_sets``: ``(layout, states (n, nvar), sound speeds (n,), what)`` whose
        Courant numbers for ``dt`` must not exceed the scheme's limit (recorded in
        :attr:`max_courant`); ``state_sets``: ``(layout, owned states, what)`` that must be
        physical. A violation is an error on every rank naming the point (the worst
        Courant number first, else the first non-physical state: lowest set, then lowest
        natural number), its position and its state."""
        big = float(2**62)
        courant_local, found = 0.0, []
        for k, (layout, states, c, _) in enumerate(courant_sets):
            nu = courant_numbers(dt, self.h, self._speeds(states, c), self.scheme) if states.shape[0] else np.zeros(0)
            found.append(nu)
            if nu.size:
                courant_local = max(courant_local, float(nu.max()))
        stride = 8.0 * self.stride
        bad_local, bad_masks = big, []
        for k, (layout, U, _) in enumerate(state_sets):
            bad = self.model.inadmissible(U.reshape(-1, self.nvar))
            bad_masks.append(bad)
            if bad.any():
                bad_local = min(bad_local, k * stride + float(layout.natural_ids()[bad].min()))
        worst, first_bad = self._all(np.array([courant_local, -bad_local]), MPI.MAX)
        first_bad = -first_bad
        self.max_courant = max(self.max_courant, float(worst))
        if worst > self.courant_limit * (1.0 + 1e-12):
            key = big
            for k, nu in enumerate(found):
                hit = nu == worst
                if hit.any():
                    key = min(key, k * stride + float(courant_sets[k][0].natural_ids()[hit].min()))
            key = self._all(np.array([-key]), MPI.MAX)[0] * -1.0
            self._raise_at(key, stride, lambda k, i: self._courant_message(courant_sets[k], i, worst, dt))
        if first_bad < big:
            self._raise_at(first_bad, stride, lambda k, i: self._state_message(state_sets[k], i))

    def _raise_at(self, key: float, stride: float, message) -> None:
        """Raise on every rank the message (``message(set, local index)``) of the point with
        global ``key`` = set * stride + natural number, built by the rank that owns it."""
        k, natural = int(key // stride), int(key % stride)
        try:
            text = message(k, natural)
        except LookupError:  # another rank owns the point
            text = None
        raise HmmparError(next(m for m in self.comm.allgather(text) if m))

    def _local_index(self, layout: Layout, natural: int) -> int:
        hit = np.flatnonzero(layout.natural_ids() == natural)
        if not hit.size:
            raise LookupError(natural)
        return int(hit[0])

    def _courant_message(self, entry, natural: int, worst: float, dt: float) -> str:
        layout, states, c, what = entry
        i = self._local_index(layout, natural)
        rho, vel, p = primitive(states[i], self.eos)
        return (f"CFL condition violated at step {self.step + 1} (t = {self._stage['t0']:.6g}): {what} of "
                f"{self._where(layout, natural)} (rho = {float(rho):.6g}, velocity = {_numbers(vel)}, "
                f"p = {float(p):.6g}, sound speed {float(c[i]):.6g}) has Courant number {worst:.4g} > "
                f"{self.courant_limit:.4g} for dt = {dt:.6g}; lower macro.cfl (now {self.cfl:g})")

    def _state_message(self, entry, natural: int) -> str:
        layout, U, what = entry
        u = U.reshape(-1, self.nvar)[self._local_index(layout, natural)]
        with np.errstate(all="ignore"):
            rho_e = float(internal_energy_density(u))
            try:
                p = float(self.eos.pressure(u[0], rho_e))
            except ValueError:  # a tabulated EOS that does not reach the state
                p = float("nan")
        state = ", ".join(f"{n} = {v:.6g}" for n, v in zip(VARIABLES[self.dim], u))
        return (f"non-physical {what} at step {self.step + 1} (t = {self._stage['t0']:.6g}) in "
                f"{self._where(layout, natural)}: {state} (rho e = {rho_e:.6g}, p = {p:.6g}); the scheme "
                "lost positivity or stability there: lower macro.cfl, refine, or use order 1")

    def _all(self, values: np.ndarray, op) -> np.ndarray:
        """Elementwise reduction of a float array over the ranks (buffer-based)."""
        values = np.ascontiguousarray(values, dtype=float)
        out = np.empty_like(values)
        self.comm.Allreduce(values, out, op=op)
        return out

    def _speeds(self, states: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Wave speeds |u_d| + c per direction, shape (n, dim)."""
        return np.abs(states[:, 1:-1] / states[:, :1]) + c[:, None]

    def _dt(self, states_and_speeds: list) -> float:
        """The CFL step from the wave speeds of the round's states (``(states, c)`` pairs:
        one allreduce of the per-direction maxima and of the largest combined rate), and
        the Courant number of those states recorded."""
        local = np.zeros(self.dim + 1)
        for states, c in states_and_speeds:
            if states.shape[0]:
                speed = self._speeds(states, c)
                local[:self.dim] = np.maximum(local[:self.dim], speed.max(axis=0))
                local[self.dim] = max(local[self.dim], float(courant_numbers(1.0, self.h, speed, self.scheme).max()))
        glob = self._all(local, MPI.MAX)
        speed = glob[:self.dim]
        dt = stable_dt(self.cfl, self.h, speed)
        if not (math.isfinite(dt) and dt > 0):
            raise HmmparError(f"step {self.step + 1}: no finite time step (largest wave speeds {_numbers(speed)})")
        self._rate = float(glob[self.dim])  # Courant number per unit time of the round's states
        self._dt_stats(dt)
        return dt

    def _record_courant(self, dt: float) -> None:
        self.max_courant = max(self.max_courant, dt * self._rate)

    # ------------------------------------------------------------------ staggered schemes
    def _staggered_round(self, results: np.ndarray) -> np.ndarray | None:
        st = self._stage
        half = st["half"]
        layout_in = self.grid.cell if half == 0 else self.grid.vertex
        layout_out = self.grid.vertex if half == 0 else self.grid.cell
        predicted = self.order == 2 and st["round"] % 2 == 1
        states = st["states"]
        c = results["sound_speed"]
        shape = layout_in.owned_shape + (self.nvar,)
        if not predicted:  # fluxes at the half step's initial states: its time step
            dt = self._dt([(states, c)])
            remaining = self.t_end - (st["t0"] + sum(st["dt"]))
            halves_left = 2 - half
            if dt * halves_left >= remaining:  # this step can reach t_end: share the rest equally
                dt = remaining / halves_left
                st["finish"] = half == 1
            st["dt"].append(dt)
            self._record_courant(dt)
            st["Ug"] = self._exchange(layout_in, states.reshape(shape), "state")
            st["Fg"] = [self._exchange(layout_in, results["flux"][:, d].reshape(shape), "flux", d)
                        for d in range(self.dim)]
            if self.order == 1:
                new = self._corrector(layout_in, layout_out, st["Ug"], None, st["Fg"], dt)
                self._verify(dt, [], [(layout_out, new, "state after a half step")])
                return self._after_half(layout_out, new)
            pred = self._predictor(layout_in, st["Ug"], st["Fg"], dt)
            self._verify(dt, [], [(layout_in, pred, "predicted state")])
            st["slopes"] = [limited_differences(st["Ug"], layout_in.axis(d)) for d in range(self.dim)]
            return self._next_round_rows(self._state_rows(layout_in, pred))
        dt = st["dt"][-1]
        Fh = [self._exchange(layout_in, results["flux"][:, d].reshape(shape), "flux", d) for d in range(self.dim)]
        new = self._corrector(layout_in, layout_out, st["Ug"], st["slopes"], Fh, dt)
        self._verify(dt, [(layout_in, states, c, "the predicted state")],
                     [(layout_out, new, "state after a half step")])
        return self._after_half(layout_out, new)

    def _next_round_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows built during round r get the task ids of round r + 1."""
        rows["task_id"] += self.dim * self.stride
        return rows

    def _after_half(self, layout_out: Layout, new: np.ndarray) -> np.ndarray | None:
        st = self._stage
        if st["half"] == 1:
            self.grid.cell.set_owned(self.U, new)
            return None
        st["half"] = 1
        return self._next_round_rows(self._state_rows(layout_out, new))

    def _predictor(self, layout: Layout, Ug: np.ndarray, Fg: list, dt: float) -> np.ndarray:
        """NT / JT midpoint states at the owned points."""
        own = layout.owned_in_ghosted()
        fs = [limited_differences(Fg[d], layout.axis(d))[own] for d in range(self.dim)]
        lam = dt / self.h[0]
        if self.dim == 1:
            return stg.nt_predictor_1d(Ug[own], fs[0], lam)
        return stg.jt_predictor_2d(Ug[own], fs[0], fs[1], lam, dt / self.h[1])

    def _corrector(self, layout_in: Layout, layout_out: Layout, Ug: np.ndarray, slopes: list | None, Fg: list,
                   dt: float) -> np.ndarray:
        """Staggered averages at the owned points of ``layout_out`` from the ghosted input
        arrays: output ``i`` uses inputs ``i - 1, i`` (cells -> corners) or ``i, i + 1``
        (corners -> cells) per direction."""
        shift = 0 if layout_in is self.grid.cell else 1
        lo = [a - 1 + shift for a in layout_out.start]
        hi = [b + shift for b in layout_out.stop]
        sl = layout_in.range_in_ghosted(lo, hi)
        lam = dt / self.h[0]
        if self.dim == 1:
            if slopes is None:
                return stg.lax_friedrichs_1d(Ug[sl], Fg[0][sl], lam)
            return stg.nt_corrector_1d(Ug[sl], slopes[0][sl], Fg[0][sl], lam)
        mu = dt / self.h[1]
        if slopes is None:
            return stg.lax_friedrichs_2d(Ug[sl], Fg[0][sl], Fg[1][sl], lam, mu)
        return stg.jt_corrector_2d(Ug[sl], slopes[0][sl], slopes[1][sl], Fg[0][sl], Fg[1][sl], lam, mu)

    def _dt_stats(self, dt: float) -> None:
        self.dt_min, self.dt_max = min(self.dt_min, dt), max(self.dt_max, dt)

    # ------------------------------------------------------------------ kinetic scheme
    def _kinetic_round(self, results: np.ndarray) -> np.ndarray | None:
        st = self._stage
        stage = st["round"]
        faces = self._face_states(results)  # (layout, states, sound speeds, what) per direction and side
        if stage == 0:
            dt = self._dt([(U, c) for _, U, c, _ in faces])
            remaining = self.t_end - st["t0"]
            if dt >= remaining:
                dt, st["finish"] = remaining, True
            st["dt"] = [dt]
            self._record_courant(dt)
        dt = st["dt"][0]
        rate, boundary = self._divergence(results)
        weight = 1.0 if self.order == 1 else 0.5  # Heun: U + dt/2 (L(U) + L(U*))
        self.outflow += weight * dt * self._boundary_sum(boundary)
        cell = self.grid.cell
        U = cell.owned(self.U, readonly=True)
        if self.order == 1:
            new = U + dt * rate
            self._verify(dt, [], [(cell, new, "state")])
        elif stage == 0:
            st["U_n"] = U.copy()
            new = U + dt * rate
            self._verify(dt, [], [(cell, new, "Heun stage state")])
            st["U_star"] = new
            return self._next_round_rows(self._face_rows(new))
        else:  # Heun's second stage: its face states' waves must obey the CFL limit for the same dt
            new = 0.5 * st["U_n"] + 0.5 * (st["U_star"] + dt * rate)
            self._verify(dt, faces, [(cell, new, "state")])
        cell.set_owned(self.U, new)
        return None

    def _face_states(self, results: np.ndarray) -> list:
        """``(face layout, states, sound speeds, what)`` of the round's face rows, per
        direction and side."""
        st = self._stage
        out = []
        for d in range(self.dim):
            part = slice(st["bounds"][d], st["bounds"][d + 1])
            for k, side in enumerate(("UL", "UR")):
                what = f"the {'low' if k == 0 else 'high'}-side state" + (" of the Heun stage" if st["round"] else "")
                out.append((self.grid.face[d], st["rows"][side][part], results["sound_speed"][part, k], what))
        return out

    def _divergence(self, results: np.ndarray) -> tuple[np.ndarray, list]:
        r""":math:`-\sum_d (F_{d, j+1/2} - F_{d, j-1/2}) / h_d` at the owned cells, and this
        rank's boundary faces ``(key, outflow rate)`` for the conservation report."""
        cell = self.grid.cell
        bounds = self._stage["bounds"]
        rate = np.zeros(cell.owned_shape + (self.nvar,))
        boundary = []
        for d in range(self.dim):
            face = self.grid.face[d]
            owned = results["flux"][bounds[d]:bounds[d + 1]].reshape(face.owned_shape + (self.nvar,))
            vec = self._vec(face)
            face.set_owned(vec, owned)
            F = face.ghosted(vec)
            lo, hi = list(cell.start), list(cell.stop)
            low = face.range_in_ghosted(lo, hi)
            lo[d] += 1
            hi[d] += 1
            high = face.range_in_ghosted(lo, hi)
            rate -= (F[high] - F[low]) / self.h[d]
            if not self.periodic[d]:  # the faces on the two boundaries normal to d, outward flux x area
                area = self.cell_volume / self.h[d]
                ax = face.axis(d)
                ids = face.natural_ids().reshape(face.owned_shape)
                for side, at, sign in ((0, 0, -1.0), (1, -1, 1.0)):
                    if (face.start[d] == 0) if side == 0 else (face.stop[d] == face.sizes[d]):
                        keys = np.take(ids, at, axis=ax).reshape(-1) + (2 * d + side) * self.stride
                        boundary.append((keys, sign * area * np.take(owned, at, axis=ax).reshape(-1, self.nvar)))
        return rate, boundary

    def _boundary_sum(self, parts: list) -> np.ndarray:
        """Sum of the boundary faces' outflow rates over all ranks, in the order of their
        global keys (the same bits on any rank count; a few faces per rank)."""
        if all(self.periodic):
            return np.zeros(self.nvar)
        keys = np.concatenate([k for k, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
        values = np.concatenate([v for _, v in parts]) if parts else np.zeros((0, self.nvar))
        everything = self.comm.allgather((keys, values))
        keys = np.concatenate([k for k, _ in everything])
        values = np.concatenate([v for _, v in everything])
        if not keys.size:
            return np.zeros(self.nvar)
        return np.sum(values[np.argsort(keys, kind="stable")], axis=0)

    # ------------------------------------------------------------------ totals, snapshots
    def _totals(self) -> np.ndarray:
        """Integrals of the conserved variables over the domain, summed in natural order
        on rank 0 (the same bits on any rank count) and broadcast."""
        U = self.grid.cell.gather(self.U)
        total = None
        if self.comm.rank == 0:
            total = np.sum(U.reshape(-1, self.nvar), axis=0) * self.cell_volume
        return self.comm.bcast(total, root=0)

    def _fields(self, U: np.ndarray) -> dict[str, np.ndarray]:
        """Scalar output fields of a gathered state (rank 0): rho, u, (v), p, E."""
        rho, vel, p = primitive(U, self.eos)
        out = {"rho": rho, "u": vel[..., 0]}
        if self.dim == 2:
            out["v"] = vel[..., 1]
        out["p"] = p
        out["E"] = U[..., -1]
        return out

    def _snapshot(self) -> None:
        """Write ``snapshots/gas_dynamics_<k>.h5`` of the current state (collective)."""
        from hmmpar.io.fv_output import write_snapshot

        U = self.grid.cell.gather(self.U)
        write_snapshot(self.comm, self.config["run.output_dir"], "gas_dynamics", len(self.snapshot_times),
                       self._fields(U) if self.comm.rank == 0 else None, {"time": self.time, "step": self.step})
        self.snapshot_times.append(self.time)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_data(self) -> dict:
        rows, start = self.grid.cell.to_natural(self.U)
        n = int(np.prod(self.cells))
        glob = np.array([self.comm.allreduce(self.stderr_max, op=MPI.MAX), self.comm.allreduce(self.stderr_sum),
                         self.comm.allreduce(self.stderr_count)], dtype=np.float64)
        eos = {}
        if self.model.name == "md":
            eos = {f"eos_{k}": v for k, v in self.eos.arrays().items()}
        return {"fields": {"U": Block(rows, start, n)},
                "attrs": {"step": self.step, "time": self.time, "dim": self.dim, "nvar": self.nvar,
                          "micro_tasks": self.micro_tasks, "farm_rounds": self.farm_rounds,
                          "max_courant": self.max_courant, "dt_min": self.dt_min, "dt_max": self.dt_max,
                          "stderr": glob, "q0": self.q0, "outflow": self.outflow,
                          "snapshot_times": np.array(self.snapshot_times, dtype=float),
                          "last_step_dt": self.last_step_dt,
                          "atom_steps": self.comm.allreduce(self.atom_steps), **eos}}

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        n = int(np.prod(self.cells))
        a = reader.attrs
        if reader.rows("fields", "U") != n or int(a.get("nvar", 0)) != self.nvar:
            raise CheckpointError(f"checkpoint {reader.path} holds {reader.rows('fields', 'U')} cells of "
                                  f"{int(a.get('nvar', 0))} variables; this grid has {n} cells of {self.nvar}")
        t = float(a["time"])
        if t > self.t_end:
            raise CheckpointError(f"the checkpoint is at t = {t:g} (step {int(a['step'])}), past the end of this "
                                  f"run (macro.t_end = {self.t_end:g}); raise macro.t_end to continue")
        lo, hi = self.grid.cell.natural_block()
        self.grid.cell.from_natural(self.U, reader.read_block("fields", "U", lo, hi))
        self._reset_statistics()
        self.step, self.time = int(a["step"]), t
        self.micro_tasks, self.farm_rounds = int(a["micro_tasks"]), int(a["farm_rounds"])
        self.max_courant = float(a["max_courant"])
        self.dt_min, self.dt_max = float(a["dt_min"]), float(a["dt_max"])
        if self.comm.rank == 0:  # the global statistics continue as rank 0's part
            self.stderr_max, self.stderr_sum, self.stderr_count = (float(a["stderr"][0]), int(a["stderr"][1]),
                                                                   int(a["stderr"][2]))
        self.q0 = np.array(a["q0"], dtype=float)
        self.outflow = np.array(a["outflow"], dtype=float)
        self.snapshot_times = [float(v) for v in np.atleast_1d(a["snapshot_times"])]
        self.last_step_dt = float(a["last_step_dt"])
        if self.comm.rank == 0:
            self.atom_steps = int(a.get("atom_steps", 0))
        if self.model.name == "md":
            if any(f"eos_{k}" not in a for k in EOS_ATTRS):
                raise CheckpointError(f"checkpoint {reader.path} has no EOS table of the md micro model")
            self.model.load_eos({k: np.asarray(a[f"eos_{k}"]) for k in EOS_ATTRS})
            self.eos = self.model.eos

    # ------------------------------------------------------------------ outputs
    def finalize(self, outdir: Path) -> dict | None:
        from hmmpar.io.fv_output import write_fields, write_time_series

        U = self.grid.cell.gather(self.U)
        smax = self.comm.allreduce(self.stderr_max, op=MPI.MAX)
        ssum = self.comm.allreduce(self.stderr_sum)
        scount = self.comm.allreduce(self.stderr_count)
        self.atom_steps_total = self.comm.allreduce(self.atom_steps)
        problem = summary = None
        if self.comm.rank == 0:
            try:
                summary = self._summary(U, smax, ssum, scount)
                fields = self._fields(U)
                exact = self._exact_fields()
                if exact is not None:
                    fields.update({f"{k}_exact": v for k, v in exact.items()})
                for d, name in enumerate(("x", "y")[:self.dim]):
                    fields[name] = self._axis_coordinates(d)
                write_fields(outdir / "gas_dynamics.h5", fields, {"time": self.time, "step": self.step})
                entries = [(t, f"snapshots/gas_dynamics_{k:05d}.h5") for k, t in enumerate(self.snapshot_times)
                           if t < self.time and (outdir / f"snapshots/gas_dynamics_{k:05d}.h5").is_file()]
                entries.append((self.time, "gas_dynamics.h5"))
                names = list(FIELDS[self.dim])
                write_time_series(outdir / "gas_dynamics.xdmf", entries, names, self.cells, self.lower, self.h)
                if self.config["output.plots"]:
                    self._plot(outdir / "gas_dynamics.png", U, exact)
            except OSError as exc:
                problem = f"cannot write the outputs in {outdir}: {exc}"
        problem = self.comm.bcast(problem, root=0)
        self._release()
        if problem:
            raise HmmparError(problem)
        return summary

    def _release(self) -> None:
        """Destroy the PETSc objects on every rank together (collective). Left to Python's
        garbage collector, parallel objects are destroyed whenever each rank collects them,
        and PETSc's collective clean-up of such objects (``PetscGarbageCleanup``) then waits
        on a rank that is elsewhere: a hang seen in the MPI tests, which run several apps in
        one process."""
        for vec in self._vecs.values():
            vec.destroy()
        self._vecs.clear()
        self.U.destroy()
        self.grid.destroy()

    def _gas_label(self) -> str:
        if self.model.name == "ideal":
            return f"gamma = {self.eos.gamma:.4g}"
        return f"MD ({self.model.potential.describe()})"

    def _axis_coordinates(self, d: int) -> np.ndarray:
        return self.lower[d] + (np.arange(self.cells[d]) + 0.5) * self.h[d]

    def _points(self) -> np.ndarray:
        """All cell centres in natural order, (n, dim)."""
        axes = [self._axis_coordinates(d) for d in range(self.dim)]
        if self.dim == 1:
            return axes[0][:, None]
        yy, xx = np.meshgrid(axes[1], axes[0], indexing="ij")
        return np.stack([xx.reshape(-1), yy.reshape(-1)], axis=1)

    def _exact_fields(self) -> dict[str, np.ndarray] | None:
        """The exact solution at the cell centres (rank 0), or None when there is none."""
        if self.problem.exact is None:
            return None
        if self.problem.riemann is not None and self.exact_gamma is None:
            return None  # Riemann solutions are those of an ideal gas; the density wave holds for any EOS
        if self.problem.name == "density_wave" and not all(self.periodic):
            return None
        rho, vel, p = self.problem.exact(self._points(), self.time)
        shape = tuple(self.cells[::-1])
        out = {"rho": rho.reshape(shape), "u": vel[:, 0].reshape(shape)}
        if self.dim == 2:
            out["v"] = vel[:, 1].reshape(shape)
        out["p"] = p.reshape(shape)
        out["E"] = conserved(rho, vel, p, self.eos)[:, -1].reshape(shape)
        return out

    def _summary(self, U: np.ndarray, smax: float, ssum: float, scount: int) -> dict:
        totals = np.sum(U.reshape(-1, self.nvar), axis=0) * self.cell_volume
        scale = np.maximum(np.abs(self.q0), np.sum(np.abs(U.reshape(-1, self.nvar)), axis=0) * self.cell_volume)
        known = self._outflow_known()
        conservation = {}
        for k, name in enumerate(TOTALS[self.dim]):
            change = float(totals[k] - self.q0[k])
            entry = {"initial": float(self.q0[k]), "final": float(totals[k]), "change": change,
                     "boundary_outflow": float(self.outflow[k]) if known[k] else None,
                     "relative_defect": None}
            if known[k]:
                entry["relative_defect"] = abs(change + float(self.outflow[k])) / max(float(scale[k]), 1e-300)
            conservation[name] = entry
        summary = {
            "app": self.name, "problem": self.problem.name, "scheme": self.scheme, "order": self.order,
            "dim": self.dim, "cells": list(self.cells), "h": self.h.tolist(), "bc": self._bc_names(),
            "micro": self.model.describe(), "cfl": self.cfl, "cfl_limit": self.cfl_limit,
            "courant_limit": self.courant_limit, "max_courant": self.max_courant, "steps": self.step, "time": self.time,
            "dt_min": self.dt_min if self.step else None, "dt_max": self.dt_max if self.step else None,
            "micro_tasks": self.micro_tasks, "farm_rounds": self.farm_rounds,
            "flux_stderr": {"max": smax, "mean": ssum / STDERR_SCALE / scount if scount else 0.0},
            "conservation": conservation,
        }
        exact = self._exact_fields()
        if exact is not None:
            fields = self._fields(U)
            summary["l1_error_vs_exact"] = {k: float(np.sum(np.abs(fields[k] - exact[k])) * self.cell_volume)
                                            for k in exact if k != "E"}
        if self.model.name == "md":
            summary["md_atom_steps"] = self.atom_steps_total
            t = self.eos.temperature
            summary["eos_table"] = {"points": list(t.shape), "density": [float(self.eos.density[0]),
                                                                          float(self.eos.density[-1])],
                                    "temperature": [float(t.min()), float(t.max())]}
        if self.problem.riemann is not None and self.exact_gamma is not None:
            from hmmpar.macro.finite_volume.riemann_exact import star_state
            left, right, _ = self.problem.riemann
            star = star_state(left, right, self.exact_gamma)
            summary["exact_star_state"] = {"p": star.p, "u": star.u, "rho_left": star.rho_left,
                                           "rho_right": star.rho_right}
        return summary

    def _outflow_known(self) -> list[bool]:
        """Per conserved variable: is its boundary flux accounted exactly? Always for the
        kinetic scheme (the boundary faces' fluxes); for the staggered schemes only where
        it is zero: everything with periodic boundaries, and mass, energy and the momentum
        components parallel to the walls with reflecting ones (the mirror-symmetric
        extension conserves them); an outflow boundary's net flux is not one face flux."""
        if self.scheme == "kinetic":
            return [True] * self.nvar
        kinds = {b for pair in self.bc for b in pair}
        if "outflow" in kinds:
            return [False] * self.nvar
        known = [True] * self.nvar
        for d in range(self.dim):
            if self.bc[d][0] == "reflecting":
                known[1 + d] = False
        return known

    def _bc_names(self) -> dict:
        return {SIDES[2 * d + s]: self.bc[d][s] for d in range(self.dim) for s in (0, 1)}

    def _plot(self, path: Path, U: np.ndarray, exact: dict | None) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fields = self._fields(U)
        title = (f"{self.problem.name}: {self.scheme} order {self.order}, {'x'.join(map(str, self.cells))} cells, "
                 f"{self._gas_label()}, t = {self.time:.4g}")
        if self.dim == 1:
            x = self._axis_coordinates(0)
            fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
            for ax, name in zip(axes.ravel(), ("rho", "u", "p", "E")):
                if exact is not None:
                    fine = np.linspace(self.lower[0], self.upper[0], 2000)[:, None]
                    rho, vel, p = self.problem.exact(fine, self.time)
                    ref = {"rho": rho, "u": vel[:, 0], "p": p,
                           "E": conserved(rho, vel, p, self.eos)[:, -1]}[name]
                    ax.plot(fine[:, 0], ref, "k-", lw=1, label="exact")
                ax.plot(x, fields[name], "o", ms=2.5, mfc="none", label="HMM (micro fluxes)")
                ax.set(ylabel=name)
                ax.grid(alpha=0.3)
            axes[0, 0].legend()
            for ax in axes[1]:
                ax.set(xlabel="x")
        else:
            ext = [self.lower[0], self.upper[0], self.lower[1], self.upper[1]]
            ncol = 2 if exact is None else 3
            fig, axes = plt.subplots(1, ncol, figsize=(5 * ncol, 4.4))
            for ax, name in zip(axes[:2], ("rho", "p")):
                im = ax.imshow(fields[name], origin="lower", extent=ext, cmap="viridis", interpolation="nearest")
                ax.set(title=name, xlabel="x", ylabel="y")
                fig.colorbar(im, ax=ax, shrink=0.85)
            if exact is not None:
                j = self.cells[1] // 2
                x = self._axis_coordinates(0)
                axes[2].plot(x, exact["rho"][j], "k-", lw=1, label="exact")
                axes[2].plot(x, fields["rho"][j], "o", ms=2.5, mfc="none", label="HMM")
                axes[2].set(title=f"rho at y = {self._axis_coordinates(1)[j]:.3g}", xlabel="x")
                axes[2].legend()
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


# ---------------------------------------------------------------------- config checks
def _cells(cells: list[int], dim: int) -> list[int]:
    from petsc4py import PETSc

    if len(cells) != dim:
        raise ConfigError(f"config key macro.cells must have {dim} entr{'y' if dim == 1 else 'ies'} "
                          f"(macro.dim = {dim}), "
                          f"got {len(cells)}")
    if min(cells) < 3:
        raise ConfigError(f"config key macro.cells = {cells}: every entry must be >= 3")
    limit = int(np.iinfo(PETSc.IntType).max)
    total = int(np.prod([c + 1 for c in cells])) * 2 * dim * 4  # the largest task id
    if total > min(limit, 2**62):
        raise ConfigError(f"config key macro.cells = {cells} is too large for this PETSc build's indices "
                          f"({limit})")
    return [int(c) for c in cells]


def _box(config, dim: int) -> tuple[np.ndarray, np.ndarray]:
    lower = list(config["macro.lower"]) or [0.0] * dim
    upper = list(config["macro.upper"]) or [1.0] * dim
    for key, v in (("macro.lower", lower), ("macro.upper", upper)):
        if len(v) != dim:
            raise ConfigError(f"config key {key} must have {dim} entr{'y' if dim == 1 else 'ies'} (macro.dim = {dim}), "
                              f"got {len(v)}")
    if any(u <= lo for lo, u in zip(lower, upper)):
        raise ConfigError("config key macro.upper must exceed macro.lower in every direction")
    span = [u - lo for lo, u in zip(lower, upper)]
    if not all(BOX_SPAN[0] <= w <= BOX_SPAN[1] for w in span):
        raise ConfigError(f"config keys macro.lower / macro.upper: the domain's side lengths {span} must lie "
                          f"between {BOX_SPAN[0]:g} and {BOX_SPAN[1]:g}")
    return np.array(lower, dtype=float), np.array(upper, dtype=float)


def _boundary_conditions(bc: list[str], dim: int, problem: Problem) -> list[tuple[str, str]]:
    """Per direction ``(low, high)`` from ``macro.bc`` (2 dim entries, one for all sides, or
    none: the problem's defaults); periodic must be on both sides of a direction."""
    for i, b in enumerate(bc):
        if b not in BCS:
            import difflib
            close = difflib.get_close_matches(b, BCS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"config key macro.bc[{i}] = {b!r} must be one of {', '.join(BCS)}{hint}")
    if not bc:
        return list(problem.default_bc)
    if len(bc) == 1:
        bc = bc * (2 * dim)
    if len(bc) != 2 * dim:
        raise ConfigError(f"config key macro.bc must have 1 or {2 * dim} entries ({', '.join(SIDES[:2 * dim])}), "
                          f"got {len(bc)}")
    pairs = [(bc[2 * d], bc[2 * d + 1]) for d in range(dim)]
    for d, (lo, hi) in enumerate(pairs):
        if (lo == "periodic") != (hi == "periodic"):
            raise ConfigError(f"config key macro.bc: {SIDES[2 * d]} is {lo} and {SIDES[2 * d + 1]} is {hi}; "
                              "periodic must be on both sides of a direction")
    return pairs


def _numbers(values) -> str:
    v = np.atleast_1d(np.asarray(values, dtype=float))
    text = ", ".join(f"{x:.6g}" for x in v)
    return text if v.size == 1 else f"({text})"
