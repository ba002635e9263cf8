r"""One 2D Boussinesq convection box (``run.app = "convection"``): the micro model of
superparametrization run on its own.

The box (:mod:`hmmpar.micro.convection`) is periodic in x with width ``micro.aspect`` and
lies between walls at z = 0 and z = 1; in thermal-diffusion units

.. math::

    \partial_t \mathbf u + \mathbf u\cdot\nabla\mathbf u = -\nabla p + \mathrm{Pr}\,\nabla^2\mathbf u
    + \mathrm{Pr}\,\mathrm{Ra}\,T\,\hat{\mathbf z}, \qquad \nabla\cdot\mathbf u = 0, \qquad
    \partial_t T + \mathbf u\cdot\nabla T = \nabla^2 T,

with ``micro.pr = inf`` the Stokes limit. It is one persistent instance of an
:class:`~hmmpar.core.instances.InstancePool` (instance 0, on rank 0): each runtime step
advances it by ``time.sample_dt`` (with its own CFL sub-steps) and records the Nusselt
numbers, Vrms and the kinetic energy. The run's summary holds their time series, the
values at the end and the exponential growth rate of the perturbation's kinetic energy
in the linear phase (:func:`linear_growth_rate`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hmmpar.apps.base import Application, FixedSteps
from hmmpar.core.checkpoint import Block, CheckpointReader
from hmmpar.core.config import RUNTIME_SCHEMA, Config, Field
from hmmpar.core.errors import CheckpointError, ConfigError, HmmparError
from hmmpar.core.rng import INSTANCES, task_rng

#: the [micro] keys of a convection box, shared with the superparametrization app
MICRO_SCHEMA: dict[str, Field] = {
    "ra": Field(float, 1e4, "Rayleigh number", min=0.0, min_exclusive=True),
    "pr": Field(float, math.inf, "Prandtl number (inf: Stokes flow)", min=0.0, min_exclusive=True,
                allow_inf=True),
    "aspect": Field(float, 2.0, "box width over depth (periodic in x)", min=0.0, min_exclusive=True),
    "nx": Field(int, 64, "Fourier points in x (even)", min=8),
    "nz": Field(int, 33, "Chebyshev points in z, walls included", min=9),
    "walls": Field(str, "free-slip", "velocity condition at both walls", choices=("free-slip", "no-slip")),
    "bottom": Field(str, "temperature", "bottom thermal condition: fixed temperature or fixed heat flux "
                    "(the top is T = 0)", choices=("temperature", "flux")),
    "cfl": Field(float, 0.5, "CFL number of the sub-steps", min=0.0, max=2.0, min_exclusive=True),
    "perturbation": Field(float, 1e-3, "amplitude of the random initial temperature perturbation", min=0.0),
}

HISTORY_DTYPE = np.dtype([("t", "f8"), ("nu_top", "f8"), ("nu_bottom", "f8"), ("nu_volume", "f8"),
                          ("vrms", "f8"), ("ke", "f8"), ("steps", "i8")])
#: the linear phase ends when the kinetic energy exceeds this fraction of its largest value
LINEAR_PHASE_FRACTION = 1e-3


def micro_params(config: Config, prefix: str = "micro."):
    """The :class:`~hmmpar.micro.convection.ConvectionParams` of a config's [micro] section,
    validated (one-line :class:`ConfigError` naming the key)."""
    from hmmpar.micro.convection import ConvectionParams
    m = config.section(prefix.rstrip("."))
    p = ConvectionParams(ra=m["ra"], pr=m["pr"], aspect=m["aspect"], nx=m["nx"], nz=m["nz"],
                         walls=m["walls"], bottom=m["bottom"], cfl=m["cfl"])
    p.validate(prefix=prefix)
    return p


def linear_growth_rate(t: np.ndarray, ke: np.ndarray) -> tuple[float, int, int]:
    r"""Growth rate :math:`\sigma` of the perturbation amplitude, ``KE ~ exp(2 sigma t)``.

    Least-squares slope of :math:`\tfrac12 \ln \mathrm{KE}` against t over the second
    half (in time) of the linear phase. The linear phase runs to the last sample whose
    kinetic energy is below :data:`LINEAR_PHASE_FRACTION` of the largest one (the
    nonlinear terms are below that fraction of the linear ones); its first half is left
    out because a random initial perturbation also excites slower modes, whose share of
    the energy decays like :math:`e^{-2(\sigma_1 - \sigma_2) t}`. A decaying run is
    linear throughout.

    Returns
    -------
    sigma, first, last
        The rate and the sample window ``[first, last]`` it was fitted on; NaN if fewer
        than three samples are in the window.
    """
    t, ke = np.asarray(t, float), np.asarray(ke, float)
    ok = np.isfinite(ke) & (ke > 0)
    if ok.sum() < 4:
        return math.nan, 0, -1
    limit = LINEAR_PHASE_FRACTION * ke[ok].max()
    first = 1
    last = first
    while last + 1 < ke.size and ok[last + 1] and ke[last + 1] <= limit:
        last += 1
    if ke[first] > limit:  # grows past the fraction at once: nothing linear was sampled
        return math.nan, first, first
    first = int(np.searchsorted(t, 0.5 * (t[first] + t[last])))
    if last - first < 2:
        return math.nan, first, last
    slope = np.polyfit(t[first:last + 1], 0.5 * np.log(ke[first:last + 1]), 1)[0]
    return float(slope), first, last


class Convection(FixedSteps, Application):
    """A single convection box stepped as a persistent micro instance."""

    name = "convection"
    result_dtype = np.dtype([("unused", "f8")])
    persistent_instances = True
    steps_estimated = False
    schema = {
        "micro": MICRO_SCHEMA,
        "time": {
            "t_end": Field(float, 0.2, "final time (thermal-diffusion units)", min=0.0, min_exclusive=True,
                           physics=False),
            "sample_dt": Field(float, 0.005, "time between diagnostics samples (one runtime step; "
                               "checkpoints fall on samples)", min=0.0, min_exclusive=True),
        },
        "output": {
            **RUNTIME_SCHEMA["output"],
            "snapshot_every": Field(int, 0, "write an HDF5 snapshot every N samples (0: the last only)",
                                    min=0, physics=False),
        },
    }

    def __init__(self, config, comm, timers) -> None:
        super().__init__(config, comm, timers)
        from hmmpar.micro.convection import ConvectionModel
        self.params = micro_params(config)
        self.dt = config["time.sample_dt"]
        self.t_end = config["time.t_end"]
        ratio = self.t_end / self.dt
        if ratio > 1e7:
            raise ConfigError(f"config keys time.t_end / time.sample_dt = {ratio:.3g} samples, more than 1e7; "
                              "raise time.sample_dt")
        self.steps = max(1, round(ratio))
        self.model = ConvectionModel(self.params)
        self.pool = None
        self.history = np.zeros(0, dtype=HISTORY_DTYPE)
        self.snapshot_times: list[float] = []

    # ------------------------------------------------------------------ run
    def _make_pool(self, init) -> None:
        from hmmpar.core.instances import InstancePool
        self.pool = InstancePool(self.comm, self.model.state_dtype, np.ones(1), init, stats=self.micro_stats)

    def _initial(self, ids: np.ndarray) -> np.ndarray:
        seed = self.config["run.seed"]
        rngs = [task_rng(seed, 0, int(i), family=INSTANCES) for i in ids]
        return self.model.initial_states(rngs, amplitude=self.config["micro.perturbation"])

    def initialize(self) -> None:
        self._make_pool(self._initial)
        self.step = 0
        first = self._sample(None)
        self.history = first if first is not None else np.zeros(0, dtype=HISTORY_DTYPE)

    def _sample(self, diag) -> np.ndarray | None:
        """The history row of the current state (rank 0 only; None elsewhere)."""
        rows = None
        if self.pool.ids.size:
            d = self.model.diagnose(self.pool.states) if diag is None else diag
            rows = np.zeros(1, dtype=HISTORY_DTYPE)
            rows["t"] = self.sim_time
            for k in ("nu_top", "nu_bottom", "nu_volume", "vrms", "ke"):
                rows[k] = d[k][0]
            rows["steps"] = 0 if diag is None else d["steps"][0]
        return self.comm.bcast(rows, root=int(self.pool.owner[0]))

    def advance(self, step: int) -> int:
        from hmmpar.micro.convection import ConvectionBlowUp
        model = self.model

        def fn(states, ids, ctx, duration):
            try:
                return model.advance(states, duration)
            except ConvectionBlowUp as exc:  # name the box, not its place in the batch
                raise HmmparError(f"the convection box blew up at t = {exc.time:.6g} ({exc.cause})",
                                  collective=False) from None

        diag = self.pool.step(fn, step=step, seed=self.config["run.seed"], duration=self.dt)
        self.step = step + 1
        row = self._sample(diag)
        self.history = np.concatenate([self.history, row])
        every = self.config["output.snapshot_every"]
        if every and self.step % every == 0:
            self._snapshot()
        return int(self.pool.ids.size)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_data(self) -> dict:
        first, rows = self.pool.global_block()
        n = self.history.size
        hist = self.history if self.comm.rank == 0 else self.history[:0]
        return {"instances": {"box": Block(rows, first, self.pool.size)},
                "fields": {"history": Block(hist.copy(), 0 if self.comm.rank == 0 else n, n)},
                "attrs": {"step": self.step, "snapshot_times": np.array(self.snapshot_times, dtype=float)}}

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        if reader.rows("instances", "box") != 1:
            raise CheckpointError(f"checkpoint {reader.path} holds {reader.rows('instances', 'box')} boxes, not 1")
        self._make_pool(None)
        lo, hi = self.pool.block_range()
        rows = reader.read_block("instances", "box", lo, hi)
        if rows.dtype != self.model.state_dtype:
            raise CheckpointError(f"checkpoint {reader.path} holds a box state of another layout "
                                  f"({rows.dtype.itemsize} bytes per state, now {self.model.state_dtype.itemsize})")
        self.pool.load_block(lo, rows)
        n = reader.rows("fields", "history")
        self.history = reader.read_block("fields", "history", 0, n)
        self.step = int(reader.attrs["step"])
        self.snapshot_times = [float(v) for v in np.atleast_1d(reader.attrs["snapshot_times"])]

    # ------------------------------------------------------------------ outputs
    def _fields(self) -> dict | None:
        """The physical fields of the box on its owner, sent to rank 0 (None elsewhere)."""
        owner = int(self.pool.owner[0])
        fields = self.model.fields(self.pool.states) if self.pool.ids.size else None
        if owner != 0:
            if self.comm.rank == owner:
                self.comm.send(fields, dest=0, tag=71)
            elif self.comm.rank == 0:
                fields = self.comm.recv(source=owner, tag=71)
        return {k: v[0] for k, v in fields.items()} if self.comm.rank == 0 else None

    def _snapshot(self) -> None:
        from hmmpar.io.fv_output import write_snapshot
        write_snapshot(self.comm, self.config["run.output_dir"], "convection", len(self.snapshot_times),
                       self._fields(), {"time": self.sim_time, "step": self.step})
        self.snapshot_times.append(self.sim_time)

    def finalize(self, outdir: Path) -> dict | None:
        if not self.snapshot_times or self.snapshot_times[-1] != self.sim_time:
            self._snapshot()
        fields = self._fields()
        if self.comm.rank != 0:
            return None
        from hmmpar.io.grid_output import write_point_time_series
        names = sorted(fields)
        entries = [(t, f"snapshots/convection_{k:05d}.h5") for k, t in enumerate(self.snapshot_times)]
        write_point_time_series(outdir / "convection.xdmf", entries, names, self.model.x, self.model.z,
                                title="convection")
        h = self.history
        sigma, first, last = linear_growth_rate(h["t"], h["ke"])
        p = self.params
        summary = {
            "app": self.name, "ra": p.ra, "pr": p.pr if math.isfinite(p.pr) else "inf", "aspect": p.aspect,
            "nx": p.nx, "nz": p.nz, "walls": p.walls, "bottom": p.bottom, "time": self.sim_time,
            "samples": int(h.size), "sub_steps": int(h["steps"].sum()),
            "nu_top": float(h["nu_top"][-1]), "nu_bottom": float(h["nu_bottom"][-1]),
            "nu_volume": float(h["nu_volume"][-1]), "vrms": float(h["vrms"][-1]),
            "growth_rate": None if math.isnan(sigma) else sigma,
            "growth_window": [float(h["t"][first]), float(h["t"][last])] if last >= first else None,
            "series": {k: h[k].tolist() for k in ("t", "nu_top", "nu_bottom", "nu_volume", "vrms", "ke")},
        }
        if self.config["output.plots"]:
            self._plot(outdir / "convection.png", fields, h)
        return summary

    def _plot(self, path: Path, fields: dict, h: np.ndarray) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [1.6, 1, 1]})
        x, z = self.model.x, self.model.z
        im = a1.pcolormesh(x, z, fields["T"], shading="nearest", cmap="RdBu_r")
        fig.colorbar(im, ax=a1, label="T")
        a1.set(xlabel="x", ylabel="z", aspect="equal", title=f"temperature, t = {self.sim_time:g}")
        for k, style in (("nu_top", "-"), ("nu_bottom", "--"), ("nu_volume", ":")):
            a2.plot(h["t"], h[k], style, label=k.replace("_", " "))
        a2.set(xlabel="t", ylabel="Nu", title="Nusselt number")
        a2.legend()
        a3.semilogy(h["t"], np.maximum(h["vrms"], 1e-300))
        a3.set(xlabel="t", ylabel="Vrms", title="rms velocity")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
