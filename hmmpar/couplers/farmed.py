r"""The couplers' micro work spread over MPI ranks by the farm.

A coupler only ever asks a micro model for two things, both of them batches of
independent micro simulations:

* the coarse time-stepper of the equation-free methods, :math:`U \mapsto
  (R\,u_{K}, R\,u_{K+1})` with :math:`u_0 = L(U)` and :math:`u_{j+1}` one inner step of
  :math:`u_j` (``_last_two`` in :mod:`.projective`; projective Euler, projective
  Runge--Kutta, telescopic levels, patch dynamics and the coarse Newton--Krylov solves are
  built on it);
* the constrained micro run of the (seamless or classical) HMM,
  :meth:`~.stepper.MicroStepper.advance`, whose micro states persist between calls.

:class:`FarmedStepper` and :class:`FarmedMicroStepper` wrap a serial stepper and compute
these on every rank of a communicator: the lifted micro state is cut into *units* (the
members of the batch, or, for patches, every patch of every member), rank ``r`` takes the
contiguous block ``[n r / P, n (r + 1) / P)`` of the ``n`` units as farm tasks (the farm
moves them to idle ranks, :class:`hmmpar.core.farm.Farm`), and the restricted results are
gathered on every rank in unit order. Every unit's result depends only on its own data,
and the coarse state is held whole on every rank, so a run is bitwise the same on any
number of ranks (and the coarse solvers above it, replicated, take the same path).

Units
-----
A stepper whose batch members are independent needs nothing more (unit = member:
``evolve`` and ``restrict`` are called on sub-batches). A stepper whose members are
themselves split into independent pieces (patches) says so with

* ``unit_axes``: the number of leading axes of a lifted state array that index units
  (2 for patches: member and patch);
* ``evolve_units(states, index, t, steps)``: advance units ``states`` ``(n, ...)`` whose
  flat unit indices are ``index``;
* ``restrict_units(states, index) -> (n, m)`` and ``join_units(values, nb) -> (nb, nu)``:
  the restriction of single units and how the unit values make a macro state.

Lifting memory
--------------
A stepper that lifts from the micro states it evolved last (``keeps_memory = True``, e.g.
:class:`~hmmpar.couplers.convection_stepper.ConvectionStepper`: the convective eddies are
kept across an extrapolation) cannot keep that memory inside the object while its units run
on other ranks. It offers

* ``remember(states, t)``: take ``states`` (the whole lifted batch, shape of ``lift``'s
  result) as the memory the next ``lift`` starts from;

and :meth:`FarmedStepper.window_values` then returns every unit's micro state after its last
inner step with the farm results and, after the all-gather, calls ``remember`` with the
whole batch on every rank: the replicated stepper holds the same memory everywhere, which is
exactly what the serial ``lift``/``evolve`` would hold (the state after the last of the
``K + 1`` steps), so the next lift, and the run, stay bitwise on any number of ranks. Such a
stepper should evolve its farm units with a side-effect-free ``evolve_units`` (its serial
``evolve`` may store sub-batches). Only these steppers pay for the extra traffic (one micro
state per unit and call). A stepper whose memory must survive a restart also offers
``memory_state() -> rows | None`` and ``restore_memory(rows)`` (the couplers app
checkpoints them).
"""
from __future__ import annotations

import numpy as np
from mpi4py import MPI

from hmmpar.core.farm import Farm, TaskContext
from hmmpar.couplers.stepper import MicroStepper, Window


def unit_block(n: int, rank: int, size: int) -> tuple[int, int]:
    """The contiguous block of ``n`` units rank ``rank`` of ``size`` submits."""
    return n * rank // size, n * (rank + 1) // size


def allgather_rows(comm, rows: np.ndarray, n: int) -> np.ndarray:
    """Every rank's ``rows`` (the blocks of :func:`unit_block`) on every rank, in rank
    order, as raw bytes (no pickling)."""
    out = np.empty(n, dtype=rows.dtype)
    if comm.size == 1:
        out[...] = rows
        return out
    counts = np.array([unit_block(n, r, comm.size)[1] - unit_block(n, r, comm.size)[0]
                       for r in range(comm.size)], dtype=np.int64) * rows.dtype.itemsize
    displs = np.concatenate(([0], np.cumsum(counts)[:-1]))
    comm.Allgatherv([rows.view(np.uint8), MPI.BYTE],
                    [out.view(np.uint8), counts.astype(np.int32), displs.astype(np.int32), MPI.BYTE])
    return out


def _mark_finite(out: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Rows whose fields ``names`` hold NaN / Inf get ``finite = 0`` and zeros: a blown-up
    micro simulation is the coupler's to report (the macro step, or a Newton trial point
    the solver rejects), not a farm task failure."""
    ok = np.ones(out.shape[0], dtype=bool)
    for name in names:
        if np.issubdtype(out.dtype[name].base, np.floating):
            ok &= np.isfinite(out[name].reshape(out.shape[0], -1)).all(axis=1)
    out["finite"] = ok
    for name in names:
        out[name][~ok] = 0
    return out


def _unmark(res: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Inverse of :func:`_mark_finite`: NaN back into the marked rows (float fields)."""
    bad = res["finite"] == 0
    if bad.any():
        for name in names:
            if np.issubdtype(res.dtype[name].base, np.floating):
                res[name][bad] = np.nan
    return res


class _Counting:
    """Work and farm-call bookkeeping shared by the two wrappers."""

    def __init__(self, farm: Farm, seed: int) -> None:
        self.farm, self.comm, self.seed = farm, farm.comm, int(seed)
        #: farm calls so far: the ``step`` key of the random streams of the next one (a
        #: restart must restore it to continue bitwise)
        self.calls = 0
        #: micro steps taken, summed over all units (the same on every rank)
        self.unit_steps = 0
        #: units this rank submitted (the farm may have run them elsewhere)
        self.submitted = 0

    def _map(self, solve, rows: np.ndarray, dtype: np.dtype, n: int, count: bool = True) -> np.ndarray:
        """Rows ``rows`` (all ``n``, the same on every rank) solved as farm tasks, each rank
        submitting its :func:`unit_block`; the results, all-gathered. ``count = False``: a
        call whose tasks draw no numbers from the farm's streams (they are keyed by the call
        counter, which then stays as it is)."""
        lo, hi = unit_block(n, self.comm.rank, self.comm.size)
        mine = rows[lo:hi]
        res = self.farm.map(solve, mine, dtype, step=self.calls, seed=self.seed)
        self.calls += int(count)
        self.submitted += hi - lo
        return allgather_rows(self.comm, np.ascontiguousarray(res), n)


class FarmedStepper(_Counting):
    r"""A :class:`~.projective.FreeStepper`'s coarse time-stepper computed by the farm
    (module docstring).

    To the couplers it is a free stepper whose micro state is the macro state itself:
    ``lift`` and ``restrict`` copy, and ``last_two(U, t, K)`` lifts ``U`` with the wrapped
    stepper, runs ``K + 1`` inner steps of every unit as farm tasks and returns the
    restrictions before and after the last one. Since restriction after lifting is the
    identity here, a :class:`~.projective.ProjectiveStepper` over it (a telescopic level)
    re-lifts from the extrapolated macro state exactly as over the wrapped stepper.

    Parameters
    ----------
    stepper
        The serial free stepper (every rank builds the same one).
    farm
        The farm over the run's communicator.
    seed
        Run seed (keys the farm's random streams with the call counter).
    """

    def __init__(self, stepper, farm: Farm, seed: int = 0) -> None:
        super().__init__(farm, seed)
        self.stepper = stepper
        self.h = float(stepper.h)
        self.unit_axes = int(getattr(stepper, "unit_axes", 1))
        for name in ("steps_per_lift", "micro_time"):  # patch dynamics' slope and the gap-tooth step
            if hasattr(stepper, name):
                setattr(self, name, getattr(stepper, name))

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        return np.atleast_2d(np.asarray(U, dtype=float)).copy()

    def restrict(self, states: np.ndarray) -> np.ndarray:
        return np.array(states, dtype=float)

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        raise NotImplementedError("a FarmedStepper runs its micro steps inside last_two (the coarse time-stepper)")

    def last_two(self, U: np.ndarray, t: float, K: int) -> tuple[np.ndarray, np.ndarray]:
        before, after = self.window_values(U, t, K, 2)
        return before, after

    def window_values(self, U: np.ndarray, t: float, K: int, W: int) -> list[np.ndarray]:
        """Lift ``U``, ``K + 1`` inner steps of every unit as farm tasks; the restrictions after
        the last ``W`` of them (``W = 2``: :meth:`last_two`; a least-squares projective slope
        uses more, :func:`~hmmpar.couplers.ssa_stepper.projective_fit_step`).

        A stochastic stepper (``stochastic_units = True``) gets ``ctx`` and the part number
        ``p`` (0 for the first ``K + 2 - W`` steps, then 1, 2, ... for each single step) in
        ``evolve_units(states, index, t, steps, ctx=ctx, part=p)``, and keys its streams by
        the farm task (run seed, farm call, unit) and ``p``: the draws do not depend on how
        the units were cut into chunks or on which rank ran them.

        A stepper with lifting memory (``keeps_memory``) gets the evolved batch back through
        ``remember`` on every rank (module docstring)."""
        st = self.stepper
        K, W = int(K), int(W)
        if not 2 <= W <= max(K + 1, 2):  # K = 0 still has the two values of last_two
            raise ValueError(f"W must be in [2, max(K + 1, 2)] = [2, {max(K + 1, 2)}], got {W}")
        S = np.ascontiguousarray(st.lift(np.atleast_2d(np.asarray(U, dtype=float)), t))
        lead = S.shape[:self.unit_axes]
        nb, n = S.shape[0], int(np.prod(lead))
        unit_shape = S.shape[self.unit_axes:]
        flat = S.reshape(n, -1)
        own_evolve = getattr(st, "evolve_units", None)
        own_restrict = getattr(st, "restrict_units", None)
        stochastic = bool(getattr(st, "stochastic_units", False))

        def evolve(u, index, tt, steps, ctx, part):
            if not steps:
                return
            if own_evolve is None:
                st.evolve(u, tt, steps)
            elif stochastic:
                own_evolve(u, index, tt, steps, ctx=ctx, part=part)
            else:
                own_evolve(u, index, tt, steps)

        def restrict(u, index):
            return own_restrict(u, index) if own_restrict is not None else st.restrict(u)

        m = np.asarray(restrict(flat[:1].reshape((1,) + unit_shape).copy(), np.zeros(1, np.int64))).reshape(1, -1).shape[1]
        task = np.dtype([("task_id", "i8"), ("state", S.dtype, (flat.shape[1],))])
        memory = bool(getattr(st, "keeps_memory", False))  # lifting memory (module docstring)
        fields = [("values", "f8", (W, m)), ("finite", "i1")]
        result = np.dtype(fields + [("memory", S.dtype, unit_shape)] if memory else fields)
        rows = np.empty(n, dtype=task)
        rows["task_id"] = np.arange(n)
        rows["state"] = flat
        t, first, h = float(t), K + 2 - W, self.h

        def solve(r: np.ndarray, ctx: TaskContext) -> np.ndarray:
            index = r["task_id"].astype(np.int64)
            u = np.ascontiguousarray(r["state"]).reshape((r.shape[0],) + unit_shape)
            out = np.empty(r.shape[0], dtype=result)
            evolve(u, index, t, first, ctx, 0)
            out["values"][:, 0] = np.asarray(restrict(u, index)).reshape(r.shape[0], m)
            for j in range(1, W):
                evolve(u, index, t + (first + j - 1) * h, 1, ctx, j)
                out["values"][:, j] = np.asarray(restrict(u, index)).reshape(r.shape[0], m)
            if memory:
                out["memory"] = u
            return _mark_finite(out, ("values",))

        res = _unmark(self._map(solve, rows, result, n), ("values",))
        self.unit_steps += n * (K + 1)
        if memory:  # every rank the whole evolved batch, as the serial evolve leaves it
            st.remember(np.ascontiguousarray(res["memory"]).reshape(S.shape), t + (K + 1) * h)
        join = getattr(st, "join_units", None)
        vals = res["values"]
        if join is not None:
            return [join(vals[:, j], nb) for j in range(W)]
        return [vals[:, j].reshape(nb, m) for j in range(W)]


class FarmedMicroStepper(_Counting):
    """A :class:`~.stepper.MicroStepper` whose batch members run as farm tasks.

    The micro states persist between calls (the seamless HMM never re-initialises them):
    they are held whole on every rank, sent with their macro constraint in the task rows,
    and the advanced states come back with the estimator's samples. The wrapped stepper's
    batch members must be independent (its ``advance`` on a sub-batch gives the same rows
    as on the whole batch). A stochastic stepper offers
    ``advance_units(states, X, t, steps, ids, ctx)``, drawing instance ``ids[r]``'s numbers
    from the farm's stream ``ctx.rng(ids[r])`` (keyed by the run seed, the farm-call counter
    and the instance), so that the draws do not depend on how the batch was cut.
    """

    def __init__(self, stepper: MicroStepper, farm: Farm, seed: int = 0) -> None:
        super().__init__(farm, seed)
        self.stepper = stepper
        self.nx, self.dtau = int(stepper.nx), float(stepper.dtau)

    def lift(self, X: np.ndarray, t: float) -> np.ndarray:
        """The wrapped stepper's lift, on every rank; or, if it lifts members apart
        (``lift_units(X, ids, t, k)`` with ``lifted_unit = (dtype, shape)`` and a lift
        counter ``lifts``, e.g. the MD boxes, whose lift is an equilibration run), every
        member a farm task: the same rows, computed once instead of on every rank."""
        st = self.stepper
        own = getattr(st, "lift_units", None)
        if own is None:
            return st.lift(X, t)
        X = np.atleast_2d(np.asarray(X, dtype=float))
        nb, k = X.shape[0], int(st.lifts)
        dtype, shape = st.lifted_unit
        task = np.dtype([("task_id", "i8"), ("X", "f8", (X.shape[1],))])
        result = np.dtype([("state", dtype, shape), ("finite", "i1")])
        rows = np.empty(nb, dtype=task)
        rows["task_id"] = np.arange(nb)
        rows["X"] = X
        t = float(t)

        def solve(r: np.ndarray, ctx: TaskContext) -> np.ndarray:
            out = np.empty(r.shape[0], dtype=result)
            out["state"] = own(np.ascontiguousarray(r["X"]), r["task_id"].astype(np.int64), t, k)
            return _mark_finite(out, ("state",))

        res = _unmark(self._map(solve, rows, result, nb, count=False), ("state",))
        st.lifts = k + 1
        return np.ascontiguousarray(res["state"])

    def restrict(self, states: np.ndarray) -> np.ndarray:
        return self.stepper.restrict(states)

    def advance(self, states: np.ndarray, X: np.ndarray, t: float, steps: int) -> Window:
        nb = states.shape[0]
        shape = states.shape[1:]
        X = np.atleast_2d(np.asarray(X, dtype=float))
        task = np.dtype([("task_id", "i8"), ("state", states.dtype, shape), ("X", "f8", (self.nx,))])
        result = np.dtype([("state", states.dtype, shape), ("mean", "f8", (self.nx,)), ("last", "f8", (self.nx,)),
                           ("finite", "i1")])
        rows = np.empty(nb, dtype=task)
        rows["task_id"] = np.arange(nb)
        rows["state"] = states
        rows["X"] = X
        t, steps, st = float(t), int(steps), self.stepper
        own = getattr(st, "advance_units", None)  # a stochastic stepper keys its streams by instance

        def solve(r: np.ndarray, ctx: TaskContext) -> np.ndarray:
            s = np.ascontiguousarray(r["state"])
            X_r = np.ascontiguousarray(r["X"])
            w = st.advance(s, X_r, t, steps) if own is None else own(s, X_r, t, steps, r["task_id"], ctx)
            out = np.empty(r.shape[0], dtype=result)
            out["state"], out["mean"], out["last"] = s, w.mean, w.last
            return _mark_finite(out, ("state", "mean", "last"))

        res = _unmark(self._map(solve, rows, result, nb), ("state", "mean", "last"))
        states[...] = res["state"]
        self.unit_steps += nb * steps
        return Window(res["mean"].copy(), res["last"].copy(), steps)
