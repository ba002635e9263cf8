r"""Exact stochastic simulation (SSA) of a :class:`~hmmpar.micro.ssa.model.ReactionNetwork` in numba.

Two engines share one compiled kernel, :func:`ssa_kernel`:

``method="direct"``
    Gillespie's direct method (J. Comput. Phys. 22 (1976) 403). In state x at time t with
    propensities a_j(x) and a_0 = sum_j a_j, the next event is at t + tau,
    tau = E / a_0 with E ~ Exp(1), and it is reaction j, the smallest index with
    sum_{k<=j} a_k > u a_0 (u uniform in [0, 1)). E is drawn by the ziggurat method
    (Marsaglia & Tsang, J. Stat. Softw. 5(8) (2000); :mod:`hmmpar.micro.rng.xoshiro`),
    exactly Exp(1) like -ln(u_1), and without ``log`` or ``exp`` for 97.8 % of the draws.
    After reaction j fires, only the propensities in the dependency graph row of j are recomputed
    (Gibson & Bruck, J. Phys. Chem. A 104 (2000) 1876) and a_0 is updated by their
    differences. To bound the round-off drift of that running sum, a_0 is re-summed
    from scratch every :data:`RESUM_INTERVAL` events, and also whenever it has fallen
    below 2^-20 of its last exact value (cancellation) or the search runs past the end.
``method="sorting"``
    The sorting direct method (McCollum, Peterson, Cox, Simpson & Samatova, Comput. Biol.
    Chem. 30 (2006) 39): the same, but the search runs through an ordering of the
    reactions that starts by decreasing initial propensity and, each time a reaction
    fires, swaps it one place towards the front. Frequently firing (fast) reactions
    gather at the front, so the linear search usually stops after one or two terms,
    without the pre-simulation of the optimized direct method (Cao, Li & Petzold,
    J. Chem. Phys. 121 (2004) 4059).

Both are exact SSAs; they differ only in which random numbers pick which reaction.

Options the Nested SSA (E, Liu & Vanden-Eijnden, J. Chem. Phys. 123 (2005) 194107)
builds on: ``active`` restricts the run to a subset of reactions (the others never
fire); ``integrate`` returns int_{t0}^{t_end} a_j(x(s)) ds for chosen reactions,
active or not; ``x0``/``t0``/``t_end`` start from any state and time. The random stream
is xoshiro256** (:mod:`hmmpar.micro.rng.xoshiro`) seeded from a ``SeedSequence`` key, so a
trajectory is a bitwise function of (network, arguments, key) on any rank.

Sampling: the state is right-continuous and piecewise constant, so the sample at time
s is the state after every event at a time <= s.

Performance (the layout is described in :func:`ssa_kernel`): the generator state is kept
in local variables for the whole loop; propensities are one branch-free formula; all
indices of the hot loop are unsigned (no negative-index wraparound); the dependents'
new propensities are computed from the counts before the event plus nu_j, so they do
not wait for the count updates; and the loop is compiled separately for each
combination of (sorting, integrals or not), so the plain direct method carries no
code of the others.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numba
import numpy as np

from ...core.rng import substream
from ..rng.xoshiro import exponential_rare, seed_state, step, to_uniform, ziggurat_exp_fast
from .model import ReactionNetwork

#: events between two exact re-summations of a_0 in the engines
RESUM_INTERVAL = 128
_CANCELLATION = 2.0 ** -20
METHODS = {"direct": False, "sorting": True}

#: kernel status codes (:func:`status_message` says what each means)
OK, MAX_EVENTS, NEGATIVE_COUNT = 0, 1, 2
#: a propensity, their sum a_0 or a time step is not finite (float64 overflow)
NONFINITE = 4
#: the time step 1/a_0 is below the float64 resolution of t (see :data:`STALL_EVENTS`)
STALLED = 5
#: a species count would pass 2^63 - 1 (int64 overflow)
COUNT_OVERFLOW = 6

#: a_0 |t| above this stops a kernel with ``STALLED``: the mean time step 1/a_0 is then
#: below 2^10 units in the last place of t (ulp(t) <= 2^-52 |t|), so t would advance in
#: coarse steps or not at all, and reaching t needs more than 2^42 (4.4e12) events.
STALL_EVENTS = 2.0 ** 42

# Unsigned indices: numba wraps a negative signed index around (x[-1] is the last
# element), which costs a test and an add on every access; unsigned ones skip that. All
# index tables of the hot loop are uint64, and so is every index computed from them
# (mixing int64 and uint64 in numba arithmetic gives float64, so constants are uint64 too).
_U0, _U1 = np.uint64(0), np.uint64(1)


@numba.njit(cache=True)
def rate_status(a0, t):
    """``NONFINITE`` if a_0 is inf or NaN, ``STALLED`` if a_0 |t| > :data:`STALL_EVENTS`, else ``OK``."""
    if not a0 < math.inf:
        return NONFINITE
    if a0 * abs(t) > STALL_EVENTS:
        return STALLED
    return OK


def status_message(status: int, t: float, what: str = "SSA") -> str:
    """The one-line cause of a kernel status other than ``OK`` and ``MAX_EVENTS`` (those name
    their limit where they are raised)."""
    if status == NONFINITE:
        return (f"{what}: the propensities overflow float64 (inf or NaN) at t = {t:.6g}; the rate constants "
                "or counts are too large")
    if status == STALLED:
        return (f"{what}: the time step 1/a0 fell below the float64 resolution of t = {t:.6g} "
                f"(a0 t > 2^42: the simulated time cannot advance, it would take more than 4.4e12 events)")
    if status == COUNT_OVERFLOW:
        return f"{what}: a species count passed 2^63 - 1 (int64 overflow) at t = {t:.6g}"
    if status == NEGATIVE_COUNT:
        return f"{what}: a species count became negative at t = {t:.6g} (a bug)"
    return f"{what}: kernel status {status} at t = {t:.6g}"


@numba.njit(cache=True)
def _count_status(X, nsp, nch, lo, hi):
    """After an update that left a count negative: ``COUNT_OVERFLOW`` if a count that the
    event raised wrapped around, else ``NEGATIVE_COUNT``."""
    for p in range(lo, hi):
        if nch[p] > 0 and X[nsp[p]] < 0:
            return COUNT_OVERFLOW
    return NEGATIVE_COUNT


@numba.njit(cache=True)
def _active_sum(ap, order, n_act, sorting):
    """a_0: the active propensities summed in search order."""
    s = 0.0
    if sorting:
        for i in range(n_act):
            s += ap[order[i]]
    else:
        for i in range(n_act):
            s += ap[i]
    return s


@numba.njit(cache=True)
def _search(ap, order, target, sorting):
    """The first search position whose running sum exceeds target (n_act if none).

    ``ap[n_act]`` is NaN: the running sum becomes NaN there and the loop stops."""
    i = _U0
    if sorting:
        cum = ap[order[i]]
        while cum <= target:
            i += _U1
            cum += ap[order[i]]
    else:
        cum = ap[i]
        while cum <= target:
            i += _U1
            cum += ap[i]
    return i


@numba.njit(cache=True)
def _loop(X, n_sp, ap, order, n_act, nptr, nsp, nch, dptr, eq, er0, er1, eo0, eo1, ec, pslot,
          integ, tlast, ev, t0, t_end, sample_times, out_states, sorting, general, max_events,
          s0, s1, s2, s3):
    """The event loop of :func:`ssa_kernel` on its tables.

    ``sorting`` (sorting direct method) and ``general`` (some propensities are integrated
    or tracked without being active) are compile-time constants (``numba.literally``): each
    of the four combinations compiles without the code of the others. The random state
    lives in s0..s3 (registers, not memory) and is returned.
    Returns (status, n_events, t, s0, s1, s2, s3)."""
    numba.literally(sorting)
    numba.literally(general)
    n_smp = sample_times.shape[0]
    t = t0
    ks = 0
    n_ev = 0
    status = OK
    a0 = _active_sum(ap, order, n_act, sorting)
    a0_min = a0 * _CANCELLATION
    since = RESUM_INTERVAL
    t_smp = sample_times[0] if n_smp > 0 else math.inf
    t_guard = min(t_smp, t_end)  # the next time at which something other than an event happens
    alive = a0 > 0.0
    if alive:
        status = rate_status(a0, t)
        alive = status == OK
    st = np.empty(4, np.uint64)  # the state in memory for the ziggurat's rare branches
    while alive:
        # tau = E / a0 with E ~ Exp(1) by the ziggurat (xoshiro.exponential_local, inlined:
        # its rare branches go through an array so that the state stays in registers)
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        e, ok = ziggurat_exp_fast(r)
        if not ok:
            st[0], st[1], st[2], st[3] = s0, s1, s2, s3
            e = exponential_rare(r, e, st)
            s0, s1, s2, s3 = st[0], st[1], st[2], st[3]
        t_next = t + e / a0
        if not t_next >= t:  # a0 is NaN: inf - inf in the running sum (overflow)
            status = NONFINITE
            break
        if t_next > t_guard:  # samples due before t_next, or past t_end
            while ks < n_smp and sample_times[ks] < t_next:
                for m in range(n_sp):
                    out_states[ks, m] = X[m]
                ks += 1
            if t_next > t_end:
                break
            t_smp = sample_times[ks] if ks < n_smp else math.inf
            t_guard = min(t_smp, t_end)
        if n_ev >= max_events:
            status = MAX_EVENTS
            break
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        i = _search(ap, order, to_uniform(r) * a0, sorting)
        while i >= n_act:  # a0 drifted above the true sum: re-sum exactly and draw again
            a0 = _active_sum(ap, order, n_act, sorting)
            a0_min = a0 * _CANCELLATION
            since = RESUM_INTERVAL
            if not a0 > 0.0:
                break
            status = rate_status(a0, t)
            if status != OK:
                break
            r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
            i = _search(ap, order, to_uniform(r) * a0, sorting)
        if status != OK:
            break
        t = t_next
        if i >= n_act:  # nothing can fire any more
            alive = False
            break
        if sorting:
            j = order[i]
        else:
            j = i
        # the dependents' new propensities from the counts *before* the event plus the
        # changes nu_j (eo0, eo1), so that they need not wait for the stores below
        if not general:
            for p in range(dptr[j], dptr[j + _U1]):
                q = eq[p]
                new = ec[p] * (float(X[er0[p]] + eo0[p]) * float(X[er1[p]] + eo1[p]))
                a0 += new - ap[q]
                ap[q] = new
        else:
            for p in range(dptr[j], dptr[j + _U1]):
                q = eq[p]
                new = ec[p] * (float(X[er0[p]] + eo0[p]) * float(X[er1[p]] + eo1[p]))
                old = ap[q]
                sl = pslot[q]
                if sl >= 0:  # the old value held since tlast[sl]
                    integ[sl] += old * (t - tlast[sl])
                    tlast[sl] = t
                if q < n_act:
                    a0 += new - old
                ap[q] = new
        neg = 0
        for p in range(nptr[j], nptr[j + _U1]):
            s = nsp[p]
            v = X[s] + nch[p]
            X[s] = v
            neg |= v
        if neg < 0:
            status = _count_status(X, nsp, nch, nptr[j], nptr[j + _U1])
            for p in range(nptr[j], nptr[j + _U1]):  # undo the event: x is the last valid state
                X[nsp[p]] -= nch[p]
            break
        ev[j] += 1
        n_ev += 1
        if sorting:
            if i > _U0:
                order[i] = order[i - _U1]
                order[i - _U1] = j
        since -= 1
        if since == 0 or not a0 >= a0_min:  # periodic re-sum; cancellation; NaN
            a0 = _active_sum(ap, order, n_act, sorting)
            a0_min = a0 * _CANCELLATION
            since = RESUM_INTERVAL
            alive = a0 > 0.0
            if alive:
                status = rate_status(a0, t)
                if status != OK:
                    break
    if not alive and status == OK:  # a0 = 0: the state holds to t_end
        while ks < n_smp:
            for m in range(n_sp):
                out_states[ks, m] = X[m]
            ks += 1
    return status, n_ev, t, s0, s1, s2, s3


@numba.njit(cache=True)
def ssa_kernel(x, t0, t_end, sample_times, reactants, rates, nu_ptr, nu_species, nu_change,
               dep_ptr, dep_idx, active, integrate, sorting, max_events, rng,
               out_states, out_events, out_integrals):
    """Run one SSA trajectory from (x, t0) to t_end: the whole hot loop, no callbacks.

    Parameters
    ----------
    x : int64[n_species]
        Start state; overwritten with the state at ``t_end``.
    t0, t_end : float
    sample_times : float64[n_samples]
        Non-decreasing, within [t0, t_end].
    reactants, rates, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx
        The network arrays (:class:`~hmmpar.micro.ssa.model.ReactionNetwork`).
    active : int64[m]
        Ascending indices of the reactions that may fire.
    integrate : int64[q]
        Reactions whose propensity integral is returned (active or not).
    sorting : bool
        False: direct method; True: sorting direct method.
    max_events : int
    rng : uint64[4]
        xoshiro256** state, advanced in place.
    out_states : int64[n_samples, n_species]
    out_events : int64[n_reactions]
        Firings per reaction (set, not accumulated).
    out_integrals : float64[q]
        int_{t0}^{t_end} a_{integrate[i]}(x(s)) ds (set, not accumulated).

    Returns
    -------
    (status, n_events, t) : (int, int, float)
        ``OK``, ``MAX_EVENTS``, ``NONFINITE`` (a_0 inf or NaN), ``STALLED`` (a_0 |t| >
        :data:`STALL_EVENTS`, checked at the start and at every re-summation of a_0),
        ``COUNT_OVERFLOW`` (a count would pass 2^63 - 1) or ``NEGATIVE_COUNT`` (x is then the
        state before the event that failed); the time of the last event.

    Tables (built here per call, O(size of the network)). The reactions are renumbered by
    *position*: 0..m-1 the active ones in ``active`` order (the direct method's search
    order), m a NaN sentinel that ends every search, then the integrated inactive ones;
    ``ap`` holds the propensities by position. The propensity of position q is
    c_q X[r0_q] (X[r1_q] - d_q) with X = (x, 1): a missing reactant reads the trailing 1,
    and ``2 A`` has c_q = c/2, r0 = r1 = A, d = 1, i.e. c x (x-1)/2, bitwise as
    :func:`~hmmpar.micro.ssa.model.propensity`. For each active position j the kernel
    stores its nu row (``nsp``, ``nch``) and its dependency row restricted to tracked
    (active or integrated) positions, one entry per dependent q with (q, r0_q, r1_q, c_q)
    and the offsets nu_j[r0_q] and nu_j[r1_q] - d_q, so that X[r0] + offset is the count
    after j fired.
    """
    n_r = rates.shape[0]
    n_sp = x.shape[0]
    n_act = active.shape[0]
    n_int = integrate.shape[0]
    pos = np.full(n_r, -1, np.int64)
    for i in range(n_act):
        pos[active[i]] = i
    n_pos = n_act + 1
    for i in range(n_int):
        if pos[integrate[i]] < 0:
            pos[integrate[i]] = n_pos
            n_pos += 1
    # per position: c, r0, r1, d
    pc = np.zeros(n_pos)
    pr = np.full(2 * n_pos, n_sp, np.int64)
    pd = np.zeros(n_pos, np.int64)
    for k in range(n_r):
        q = pos[k]
        if q < 0:
            continue
        r0 = reactants[k, 0]
        r1 = reactants[k, 1]
        pc[q] = rates[k]
        if r0 >= 0:
            pr[2 * q] = r0
            if r1 >= 0:
                pr[2 * q + 1] = r1
                if r1 == r0:
                    pc[q] = rates[k] * 0.5
                    pd[q] = 1
    n_nu = 0
    n_dep = 0
    for i in range(n_act):
        k = active[i]
        n_nu += nu_ptr[k + 1] - nu_ptr[k]
        for p in range(dep_ptr[k], dep_ptr[k + 1]):
            if pos[dep_idx[p]] >= 0:
                n_dep += 1
    # index tables (uint64) and offsets (int64), each one block cut into views
    ub = np.empty(3 * (n_act + 1) + n_nu + 3 * n_dep, np.uint64)
    nptr = ub[:n_act + 1]
    dptr = ub[n_act + 1:2 * (n_act + 1)]
    order = ub[2 * (n_act + 1):3 * (n_act + 1)]
    o = 3 * (n_act + 1)
    nsp = ub[o:o + n_nu]
    o += n_nu
    eq = ub[o:o + n_dep]
    er0 = ub[o + n_dep:o + 2 * n_dep]
    er1 = ub[o + 2 * n_dep:o + 3 * n_dep]
    ib = np.zeros(n_nu + 2 * n_dep + n_pos + n_act + 1, np.int64)
    nch = ib[:n_nu]
    eo0 = ib[n_nu:n_nu + n_dep]
    eo1 = ib[n_nu + n_dep:n_nu + 2 * n_dep]
    o = n_nu + 2 * n_dep
    pslot = ib[o:o + n_pos]
    ev = ib[o + n_pos:]
    fb = np.empty(n_dep + n_pos + 2 * n_int)
    ec = fb[:n_dep]
    ap = fb[n_dep:n_dep + n_pos]
    integ = fb[n_dep + n_pos:n_dep + n_pos + n_int]
    tlast = fb[n_dep + n_pos + n_int:]
    integ[:] = 0.0
    tlast[:] = t0
    pslot[:] = -1
    for i in range(n_int):
        pslot[pos[integrate[i]]] = i
    nptr[0] = 0
    dptr[0] = 0
    on = 0
    od = 0
    for i in range(n_act):
        k = active[i]
        for p in range(nu_ptr[k], nu_ptr[k + 1]):
            nsp[on] = nu_species[p]
            nch[on] = nu_change[p]
            on += 1
        for p in range(dep_ptr[k], dep_ptr[k + 1]):
            q = pos[dep_idx[p]]
            if q < 0:
                continue
            eq[od] = q
            er0[od] = pr[2 * q]
            er1[od] = pr[2 * q + 1]
            ec[od] = pc[q]
            eo1[od] = -pd[q]
            for m in range(nu_ptr[k], nu_ptr[k + 1]):
                if nu_species[m] == pr[2 * q]:
                    eo0[od] += nu_change[m]
                if nu_species[m] == pr[2 * q + 1]:
                    eo1[od] += nu_change[m]
            od += 1
        nptr[i + 1] = on
        dptr[i + 1] = od
    X = np.empty(n_sp + 1, np.int64)
    X[:n_sp] = x
    X[n_sp] = 1
    for q in range(n_pos):
        ap[q] = pc[q] * (float(X[pr[2 * q]]) * float(X[pr[2 * q + 1]] - pd[q]))
    ap[n_act] = math.nan
    if sorting:  # by decreasing initial propensity, stable
        order[:n_act] = np.argsort(-ap[:n_act], kind="mergesort")
        order[n_act] = n_act
    m_act = np.uint64(n_act)
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    general = n_int > 0
    # one call per (sorting, general), so that each is a compile-time constant in _loop
    if not sorting and not general:
        status, n_ev, t, s0, s1, s2, s3 = _loop(
            X, n_sp, ap, order, m_act, nptr, nsp, nch, dptr, eq, er0, er1, eo0, eo1, ec, pslot, integ, tlast,
            ev, t0, t_end, sample_times, out_states, False, False, max_events, s0, s1, s2, s3)
    elif not sorting and general:
        status, n_ev, t, s0, s1, s2, s3 = _loop(
            X, n_sp, ap, order, m_act, nptr, nsp, nch, dptr, eq, er0, er1, eo0, eo1, ec, pslot, integ, tlast,
            ev, t0, t_end, sample_times, out_states, False, True, max_events, s0, s1, s2, s3)
    elif sorting and not general:
        status, n_ev, t, s0, s1, s2, s3 = _loop(
            X, n_sp, ap, order, m_act, nptr, nsp, nch, dptr, eq, er0, er1, eo0, eo1, ec, pslot, integ, tlast,
            ev, t0, t_end, sample_times, out_states, True, False, max_events, s0, s1, s2, s3)
    else:  # sorting and general
        status, n_ev, t, s0, s1, s2, s3 = _loop(
            X, n_sp, ap, order, m_act, nptr, nsp, nch, dptr, eq, er0, er1, eo0, eo1, ec, pslot, integ, tlast,
            ev, t0, t_end, sample_times, out_states, True, True, max_events, s0, s1, s2, s3)
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3
    x[:] = X[:n_sp]
    out_events[:] = 0
    for i in range(n_act):
        out_events[active[i]] = ev[i]
    t_stop = t_end if status == OK else t
    for i in range(n_int):
        out_integrals[i] = integ[i] + ap[pos[integrate[i]]] * (t_stop - tlast[i])
    return status, n_ev, t


def persistent_rate(network: ReactionNetwork, among: np.ndarray, x: np.ndarray | None = None
                    ) -> tuple[float, np.ndarray]:
    """A floor under the total propensity of the reactions ``among`` (bool[M]) for all times.

    A reaction whose reactants no reaction (of rate > 0) consumes -- ``0 -> A``, or
    ``E -> E + A`` with E never consumed -- keeps a propensity >= its value in state x
    (default: the initial counts), since its reactants' counts never decrease.

    Returns
    -------
    (floor, reactions)
        The sum of those reactions' propensities at x, and the indices of those with a
        propensity > 0 there.
    """
    x = network.initial_counts if x is None else x
    lowered = ((network.nu < 0) & (network.rates > 0)[:, None]).any(axis=0)
    keep = []
    for j in np.flatnonzero(among):
        species = network.reactants[j][network.reactants[j] >= 0]
        if not lowered[species].any():
            keep.append(j)
    a = network.propensities(x)
    which = np.array([j for j in keep if a[j] > 0], dtype=np.int64)
    return float(a[which].sum()) if which.size else 0.0, which


class SSAError(RuntimeError):
    """A trajectory that cannot go on: propensities overflow, time cannot advance, or a
    count overflows int64 (:func:`status_message`)."""


@dataclass(frozen=True)
class SSAResult:
    """One trajectory.

    Attributes
    ----------
    times : float64[n_samples]
    states : int64[n_samples, n_species]
        The state at each sample time.
    events : int64[n_reactions]
        How often each reaction fired.
    integrals : float64[len(integrate)]
        int_{t0}^{t_end} a_j(x(s)) ds for j in ``integrate`` (in that order).
    integrate : int64[len(integrate)]
        The reaction indices of ``integrals``.
    final_state : int64[n_species]
        The state at ``t_end``.
    t_end : float
    """

    times: np.ndarray
    states: np.ndarray
    events: np.ndarray
    integrals: np.ndarray
    integrate: np.ndarray
    final_state: np.ndarray
    t_end: float

    @property
    def n_events(self) -> int:
        return int(self.events.sum())


@dataclass(frozen=True)
class EnsembleResult:
    """Trajectories ``first .. first + n - 1``; the arrays of :class:`SSAResult` with a leading axis n."""

    times: np.ndarray
    states: np.ndarray
    events: np.ndarray
    integrals: np.ndarray
    integrate: np.ndarray
    final_states: np.ndarray
    t_end: float
    first: int

    def __len__(self) -> int:
        return self.states.shape[0]

    def __getitem__(self, i: int) -> SSAResult:
        return SSAResult(self.times, self.states[i], self.events[i], self.integrals[i],
                         self.integrate, self.final_states[i], self.t_end)


def seed_sequence(seed_key: "int | Sequence[int] | np.random.SeedSequence") -> np.random.SeedSequence:
    """A ``SeedSequence`` from a key: itself, or ``SeedSequence(key)`` for an int or a sequence of ints.

    In an application use ``hmmpar.core.rng.task_seed_sequence(seed, step, task_id)``.
    """
    if isinstance(seed_key, np.random.SeedSequence):
        return seed_key
    if isinstance(seed_key, (bool, np.bool_)):
        raise TypeError("seed_key must be an int, a sequence of ints or a SeedSequence")
    return np.random.SeedSequence(seed_key)


class _Run:
    """Validated arguments shared by :func:`simulate` and :func:`ensemble`."""

    def __init__(self, network, t_end, sample_times, method, active, integrate, t0, max_events):
        if not isinstance(network, ReactionNetwork):
            raise TypeError(f"network must be a ReactionNetwork, got {type(network).__name__}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
        t0, t_end = float(t0), float(t_end)
        if not (math.isfinite(t0) and math.isfinite(t_end)) or t_end < t0:
            raise ValueError(f"need finite t0 <= t_end, got t0={t0}, t_end={t_end}")
        # always a fresh writable float64 array, so the kernel's argument types never change
        st = np.array(np.zeros(0) if sample_times is None else sample_times, dtype=np.float64).ravel()
        if st.size and (not np.all(np.isfinite(st)) or np.any(np.diff(st) < 0) or st[0] < t0 or st[-1] > t_end):
            raise ValueError(f"sample_times must be finite, non-decreasing and within [t0, t_end] = [{t0}, {t_end}]")
        self.network = network
        self.t0, self.t_end, self.sample_times = t0, t_end, st
        self.sorting = METHODS[method]
        self.active = np.unique(network.reaction_indices(active))
        self.integrate = network.reaction_indices([] if integrate is None else integrate)
        if max_events is None:
            max_events = np.iinfo(np.int64).max
        if int(max_events) < 0:
            raise ValueError(f"max_events must be >= 0, got {max_events}")
        self.max_events = int(max_events)

    def start_state(self, x0) -> np.ndarray:
        n = self.network.n_species
        if x0 is None:
            return self.network.initial_counts.copy()
        x = np.asarray(x0)
        if x.shape != (n,):
            raise ValueError(f"x0 needs {n} counts (species {', '.join(self.network.species)}), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.integer) and not np.all(x == np.round(x)):
            raise ValueError("x0 must hold integer counts")
        x = x.astype(np.int64)
        if np.any(x < 0):
            i = int(np.flatnonzero(x < 0)[0])
            raise ValueError(f"x0: negative count {x[i]} of species {self.network.species[i]!r}")
        return x

    def run(self, x, ss, out_states, out_events, out_integrals) -> None:
        net = self.network
        status, n_ev, t = ssa_kernel(
            x, self.t0, self.t_end, self.sample_times, net.reactants, net.rates, net.nu_ptr,
            net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx, self.active, self.integrate,
            self.sorting, self.max_events, seed_state(ss), out_states, out_events, out_integrals)
        if status == MAX_EVENTS:
            raise RuntimeError(f"SSA of {net.name or 'the network'} stopped after max_events={n_ev} "
                               f"events at t={t:.6g} < t_end={self.t_end:.6g}")
        if status == NEGATIVE_COUNT:  # impossible under mass action; an engine bug if seen
            raise AssertionError(f"SSA produced a negative count at t={t:.6g}: {x.tolist()}")
        if status != OK:  # NONFINITE, STALLED, COUNT_OVERFLOW
            raise SSAError(status_message(status, t, f"SSA of {net.name or 'the network'}"))


def simulate(network: ReactionNetwork, t_end: float, sample_times: Sequence[float] | np.ndarray | None = None,
             seed_key: "int | Sequence[int] | np.random.SeedSequence" = 0, *, method: str = "direct",
             active: Iterable[int | str] | np.ndarray | None = None,
             integrate: Iterable[int | str] | np.ndarray | None = None,
             x0: np.ndarray | None = None, t0: float = 0.0, max_events: int | None = None) -> SSAResult:
    """Simulate one trajectory of ``network`` from (x0, t0) to t_end.

    Parameters
    ----------
    network
        The reaction network.
    t_end
        Stop time; the state is held after the last event before it.
    sample_times
        Non-decreasing times in [t0, t_end] at which to record the state.
    seed_key
        The random stream: a ``SeedSequence`` (e.g. from
        :func:`hmmpar.core.rng.task_seed_sequence`), an int or a sequence of ints.
    method
        ``"direct"`` (Gillespie 1976 with a dependency graph) or ``"sorting"`` (sorting
        direct method, McCollum et al. 2006).
    active
        Reactions that may fire (indices, names or a boolean mask); default all.
    integrate
        Reactions whose propensity integral over [t0, t_end] is returned.
    x0, t0
        Start state (default: the network's initial counts) and time.
    max_events
        Stop with ``RuntimeError`` after this many events (default: no limit).
    """
    run = _Run(network, t_end, sample_times, method, active, integrate, t0, max_events)
    x = run.start_state(x0)
    states = np.empty((run.sample_times.size, network.n_species), dtype=np.int64)
    events = np.empty(network.n_reactions, dtype=np.int64)
    integrals = np.empty(run.integrate.size, dtype=np.float64)
    run.run(x, seed_sequence(seed_key), states, events, integrals)
    return SSAResult(run.sample_times, states, events, integrals, run.integrate, x, run.t_end)


def ensemble(network: ReactionNetwork, n: int, t_end: float,
             sample_times: Sequence[float] | np.ndarray | None = None,
             seed_key: "int | Sequence[int] | np.random.SeedSequence" = 0, *, first: int = 0,
             method: str = "direct", active: Iterable[int | str] | np.ndarray | None = None,
             integrate: Iterable[int | str] | np.ndarray | None = None,
             x0: np.ndarray | None = None, t0: float = 0.0, max_events: int | None = None) -> EnsembleResult:
    """Trajectories ``first .. first + n - 1``, each with its own stream ``substream(key, i)``.

    Trajectory ``i`` is bitwise the same as ``simulate(..., seed_key=substream(key, i))``
    whatever ``n`` and ``first`` are, so an ensemble can be cut into chunks and run on
    any ranks. ``x0`` is one state for all, or one row per trajectory. Other arguments
    as in :func:`simulate`.
    """
    run = _Run(network, t_end, sample_times, method, active, integrate, t0, max_events)
    n, first = int(n), int(first)
    if n < 0 or first < 0:
        raise ValueError(f"need n >= 0 and first >= 0, got n={n}, first={first}")
    nsp = network.n_species
    if x0 is not None and np.ndim(x0) == 2:
        if np.shape(x0)[0] != n:
            raise ValueError(f"x0 has {np.shape(x0)[0]} rows for {n} trajectories")
        starts = [run.start_state(row) for row in np.asarray(x0)]
    else:
        starts = [run.start_state(x0)] * n
    parent = seed_sequence(seed_key)
    states = np.empty((n, run.sample_times.size, nsp), dtype=np.int64)
    events = np.empty((n, network.n_reactions), dtype=np.int64)
    integrals = np.empty((n, run.integrate.size), dtype=np.float64)
    finals = np.empty((n, nsp), dtype=np.int64)
    for i in range(n):
        finals[i] = starts[i]
        run.run(finals[i], substream(parent, first + i), states[i], events[i], integrals[i])
    return EnsembleResult(run.sample_times, states, events, integrals, run.integrate, finals, run.t_end, first)
