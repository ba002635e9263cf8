r"""HMM for slow variables driven by fast Ornstein-Uhlenbeck processes (the runtime's demo).

Model (the averaging example of E, Liu & Vanden-Eijnden, CPAM 58 (2005), and
Vanden-Eijnden, Commun. Math. Sci. 1 (2003)): for each of ``points`` independent slow
variables X,

.. math::

    \dot X = -Y^2 X, \qquad dY = -\frac{Y - X}{\varepsilon}\,dt + \sqrt{2/\varepsilon}\,dW .

As eps -> 0, Y equilibrates to N(X, 1) and X follows the averaged equation
dX/dt = -E[Y^2] X = -(1 + X^2) X, whose solution is exact:

.. math::

    X(t) = X_0 / \sqrt{(1 + X_0^2) e^{2t} - X_0^2} .

HMM: each macro step (forward Euler, step ``macro.dt``) solves one micro task per
point: the OU process with X frozen, sampled exactly over ``burn_in + samples`` micro
steps, and the estimator is the time average of Y^2. The macro state X is a PETSc Vec
(global order = point index), each task's random stream is keyed by (seed, step,
point), so the result is bitwise the same on any number of ranks.

The error against the exact solution has two parts: the Euler error O(dt) and the
statistical error of the estimator, whose variance is (2 + 4 X^2) tau / M
(:func:`hmmpar.micro.ou.integrated_autocorrelation_y2`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hmmpar.apps.base import Application, FixedSteps
from hmmpar.core.checkpoint import Block, CheckpointReader
from hmmpar.core.config import Field
from hmmpar.core.errors import CheckpointError, ConfigError
from hmmpar.core.preflight import check_memory
from hmmpar.core.farm import TaskContext
from hmmpar.micro.ou import second_moment_time_average

TASK_DTYPE = np.dtype([("task_id", "i8"), ("x", "f8"), ("a", "f8"), ("n_burn", "i8"), ("n", "i8")])
RESULT_DTYPE = np.dtype([("y2", "f8")])
#: most macro steps of a run: every step is at least one collective round of the farm
#: (~0.1 ms), so a run of more steps would not end in a job's lifetime
MAX_STEPS = 2**31 - 1


def exact_solution(x0: np.ndarray, t: float) -> np.ndarray:
    """Solution of dX/dt = -(1 + X^2) X at time t."""
    x0 = np.asarray(x0, dtype=float)
    return x0 / np.sqrt((1.0 + x0**2) * math.exp(2.0 * t) - x0**2)


def initial_values(points: int, x0_min: float, x0_max: float) -> np.ndarray:
    """X_i(0), evenly spaced in [x0_min, x0_max]."""
    return np.linspace(x0_min, x0_max, points) if points > 1 else np.array([x0_min])


class OUAveraging(FixedSteps, Application):
    """Slow ODEs with an averaged coefficient estimated from fast OU micro simulations."""

    name = "ou_averaging"
    result_dtype = RESULT_DTYPE
    schema = {
        "model": {
            "points": Field(int, 256, "number of independent slow variables", min=1),
            "x0_min": Field(float, 0.2, "smallest initial value"),
            "x0_max": Field(float, 2.0, "largest initial value"),
        },
        "macro": {
            "dt": Field(float, 0.02, "macro (forward Euler) step", min=0.0, min_exclusive=True),
            "t_end": Field(float, 1.0, "final time", min=0.0, min_exclusive=True, physics=False),
        },
        "micro": {
            "dt_over_eps": Field(float, 0.5, "micro step over eps (the OU chain is sampled exactly)",
                                 min=0.0, min_exclusive=True),
            "burn_in": Field(int, 20, "micro steps discarded before averaging", min=0),
            "samples": Field(int, 20000, "micro steps averaged per task", min=1),
        },
    }

    memory_keys = ("model.points", "micro.burn_in", "micro.samples")

    def __init__(self, config, comm, timers) -> None:
        super().__init__(config, comm, timers)
        from petsc4py import PETSc
        self.PETSc = PETSc
        m = config.section("model")
        if m["x0_max"] < m["x0_min"]:
            raise ConfigError("config key model.x0_max must be >= model.x0_min")
        self.points = m["points"]
        limit = int(np.iinfo(PETSc.IntType).max)
        if self.points > limit:
            raise ConfigError(f"config key model.points = {self.points} is more than this PETSc build's "
                              f"indices can number ({limit})")
        self.dt = config["macro.dt"]
        ratio = config["macro.t_end"] / self.dt
        if not ratio <= MAX_STEPS:
            raise ConfigError(f"config keys macro.t_end / macro.dt = {ratio:.3g} steps, more than "
                              f"{MAX_STEPS}; raise macro.dt or lower macro.t_end")
        self.steps = max(1, round(ratio))
        self.a = math.exp(-config["micro.dt_over_eps"])
        check_memory(comm, self)  # before the initial values and the PETSc Vec are allocated
        self.x0 = initial_values(self.points, m["x0_min"], m["x0_max"])
        self.X = PETSc.Vec().createMPI(self.points, comm=comm)
        self.lo, self.hi = self.X.getOwnershipRange()
        self.step = 0

    def memory_estimate(self) -> int:
        r"""Peak bytes of this rank: the initial values (every rank) and the gathered
        state of rank 0, :math:`4 \cdot 8 P`; its share of the state and of the task and
        result rows, :math:`\lceil P/R \rceil (8 \cdot 4 + 40 + 8)`; and the normal
        variates of one task, :math:`8\,(\text{burn\_in} + \text{samples})`."""
        share = -(-self.points // self.comm.size)
        draws = self.config["micro.burn_in"] + self.config["micro.samples"]
        return int(32 * self.points + share * 80 + 8 * draws)

    def initialize(self) -> None:
        self.X.setArray(self.x0[self.lo:self.hi])
        self.step = 0

    def tasks(self, step: int) -> np.ndarray:
        rows = np.empty(self.hi - self.lo, dtype=TASK_DTYPE)
        rows["task_id"] = np.arange(self.lo, self.hi)
        rows["x"] = self.X.getArray(readonly=True)
        rows["a"] = self.a
        rows["n_burn"] = self.config["micro.burn_in"]
        rows["n"] = self.config["micro.burn_in"] + self.config["micro.samples"]
        return rows

    @staticmethod
    def solve(rows: np.ndarray, ctx: TaskContext) -> np.ndarray:
        out = np.empty(rows.shape[0], dtype=RESULT_DTYPE)
        for i in range(rows.shape[0]):
            xi = ctx.rng(int(rows["task_id"][i])).standard_normal(int(rows["n"][i]))
            out["y2"][i] = second_moment_time_average(float(rows["x"][i]), float(rows["a"][i]),
                                                      int(rows["n_burn"][i]), xi)
        return out

    def absorb(self, step: int, results: np.ndarray) -> None:
        with self.timers.phase("macro_solve"):
            x = self.X.getArray()
            x -= self.dt * results["y2"] * x  # forward Euler on dX/dt = -<Y^2> X
            self.step = step + 1

    def checkpoint_data(self) -> dict:
        return {"fields": {"X": Block(self.X.getArray(readonly=True).copy(), self.lo, self.points)},
                "attrs": {"step": self.step}}

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        if reader.rows("fields", "X") != self.points:
            raise CheckpointError(f"checkpoint {reader.path} holds {reader.rows('fields', 'X')} points, "
                                  f"config model.points = {self.points}")
        self.X.setArray(reader.read_block("fields", "X", self.lo, self.hi))
        self.step = int(reader.attrs["step"])

    def gather_x(self) -> np.ndarray | None:
        """The macro state in global order on rank 0."""
        parts = self.comm.gather(self.X.getArray(readonly=True).copy(), root=0)
        return np.concatenate(parts) if self.comm.rank == 0 else None

    def finalize(self, outdir: Path) -> dict | None:
        x = self.gather_x()
        if self.comm.rank != 0:
            return None
        t = self.sim_time
        exact = exact_solution(self.x0, t)
        err = x - exact
        summary = {
            "app": self.name, "points": self.points, "steps": self.step, "time": t,
            "max_abs_error_vs_exact": float(np.max(np.abs(err))),
            "rms_error_vs_exact": float(np.sqrt(np.mean(err**2))),
        }
        import h5py
        with h5py.File(outdir / "ou_averaging.h5", "w") as f:
            f["x0"], f["X"], f["X_exact"] = self.x0, x, exact
            f.attrs["time"] = t
        np.save(outdir / "X.npy", x)
        if self.config["output.plots"]:
            self._plot(outdir / "ou_averaging.png", x, exact, t)
        return summary

    def _plot(self, path: Path, x: np.ndarray, exact: np.ndarray, t: float) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        grid = np.linspace(self.x0.min(), self.x0.max(), 400)
        ax1.plot(grid, exact_solution(grid, t), "k-", label="averaged ODE, exact")
        ax1.plot(self.x0, x, ".", ms=3, label="HMM")
        ax1.set(xlabel="$X_0$", ylabel=f"$X(t={t:g})$", title="slow variable after averaging")
        ax1.legend()
        ax2.plot(self.x0, x - exact, ".", ms=3)
        ax2.axhline(0, color="k", lw=0.5)
        ax2.set(xlabel="$X_0$", ylabel="HMM - exact", title=f"error (dt = {self.dt:g})")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
