"""Master-worker farm of stateless micro tasks over mpi4py.

A batch of tasks is a NumPy *structured array*, one row per task, with an integer
``task_id`` field that is global (it does not depend on the number of ranks). Each rank
passes the rows it owns; :meth:`Farm.map` returns, on every rank, the result rows of its
own tasks in its own order. The micro solver is a function

    solve(rows: structured ndarray, ctx: TaskContext) -> structured ndarray (or dict of arrays)

that must be a pure function of its rows and of the per-task random streams
``ctx.rng(task_id)``; it runs on whichever rank the scheduler picks.

Dynamic mode (default)
    Rank 0 gathers the task rows (one ``Gatherv`` of raw bytes), then hands out chunks
    by guided self-scheduling (Polychronopoulos & Kuck 1987): chunk =
    ``max(min_chunk, ceil(R / (4 P)))`` for ``R`` unassigned tasks on ``P`` ranks, so big
    chunks go first and single tasks last. Each worker keeps two chunks queued (one
    being computed, one in flight) so it never waits for the master, except in the tail
    (``R <= 4 P min_chunk``) where the queue depth drops to one to keep the end balanced;
    two queued chunks of ``R / (4 P)`` commit half a fair share, leaving the rest to
    balance. The master computes small chunks itself (about 2 ms of work) whenever no
    message is waiting, so 2 ranks do not waste one -- but on more than 4 ranks not in
    the tail, where workers wait for it after every chunk. Results return to rank 0 and
    go back to their owners with one ``Scatterv``. If the rows have a ``cost`` field (an
    estimate, e.g. the seconds the task took at the previous step), the queue is sorted
    longest first (LPT, Graham 1969) and chunk sizes count estimated cost, not tasks. All task and result traffic is
    buffer-based (``MPI.BYTE``); only a failure message is pickled.
Static mode
    For uniform tasks: the global task list is cut into ``P`` equal contiguous blocks,
    moved with one ``Alltoallv``, solved in one call per rank, and moved back.

Failure
    A task that raises (or returns NaN/Inf in a float field) is located row by row,
    optionally retried once with a fresh random substream (``attempt = 1``), and
    otherwise reported: every rank raises the same :class:`~hmmpar.core.errors.TaskError`
    naming the task_id, the rank and the original error. The master tells every worker
    to stop, and both sides drain their in-flight messages by count, so no rank hangs.
    A worker that does not answer within ``abort_grace`` seconds (stuck in a task) makes
    the master print the error and call ``MPI_Abort``.

Time limit
    With ``task_time_limit = L > 0`` a solve call on ``n`` rows may take ``n L`` seconds
    (``L + 10 (n - 1) t`` once the rank has measured ``t`` seconds per task). A ``SIGALRM``
    (``setitimer``) then raises :class:`TaskTimeout` inside the call, which counts as a
    failure: the rows are solved one by one, each with the limit ``L``, and the task that
    runs out of time is named like any failing task. Code that does not return
    to the interpreter (a numba or C loop) cannot be interrupted so: a watchdog thread
    then prints the error and calls ``MPI_Abort`` after ``n L + abort_grace`` (it runs if
    the stuck code released the GIL), and ``faulthandler`` ends the process after
    ``n L + 2 abort_grace`` (a Python traceback instead of the one-line error) if not.
"""
from __future__ import annotations

import faulthandler
import math
import os
import signal
import threading
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from mpi4py import MPI

from .errors import TaskError, one_line
from .log import stderr_line
from .rng import TASKS, task_rng, task_seeds
from .timing import FarmStats

TAG_WORK, TAG_RESULT, TAG_ERROR, TAG_STOP, TAG_ABORT, TAG_FINAL = range(101, 107)
_HEADER = 3  # int64 words in front of every chunk: start, count, busy nanoseconds


@dataclass(frozen=True)
class TaskContext:
    """What a micro solver may know besides its rows: the keys of its random streams."""

    seed: int
    step: int
    attempt: int = 0
    rank: int = 0
    family: int = TASKS

    def rng(self, task_id: int) -> np.random.Generator:
        """The random generator of one task (same keys, same stream, on any rank)."""
        return task_rng(self.seed, self.step, task_id, self.attempt, self.family)

    def seeds(self, task_ids: np.ndarray) -> np.ndarray:
        """One uint64 seed per task, for numba kernels that seed their own generator."""
        return task_seeds(self.seed, self.step, task_ids, self.attempt, self.family)


SolveFn = Callable[[np.ndarray, TaskContext], "np.ndarray | Mapping[str, np.ndarray]"]


class _ChunkFailure(Exception):
    """A row of a chunk failed; ``message`` names its task_id and the rank."""


#: longest deadline of one solve call: the timers (setitimer, faulthandler) overflow beyond
#: ~9e9 s, and 1e8 s (3 years) is no limit in practice
MAX_CALL_SECONDS = 1e8


class TaskTimeout(BaseException):
    """A micro solve call ran past its time limit (``farm.task_time_limit``).

    Raised by the ``SIGALRM`` handler inside the solver; a ``BaseException`` (like
    ``KeyboardInterrupt``) so that a solver's own ``except Exception`` does not swallow it.
    """


def _labelled(label: str) -> Callable:
    """``f(fn, *args) = fn(*args)`` under the function name ``label``: the traceback that
    ``faulthandler`` prints for a stuck call then names the task on its own line."""
    def call(fn, *args):
        return fn(*args)
    code = call.__code__.replace(co_name=label)
    if hasattr(code, "co_qualname"):
        code = code.replace(co_qualname=label)
    return types.FunctionType(code, {}, label)


def _direct(fn, *args):
    return fn(*args)


def _ids_text(ids: np.ndarray, show: int = 3) -> str:
    head = ", ".join(str(int(i)) for i in ids[:show])
    return head + (f" (+{ids.size - show} more)" if ids.size > show else "")


class _Watchdog:
    """Ends the run when a solve call outlives its deadline without being interrupted.

    One daemon thread per farm, armed around each solve call when a time limit is set:
    at the deadline it prints the armed message and calls ``MPI_Abort(1)``. It can only
    run while the stuck code has released the GIL (numba ``nogil=True``, most C
    extensions in long calls, blocking system calls).
    """

    def __init__(self, comm) -> None:
        self.comm = comm
        self._cv = threading.Condition()
        self._job: tuple[float, str] | None = None
        self._wakeup = math.inf  # when the thread looks next (inf: only when notified)
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, message: str) -> None:
        with self._cv:
            deadline = time.monotonic() + seconds
            self._job = (deadline, message)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hmmpar-watchdog", daemon=True)
                self._thread.start()
            if deadline < self._wakeup:  # otherwise it wakes up in time by itself: no switch
                self._cv.notify()

    def disarm(self) -> None:
        with self._cv:
            self._job = None

    def _run(self) -> None:
        if hasattr(signal, "pthread_sigmask"):  # SIGALRM is for the main thread, where solve runs
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        with self._cv:
            while True:
                job = self._job
                left = math.inf if job is None else job[0] - time.monotonic()
                if left <= 0:
                    break
                self._wakeup = time.monotonic() + left
                self._cv.wait(None if left == math.inf else left)
                self._wakeup = 0.0  # awake: arm() need not notify
        stderr_line(job[1])
        self.comm.Abort(1)


def as_results(out, dtype: np.dtype, n: int) -> np.ndarray:
    """Coerce a solver's output (structured array or dict of arrays) to ``n`` rows of ``dtype``."""
    if isinstance(out, np.ndarray) and out.dtype == dtype:
        if out.shape != (n,):
            raise ValueError(f"micro solver returned {out.shape[0] if out.ndim else 0} result rows for {n} tasks")
        return out
    if isinstance(out, Mapping):
        res = np.empty(n, dtype=dtype)
        missing = [name for name in dtype.names if name not in out]
        if missing:
            raise ValueError(f"micro solver result lacks field(s) {missing}")
        for name in dtype.names:
            value = np.asarray(out[name])
            if value.shape[:1] != (n,):
                raise ValueError(f"micro solver result field '{name}' has {value.shape[:1]} rows for {n} tasks")
            res[name] = value
        return res
    raise TypeError(f"micro solver must return a structured array of dtype {dtype} or a dict of arrays, "
                    f"got {type(out).__name__}")


def _first_nonfinite(res: np.ndarray) -> tuple[int, str] | None:
    """Index and field of the first row holding NaN or Inf in a floating field, else None."""
    bad = np.zeros(res.shape[0], dtype=bool)
    field_of = {}
    for name in res.dtype.names:
        col = res[name]
        if np.issubdtype(col.dtype, np.inexact):
            rowbad = ~np.isfinite(col.reshape(col.shape[0], -1)).all(axis=1)
            for i in np.flatnonzero(rowbad & ~bad):
                field_of[int(i)] = name
            bad |= rowbad
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    return i, field_of[i]


class Farm:
    """Distributes stateless micro tasks over the ranks of a communicator.

    Parameters
    ----------
    comm
        The communicator (default ``MPI.COMM_WORLD``); every rank calls :meth:`map`.
    mode
        ``"dynamic"`` (master-worker, guided self-scheduling) or ``"static"``.
    retry
        Re-run a failed task once with a fresh random substream (stochastic models).
    check_finite
        Treat NaN/Inf in a floating result field as a task failure.
    min_chunk
        Smallest chunk handed to a worker.
    abort_grace
        Seconds the master waits for workers to acknowledge an abort before ``MPI_Abort``;
        also the grace after a time limit before a stuck rank is aborted.
    master_latency
        Seconds of work the master takes on itself between looks at the message queue.
    task_time_limit
        Seconds one task may take (0: no limit); a call on ``n`` rows gets ``n`` times this.
    """

    def __init__(self, comm=None, *, mode: str = "dynamic", retry: bool = False,
                 check_finite: bool = True, min_chunk: int = 1, abort_grace: float = 5.0,
                 master_latency: float = 2e-3, task_time_limit: float = 0.0,
                 stats: FarmStats | None = None) -> None:
        if mode not in ("dynamic", "static"):
            raise ValueError(f"farm mode must be 'dynamic' or 'static', not {mode!r}")
        if min_chunk < 1:
            raise ValueError("farm min_chunk must be >= 1")
        if not task_time_limit >= 0:
            raise ValueError("farm task_time_limit must be >= 0")
        self.task_time_limit = float(task_time_limit)
        self._alarm_live = False
        self._guard_until = 0.0  # faulthandler armed until then (monotonic; 0: not armed)
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.mode = mode
        self.retry = retry
        self.check_finite = check_finite
        self.min_chunk = int(min_chunk)
        self.abort_grace = abort_grace
        self.master_latency = master_latency
        self.stats = stats if stats is not None else FarmStats()
        self._watchdog = _Watchdog(self.comm)
        self.retries = 0
        self.last_total = 0  # tasks over all ranks in the last map call
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        # Oversubscribed ranks must not spin in MPI waits: they would steal the core
        # the computing ranks need. They poll with a short sleep instead.
        self._polite = node.size > (os.cpu_count() or 1)
        node.Free()

    # ------------------------------------------------------------------ public
    def map(self, solve: SolveFn, tasks: np.ndarray, result_dtype, *, step: int = 0,
            seed: int = 0) -> np.ndarray:
        """Solve every task of every rank; return this rank's results in its task order.

        Collective over the farm's communicator. Raises :class:`TaskError` on every rank
        if any task failed.
        """
        result_dtype = np.dtype(result_dtype)
        tasks, counts = self._check_tasks(tasks)
        self.stats.calls += 1
        self.last_total = int(counts.sum())
        try:
            if self.comm.size == 1:
                return self._serial(solve, tasks, result_dtype, step, seed)
            if self.mode == "static":
                return self._static(solve, tasks, counts, result_dtype, step, seed)
            return self._dynamic(solve, tasks, counts, result_dtype, step, seed)
        finally:
            self._release_process_guard()

    # ------------------------------------------------------------------ checks
    def _check_tasks(self, tasks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validate the batch on every rank; return it contiguous and the per-rank counts."""
        problem = None
        if not isinstance(tasks, np.ndarray) or tasks.dtype.names is None:
            problem = "tasks must be a NumPy structured array"
        elif "task_id" not in tasks.dtype.names or not np.issubdtype(tasks.dtype["task_id"], np.integer):
            problem = "tasks must have an integer 'task_id' field"
        elif tasks.ndim != 1:
            problem = "tasks must be one-dimensional (one row per task)"
        elif "cost" in tasks.dtype.names and not (
                tasks.dtype["cost"].shape == () and np.issubdtype(tasks.dtype["cost"], np.number)
                and np.all(np.isfinite(tasks["cost"])) and np.all(tasks["cost"] >= 0)):
            problem = "the 'cost' field must hold one finite, non-negative number per task"
        descr = None if problem else tasks.dtype.descr
        n = 0 if problem else tasks.shape[0]
        everyone = self.comm.allgather((problem, descr, n))
        problems = [f"rank {r}: {p}" for r, (p, _, _) in enumerate(everyone) if p]
        if problems:
            raise TaskError("farm input: " + "; ".join(problems))
        if any(d != everyone[0][1] for _, d, _ in everyone):
            raise TaskError("farm input: task dtypes differ between ranks")
        counts = np.array([c for _, _, c in everyone], dtype=np.int64)
        if counts.sum() * tasks.dtype.itemsize >= 2**31:  # every rank knows: raise together
            raise TaskError(f"farm input: {counts.sum()} tasks of {tasks.dtype.itemsize} bytes exceed the "
                            "2 GiB of one MPI message; split the batch")
        return np.ascontiguousarray(tasks), counts

    # ------------------------------------------------------------------ solving
    def _call_deadline(self, n: int) -> float:
        """Seconds a solve call on ``n`` rows may take under the time limit ``L``.

        ``n L`` never interrupts a call whose tasks each keep the limit. Once this rank
        has measured its mean seconds per task ``t``, the bound is ``L + (n - 1) 10 t``
        (one task may take ``L``, the others ten times the mean), so that a stuck task in
        a large chunk is found sooner. A call cut short by this tighter bound is not an
        error: its rows are solved again one by one, each with the limit ``L``.
        """
        limit = self.task_time_limit
        if self.stats.tasks > 0 and self.stats.busy > 0:
            return min(n * limit, limit + (n - 1) * 10.0 * self.stats.busy / self.stats.tasks, MAX_CALL_SECONDS)
        return min(n * limit, MAX_CALL_SECONDS)

    @contextmanager
    def _time_limit(self, rows: np.ndarray, step: int):
        """Bound the solve call on ``rows`` (see :meth:`_call_deadline`); yields the function
        to call ``solve`` through (its frame names the tasks in faulthandler's output)."""
        limit = self.task_time_limit
        if limit <= 0 or rows.shape[0] == 0:
            yield _direct
            return
        n, rank = rows.shape[0], self.comm.rank
        seconds = self._call_deadline(n)
        ids = rows["task_id"]
        who = f"micro task {int(ids[0])}" if n == 1 else f"one of micro tasks {_ids_text(ids)}"
        what = (f"{who} (step {step}) on rank {rank} ran past the time limit "
                f"(farm.task_time_limit = {limit:g} s per task)")
        self._watchdog.arm(seconds + self.abort_grace,
                           f"hmmpar: error: {what} and could not be interrupted; aborting")
        self._guard_process(seconds)
        main = threading.current_thread() is threading.main_thread()
        old = None
        if main:
            def on_alarm(signum, frame):  # noqa: ARG001
                if self._alarm_live:
                    self._alarm_live = False
                    raise TaskTimeout(f"ran past the time limit farm.task_time_limit = {limit:g} s")
            old = signal.signal(signal.SIGALRM, on_alarm)
            self._alarm_live = True
            signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield _labelled(f"<hmmpar: error: {what}>")
        finally:
            try:  # an alarm still pending may raise here once; clean up regardless
                self._alarm_live = False
                if main:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            finally:
                if main:
                    signal.signal(signal.SIGALRM, old if old is not None else signal.SIG_DFL)
                self._watchdog.disarm()

    def _guard_process(self, seconds: float) -> None:
        """The last resort for a call that holds the GIL and never returns: ``faulthandler``
        prints every thread's traceback and exits the process ``seconds + 2 abort_grace``
        after now (or later). Arming it starts a thread (~0.1 ms), so one arming covers
        twice that span and is only renewed when a call needs more; it is released
        before any wait for other ranks (:meth:`_release_process_guard`)."""
        now = time.monotonic()
        if self._guard_until >= now + seconds + 2 * self.abort_grace:
            return
        span = 2 * (seconds + 2 * self.abort_grace)
        try:
            faulthandler.dump_traceback_later(span, exit=True, file=2)
        except (ValueError, OSError):  # pragma: no cover - no usable stderr
            return
        self._guard_until = now + span

    def _release_process_guard(self) -> None:
        if self._guard_until:
            faulthandler.cancel_dump_traceback_later()
            self._guard_until = 0.0

    def _call(self, solve, rows, dtype, ctx) -> np.ndarray:
        with self._time_limit(rows, ctx.step) as call:
            out = call(solve, rows, ctx)
        res = as_results(out, dtype, rows.shape[0])
        if self.check_finite:
            bad = _first_nonfinite(res)
            if bad is not None:
                raise FloatingPointError(f"result field '{bad[1]}' is NaN or Inf")
        return res

    def _solve_rows(self, solve, rows, dtype, step, seed) -> np.ndarray:
        """Solve a chunk; on failure locate the failing row, retry it, or raise _ChunkFailure."""
        rank = self.comm.rank
        ctx = TaskContext(seed, step, 0, rank)
        t0 = time.perf_counter()
        try:
            try:
                return self._call(solve, rows, dtype, ctx)
            except (Exception, TaskTimeout):  # noqa: BLE001 - locate the row below
                pass
            out = np.empty(rows.shape[0], dtype=dtype)
            for i in range(rows.shape[0]):
                try:
                    out[i:i + 1] = self._call(solve, rows[i:i + 1], dtype, ctx)
                    continue
                except (Exception, TaskTimeout) as exc:  # noqa: BLE001
                    err = exc
                if self.retry:
                    try:
                        out[i:i + 1] = self._call(solve, rows[i:i + 1], dtype,
                                                  TaskContext(seed, step, 1, rank))
                        self.retries += 1
                        continue
                    except (Exception, TaskTimeout) as exc:  # noqa: BLE001
                        err = exc
                tid = int(rows["task_id"][i])
                again = " (and on retry)" if self.retry else ""
                raise _ChunkFailure(f"micro task {tid} (step {step}) failed on rank {rank}{again}: "
                                    f"{one_line(err)}")
            return out
        finally:
            dt = time.perf_counter() - t0
            self.stats.busy += dt
            self.stats.tasks += rows.shape[0]

    def _serial(self, solve, tasks, dtype, step, seed) -> np.ndarray:
        error = _duplicate_ids(tasks["task_id"])
        if error:
            raise TaskError(error)
        try:
            return self._solve_rows(solve, tasks, dtype, step, seed)
        except _ChunkFailure as exc:
            raise TaskError(str(exc)) from None

    # ------------------------------------------------------------------ static
    def _static(self, solve, tasks, counts, dtype, step, seed) -> np.ndarray:
        comm, size = self.comm, self.comm.size
        t0 = time.perf_counter()
        offsets = np.concatenate(([0], np.cumsum(counts)))
        total = int(offsets[-1])
        bounds = np.array([total * r // size for r in range(size + 1)], dtype=np.int64)
        me = comm.rank
        # rows I own that fall in each rank's block, and rows of my block from each owner
        send = np.clip(np.minimum(offsets[me + 1], bounds[1:]) - np.maximum(offsets[me], bounds[:-1]), 0, None)
        recv = np.clip(np.minimum(offsets[1:], bounds[me + 1]) - np.maximum(offsets[:-1], bounds[me]), 0, None)
        mine = _alltoallv_rows(comm, tasks, send, recv)
        ids = np.empty(total, dtype=np.int64) if comm.rank == 0 else None
        _gatherv_rows(comm, np.ascontiguousarray(tasks["task_id"], dtype=np.int64), ids, counts)
        duplicate = comm.bcast(_duplicate_ids(ids) if comm.rank == 0 else None, root=0)
        if duplicate:
            raise TaskError(duplicate)
        self.stats.comm += time.perf_counter() - t0
        error = None
        try:
            res = self._solve_rows(solve, mine, dtype, step, seed)
        except _ChunkFailure as exc:
            error, res = str(exc), np.empty(mine.shape[0], dtype=dtype)
        self._release_process_guard()  # the other ranks may take long to get here
        t1 = time.perf_counter()
        errors = [e for e in comm.allgather(error) if e]
        if errors:
            raise TaskError(errors[0])
        out = _alltoallv_rows(comm, res, recv, send)
        self.stats.comm += time.perf_counter() - t1
        return out

    # ------------------------------------------------------------------ dynamic
    def _dynamic(self, solve, tasks, counts, dtype, step, seed) -> np.ndarray:
        comm = self.comm
        t0 = time.perf_counter()
        all_tasks = None
        if comm.rank == 0:
            all_tasks = np.empty(int(counts.sum()), dtype=tasks.dtype)
        _gatherv_rows(comm, tasks, all_tasks, counts)
        self.stats.comm += time.perf_counter() - t0
        if comm.rank == 0:
            error = _duplicate_ids(all_tasks["task_id"])
            if error:
                results = None
                # Workers are waiting for their first message: tell them to stop.
                for w in range(1, comm.size):
                    comm.Send([np.empty(0, np.uint8), MPI.BYTE], dest=w, tag=TAG_STOP)
            else:
                results, error = self._master(solve, all_tasks, dtype, step, seed)
        else:
            error = self._worker(solve, tasks.dtype, dtype, step, seed)
            results = None
        self._release_process_guard()
        error = comm.bcast(error, root=0)
        if error:
            raise TaskError(error)
        t1 = time.perf_counter()
        out = np.empty(tasks.shape[0], dtype=dtype)
        _scatterv_rows(comm, results, out, counts)
        self.stats.comm += time.perf_counter() - t1
        return out

    def _wait(self, source: int, status: MPI.Status, deadline: float | None = None) -> bool:
        """Wait for a message from ``source``; False if ``deadline`` passed first."""
        comm = self.comm
        t0 = time.perf_counter()
        if self._guard_until and not comm.Iprobe(source=source, tag=MPI.ANY_TAG, status=status):
            self._release_process_guard()  # waiting for others is not a stuck task
        if not self._polite and deadline is None:
            comm.Probe(source=source, tag=MPI.ANY_TAG, status=status)
            self.stats.idle += time.perf_counter() - t0
            return True
        pause = 0.0
        while not comm.Iprobe(source=source, tag=MPI.ANY_TAG, status=status):
            if deadline is not None and time.monotonic() > deadline:
                self.stats.idle += time.perf_counter() - t0
                return False
            if pause:
                time.sleep(pause)
            pause = min(max(2 * pause, 2e-5), 5e-4)
        self.stats.idle += time.perf_counter() - t0
        return True

    def _master(self, solve, all_tasks, dtype, step, seed):
        comm = self.comm
        size, total = comm.size, all_tasks.shape[0]
        workers = range(1, size)
        item = all_tasks.dtype.itemsize
        results = np.empty(total, dtype=dtype)  # in queue order until the end
        order, cum = _queue_order(all_tasks)
        if order is not None:
            all_tasks = all_tasks[order]
        outstanding = {w: 0 for w in workers}
        sent = {w: 0 for w in workers}
        pending = []  # (request, buffer) of sends in flight
        state = {"next": 0, "done": 0}
        error = None
        per_task = None  # master's own seconds per task, measured
        status = MPI.Status()

        # A worker holds up to two chunks (one computing, one queued), so a chunk is a
        # quarter of a fair share, not half: with R / (2 P) the first round alone handed
        # every worker R / P, leaving nothing to balance a worker that drew long tasks.
        def chunk_size() -> int:
            s = state["next"]
            remaining = total - s
            if cum is None:
                return min(remaining, max(self.min_chunk, math.ceil(remaining / (4 * size))))
            # the same rule in units of estimated cost: the chunk's cost is a quarter of
            # a fair share of the cost still unassigned
            target = cum[s] + (cum[-1] - cum[s]) / (4 * size)
            c = int(np.searchsorted(cum, target, side="left")) - s
            return min(remaining, max(self.min_chunk, c))

        def in_tail() -> bool:
            return total - state["next"] <= 4 * size * self.min_chunk

        def refill(w: int) -> None:
            depth = 1 if in_tail() else 2
            while outstanding[w] < depth and state["next"] < total:
                c = chunk_size()
                s = state["next"]
                buf = np.empty(_HEADER * 8 + c * item, dtype=np.uint8)
                buf[:_HEADER * 8].view(np.int64)[:] = (s, c, 0)
                buf[_HEADER * 8:] = all_tasks[s:s + c].view(np.uint8)
                pending.append((comm.Isend([buf, MPI.BYTE], dest=w, tag=TAG_WORK), buf))
                state["next"] += c
                outstanding[w] += 1
                sent[w] += 1

        def receive(st: MPI.Status) -> str | None:
            """Receive the probed message; return an error text if it reports one."""
            src, tag = st.Get_source(), st.Get_tag()
            if tag == TAG_RESULT:
                buf = np.empty(st.Get_count(MPI.BYTE), dtype=np.uint8)
                comm.Recv([buf, MPI.BYTE], source=src, tag=TAG_RESULT)
                s, c, _ = buf[:_HEADER * 8].view(np.int64)
                results[s:s + c] = buf[_HEADER * 8:].view(dtype)
                state["done"] += int(c)
                outstanding[src] -= 1
                return None
            if tag == TAG_ERROR:
                return comm.recv(source=src, tag=TAG_ERROR)
            raise RuntimeError(f"farm master: unexpected message tag {tag} from rank {src}")

        t_comm = time.perf_counter()
        for w in workers:
            refill(w)
        for w in workers:
            refill(w)
        self.stats.comm += time.perf_counter() - t_comm

        while state["done"] < total and error is None:
            if comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                tc = time.perf_counter()
                src = status.Get_source()
                error = receive(status)
                if error is None:
                    refill(src)
                self.stats.comm += time.perf_counter() - tc
                continue
            # In the tail workers hold one chunk and wait for the master after each, so a
            # master busy with its own task idles them; beyond 4 ranks that costs more
            # than the master's share of the work.
            if state["next"] < total and not (size > 4 and in_tail()):
                c = chunk_size()
                if per_task:
                    c = max(1, min(c, int(self.master_latency / per_task)))
                else:
                    c = 1
                s = state["next"]
                state["next"] += c
                tb = time.perf_counter()
                try:
                    results[s:s + c] = self._solve_rows(solve, all_tasks[s:s + c], dtype, step, seed)
                except _ChunkFailure as exc:
                    error = str(exc)
                    break
                state["done"] += c
                dt = (time.perf_counter() - tb) / c
                per_task = dt if per_task is None else 0.7 * per_task + 0.3 * dt
                continue
            self._wait(MPI.ANY_SOURCE, status)

        tc = time.perf_counter()
        if error is None:
            for w in workers:
                comm.Send([np.empty(0, np.uint8), MPI.BYTE], dest=w, tag=TAG_STOP)
        else:
            self._abort_workers(sent, status, error)
        MPI.Request.Waitall([r for r, _ in pending])
        self.stats.comm += time.perf_counter() - tc
        if error or order is None:
            return (None if error else results), error
        unsorted = np.empty_like(results)
        unsorted[order] = results
        return unsorted, None

    def _abort_workers(self, sent: dict, status: MPI.Status, error: str) -> None:
        """Stop every worker and drain what is in flight both ways, or MPI_Abort."""
        comm = self.comm
        for w in sent:
            comm.Send([np.array([sent[w]], dtype=np.int64), MPI.BYTE], dest=w, tag=TAG_ABORT)
        deadline = time.monotonic() + self.abort_grace
        for w in sent:
            while True:
                if not self._wait(w, status, deadline):
                    stderr_line(f"hmmpar: error: {error}; rank {w} did not stop within "
                                f"{self.abort_grace:g} s, aborting")
                    comm.Abort(1)
                tag = status.Get_tag()
                if tag == TAG_ERROR:
                    comm.recv(source=w, tag=TAG_ERROR)
                    continue
                buf = np.empty(status.Get_count(MPI.BYTE), dtype=np.uint8)
                comm.Recv([buf, MPI.BYTE], source=w, tag=tag)
                if tag == TAG_FINAL:
                    break

    def _abort_pending(self) -> bool:
        """Has the master sent an abort? After a long computation OpenMPI's progress engine
        needs a few calls to catch up with the incoming queue, so probe more than once."""
        return any(self.comm.Iprobe(source=0, tag=TAG_ABORT) for _ in range(8))

    def _worker(self, solve, task_dtype, dtype, step, seed) -> str | None:
        comm = self.comm
        status = MPI.Status()
        received = 0
        pending = []
        failed = False
        while True:
            self._wait(0, status)
            tag = status.Get_tag()
            tc = time.perf_counter()
            buf = np.empty(status.Get_count(MPI.BYTE), dtype=np.uint8)
            comm.Recv([buf, MPI.BYTE], source=0, tag=tag)
            if tag == TAG_STOP:
                break
            if tag == TAG_ABORT:
                expected = int(buf.view(np.int64)[0])
                self._release_process_guard()
                while received < expected:  # drain work still in flight
                    comm.Probe(source=0, tag=TAG_WORK, status=status)
                    comm.Recv([np.empty(status.Get_count(MPI.BYTE), np.uint8), MPI.BYTE],
                              source=0, tag=TAG_WORK)
                    received += 1
                MPI.Request.Waitall([r for r, _ in pending])
                comm.Send([np.empty(0, np.uint8), MPI.BYTE], dest=0, tag=TAG_FINAL)
                break
            received += 1
            if failed or self._abort_pending():
                continue  # an abort is on its way: compute nothing more, go and take it
            s, c, _ = buf[:_HEADER * 8].view(np.int64)
            rows = buf[_HEADER * 8:].view(task_dtype)
            self.stats.comm += time.perf_counter() - tc
            tb = time.perf_counter()
            try:
                res = self._solve_rows(solve, rows, dtype, step, seed)
            except _ChunkFailure as exc:
                comm.send(str(exc), dest=0, tag=TAG_ERROR)
                failed = True
                continue
            busy_ns = int((time.perf_counter() - tb) * 1e9)
            tc = time.perf_counter()
            out = np.empty(_HEADER * 8 + c * dtype.itemsize, dtype=np.uint8)
            out[:_HEADER * 8].view(np.int64)[:] = (s, c, busy_ns)
            out[_HEADER * 8:] = res.view(np.uint8)
            pending = [(r, b) for r, b in pending if not r.Test()]
            pending.append((comm.Isend([out, MPI.BYTE], dest=0, tag=TAG_RESULT), out))
            self.stats.comm += time.perf_counter() - tc
        MPI.Request.Waitall([r for r, _ in pending])
        return None


def _queue_order(tasks: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Dispatch order and cumulative cost when the tasks carry a ``cost`` estimate.

    Longest estimated cost first (ties by task_id), as in LPT list scheduling (Graham
    1969): the cheap tasks come last and even out the end of the batch. ``cum[k]`` is the
    estimated cost of the first ``k`` tasks of that order. Without a ``cost`` field the
    rows go in the order gathered and both values are None.
    """
    if "cost" not in tasks.dtype.names:
        return None, None
    cost = np.asarray(tasks["cost"], dtype=np.float64)
    order = np.lexsort((tasks["task_id"], -cost))
    cum = np.concatenate(([0.0], np.cumsum(cost[order])))
    return order, cum


def _duplicate_ids(ids: np.ndarray) -> str | None:
    """An error text if a task_id occurs twice (their random streams would coincide)."""
    s = np.sort(ids)
    same = np.flatnonzero(s[1:] == s[:-1])
    return f"farm input: task_id {int(s[same[0]])} appears more than once" if same.size else None


# ---------------------------------------------------------------------- row movement
def _byte_layout(counts: np.ndarray, itemsize: int) -> tuple[np.ndarray, np.ndarray]:
    nbytes = np.asarray(counts, dtype=np.int64) * itemsize
    displs = np.concatenate(([0], np.cumsum(nbytes)[:-1]))
    assert nbytes.sum() < 2**31, "batch size is checked collectively in Farm._check_tasks"
    return nbytes.astype(np.int32), displs.astype(np.int32)


def _gatherv_rows(comm, rows: np.ndarray, out: np.ndarray | None, counts: np.ndarray) -> None:
    """Gather every rank's rows to ``out`` on rank 0, in rank order (raw bytes)."""
    nbytes, displs = _byte_layout(counts, rows.dtype.itemsize)
    recv = [out.view(np.uint8), nbytes, displs, MPI.BYTE] if comm.rank == 0 else None
    comm.Gatherv([rows.view(np.uint8), MPI.BYTE], recv, root=0)


def _scatterv_rows(comm, rows: np.ndarray | None, out: np.ndarray, counts: np.ndarray) -> None:
    """Inverse of :func:`_gatherv_rows`: rank 0's rows back to their owners."""
    nbytes, displs = _byte_layout(counts, out.dtype.itemsize)
    send = [rows.view(np.uint8), nbytes, displs, MPI.BYTE] if comm.rank == 0 else None
    comm.Scatterv(send, [out.view(np.uint8), MPI.BYTE], root=0)


def _alltoallv_rows(comm, rows: np.ndarray, send_counts, recv_counts) -> np.ndarray:
    """Send ``send_counts[q]`` consecutive rows to rank ``q``; receive in rank order."""
    item = rows.dtype.itemsize
    out = np.empty(int(np.sum(recv_counts)), dtype=rows.dtype)
    sb, sd = _byte_layout(send_counts, item)
    rb, rd = _byte_layout(recv_counts, item)
    comm.Alltoallv([rows.view(np.uint8), sb, sd, MPI.BYTE], [out.view(np.uint8), rb, rd, MPI.BYTE])
    return out
