"""Rank-0 logging, progress lines with an ETA, and whole-line writes to stderr."""
from __future__ import annotations

import os
import select
import sys
import time

#: the longest write(2) to a pipe that POSIX guarantees is not interleaved with other writers'
PIPE_BUF = getattr(select, "PIPE_BUF", 512)


def stderr_line(message: str) -> None:
    """Write ``message`` to file descriptor 2 as one whole line, in a single ``write(2)``.

    Several ranks print errors at the same instant; ``mpirun`` (or ``srun``) reads each
    rank's stderr pipe and copies what it reads. ``print`` writes the text and the newline
    in separate calls, so two ranks' lines could be copied into one. Here the message (any
    newline in it replaced by a space) and its newline go in one ``write`` of at most
    :data:`PIPE_BUF` bytes (longer messages are cut to fit, ending in ``...``), which a pipe
    delivers whole. Anything already buffered in ``sys.stderr`` is flushed first, so the
    order of lines is kept. A closed or broken stderr is ignored: an error message must never
    raise an error of its own.
    """
    text = " ".join(message.splitlines()) if "\n" in message or "\r" in message else message
    data = text.encode("utf-8", "replace")
    if len(data) + 1 > PIPE_BUF:
        data = data[:PIPE_BUF - 4].decode("utf-8", "ignore").encode() + b"..."
    data += b"\n"
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        while data:  # one write for a pipe; a terminal or file may take it in parts
            data = data[os.write(2, data):]
    except OSError:
        pass


class RankLog:
    """Print from rank 0 only (other ranks stay silent unless ``all_ranks``)."""

    def __init__(self, comm=None, *, quiet: bool = False, stream=None) -> None:
        self.rank = comm.rank if comm is not None else 0
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stdout

    def info(self, message: str) -> None:
        if self.rank == 0 and not self.quiet:
            print(message, file=self.stream, flush=True)

    def warning(self, message: str) -> None:
        if self.rank == 0:
            stderr_line(f"hmmpar: warning: {message}")


class Progress:
    """Progress lines for a time-stepping run: step, simulated time, tasks/s, ETA.

    A line is printed at most every ``interval`` wall seconds (and at the last step),
    so long runs show they are alive without flooding the log.
    """

    def __init__(self, log: RankLog, total_steps: int, *, first_step: int = 0,
                 interval: float = 5.0) -> None:
        self.log = log
        self.total = total_steps
        self.first = first_step
        self.interval = interval
        self.t0 = time.perf_counter()
        self.last = -float("inf")
        self.tasks = 0

    def update(self, step: int, sim_time: float, tasks_done: int) -> None:
        """Record that ``step`` finished at ``sim_time`` after ``tasks_done`` more tasks."""
        self.tasks += tasks_done
        now = time.perf_counter()
        if now - self.last < self.interval and step < self.total:
            return
        self.last = now
        elapsed = now - self.t0
        done = step - self.first
        rate = self.tasks / elapsed if elapsed > 0 else 0.0
        eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
        self.log.info(
            f"step {step:>6d}/{self.total}  t = {sim_time:.6g}  "
            f"micro tasks/s = {rate:,.1f}  elapsed {format_seconds(elapsed)}  ETA {format_seconds(eta)}"
        )


def format_seconds(seconds: float) -> str:
    """``1h02m03s`` style; ``--`` for an unknown duration."""
    if seconds != seconds or seconds == float("inf"):
        return "--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{seconds:.1f}s"
