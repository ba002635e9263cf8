r"""Superparametrization (``run.app = "superparam"``): a 2D convection box under every
column of a coarse 2D Boussinesq model (Grabowski & Smolarkiewicz 1999, Physica D
133:171; Grabowski 2001, J. Atmos. Sci. 58:978; Khairoutdinov & Randall 2001, GRL
28:3617).

Both models solve the same nondimensional Boussinesq equations (thermal-diffusion time,
depth 1, temperature contrast 1, the same Ra and Pr), so their scales match without
conversion. The coarse model (:class:`~hmmpar.macro.boussinesq.CoarseBoussinesq`, a
PETSc DMDA, ``macro.nx`` columns of ``macro.nz`` cells over the width ``macro.lx``) is too
coarse to resolve the convection; a box of width ``micro.aspect`` (at most a macro
column's width) stands under each column as a persistent instance of an
:class:`~hmmpar.core.instances.InstancePool` (instance id = column index).

One macro step of size :math:`\Delta t` (``macro.dt``), as in SAM, the CRM of SP-CAM and
E3SM-MMF, and the OpenIFS-DALES coupler (temperature always; the horizontal momentum too
with ``coupling.momentum``, the same three steps with :math:`u` for :math:`T`):

1. the coarse model advances its own dynamics to a provisional state :math:`T^*`:
   advection, horizontal diffusion, momentum, buoyancy and the projection, but no vertical
   heat diffusion and no wall heat flux, which the boxes carry (with them in the coarse
   model too they would be counted twice);
2. each box is forced uniformly in x by :math:`f_T(z) = q(z)/\Delta t`, where :math:`q` is
   the smallest-norm polynomial whose macro-cell averages are :math:`T^*_k - \overline{\langle
   T\rangle}_k` (:mod:`hmmpar.apps.superparam_remap`), and runs :math:`\Delta t` with its own
   CFL sub-steps;
3. the coarse model takes the box's mean tendency: :math:`T_k \leftarrow T^*_k +
   (\overline{\langle T\rangle_{\rm end}}_k - T^*_k)`, the bar the exact cell average.

Momentum (``coupling.momentum = true``, the default): the column's cell-centre :math:`u^*`
forces the box's mean wind :math:`U(z)` by the same min-norm lift, and the column takes
:math:`\overline{U_{\rm end}}_k - u^*_k` (the boxes' Reynolds-stress and viscous
tendency) through :meth:`~hmmpar.macro.boussinesq.CoarseBoussinesq.add_tendency`. Without
it, a periodic free-slip box at finite Pr grows its own mean shear flow, which tilts and
throttles its convection (measured at Ra = 1e5, Pr = 1, width 1: Nu about 2 instead of
about 10, see docs/superparam.md). The coarse model keeps its own vertical viscosity (the
momentum analogue of the heat double count; small against the eddy transport at
convective Ra, and nil at free-slip walls).

Heat bookkeeping per column: the forcing gives the box :math:`Q = \Delta t\int f_T\,dz =
\sum_k \Delta z\,(T^*_k - \overline{\langle T\rangle}_k)` exactly, and the coarse column
receives :math:`\sum_k \Delta z\,\delta T_k`; their balance, :math:`\sum_k \Delta z\,\delta
T_k = \int(\langle T\rangle_{\rm end} - \langle T\rangle_{\rm start})\,dz - Q` (the box's own
heat gain through its walls), holds to round-off and is reported every step.

With ``coupling.superparam = false`` the coarse model runs alone with its own vertical
diffusion and wall fluxes: the baseline superparametrization must beat.
"""
from __future__ import annotations


import json
import math
from pathlib import Path

import numpy as np
from mpi4py import MPI

from hmmpar.apps.base import Application, FixedSteps
from hmmpar.apps.superparam_remap import cell_average_matrix, interpolation_matrix, min_norm_lift, product
from hmmpar.core.checkpoint import Block, CheckpointReader
from hmmpar.core.config import RUNTIME_SCHEMA, Field
from hmmpar.core.errors import CheckpointError, ConfigError, HmmparError
from hmmpar.core.rng import INSTANCES, task_rng

FIELDS = ("u", "w", "T", "p")
#: move boxes only if the new placement lowers the largest rank's predicted cost by this fraction
REBALANCE_MIN_GAIN = 0.02


class Superparam(FixedSteps, Application):
    """A coarse Boussinesq model with a convection box under every column."""

    name = "superparam"
    result_dtype = np.dtype([("unused", "f8")])
    persistent_instances = True
    schema = {
        "model": {
            "ra": Field(float, 1e5, "Rayleigh number of both models", min=0.0, min_exclusive=True),
            "pr": Field(float, 1.0, "Prandtl number of both models (finite)", min=0.0, min_exclusive=True),
            "walls": Field(str, "free-slip", "velocity condition at both walls", choices=("free-slip", "no-slip")),
            "bottom_amplitude": Field(float, 0.5, "A of the bottom temperature 1 - A cos(2 pi x / macro.lx): "
                                      "warm in the middle, cool at the sides", min=0.0, max=1.0),
            "bottom_profile": Field(list, [], "bottom temperature of each macro column (macro.nx values in "
                                    "[0, 2], the cosine's range; replaces the cosine; empty: the cosine)",
                                    item_type=float, min=0.0, max=2.0),
        },
        "macro": {
            "lx": Field(float, 8.0, "domain width (depth 1)", min=0.0, min_exclusive=True),
            "nx": Field(int, 8, "macro columns (one convection box each)", min=2),
            "nz": Field(int, 8, "macro cells per column", min=2),
            "dt": Field(float, 2e-4, "macro (coupling) step", min=0.0, min_exclusive=True),
            "t_end": Field(float, 0.02, "final time", min=0.0, min_exclusive=True, physics=False),
            "cfl": Field(float, 0.5, "the macro step must stay below cfl times the coarse model's explicit "
                         "limit", min=0.0, max=1.0, min_exclusive=True),
            "poisson": Field(str, "redundant", "redundant (bitwise on any rank count) or distributed (to the "
                             "KSP tolerance)", choices=("redundant", "distributed")),
        },
        "micro": {
            "aspect": Field(float, 1.0, "width of each box (at most macro.lx / macro.nx)", min=0.0,
                            min_exclusive=True),
            "nx": Field(int, 32, "Fourier points of a box", min=8),
            "nz": Field(int, 25, "Chebyshev points of a box (walls included)", min=9),
            "cfl": Field(float, 0.5, "CFL number of the box sub-steps", min=0.0, max=2.0, min_exclusive=True),
            "perturbation": Field(float, 1e-2, "random initial temperature perturbation of each box", min=0.0),
        },
        "coupling": {
            "superparam": Field(bool, True, "run a box under every column (false: the coarse model alone, "
                                "with its own vertical diffusion and wall fluxes)"),
            "momentum": Field(bool, True, "couple the horizontal momentum too (each box's mean wind follows its "
                              "column's u; the column takes the box's mean momentum tendency), as SAM couples u "
                              "and v; false: temperature only"),
            "rebalance_every": Field(int, 10, "place the boxes again by their measured cost every N steps "
                                     "(0: never)", min=0, physics=False),
        },
        "output": {
            **RUNTIME_SCHEMA["output"],
            "snapshot_every": Field(int, 0, "an HDF5 snapshot every N steps (0: the last only)", min=0,
                                    physics=False),
            "average_from": Field(float, 0.0, "time averages of the column profiles (summary 'averages') over "
                                  "the steps that start at or after this time (set it past the spin-up; a "
                                  "restart keeps the start of an averaging window already begun)", min=0.0,
                                  physics=False),
        },
    }

    def __init__(self, config, comm, timers) -> None:
        super().__init__(config, comm, timers)
        from hmmpar.macro.boussinesq import BoussinesqParams, CoarseBoussinesq
        from hmmpar.micro.convection import ConvectionModel, ConvectionParams
        m, M, u = config.section("model"), config.section("macro"), config.section("micro")
        self.sp = config["coupling.superparam"]
        self.momentum = self.sp and config["coupling.momentum"]
        self.dt, self.t_end = M["dt"], M["t_end"]
        ratio = self.t_end / self.dt
        if ratio > 1e7:
            raise ConfigError(f"config keys macro.t_end / macro.dt = {ratio:.3g} steps, more than 1e7")
        self.steps = max(1, round(ratio))
        if abs(self.steps * self.dt - self.t_end) > 1e-9 * self.t_end:
            raise ConfigError(f"config keys macro.t_end / macro.dt = {ratio:.6g}: not a whole number of steps "
                              f"(the run would end at t = {self.steps * self.dt:g}, not {self.t_end:g})")
        self.average_start = math.ceil(config["output.average_from"] / self.dt - 1e-9)
        if self.average_start > self.steps - 1:
            raise ConfigError(f"config key output.average_from = {config['output.average_from']:g}: no step starts "
                              f"at or after it (the last starts at t = {(self.steps - 1) * self.dt:g}; macro.t_end "
                              f"= {self.t_end:g})")
        width = M["lx"] / M["nx"]
        if self.sp and u["aspect"] > width * (1 + 1e-12):
            raise ConfigError(f"config key micro.aspect = {u['aspect']:g}: a box is wider than a macro column "
                              f"(macro.lx / macro.nx = {width:g})")
        if self.sp and M["nz"] > u["nz"]:
            raise ConfigError(f"config key macro.nz = {M['nz']}: more macro cells than the box has levels "
                              f"(micro.nz = {u['nz']}); the coupling needs macro.nz <= micro.nz")
        profile = m["bottom_profile"] or None
        if profile is not None and len(profile) != M["nx"]:
            raise ConfigError(f"config key model.bottom_profile has {len(profile)} values, expected macro.nx = "
                              f"{M['nx']} (one per macro column)")
        self.micro_params = ConvectionParams(ra=m["ra"], pr=m["pr"], aspect=u["aspect"], nx=u["nx"], nz=u["nz"],
                                             walls=m["walls"], bottom="temperature", cfl=u["cfl"])
        if self.sp:
            self.micro_params.validate(prefix="micro.")
        self.macro_params = BoussinesqParams(ra=m["ra"], pr=m["pr"], lx=M["lx"], nx=M["nx"], nz=M["nz"],
                                             bottom="temperature", bottom_amplitude=m["bottom_amplitude"],
                                             bottom_profile=profile,
                                             walls=m["walls"], poisson=M["poisson"], cfl=M["cfl"])
        self.macro = CoarseBoussinesq(comm, self.macro_params)
        self.model = ConvectionModel(self.micro_params) if self.sp else None
        z_edges = self.macro.z_edges
        self.dz = np.diff(z_edges)
        if self.sp:
            self.avg = cell_average_matrix(self.model.z, z_edges)  # (nzM, nz)
            self.lift = min_norm_lift(self.avg, self.model.quadrature_weights)  # (nz, nzM)
            self.at_faces = interpolation_matrix(self.model.z, z_edges)  # (nzM + 1, nz)
            self.slope_at_faces = interpolation_matrix(self.model.z, z_edges, derivative=1)
        self.sums = np.zeros(self.macro.columns.size, dtype=self._sums_dtype())
        self.samples = 0
        counts = comm.allgather(self.macro.columns.size)
        self.holder = np.repeat(np.arange(comm.size), counts)  # the DMDA's column owner
        self.bottom = self.macro.bottom_global.copy()
        self.pool = None
        self.defect_max = 0.0
        self.micro_substeps = 0
        #: the rebalance record of the summary (``count``, ``moved``, ``last``, ``first_move``):
        #: kept compact (not one entry per rebalance) and checkpointed
        self.rebalance_record: dict = {"count": 0, "moved": 0, "last": None, "first_move": None}
        self.snapshots: list[float] = []

    # ------------------------------------------------------------------ run
    def _make_pool(self, costs: np.ndarray, init) -> None:
        from hmmpar.core.instances import InstancePool
        self.pool = InstancePool(self.comm, self.model.state_dtype, costs, init, stats=self.micro_stats)

    def _initial(self, ids: np.ndarray) -> np.ndarray:
        seed = self.config["run.seed"]
        rngs = [task_rng(seed, 0, int(i), family=INSTANCES) for i in ids]
        return self.model.initial_states(rngs, amplitude=self.config["micro.perturbation"], bottom=self.bottom[ids])

    def initialize(self) -> None:
        self.macro.initialize()
        if self.sp:
            self._make_pool(np.ones(self.macro_params.nx), self._initial)
        self.step = 0

    def _check_dt(self) -> None:
        limit = self.macro.stable_dt()  # raises on a non-finite state
        if self.dt > limit:
            raise HmmparError(f"macro step {self.step}, t = {self.sim_time:.6g}: macro.dt = {self.dt:g} exceeds the "
                              f"coarse model's stable step {limit:.4g} (cfl {self.macro_params.cfl:g}); lower macro.dt")

    def advance(self, step: int) -> int:
        self._check_dt()
        averaging = step >= self.average_start
        if averaging:  # the coarse model's own flux of this (forward Euler) step
            flux = self.macro.vertical_heat_flux(vertical_heat=not self.sp)
        with self.timers.phase("macro_solve"):
            self.macro.provisional(self.dt, vertical_heat=not self.sp)
        stepped = 0
        if self.sp:
            stepped, box_flux = self._columns(step)
            if averaging:
                flux = flux + box_flux
        if averaging:
            self.sums["T"] += self.macro.column_T()
            self.sums["F"] += flux
            self.samples += 1
        self.step = step + 1
        every = self.config["output.snapshot_every"]
        if every and self.step % every == 0:
            self._snapshot()
        return stepped

    def _columns(self, step: int) -> int:
        """Steps 2 and 3 of the coupling for every column (collective)."""
        from hmmpar.micro.convection import ConvectionBlowUp
        nzm = self.macro_params.nz
        row = np.dtype([("T", "f8", (nzm,)), ("u", "f8", (nzm,))])
        mine = np.zeros(self.macro.columns.size, dtype=row)
        mine["T"] = self.macro.column_T()
        momentum = self.momentum
        if momentum:
            mine["u"] = self.macro.column_u()
        placed = self.pool.from_layout(mine, self.holder)
        tstar, ustar = placed["T"], placed["u"]
        out_dtype = np.dtype([("dT", "f8", (nzm,)), ("dU", "f8", (nzm,)), ("F", "f8", (nzm + 1,)), ("defect", "f8"),
                              ("scale", "f8"), ("steps", "i8")])
        model, avg, lift, dz, dt, w = self.model, self.avg, self.lift, self.dz, self.dt, self.model.quadrature_weights
        at_faces, slope_at_faces = self.at_faces, self.slope_at_faces

        def per_column(a: np.ndarray, matrix: np.ndarray) -> np.ndarray:
            """``a @ matrix.T`` without BLAS (:func:`product`): a BLAS product rounds by its
            batch size and thread count, which differ with the rank count."""
            return product(np.asarray(a)[:, None, :], matrix[None, :, :].transpose(0, 2, 1))[:, 0, :] \
                if len(a) else np.zeros((0, matrix.shape[0]))

        def fn(states, ids, ctx, tstar, ustar):
            profiles = model.profiles(states)
            start = profiles["T"]  # (ncol, nz)
            forcing = per_column(tstar - per_column(start, avg), lift) / dt
            forcing_U = per_column(ustar - per_column(profiles["u"], avg), lift) / dt if momentum else None
            try:
                diag = model.advance(states, dt, forcing_T=forcing, forcing_U=forcing_U)
            except ConvectionBlowUp as exc:  # name the column, not its place in the batch
                raise HmmparError(f"column {int(ids[exc.column])} blew up at t = {exc.time:.6g} ({exc.cause})",
                                  collective=False) from None
            end = diag["mean_T"]
            res = np.zeros(ids.size, dtype=out_dtype)
            res["dT"] = per_column(end, avg) - tstar
            if momentum:
                res["dU"] = per_column(diag["mean_u"], avg) - ustar
            # the box's total upward heat flux <wT> - d<T>/dz at the macro faces, averaged over the step
            res["F"] = per_column(diag["avg_wT"], at_faces) - per_column(diag["avg_mean_T"], slope_at_faces)
            gain = per_column(end - start, w[None]) - dt * per_column(forcing, w[None])  # heat in through walls
            res["defect"] = per_column(res["dT"], dz[None])[:, 0] - gain[:, 0]
            res["scale"] = (per_column(np.abs(end), w[None]) + per_column(np.abs(start), w[None])
                            + per_column(np.abs(dt * forcing), w[None]))[:, 0]
            res["steps"] = diag["steps"]
            return res

        res = self.pool.step(fn, step=step, seed=self.config["run.seed"], tstar=tstar, ustar=ustar)
        local_defect = float(np.max(np.abs(res["defect"]) / np.maximum(res["scale"], 1e-300), initial=0.0))
        self.defect_max = max(self.defect_max, self.comm.allreduce(local_defect, op=MPI.MAX))
        self.micro_substeps += self.comm.allreduce(int(res["steps"].sum()))
        back = self.pool.to_layout(res, self.holder)
        with self.timers.phase("macro_solve"):
            self.macro.add_tendency(back["dT"], back["dU"] if momentum else None)
        every = self.config["coupling.rebalance_every"]
        if every and (step + 1) % every == 0 and step + 1 < self.steps:  # none after the last step
            self._rebalance(res["steps"].astype(float))
        return int(self.pool.ids.size), back["F"]

    def _rebalance(self, local_steps: np.ndarray) -> None:
        """Place the boxes again on their sub-step counts of the last step (a cost that is
        the same on any rank count, so the placement is reproducible).

        Records the step, the columns moved, the costs, the predicted imbalance (largest
        rank cost over the mean) before and after, and the measured one: max/mean over the
        ranks of the micro busy time since the previous rebalance, wall and CPU (reported,
        never used: the trajectory stays bitwise reproducible)."""
        costs = np.maximum(self.pool.global_costs(local_steps), 1.0)
        busy = np.array(self.comm.allgather((self.micro_stats.busy, self.micro_stats.busy_cpu)))  # (ranks, 2)
        since = busy - getattr(self, "_busy_mark", 0.0)
        self._busy_mark = busy
        owner = self.pool.owner

        def imbalance(owner: np.ndarray) -> float:
            return float(np.bincount(owner, weights=costs, minlength=self.comm.size).max() / costs.sum()
                         * self.comm.size)

        before = imbalance(owner)
        moved = self.pool.rebalance(costs, min_gain=REBALANCE_MIN_GAIN)
        after = imbalance(self.pool.owner)
        wall, cpu = (float(v.max() / v.mean()) if v.mean() > 0 else 1.0 for v in since.T)
        event = {"step": self.step + 1, "moved": moved, "imbalance_before": before, "imbalance_after": after,
                 "measured_busy_imbalance": wall, "measured_cpu_imbalance": cpu}
        rec = self.rebalance_record
        rec["count"] += 1
        rec["moved"] += int(moved)
        rec["last"] = event
        if moved and rec["first_move"] is None:
            rec["first_move"] = dict(event, costs=costs.tolist())
        if moved:
            self.log.info(f"rebalanced at step {self.step + 1}: moved {moved} column(s), predicted imbalance "
                          f"{before:.3f} -> {after:.3f}; measured since the last rebalance (max/mean micro busy, "
                          f"wall | CPU) {wall:.3f} | {cpu:.3f}")

    # ------------------------------------------------------------------ checkpoints
    def _sums_dtype(self) -> np.dtype:
        """Per column: the running sums of the time averages (T per cell, F per z face)."""
        nzm = self.macro_params.nz
        return np.dtype([("T", "f8", (nzm,)), ("F", "f8", (nzm + 1,))])

    def _macro_dtype(self) -> np.dtype:
        nzm = self.macro_params.nz
        return np.dtype([(f, "f8", (nzm,)) for f in FIELDS])

    def checkpoint_data(self) -> dict:
        s = self.macro.state_local()
        rows = np.zeros(self.macro.columns.size, dtype=self._macro_dtype())
        for f in FIELDS:
            rows[f] = s[f]
        first = int(self.macro.columns[0]) if rows.size else 0
        data = {"fields": {"macro": Block(rows, first, self.macro_params.nx),
                           "sums": Block(self.sums, first, self.macro_params.nx)},
                "attrs": {"step": self.step, "defect_max": self.defect_max, "micro_substeps": self.micro_substeps,
                          "snapshot_times": np.array(self.snapshots, dtype=float), "samples": self.samples,
                          "average_start": self.average_start,
                          "rebalance_record": json.dumps(self.rebalance_record)}}
        if self.sp:
            first, states = self.pool.global_block()
            data["instances"] = {"columns": Block(states, first, self.pool.size)}
            data["attrs"]["costs"] = np.asarray(self.pool.costs, dtype=float)
        return data

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        nx = self.macro_params.nx
        if reader.rows("fields", "macro") != nx:
            raise CheckpointError(f"checkpoint {reader.path} holds {reader.rows('fields', 'macro')} macro columns, "
                                  f"config macro.nx = {nx}")
        a = reader.attrs
        lo, hi = int(self.macro.columns[0]), int(self.macro.columns[-1]) + 1
        rows = reader.read_block("fields", "macro", lo, hi)
        step = int(a["step"])
        state = {f: rows[f] for f in FIELDS}
        state.update(columns=np.arange(lo, hi), time=step * self.dt, steps=step)
        self.macro.load_state_local(state)
        if self.sp:
            self._make_pool(np.asarray(a["costs"], dtype=float), None)
            b0, b1 = self.pool.block_range()
            self.pool.load_block(b0, reader.read_block("instances", "columns", b0, b1))
        self.sums[...] = reader.read_block("fields", "sums", lo, hi)
        self.samples = int(a["samples"])
        if self.samples:  # a window already begun keeps its start
            self.average_start = int(a["average_start"])
        self.step = step
        self.defect_max = float(a["defect_max"])
        self.micro_substeps = int(a["micro_substeps"])
        self.snapshots = [float(v) for v in np.atleast_1d(a["snapshot_times"])]
        if "rebalance_record" in a:  # absent in checkpoints written before it was kept
            self.rebalance_record = json.loads(a["rebalance_record"])

    # ------------------------------------------------------------------ outputs
    def _snapshot(self) -> None:
        from hmmpar.io.fv_output import write_snapshot
        f = self.macro.natural_fields()
        write_snapshot(self.comm, self.config["run.output_dir"], "superparam", len(self.snapshots),
                       self._cell_fields(f) if f is not None else None, {"time": self.sim_time, "step": self.step})
        self.snapshots.append(self.sim_time)

    @staticmethod
    def _cell_fields(f: dict) -> dict:
        """Cell-centred (nz, nx) arrays for the XDMF grid."""
        u = 0.5 * (f["u"] + np.roll(f["u"], -1, axis=0))
        w = 0.5 * (f["w"][:, :-1] + f["w"][:, 1:])
        return {"T": f["T"].T.copy(), "u": u.T.copy(), "w": w.T.copy(), "p": f["p"].T.copy()}

    def finalize(self, outdir: Path) -> dict | None:
        if not self.snapshots or self.snapshots[-1] != self.sim_time:
            self._snapshot()
        heat = self.macro.heat_content()
        f = self.macro.natural_fields()
        sum_T = self.macro.gather.all(self.sums["T"])
        sum_F = self.macro.gather.all(self.sums["F"])
        if self.comm.rank != 0:
            self.macro.destroy()
            return None
        self.macro.destroy()
        from hmmpar.io.fv_output import write_time_series
        p = self.macro_params
        entries = [(t, f"snapshots/superparam_{k:05d}.h5") for k, t in enumerate(self.snapshots)]
        write_time_series(outdir / "superparam.xdmf", entries, ["T", "u", "w", "p"], [p.nx, p.nz], [0.0, 0.0],
                          [p.lx / p.nx, 1.0 / p.nz])
        column_mean_T = f["T"]  # (nx, nz)
        summary = {
            "app": self.name, "superparam": self.sp, "time": self.sim_time, "steps": self.step,
            "macro_cells": [p.nx, p.nz], "heat_content": heat,
            "profiles": {"column_T": column_mean_T.tolist(), "bottom": self.bottom.tolist()},
            "heat_exchange_defect_max": self.defect_max if self.sp else None,
            "micro_substeps": self.micro_substeps,
            "averages": self._averages(sum_T, sum_F),
            "rebalance": self.rebalance_record,
        }
        if self.config["output.plots"]:
            self._plot(outdir / "superparam.png", f)
        return summary

    def _averages(self, sum_T: np.ndarray, sum_F: np.ndarray) -> dict:
        r"""Time means over the steps from ``output.average_from``: per column the cell
        temperatures (``column_T``, (nx, nz)) and the total upward heat flux through the z
        faces (``heat_flux``, (nx, nz + 1), walls included): the coarse model's own flux
        :meth:`~hmmpar.macro.boussinesq.CoarseBoussinesq.vertical_heat_flux` of each step plus,
        with superparametrization, the box's :math:`\langle wT\rangle - \partial_z\langle
        T\rangle` at the faces averaged over the step. ``mean_heat_flux`` is the mean over
        the columns, ``nusselt_bottom`` the bottom face's flux per column."""
        n = max(self.samples, 1)
        T, F = sum_T / n, sum_F / n
        return {"from_time": self.average_start * self.dt, "samples": self.samples,
                "z_centres": self.macro.z_centres.tolist(), "z_faces": self.macro.z_edges.tolist(),
                "column_T": T.tolist(), "heat_flux": F.tolist(), "mean_heat_flux": F.mean(axis=0).tolist(),
                "nusselt_bottom": F[:, 0].tolist()}

    def _plot(self, path: Path, f: dict) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        p = self.macro_params
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [2, 1]})
        x = (np.arange(p.nx) + 0.5) * p.lx / p.nx
        z = (np.arange(p.nz) + 0.5) / p.nz
        im = a1.pcolormesh(x, z, f["T"].T, shading="nearest", cmap="RdBu_r")
        fig.colorbar(im, ax=a1, label="T")
        a1.set(xlabel="x", ylabel="z", title=f"coarse T ({'with' if self.sp else 'without'} "
                                             f"superparametrization), t = {self.sim_time:g}")
        for i in sorted({0, p.nx // 4, p.nx // 2}):
            a2.plot(f["T"][i], z, label=f"column {i}")
        a2.plot(1 - z, z, "k:", label="conduction, T_b = 1")
        a2.set(xlabel="T", ylabel="z", title="column profiles")
        a2.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


__all__ = ["Superparam"]

