"""The surface an application offers to the runtime.

The runner drives every application through the same HMM loop::

    rows    = app.tasks(step)                      # reconstruct: this rank's micro tasks
    results = farm.map(app.solve, rows, ...)       # micro solve, anywhere
    app.absorb(step, results)                      # compress + macro step (collective)

and asks it for checkpoint data and final outputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from hmmpar.core.checkpoint import Block, CheckpointReader
from hmmpar.core.config import Config, Field
from hmmpar.core.farm import TaskContext
from hmmpar.core.timing import Timers


class Application:
    """Base class of an HMM application. Subclasses set the class attributes below."""

    #: registry name (``run.app``)
    name: ClassVar[str]
    #: config sections of this application: section -> key -> Field
    schema: ClassVar[dict[str, dict[str, Field]]]
    #: dtype of one micro result row
    result_dtype: ClassVar[np.dtype]

    @classmethod
    def check_inputs(cls, config: Config, comm) -> None:
        """Read and check every input file ``config`` names, with the readers of a run
        (:mod:`hmmpar.io.inputs`), without building the application (``hmmpar validate``;
        collective). Default: the application reads no files."""

    def __init__(self, config: Config, comm, timers: Timers) -> None:
        self.config = config
        self.comm = comm
        self.timers = timers
        #: macro steps completed (set by initialize/absorb/load_checkpoint)
        self.step = 0

    # the run
    @property
    def n_steps(self) -> int:
        """Total number of macro steps of the run."""
        raise NotImplementedError

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

    def absorb(self, step: int, results: np.ndarray) -> None:
        """Compress the results of this rank's tasks and advance the macro state."""
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
