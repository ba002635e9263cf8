"""The errors users see, their exit codes, and the one abort path.

Exit codes (documented in the README):

====  ==========================================================
0     success
1     the run failed (a micro task raised, a solver diverged, I/O)
2     bad input: config, command line, missing or foreign file
75    checkpointed on a signal, please requeue (EX_TEMPFAIL)
====  ==========================================================
"""
from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator

from .log import stderr_line

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REQUEUE = 75


class HmmparError(Exception):
    """An error with a user-facing one-line message and an exit code.

    Parameters
    ----------
    message
        One line, naming the key, file or task at fault.
    collective
        True when every rank of the communicator raises the same error at the same
        point, so that the run can end cleanly (message printed once by rank 0,
        ``MPI_Finalize`` reached everywhere). False when only this rank knows; the
        abort path then prints from this rank and calls ``MPI_Abort``.
    """

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, collective: bool = True, hard_exit: bool = False) -> None:
        super().__init__(message)
        self.collective = collective
        #: the process must not shut down normally (a library, e.g. HDF5 after a failed
        #: file close, would crash in its exit handlers): exit at once after the message
        self.hard_exit = hard_exit


class ConfigError(HmmparError):
    """Invalid configuration, command line or input file (exit code 2)."""

    exit_code = EXIT_USAGE


class CheckpointError(HmmparError):
    """A checkpoint that is missing, truncated, foreign or incompatible (exit code 2)."""

    exit_code = EXIT_USAGE


class TaskError(HmmparError):
    """A micro task failed; the message names the task_id, the rank and the cause."""

    exit_code = EXIT_FAILURE


class RequeueExit(HmmparError):
    """The run checkpointed after SIGTERM/SIGUSR1 and asks to be requeued (exit 75)."""

    exit_code = EXIT_REQUEUE


def one_line(exc: BaseException) -> str:
    """Return ``Type: message`` of an exception on a single line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def abort_on_error(comm=None, *, debug: bool = False) -> Iterator[None]:
    """Turn any exception into one clear message and a non-zero exit, on every rank.

    A collective :class:`HmmparError` is printed by rank 0 only and every rank exits
    with its code. Anything else (a bug, or an error only this rank saw) is printed by
    the rank that saw it, which then calls ``MPI_Abort`` so that no other rank can hang
    in a collective it will never complete.
    """
    rank = comm.rank if comm is not None else 0
    try:
        yield
    except HmmparError as exc:
        if exc.exit_code == EXIT_REQUEUE:
            if rank == 0:
                stderr_line(f"hmmpar: {exc}")
            raise SystemExit(exc.exit_code)
        if exc.collective:
            if rank == 0:
                stderr_line(f"hmmpar: error: {exc}")
            raise SystemExit(exc.exit_code)
        _abort(comm, f"hmmpar: error on rank {rank}: {exc}", exc.exit_code, debug, exc.hard_exit)
    except KeyboardInterrupt:
        _abort(comm, f"hmmpar: interrupted on rank {rank}", EXIT_FAILURE, debug)
    except Exception as exc:  # noqa: BLE001 - this is the last line of defence
        _abort(comm, f"hmmpar: internal error on rank {rank}: {one_line(exc)}", EXIT_FAILURE, debug)


def _abort(comm, message: str, code: int, debug: bool, hard: bool = False) -> None:
    if debug:
        traceback.print_exc()
    stderr_line(message)
    if comm is not None and comm.size > 1:
        comm.Abort(code)
    if hard:
        sys.stdout.flush()
        os._exit(code)
    raise SystemExit(code)
