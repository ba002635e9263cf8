"""Persistent micro instances: stateful micro models that live on a rank across macro steps.

Some multiscale couplings keep micro state from one macro step to the next: a
superparametrization column under every macro cell, an ensemble of SSA replicas, the
micro state of a seamless HMM. :class:`InstancePool` owns such a population:

* every instance has a global integer ``instance_id`` ``0 .. M-1`` (independent of the
  number of ranks) and an estimated cost (a positive float, e.g. seconds per step);
* its state is one row of a NumPy structured array whose dtype is the same for every
  instance of the pool (fields may be sub-arrays); each rank holds the rows of the
  instances it owns, ``pool.states``, aligned with the sorted ``pool.ids``;
* :meth:`InstancePool.step` calls the micro model once per rank on the whole local batch;
  per-instance random numbers come from :func:`hmmpar.core.rng.task_rng` keyed by
  ``(seed, step, instance_id)``, so the trajectory of every instance is bitwise the same
  on 1, 2 or 64 ranks and under any placement;
* rows move between ranks only as raw bytes (``MPI.BYTE``): one ``Gatherv`` to collect
  results, one ``Alltoallv`` to redistribute (checkpoint blocks, rebalancing). Nothing
  of the state is pickled.

Placement: longest processing time first
----------------------------------------
Instances are placed once (and again on :meth:`InstancePool.rebalance`) by Graham's
*longest-processing-time* (LPT) rule: sort the instances by cost, largest first (ties by
``instance_id``), and give each in turn to the rank with the smallest load so far (ties to
the lowest rank). Graham (1969, "Bounds on multiprocessing timing anomalies", SIAM J.
Appl. Math. 17, 416-429) proved that the resulting makespan (the largest rank load) is at
most ``(4/3 - 1/(3P)) * OPT`` on ``P`` ranks, where ``OPT`` is the best makespan of any
placement; like any greedy list schedule it also satisfies
``makespan <= sum(costs)/P + (1 - 1/P) * max(costs)``. The classic worst case is costs
``[5, 5, 4, 4, 3, 3, 3]`` on three ranks: LPT gives 11 where 9 is possible. The
placement is a pure function of the cost array and of ``P``, computed identically on
every rank, so no rank needs to be told where an instance lives.

Costs must be positive: with zero costs "least loaded" would stay rank 0 for ever and
every zero-cost instance would pile up there.

Checkpoints
-----------
:meth:`InstancePool.global_block` moves the rows so that rank ``r`` holds the contiguous
id block ``[M r // P, M (r + 1) // P)`` in id order, which a parallel HDF5 writer stores
with one collective hyperslab write; :meth:`InstancePool.load_block` is the inverse, and
the placement at load time may differ from the one at save time (another rank count,
other costs).

Failure
-------
If the micro model raises on any rank, every rank raises the same
:class:`~hmmpar.core.errors.TaskError` naming the rank(s) and the error. The error texts
are gathered with one small ``allgather`` after every step, which also serves as the
consistency check of the result dtype; no rank can hang. The states of a failed step are
undefined (the model updates them in place): restart from a checkpoint.
"""
from __future__ import annotations

import hashlib
import heapq
import time
from typing import Any, Callable

import numpy as np
from mpi4py import MPI

from .errors import HmmparError, TaskError, one_line
from .farm import TaskContext, _alltoallv_rows, _gatherv_rows
from .rng import INSTANCES
from .timing import FarmStats

__all__ = ["placement", "InstancePool", "StepFn", "InitFn"]

#: ``fn(states, ids, ctx, **kwargs) -> results | None``: advance the local batch in place.
StepFn = Callable[..., "np.ndarray | None"]
#: ``init(ids) -> states``: the initial state rows of the given instance ids.
InitFn = Callable[[np.ndarray], np.ndarray]

_MAX_BYTES = 2**31  # MPI counts and displacements are C ints


# ---------------------------------------------------------------------- placement
def _as_costs(costs) -> np.ndarray:
    """Validate a cost array: 1-D, finite and positive; returned as float64."""
    try:
        c = np.asarray(costs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"instance costs must be numbers ({one_line(exc)})") from None
    if c.ndim != 1:
        raise ValueError(f"instance costs must be a 1-D array, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError(f"instance cost of instance {int(np.argmin(np.isfinite(c)))} is NaN or Inf")
    if c.size and not (c > 0).all():
        i = int(np.argmin(c > 0))
        raise ValueError(f"instance costs must be positive; instance {i} has cost {c[i]:g}")
    return c


def placement(costs: np.ndarray, size: int) -> np.ndarray:
    """Place instances on ranks by longest-processing-time-first greedy (Graham 1969).

    Instances are taken in order of decreasing cost (ties by increasing instance id) and
    each is given to the rank whose load (sum of placed costs) is smallest at that moment
    (ties to the lowest rank). The result is a pure function of its arguments.

    Parameters
    ----------
    costs
        Estimated cost of every instance, indexed by ``instance_id``; finite and positive.
    size
        Number of ranks ``P >= 1``.

    Returns
    -------
    numpy.ndarray
        int64 array of length ``len(costs)``: the rank of each instance.

    Raises
    ------
    ValueError
        If ``costs`` is not a 1-D array of finite positive numbers or ``size < 1``.

    Notes
    -----
    The largest rank load is at most ``(4/3 - 1/(3P))`` times the optimum and at most
    ``sum(costs)/P + (1 - 1/P) max(costs)``. Cost ``O(M log M + M log P)``.

    Examples
    --------
    >>> placement([5, 5, 4, 4, 3, 3, 3], 3).tolist()
    [0, 1, 2, 2, 0, 1, 0]
    """
    c = _as_costs(costs)
    size = int(size)
    if size < 1:
        raise ValueError(f"placement needs at least one rank, got {size}")
    owner = np.zeros(c.size, dtype=np.int64)
    if size == 1 or c.size == 0:
        return owner
    order = np.argsort(-c, kind="stable")  # stable: equal costs keep ascending ids
    heap = [(0.0, r) for r in range(size)]  # (load, rank): ties go to the lowest rank
    for i, cost in zip(order.tolist(), c[order].tolist()):
        load, r = heap[0]
        owner[i] = r
        heapq.heapreplace(heap, (load + cost, r))
    return owner


def _digest(c: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(c).tobytes(), digest_size=16).digest()


# ---------------------------------------------------------------------- helpers
def _row_problem(rows, dtype: np.dtype | None, n: int | None, what: str) -> str | None:
    """Why ``rows`` is not ``n`` rows of ``dtype`` (None: fine); ``None`` args are not checked."""
    if not isinstance(rows, np.ndarray) or rows.dtype.names is None:
        return f"{what} must be a NumPy structured array, got {type(rows).__name__}"
    if dtype is not None and rows.dtype != dtype:
        return f"{what} has dtype {rows.dtype}, expected {dtype}"
    if rows.dtype.hasobject:
        return f"{what} has object fields, which cannot be moved between ranks as bytes"
    if rows.ndim != 1:
        return f"{what} must be one-dimensional (one row per instance), got shape {rows.shape}"
    if n is not None and rows.shape[0] != n:
        return f"{what} has {rows.shape[0]} rows, expected {n}"
    return None


def _agree(comm, problem: str | None, what: str) -> None:
    """Raise the same :class:`HmmparError` on every rank if any rank reports a problem."""
    problems = comm.allgather(problem)
    bad = [f"rank {r}: {p}" for r, p in enumerate(problems) if p]
    if bad:
        raise HmmparError(f"{what}: " + "; ".join(bad))


def _check_bytes(nrows_max: int, itemsize: int, what: str) -> None:
    """Refuse a message over 2 GiB (decided from global data, so the same on every rank)."""
    if nrows_max * itemsize >= _MAX_BYTES:
        raise HmmparError(f"{what}: {nrows_max} rows of {itemsize} bytes exceed the 2 GiB "
                          "limit of one MPI message; use more ranks")


def _move_rows(comm, rows: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Move rows from their current holder to a new one with one ``Alltoallv`` of bytes.

    Rank ``p`` holds the rows of the ids ``flatnonzero(src == p)`` in ascending id order;
    on return it holds those of ``flatnonzero(dst == p)``, in ascending id order. ``src``
    and ``dst`` (the rank of every id) are the same on every rank, so both ends know the
    counts without asking.
    """
    size, me = comm.size, comm.rank
    _check_bytes(max(int(np.bincount(src, minlength=size).max(initial=0)),
                     int(np.bincount(dst, minlength=size).max(initial=0))),
                 rows.dtype.itemsize, "instance pool row movement")
    dest = dst[src == me]  # destination of each local row, in local (ascending id) order
    send_order = np.argsort(dest, kind="stable")  # group by destination, ids stay ascending
    send_counts = np.bincount(dest, minlength=size)
    origin = src[dst == me]  # where each incoming id (ascending) comes from
    recv_order = np.argsort(origin, kind="stable")  # arrival order: by source, ids ascending
    recv_counts = np.bincount(origin, minlength=size)
    sendbuf = rows if _is_identity(send_order) else rows[send_order]
    got = _alltoallv_rows(comm, np.ascontiguousarray(sendbuf), send_counts, recv_counts)
    if _is_identity(recv_order):
        return got
    out = np.empty_like(got)
    out[recv_order] = got
    return out


def _is_identity(perm: np.ndarray) -> bool:
    return bool(np.array_equal(perm, np.arange(perm.size)))


# ---------------------------------------------------------------------- the pool
class InstancePool:
    """Persistent micro instances distributed over the ranks of a communicator.

    Every rank constructs the pool with the same arguments (collective). The instances
    are placed by :func:`placement` on the given costs; rank ``r`` then holds
    :attr:`ids` (the sorted int64 ids it owns) and :attr:`states` (their state rows, in
    the same order).

    Parameters
    ----------
    comm
        The communicator (``MPI.COMM_WORLD`` if None). ``MPI.COMM_SELF`` gives a serial
        pool holding every instance.
    state_dtype
        Structured dtype of one instance's state (no object fields).
    costs
        Estimated cost of every instance, indexed by ``instance_id`` (length ``M``,
        finite and positive), identical on every rank.
    init
        ``init(ids) -> states``: the initial state rows (``len(ids)`` rows of
        ``state_dtype``) of the given ids. It must be a pure function of the ids so that
        any placement gives the same states. None: all-zero states. Not called on a rank
        that owns no instance.
    stats
        Farm statistics to add step time (``busy``, and its CPU time ``busy_cpu``), wait at
        the end of a step (``idle``),
        row movement (``comm``), instances stepped (``tasks``) and steps (``calls``) to.

    Raises
    ------
    HmmparError
        On every rank, if the ranks disagree on ``M``, on the dtype or on the costs, or
        if an argument is invalid on some rank.
    TaskError
        On every rank, if ``init`` fails on some rank.
    """

    def __init__(self, comm, state_dtype, costs: np.ndarray,
                 init: InitFn | None = None, *, stats: FarmStats | None = None) -> None:
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.stats = stats
        problem, dtype, c = None, None, None
        try:
            dtype = np.dtype(state_dtype)
            if dtype.names is None:
                raise ValueError(f"state dtype must be structured (have named fields), got {dtype}")
            if dtype.hasobject:
                raise ValueError("state dtype must not have object fields (rows move as bytes)")
            if dtype.itemsize == 0:
                raise ValueError("state dtype must not be empty")
            c = _as_costs(costs).copy()  # ours: made read-only below
        except (TypeError, ValueError) as exc:
            problem = str(exc)
        everyone = self.comm.allgather((problem, None if c is None else c.size, dtype,
                                        None if c is None else _digest(c)))
        bad = [f"rank {r}: {p}" for r, (p, _, _, _) in enumerate(everyone) if p]
        if bad:
            raise HmmparError("instance pool: " + "; ".join(bad))
        sizes = [m for _, m, _, _ in everyone]
        if len(set(sizes)) > 1:
            raise HmmparError(f"instance pool: ranks disagree on the number of instances {sizes}")
        if any(d != dtype for _, _, d, _ in everyone):
            raise HmmparError("instance pool: ranks disagree on the state dtype")
        if len({h for _, _, _, h in everyone}) > 1:
            raise HmmparError("instance pool: ranks disagree on the instance costs")
        self._dtype: np.dtype = dtype
        self._costs = c
        self._costs.flags.writeable = False
        self._set_owner(placement(c, self.comm.size))
        self.states: np.ndarray = self._initial_states(init)

    # ------------------------------------------------------------------ properties
    @property
    def size(self) -> int:
        """Number of instances ``M`` over all ranks."""
        return int(self._costs.size)

    @property
    def state_dtype(self) -> np.dtype:
        """Structured dtype of one state row."""
        return self._dtype

    @property
    def costs(self) -> np.ndarray:
        """The global cost array the current placement was computed from (read-only)."""
        return self._costs

    @property
    def owner(self) -> np.ndarray:
        """The rank of every instance under the current placement (read-only)."""
        return self._owner

    @property
    def local_cost(self) -> float:
        """Sum of the costs of the instances on this rank."""
        return float(self._costs[self.ids].sum())

    def block_range(self, rank: int | None = None) -> tuple[int, int]:
        """The checkpoint block ``[M r // P, M (r + 1) // P)`` of a rank (default: this one)."""
        r = self.comm.rank if rank is None else int(rank)
        m, p = self.size, self.comm.size
        return m * r // p, m * (r + 1) // p

    # ------------------------------------------------------------------ stepping
    def step(self, fn: StepFn, *, step: int, seed: int, **kwargs: Any) -> np.ndarray | None:
        """Advance every instance: call ``fn(states, ids, ctx, **kwargs)`` once per rank.

        Collective. ``fn`` receives this rank's whole batch: :attr:`states` (to update in
        place), :attr:`ids` (read-only) and a :class:`~hmmpar.core.farm.TaskContext`
        whose ``ctx.rng(instance_id)`` is the instance's random stream for this step,
        ``task_rng(seed, step, instance_id, family=INSTANCES)`` (call it once per instance and step: every
        call starts the stream afresh). It is not called on a rank that owns no instance.

        Parameters
        ----------
        fn
            The micro model. It may return a structured array of per-instance results
            (rows aligned with ``ids``; the same dtype on every rank), or None.
        step, seed
            Keys of the random streams (non-negative integers).
        **kwargs
            Passed on to ``fn`` (macro data, time step...).

        Returns
        -------
        numpy.ndarray or None
            This rank's result rows (aligned with :attr:`ids`; empty if it owns none), or
            None if ``fn`` returns None.

        Raises
        ------
        TaskError
            On every rank, if ``fn`` raised or returned something invalid on any rank;
            the message names the rank(s) and the error. The states are then undefined.
        """
        comm = self.comm
        n = self.ids.size
        ctx = TaskContext(int(seed), int(step), 0, comm.rank, family=INSTANCES)
        error, kind, res = None, "empty", None
        if n:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                res = fn(self.states, self.ids, ctx, **kwargs)
                if res is not None:
                    problem = _row_problem(res, None, n, "micro instance results")
                    if problem:
                        raise TypeError(problem)
                    res = np.ascontiguousarray(res)
                kind = None if res is None else res.dtype
            except Exception as exc:  # noqa: BLE001 - reported collectively below
                error = one_line(exc)
            finally:
                if self.stats is not None:
                    self.stats.busy += time.perf_counter() - t0
                    self.stats.busy_cpu += time.process_time() - c0
                    self.stats.tasks += n
        t1 = time.perf_counter()
        everyone = comm.allgather((error, kind))
        if self.stats is not None:
            self.stats.idle += time.perf_counter() - t1
            self.stats.calls += 1
        failed = [(r, e) for r, (e, _) in enumerate(everyone) if e]
        if failed:
            r, e = failed[0]
            more = ""
            if len(failed) > 1:
                more = f" (it also failed on rank(s) {', '.join(str(q) for q, _ in failed[1:])})"
            raise TaskError(f"micro instance step {int(step)} failed on rank {r}: {e}{more}")
        kinds = [k for _, k in everyone if not (isinstance(k, str) and k == "empty")]
        if not kinds or all(k is None for k in kinds):
            return None
        if any(k is None for k in kinds) or any(k != kinds[0] for k in kinds):
            raise TaskError(f"micro instance step {int(step)}: the model returned results of "
                            "different dtypes (or None) on different ranks")
        return res if res is not None else np.empty(0, dtype=kinds[0])

    # ------------------------------------------------------------------ collecting
    def gather_results(self, results: np.ndarray | None) -> np.ndarray | None:
        """Collect per-instance rows on rank 0 in global ``instance_id`` order.

        Collective; one ``Gatherv`` of raw bytes.

        Parameters
        ----------
        results
            This rank's rows, aligned with :attr:`ids` (e.g. the return value of
            :meth:`step`), the same structured dtype on every rank; or None on every rank.

        Returns
        -------
        numpy.ndarray or None
            On rank 0 the ``M`` rows, row ``i`` belonging to instance ``i``; None on the
            other ranks (and everywhere if ``results`` is None).
        """
        comm = self.comm
        problem = None
        if results is not None:
            problem = _row_problem(results, None, self.ids.size, "results")
        everyone = comm.allgather((problem, None if results is None or problem else results.dtype))
        bad = [f"rank {r}: {p}" for r, (p, _) in enumerate(everyone) if p]
        if bad:
            raise HmmparError("gather_results: " + "; ".join(bad))
        dtypes = [d for _, d in everyone]
        if all(d is None for d in dtypes):
            return None
        if any(d is None or d != dtypes[0] for d in dtypes):
            raise HmmparError("gather_results: ranks passed results of different dtypes (or None)")
        dtype = dtypes[0]
        _check_bytes(self.size, dtype.itemsize, "gather_results")
        t0 = time.perf_counter()
        counts = np.bincount(self._owner, minlength=comm.size)
        gathered = np.empty(self.size, dtype=dtype) if comm.rank == 0 else None
        _gatherv_rows(comm, np.ascontiguousarray(results), gathered, counts)
        out = None
        if comm.rank == 0:
            by_rank = np.argsort(self._owner, kind="stable")  # ids in arrival order
            out = gathered if _is_identity(by_rank) else np.empty_like(gathered)
            if out is not gathered:
                out[by_rank] = gathered
        self._add_comm(t0)
        return out

    def gather_states(self) -> np.ndarray | None:
        """All state rows on rank 0 in ``instance_id`` order (None elsewhere); collective."""
        return self.gather_results(self.states)

    def global_costs(self, local_costs: np.ndarray) -> np.ndarray:
        """Assemble per-instance costs measured by their owners into the global array.

        Collective (one ``Allgatherv``). Use it to :meth:`rebalance` on measured costs.

        Parameters
        ----------
        local_costs
            One cost per instance of this rank, aligned with :attr:`ids`.

        Returns
        -------
        numpy.ndarray
            float64 array of length ``M`` indexed by ``instance_id``, the same on every rank.
        """
        comm = self.comm
        c = np.ascontiguousarray(local_costs, dtype=np.float64)
        problem = None
        if c.shape != self.ids.shape:
            problem = f"local_costs has shape {c.shape}, expected {self.ids.shape}"
        _agree(comm, problem, "global_costs")
        counts = np.bincount(self._owner, minlength=comm.size).astype(np.int64)
        displs = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        arrived = np.empty(self.size, dtype=np.float64)
        comm.Allgatherv([c, MPI.DOUBLE], [arrived, counts, displs, MPI.DOUBLE])
        out = np.empty_like(arrived)
        out[np.argsort(self._owner, kind="stable")] = arrived
        return out

    # ------------------------------------------------------------------ checkpoints
    def global_block(self) -> tuple[int, np.ndarray]:
        """The states of this rank's checkpoint block, in id order.

        Collective; one ``Alltoallv`` of raw bytes. The pool itself is unchanged.

        Returns
        -------
        first_id : int
            ``M r // P`` for rank ``r`` of ``P``.
        rows : numpy.ndarray
            The states of instances ``first_id .. M (r + 1) // P - 1``, in that order.
        """
        t0 = time.perf_counter()
        rows = _move_rows(self.comm, self.states, self._owner, self._block_of())
        self._add_comm(t0)
        return self.block_range()[0], rows

    def load_block(self, first_id: int, rows: np.ndarray) -> None:
        """Replace every state by rows read in checkpoint blocks (inverse of :meth:`global_block`).

        Collective; one ``Alltoallv`` of raw bytes. Each rank passes the block
        :meth:`block_range` of the *current* communicator; the rows go to their owners
        under the current placement, which need not be the one the blocks were saved from.

        Parameters
        ----------
        first_id
            First id of this rank's block, ``M r // P``.
        rows
            ``M (r + 1) // P - first_id`` rows of :attr:`state_dtype`, in id order.

        Raises
        ------
        HmmparError
            On every rank, if a rank passed a wrong block start, row count or dtype.
        """
        lo, hi = self.block_range()
        problem = None
        if int(first_id) != lo:
            problem = f"block starts at instance {int(first_id)}, expected {lo}"
        else:
            problem = _row_problem(rows, self._dtype, hi - lo, "block")
        _agree(self.comm, problem, "load_block")
        t0 = time.perf_counter()
        self.states = _move_rows(self.comm, np.ascontiguousarray(rows), self._block_of(), self._owner)
        self._add_comm(t0)

    # ------------------------------------------------------------------ other layouts
    def from_layout(self, rows: np.ndarray, holder: np.ndarray) -> np.ndarray:
        """Per-instance rows kept in another layout, moved to this pool's placement.

        Collective; one ``Alltoallv`` of raw bytes. A macro model distributes its columns
        by its own decomposition (a DMDA's ranges), the pool by cost: this is how the
        data of column ``i`` reach the rank of instance ``i``.

        Parameters
        ----------
        rows
            Structured rows of the instances ``flatnonzero(holder == rank)`` of this rank,
            in ascending id order.
        holder
            The rank holding the row of every instance in the other layout (length
            ``M``, the same on every rank).

        Returns
        -------
        numpy.ndarray
            The rows of :attr:`ids`, in that order.
        """
        src = self._layout(holder, rows, "from_layout")
        t0 = time.perf_counter()
        out = _move_rows(self.comm, np.ascontiguousarray(rows), src, self._owner)
        self._add_comm(t0)
        return out

    def to_layout(self, rows: np.ndarray, holder: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`from_layout`: rows aligned with :attr:`ids` moved to the
        ranks ``holder`` gives (each receives its instances' rows in ascending id order)."""
        dst = self._layout(holder, None, "to_layout")
        problem = _row_problem(rows, None, self.ids.size, "rows")
        _agree(self.comm, problem, "to_layout")
        t0 = time.perf_counter()
        out = _move_rows(self.comm, np.ascontiguousarray(rows), self._owner, dst)
        self._add_comm(t0)
        return out

    def _layout(self, holder, rows, what: str) -> np.ndarray:
        h = np.asarray(holder, dtype=np.int64)
        problem = None
        if h.shape != (self.size,) or (h.size and (h.min() < 0 or h.max() >= self.comm.size)):
            problem = f"holder must give a rank in [0, {self.comm.size}) for each of {self.size} instances"
        elif rows is not None:
            problem = _row_problem(rows, None, int(np.count_nonzero(h == self.comm.rank)), "rows")
        _agree(self.comm, problem, what)
        if len(set(self.comm.allgather(_digest(h)))) > 1:
            raise HmmparError(f"{what}: ranks disagree on the holder of the instances")
        return h

    # ------------------------------------------------------------------ balancing
    def rebalance(self, costs: np.ndarray, min_gain: float | None = None) -> int:
        """Place the instances again on new costs and move the state rows accordingly.

        Collective; one ``Alltoallv`` of raw bytes.

        Parameters
        ----------
        costs
            New estimated (or measured, see :meth:`global_costs`) cost of every instance,
            length ``M``, identical on every rank.
        min_gain
            None: always take the new placement. A fraction g: keep the current one unless
            the new one lowers the largest rank's cost (on ``costs``) below ``(1 - g)``
            times the current placement's, so that a move that gains nothing moves nothing.

        Returns
        -------
        int
            Number of instances that changed rank (the same on every rank). If any did,
            the pool's ``stats`` are marked (:meth:`~hmmpar.core.timing.FarmStats.mark`):
            the timing report gives the measured load imbalance of every placement.

        Raises
        ------
        HmmparError
            On every rank, if the costs are invalid or differ between ranks.
        """
        problem, c = None, None
        try:
            c = _as_costs(costs).copy()  # ours: made read-only below
            if c.size != self.size:
                raise ValueError(f"got {c.size} costs for {self.size} instances")
        except ValueError as exc:
            problem = str(exc)
        everyone = self.comm.allgather((problem, None if problem else _digest(c)))
        bad = [f"rank {r}: {p}" for r, (p, _) in enumerate(everyone) if p]
        if bad:
            raise HmmparError("rebalance: " + "; ".join(bad))
        if len({h for _, h in everyone}) > 1:
            raise HmmparError("rebalance: ranks disagree on the instance costs")
        new_owner = placement(c, self.comm.size)
        if min_gain is not None:
            def largest(owner: np.ndarray) -> float:
                return float(np.bincount(owner, weights=c, minlength=self.comm.size).max())
            if largest(new_owner) >= (1.0 - min_gain) * largest(self._owner):
                new_owner = self._owner.copy()
        moved = int(np.count_nonzero(new_owner != self._owner))
        t0 = time.perf_counter()
        if moved:
            if self.stats is not None:  # the timing report measures each placement's imbalance
                self.stats.mark()
            self.states = _move_rows(self.comm, self.states, self._owner, new_owner)
        self._costs = c
        self._costs.flags.writeable = False
        self._set_owner(new_owner)
        self._add_comm(t0)
        return moved

    # ------------------------------------------------------------------ internals
    def _set_owner(self, owner: np.ndarray) -> None:
        owner = np.asarray(owner, dtype=np.int64)
        owner.flags.writeable = False
        self._owner = owner
        ids = np.flatnonzero(owner == self.comm.rank).astype(np.int64)
        ids.flags.writeable = False
        #: Sorted int64 ids of the instances on this rank (read-only).
        self.ids: np.ndarray = ids

    def _block_of(self) -> np.ndarray:
        """The checkpoint-block rank of every instance id."""
        p = self.comm.size
        bounds = [self.size * r // p for r in range(p + 1)]
        return np.repeat(np.arange(p, dtype=np.int64), np.diff(bounds))

    def _initial_states(self, init: InitFn | None) -> np.ndarray:
        n = self.ids.size
        if init is None:  # the same on every rank: no agreement needed
            return np.zeros(n, dtype=self._dtype)
        error, states = None, np.zeros(0, dtype=self._dtype)
        if n:
            try:
                out = init(self.ids)
                problem = _row_problem(out, self._dtype, n, "initial states")
                if problem:
                    raise TypeError(problem)
                states = np.array(out, copy=True, order="C")  # own it: init may return a view
            except Exception as exc:  # noqa: BLE001 - reported collectively below
                error = one_line(exc)
        errors = self.comm.allgather(error)
        failed = [f"rank {r}: {e}" for r, e in enumerate(errors) if e]
        if failed:
            raise TaskError("micro instance init failed on " + "; ".join(failed))
        return states

    def _add_comm(self, t0: float) -> None:
        if self.stats is not None:
            self.stats.comm += time.perf_counter() - t0
