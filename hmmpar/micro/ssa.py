r"""Exact stochastic simulation (SSA) of a :class:`~hmmpar.micro.ssa_model.ReactionNetwork` in numba.

Two engines share one compiled kernel, :func:`ssa_kernel`:

``method="direct"``
    Gillespie's direct method (J. Comput. Phys. 22 (1976) 403). In state x at time t with
    propensities a_j(x) and a_0 = sum_j a_j, the next event is at t + tau,
    tau = -ln(u_1) / a_0, and it is reaction j, the smallest index with
    sum_{k<=j} a_k > u_2 a_0 (u_1 in (0, 1], u_2 in [0, 1) uniform). After reaction j
    fires, only the propensities in the dependency graph row of j are recomputed
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
is xoshiro256** (:mod:`hmmpar.micro.xoshiro`) seeded from a ``SeedSequence`` key, so a
trajectory is a bitwise function of (network, arguments, key) on any rank.

Sampling: the state is right-continuous and piecewise constant, so the sample at time
s is the state after every event at a time <= s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numba
import numpy as np

from ..core.rng import substream
from .ssa_model import ReactionNetwork, propensity
from .xoshiro import seed_state, uniform, uniform_open0

#: events between two exact re-summations of a_0 in the engines
RESUM_INTERVAL = 128
_CANCELLATION = 2.0 ** -20
METHODS = {"direct": False, "sorting": True}

#: kernel status codes
OK, MAX_EVENTS, NEGATIVE_COUNT = 0, 1, 2


@numba.njit(cache=True)
def _active_sum(a, order):
    s = 0.0
    for i in range(order.shape[0]):
        s += a[order[i]]
    return s


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
        The network arrays (:class:`~hmmpar.micro.ssa_model.ReactionNetwork`).
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
        ``OK``, ``MAX_EVENTS`` or ``NEGATIVE_COUNT``; the time of the last event.
    """
    n_r = rates.shape[0]
    n_act = active.shape[0]
    n_int = integrate.shape[0]
    n_smp = sample_times.shape[0]
    tracked = np.zeros(n_r, np.bool_)
    is_active = np.zeros(n_r, np.bool_)
    slot = np.full(n_r, -1, np.int64)
    for i in range(n_act):
        is_active[active[i]] = True
        tracked[active[i]] = True
    for i in range(n_int):
        slot[integrate[i]] = i
        tracked[integrate[i]] = True
    a = np.zeros(n_r)
    for k in range(n_r):
        if tracked[k]:
            a[k] = propensity(k, x, reactants, rates)
    if sorting:
        order = active[np.argsort(-a[active], kind="mergesort")]
    else:
        order = active.copy()
    t_last = np.full(n_int, t0)
    out_events[:] = 0
    out_integrals[:] = 0.0

    a0 = _active_sum(a, order)
    a0_exact = a0
    since_resum = 0
    t = t0
    ks = 0
    n_ev = 0
    status = OK
    while True:
        if since_resum >= RESUM_INTERVAL or a0 < a0_exact * _CANCELLATION or a0 < 0.0:
            a0 = _active_sum(a, order)
            a0_exact = a0
            since_resum = 0
        if a0 > 0.0:
            t_next = t - math.log(uniform_open0(rng)) / a0
        else:
            t_next = math.inf
        while ks < n_smp and sample_times[ks] < t_next:
            out_states[ks, :] = x
            ks += 1
        if t_next > t_end:
            break
        if n_ev >= max_events:
            status = MAX_EVENTS
            break
        # select the reaction: first position whose running sum passes u * a0
        j = -1
        pos = -1
        while j < 0:
            target = uniform(rng) * a0
            cum = 0.0
            for i in range(n_act):
                cum += a[order[i]]
                if cum > target:
                    j = order[i]
                    pos = i
                    break
            if j < 0:  # a0 drifted above the true sum: re-sum exactly and draw again
                a0 = _active_sum(a, order)
                a0_exact = a0
                since_resum = 0
                if not a0 > 0.0:
                    break
        t = t_next
        if j < 0:
            continue  # nothing can fire any more; the next pass finds a0 = 0
        for p in range(nu_ptr[j], nu_ptr[j + 1]):
            s = nu_species[p]
            x[s] += nu_change[p]
            if x[s] < 0:
                status = NEGATIVE_COUNT
        if status != OK:
            break
        for p in range(dep_ptr[j], dep_ptr[j + 1]):
            k = dep_idx[p]
            if tracked[k]:
                new = propensity(k, x, reactants, rates)
                q = slot[k]
                if q >= 0:  # the old value held since t_last[q]
                    out_integrals[q] += a[k] * (t - t_last[q])
                    t_last[q] = t
                if is_active[k]:
                    a0 += new - a[k]
                a[k] = new
        out_events[j] += 1
        n_ev += 1
        since_resum += 1
        if sorting and pos > 0:
            order[pos] = order[pos - 1]
            order[pos - 1] = j
    t_stop = t_end if status == OK else t
    for q in range(n_int):
        out_integrals[q] += a[integrate[q]] * (t_stop - t_last[q])
    return status, n_ev, t


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
