"""The surface an application offers to the runtime.

The runner drives every application through the same HMM loop::

    step = first
    while app.more_steps(step):
        rows = app.tasks(step)                         # reconstruct: this rank's micro tasks
        while rows is not None:                        # one or more farm rounds per step
            results = farm.map(app.solve, rows, ...)   # micro solve, anywhere
            rows = app.absorb(step, results)           # compress + macro (sub)step (collective)
        step += 1

and asks it for checkpoint data and final outputs. A scheme with stages whose micro
data depend on the previous stage (a predictor-corrector, a Runge-Kutta method) returns
the next stage's task rows from ``absorb``; checkpoints fall between steps only.

An application whose micro models keep their state across macro steps (a
superparametrization column under every macro column) sets :attr:`persistent_instances`;
it owns a :class:`~hmmpar.core.instances.InstancePool` and the runner calls
:meth:`advance` once per step instead of the farm rounds::

    step = first
    while app.more_steps(step):
        app.advance(step)                              # macro part, pool.step, macro part
        step += 1
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from hmmpar.core.checkpoint import Block, CheckpointReader
from hmmpar.core.config import Config, Field
from hmmpar.core.farm import TaskContext
from hmmpar.core.log import RankLog
from hmmpar.core.timing import FarmStats, Timers


class Application:
    """Base class of an HMM application. Subclasses set the class attributes below."""

    #: registry name (``run.app``)
    name: ClassVar[str]
    #: config sections of this application: section -> key -> Field
    schema: ClassVar[dict[str, dict[str, Field]]]
    #: dtype of one micro result row
    result_dtype: ClassVar[np.dtype]
    #: the config keys that drive :meth:`memory_estimate` (named when a run is refused)
    memory_keys: ClassVar[tuple[str, ...]] = ()
    #: :attr:`n_steps` is an estimate that may change during the run (the step count
    #: follows from the solution, e.g. a CFL time step run to a final time); the run
    #: ends when :meth:`more_steps` says so
    steps_estimated: ClassVar[bool] = False
    #: the micro models are persistent instances of the application's own
    #: :class:`~hmmpar.core.instances.InstancePool`: the runner calls :meth:`advance`
    #: once per step (no farm, no :meth:`tasks` / :meth:`solve` / :meth:`absorb`)
    persistent_instances: ClassVar[bool] = False
    #: the application calls the farm itself from :meth:`advance` (``self.farm``, set by
    #: the runner before ``initialize`` / ``load_checkpoint``): a coupler whose solver asks
    #: for micro work through callbacks (a Newton--Krylov solve, the stages of a projective
    #: method), so the runner's tasks / solve / absorb rounds do not fit it
    drives_farm: ClassVar[bool] = False

    def __init__(self, config: Config, comm, timers: Timers) -> None:
        self.config = config
        self.comm = comm
        self.timers = timers
        #: macro steps completed (set by initialize/absorb/load_checkpoint)
        self.step = 0
        #: where micro work is counted (busy, idle, comm, tasks): the runner gives the
        #: application its own before ``initialize`` / ``load_checkpoint``, so an
        #: instance pool built then reports into the run's timing
        self.micro_stats = FarmStats()
        #: rank-0 log lines (the runner gives the application the run's log, which obeys
        #: ``--quiet``)
        self.log = RankLog(comm)
        #: the run's farm (set by the runner; used by applications that set :attr:`drives_farm`)
        self.farm = None

    def memory_estimate(self) -> int:
        """Bytes this rank will allocate at its peak (default 0: not estimated).

        Called after construction, before ``initialize`` / ``load_checkpoint``: the
        runner sums it over the ranks of each node and refuses a run that exceeds the
        node's memory (:func:`hmmpar.core.preflight.check_memory`)."""
        return 0

    # the run
    @property
    def n_steps(self) -> int:
        """Total number of macro steps of the run (an estimate if :attr:`steps_estimated`)."""
        raise NotImplementedError

    def more_steps(self, done: int) -> bool:
        """Whether another macro step follows the first ``done`` ones (the same answer on
        every rank). Default ``done < n_steps``; an application with :attr:`steps_estimated`
        decides from its state (e.g. simulated time below the final time)."""
        return done < self.n_steps

    @property
    def sim_time(self) -> float:
        """Simulated time reached."""
        raise NotImplementedError

    def initialize(self) -> None:
        """Set the initial macro state (a fresh run)."""
        raise NotImplementedError

    def tasks(self, step: int) -> np.ndarray:
        """The micro tasks this rank owns at ``step`` (structured array with task_id)."""
        raise NotImplementedError

    @staticmethod
    def solve(rows: np.ndarray, ctx: TaskContext) -> np.ndarray:
        """Micro solve of a batch of task rows: a pure function of the rows and ctx's streams."""
        raise NotImplementedError

    def absorb(self, step: int, results: np.ndarray) -> np.ndarray | None:
        """Compress the results of this rank's tasks and advance the macro state.

        Return None when step ``step`` is complete, or the task rows of another farm
        round of the same step (every rank returns rows, possibly none, on the same
        rounds; the runner checks that they agree). The rows of later rounds use the same
        random-stream keys ``(seed, step, task_id)``: give them task ids distinct from the
        earlier rounds' if their micro solves draw random numbers."""
        raise NotImplementedError

    def advance(self, step: int) -> int:
        """One macro step of an application with :attr:`persistent_instances`
        (collective): the macro model, the instances' step through the pool, the macro
        model again. Returns the number of micro instances this rank stepped (with
        :attr:`drives_farm`: the micro tasks this rank submitted to the farm)."""
        raise NotImplementedError

    # checkpoints
    def checkpoint_data(self) -> dict[str, dict[str, Block] | dict[str, object]]:
        """``{"fields": {...}, "instances": {...}, "tasks": {...}, "attrs": {...}}`` to store."""
        raise NotImplementedError

    def step_changes_checkpoint(self, step: int) -> bool:
        """Whether step ``step`` changes what :meth:`checkpoint_data` stores (default True).

        The runner skips the end-of-run checkpoint when no step since the last checkpoint
        changed it: that file would hold the same data as the previous one. (FE-HMM: the
        macro solve of the last step stores nothing, the cell results are all in the
        checkpoint of the last batch.)"""
        return True

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        """Restore the state written by :meth:`checkpoint_data` (any rank count)."""
        raise NotImplementedError

    # outputs
    def finalize(self, outdir: Path) -> dict | None:
        """Write outputs; return the summary dict on rank 0 (None elsewhere).

        The runner writes it to ``summary.json`` with the run's timing added."""
        raise NotImplementedError


class FixedSteps:
    """Mixin for an :class:`Application` of ``self.steps`` equal macro steps of ``self.dt``
    (put it before ``Application`` among the bases): :attr:`n_steps` and :attr:`sim_time`."""

    steps: int
    dt: float
    step: int

    @property
    def n_steps(self) -> int:
        return self.steps

    @property
    def sim_time(self) -> float:
        return self.step * self.dt

