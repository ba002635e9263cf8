r"""The Nested SSA (E, Liu & Vanden-Eijnden, J. Chem. Phys. 123 (2005) 194107), compiled.

Reactions are split into fast (F) and slow (S). One outer step from the state x_n at t_n:

1. **Inner SSA.** N replicas k = 0..N-1 of the fast reactions only (the slow ones never
   fire), each started at x_n, run for a burn-in T_0 (discarded) and then for T_f, and the
   slow propensities are averaged over the second part and over the replicas:

   .. math:: \tilde a_j = \frac{1}{N} \sum_{k=0}^{N-1} \frac{1}{T_f}
             \int_{T_0}^{T_0+T_f} a_j(X^k_\tau)\, d\tau, \qquad j \in S.

   (The integrals come from :func:`hmmpar.micro.ssa.ssa_kernel`'s ``integrate``; they
   are summed in replica order, so the sum is bitwise the same wherever it runs.)
2. **Outer SSA.** One SSA step of the slow reactions at the rates ``ã``:
   τ = −ln(u₁)/ã₀, reaction j the first with Σ_{k≤j} ã_k > u₂ ã₀; t_{n+1} = t_n + τ.
3. **New state.** x_{n+1} = Z + ν_j, where Z is the end state of replica k, chosen with
   probability a_j(X^k_{end}) / Σ_l a_j(X^l_{end}) (u₃). Fast reactions conserve the slow
   variables, so Z has the slow variables of x_n and x_{n+1} has exactly those after the
   slow jump. The paper writes x_{n+1} = x_n + ν_j: that keeps the fast part of the
   state at its initial value for ever and gives negative counts as soon as a slow
   reaction consumes a fast species the initial state lacks (four-species model: from
   x = (100, 0, 0, 0) the first ``S2 -> S3`` would leave S2 = −1). Weighting by a_j is the
   sampled (importance-resampling) form of the law of the fast state at the instant a
   slow reaction j fires, π(x) a_j(x)/ã_j, and a replica with a_j > 0 can always fire j,
   so counts stay non-negative. If every replica ends with a_j = 0 (a rare reactant), the
   fast SSA of replica 0 is continued in pieces of T_f (stream ``CONTINUATION_STREAM``)
   until a_j > 0.

Error (the paper's theorem, E, Liu & Vanden-Eijnden 2005, 2007): with ε the ratio of
time scales and a smooth observable of the slow variables,

.. math:: E\,|v - \bar v| \le C\Big(\varepsilon + \frac{e^{-\alpha T_0/\varepsilon}}{1 + T_f/\varepsilon}
          + \frac{1}{\sqrt{N (1 + T_f/\varepsilon)}}\Big),

so for a tolerance λ the choice N = 1/λ, T_f = ε/λ makes each term O(λ).

**Parameters from a tolerance.** ``replicas = 0`` means N = ⌈1/λ⌉ and
``averaging_time = 0`` means T_f = ε(x_n)/λ, recomputed every outer step, with

.. math:: \varepsilon(x) = 1 / \min_{i \in C} r_i(x), \qquad
          r_i(x) = \sum_{j \in F,\ \nu_{ij} < 0} a'_j(x) / \max(x_i, 1),

r_i the rate at which one molecule of species i is consumed by fast reactions (its
relaxation rate), over the *coupling species* C: species that fast reactions change
and slow reactions have as reactants -- the only way the fast dynamics enters the slow
rates. If no species couples, C is every species fast reactions consume. a' is the
potential propensity below. Four-species model: ε = 1/c = 10⁻⁵; heat shock:
ε = 1/(1.08·10⁻² · Unfolded) ≈ 4.6·10⁻⁴ (DnaJ's binding time).

**Partition.** ``partition="model"``: the model's ``fast`` flags. ``"auto"``: re-decided
at every outer step from the state: reaction j is fast if

.. math:: a'_j(x) \ge \theta \max_k a'_k(x) \qquad (\theta = \text{partition\_ratio}, 10^{-3} \text{ by default}),

where a'_j is the *potential propensity*: mass action with every reactant count raised
to the least that lets j fire (max(x_A, 1) for A, max(x_A, 2) for 2 A), so that a
reaction whose reactant happens to be absent is classified by the rate it would have,
not as slow. If the rule marks every reaction fast there is no gap between time scales
and the outer step is an exact SSA step (no reaction fast). It gives the paper's
partition on both models in every state tested (``tests/unit/test_nested_ssa_kernel.py``).

**Windows.** :func:`nested_window_kernel` advances one trajectory over [t_a, t_b]: the
outer step that would jump past t_b is dropped (its rates are not carried into the next
window), and the next window starts a fresh outer step at t_b. For the direct SSA this
is exact (memoryless); for the Nested SSA it re-estimates ã at the window boundaries,
which changes the law of the jump times only through the randomness of ã -- the
O(1/√(N(1+T_f/ε))) term of the bound -- and makes a trajectory a function of its
window keys alone, so a run restarted at a window boundary is bitwise the run that
never stopped.

**Pieces.** An outer step is :func:`step_plan` (partition, T_f), N calls of
:func:`replica_run` combined by :func:`replica_average` (or :func:`exact_rates` when
T_f = 0), and :func:`outer_step`. :func:`nested_window_kernel` loops over them for one
trajectory; the ``ssa`` application's replica mode (:mod:`hmmpar.apps.ssa_replicas`)
calls the same functions with the replicas spread over ranks, so both modes give bitwise
the same trajectories.

**Random streams** (:mod:`hmmpar.micro.splitmix`): each window has a 64-bit key
(from ``(seed, window, trajectory)``); replica r of outer step n draws from stream
``(key, n, r)``, the outer SSA of the window from ``(key, 0, OUTER_STREAM)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from .splitmix import CONTINUATION_STREAM, DIRECT_STREAM, OUTER_STREAM, seed_stream
from .ssa import MAX_EVENTS, METHODS, NEGATIVE_COUNT, OK, ssa_kernel
from .ssa_model import ReactionNetwork, propensity
from .xoshiro import uniform, uniform_open0

#: extra kernel status codes (after OK, MAX_EVENTS, NEGATIVE_COUNT of the SSA kernel)
NO_REACTANT = 3

#: pieces of T_f the continuation may run before giving up (status NO_REACTANT)
MAX_CONTINUATION_PIECES = 10_000

PARTITIONS = {"model": False, "auto": True}


# ---------------------------------------------------------------------------- helpers
@numba.njit(cache=True)
def potential_propensity(k, x, reactants, rates):
    """Mass-action propensity of reaction k with each reactant count raised to the least
    that lets k fire (1 for A, 2 for 2 A): the rate k would have if its reactants were there."""
    r0 = reactants[k, 0]
    if r0 < 0:
        return rates[k]
    r1 = reactants[k, 1]
    if r1 < 0:
        return rates[k] * max(float(x[r0]), 1.0)
    if r1 == r0:
        n = max(float(x[r0]), 2.0)
        return rates[k] * n * (n - 1.0) * 0.5
    return rates[k] * max(float(x[r0]), 1.0) * max(float(x[r1]), 1.0)


@numba.njit(cache=True)
def auto_partition(x, reactants, rates, ratio, fast):
    """Fill ``fast`` (bool[M]): a'_j(x) >= ratio * max_k a'_k(x); none if that is all of them
    (no gap between the time scales: the outer step is then an exact SSA step)."""
    m = rates.shape[0]
    ap = np.empty(m)
    top = 0.0
    for k in range(m):
        ap[k] = potential_propensity(k, x, reactants, rates)
        if ap[k] > top:
            top = ap[k]
    n_fast = 0
    for k in range(m):
        fast[k] = top > 0.0 and ap[k] >= ratio * top
        n_fast += fast[k]
    if n_fast == m:
        fast[:] = False


@numba.njit(cache=True)
def time_scale(x, fast, reactants, rates, nu):
    """ε(x) of the module docstring: 1 / (slowest relaxation rate of a coupling species).

    Returns 0.0 if no fast reaction consumes anything (nothing to average)."""
    m, ns = nu.shape
    changed = np.zeros(ns, np.bool_)
    coupled = np.zeros(ns, np.bool_)
    consumption = np.zeros(ns)
    for j in range(m):
        if fast[j]:
            ap = potential_propensity(j, x, reactants, rates)
            for i in range(ns):
                if nu[j, i] != 0:
                    changed[i] = True
                if nu[j, i] < 0:
                    consumption[i] += ap / max(float(x[i]), 1.0)
    any_coupled = False
    for j in range(m):
        if not fast[j]:
            for q in range(2):
                i = reactants[j, q]
                if i >= 0 and changed[i] and consumption[i] > 0.0:
                    coupled[i] = True
                    any_coupled = True
    slowest = math.inf
    for i in range(ns):
        if consumption[i] > 0.0 and (coupled[i] or not any_coupled):
            slowest = min(slowest, consumption[i])
    return 0.0 if slowest == math.inf else 1.0 / slowest


# ---------------------------------------------------------------------------- one outer step
@numba.njit(cache=True)
def step_plan(x, model_fast, auto, ratio, t_f_fixed, tolerance, reactants, rates, nu, fast):
    """Partition (written to ``fast``) and T_f of the outer step from x.

    Returns T_f, or 0.0 when there is nothing to average (no fast reaction, or none that
    consumes anything): the slow rates are then the exact propensities a_j(x)."""
    if auto:
        auto_partition(x, reactants, rates, ratio, fast)
    else:
        fast[:] = model_fast
    if not fast.any():
        return 0.0
    if t_f_fixed > 0.0:
        return t_f_fixed
    return time_scale(x, fast, reactants, rates, nu) / tolerance


@numba.njit(cache=True)
def replica_run(x, key, n, r, burn_in, t_f, fast_idx, slow_idx, reactants, rates, nu_ptr, nu_species,
                nu_change, dep_ptr, dep_idx, sorting, max_events, end, integrals):
    """Replica r of outer step n: the fast reactions from x over [0, T_0 + T_f], stream (key, n, r).

    Writes the end state to ``end`` and int_{T_0}^{T_0+T_f} a_j dτ for j = slow_idx[i] to
    ``integrals[i]``. Returns (status, events)."""
    rng = np.empty(4, np.uint64)
    seed_stream(key, np.uint64(n), np.uint64(r), rng)
    no_samples = np.empty(0)
    no_states = np.empty((0, x.shape[0]), np.int64)
    events = np.empty(rates.shape[0], np.int64)
    end[:] = x
    n_ev = 0
    if burn_in > 0.0:
        status, ne, _ = ssa_kernel(end, 0.0, burn_in, no_samples, reactants, rates, nu_ptr, nu_species, nu_change,
                                   dep_ptr, dep_idx, fast_idx, np.empty(0, np.int64), sorting, max_events, rng,
                                   no_states, events, np.empty(0))
        n_ev += ne
        if status != OK:
            return status, n_ev
    status, ne, _ = ssa_kernel(end, burn_in, burn_in + t_f, no_samples, reactants, rates, nu_ptr, nu_species,
                               nu_change, dep_ptr, dep_idx, fast_idx, slow_idx, sorting, max_events, rng,
                               no_states, events, integrals)
    return status, n_ev + ne


@numba.njit(cache=True)
def replica_average(integrals, t_f, averaged):
    """ã from the replicas' integrals (N, q): summed in replica order, then / (N T_f).

    Both parallel modes call this, so ã is bitwise the same wherever the replicas ran."""
    replicas, q = integrals.shape
    total = np.zeros(q)
    for r in range(replicas):
        for i in range(q):
            total[i] += integrals[r, i]
    scale = 1.0 / (replicas * t_f)
    for i in range(q):
        averaged[i] = total[i] * scale


@numba.njit(cache=True)
def inner_average(x, key, n, replicas, burn_in, t_f, fast_idx, slow_idx, reactants, rates,
                  nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events,
                  ends, averaged):
    """Inner SSA of one outer step: ``replicas`` runs of :func:`replica_run`.

    Writes the end state of replica r to ``ends[r]`` and ã_j for j = slow_idx[i] to
    ``averaged[i]``. Returns (status, inner events).
    """
    integrals = np.empty((replicas, slow_idx.shape[0]))
    n_ev = 0
    for r in range(replicas):  # each replica may use max_events (the caller checks the sum)
        status, ne = replica_run(x, key, n, r, burn_in, t_f, fast_idx, slow_idx, reactants, rates, nu_ptr,
                                 nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events, ends[r],
                                 integrals[r])
        n_ev += ne
        if status != OK:
            return status, n_ev
    replica_average(integrals, t_f, averaged)
    return OK, n_ev


@numba.njit(cache=True)
def _post_jump_state(j, x, ends, replicas, u, key, n, t_f, fast_idx, reactants, rates, nu_ptr,
                     nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events, out):
    """Z of the module docstring in ``out``; returns (status, continuation events)."""
    total = 0.0
    for r in range(replicas):
        total += propensity(j, ends[r], reactants, rates)
    if total > 0.0:
        target = u * total
        cum = 0.0
        chosen = -1
        for r in range(replicas):
            w = propensity(j, ends[r], reactants, rates)
            cum += w
            if w > 0.0:
                chosen = r
                if cum > target:
                    break
        out[:] = ends[chosen]
        return OK, 0
    # every replica ended where j cannot fire: continue replica 0 until it can
    out[:] = ends[0]
    rng = np.empty(4, np.uint64)
    seed_stream(key, np.uint64(n), CONTINUATION_STREAM, rng)
    no_samples = np.empty(0)
    no_states = np.empty((0, out.shape[0]), np.int64)
    events = np.empty(rates.shape[0], np.int64)
    no_integrate = np.empty(0, np.int64)
    no_integrals = np.empty(0)
    n_ev = 0
    for piece in range(MAX_CONTINUATION_PIECES):
        status, ne, _ = ssa_kernel(out, 0.0, t_f, no_samples, reactants, rates, nu_ptr, nu_species, nu_change,
                                   dep_ptr, dep_idx, fast_idx, no_integrate, sorting, max_events, rng,
                                   no_states, events, no_integrals)
        n_ev += ne
        if status != OK:
            return status, n_ev
        if propensity(j, out, reactants, rates) > 0.0:
            return OK, n_ev
    return NO_REACTANT, n_ev


@numba.njit(cache=True)
def outer_step(x, t, t_stop, rates_avg, slow_idx, fast_idx, ends, t_f, key, n, outer, reactants, rates,
               nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events):
    """The outer SSA step from (x, t) at the rates ã (``rates_avg``, aligned with slow_idx).

    Draws u₁, u₂, u₃ from the window's outer stream ``outer``. If the jump falls past
    t_stop (or nothing slow can fire) nothing changes and ``fired`` is False; otherwise x
    becomes Z + ν_j (``ends``: the replicas' end states, unused when T_f = 0).

    Returns (status, t_next, fired, continuation events)."""
    q = slow_idx.shape[0]
    a0 = 0.0
    for i in range(q):
        a0 += rates_avg[i]
    if not a0 > 0.0:
        return OK, t_stop, False, 0  # nothing slow can happen: the state holds to t_stop
    t_next = t - math.log(uniform_open0(outer)) / a0
    target = uniform(outer) * a0
    u_state = uniform(outer)
    if t_next > t_stop:
        return OK, t_stop, False, 0
    j = -1
    cum = 0.0
    for i in range(q):
        if rates_avg[i] > 0.0:
            cum += rates_avg[i]
            j = slow_idx[i]  # round-off past the end: the last positive rate
            if cum > target:
                break
    z = np.empty(x.shape[0], np.int64)
    ne = 0
    if t_f <= 0.0:
        z[:] = x
    else:
        status, ne = _post_jump_state(j, x, ends, ends.shape[0], u_state, key, n, t_f, fast_idx, reactants, rates,
                                      nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events, z)
        if status != OK:
            return status, t, False, ne
    for p in range(nu_ptr[j], nu_ptr[j + 1]):
        z[nu_species[p]] += nu_change[p]
    for i in range(z.shape[0]):
        if z[i] < 0:
            return NEGATIVE_COUNT, t_next, False, ne
    x[:] = z
    return OK, t_next, True, ne


@numba.njit(cache=True)
def exact_rates(x, slow_idx, reactants, rates, out):
    """a_j(x) for j = slow_idx[i] (the rates when there is nothing to average)."""
    for i in range(slow_idx.shape[0]):
        out[i] = propensity(slow_idx[i], x, reactants, rates)


# ---------------------------------------------------------------------------- one window
@numba.njit(cache=True)
def nested_window_kernel(x, t_start, t_stop, key, model_fast, auto, ratio, replicas, t_f_fixed,
                         tolerance, burn_in, reactants, rates, nu, nu_ptr, nu_species, nu_change,
                         dep_ptr, dep_idx, sorting, max_events, counters):
    """Advance one Nested SSA trajectory from (x, t_start) to t_stop; x is overwritten.

    Parameters
    ----------
    x : int64[n_species]
    t_start, t_stop : float
    key : uint64
        The window's stream key.
    model_fast : bool[M]
        The model's fast flags (used when ``auto`` is False).
    auto : bool
        Re-decide the partition every outer step (:func:`auto_partition`).
    ratio : float
        θ of the automatic partition.
    replicas : int
        N >= 1.
    t_f_fixed : float
        T_f; 0 means ε(x)/tolerance.
    tolerance : float
        λ (only used when ``t_f_fixed`` is 0).
    burn_in : float
        T_0 >= 0.
    max_events : int
        Limit on inner + outer events of this window.
    counters : int64[5]
        Accumulated: inner events, outer events (slow firings), outer steps started,
        partition changes, continuations.

    Returns
    -------
    (status, t) : (int, float)
        ``OK`` or an error status and the time reached.
    """
    m, ns = nu.shape
    fast = np.empty(m, np.bool_)
    previous = np.empty(m, np.bool_)
    ends = np.empty((replicas, ns), np.int64)
    outer = np.empty(4, np.uint64)
    seed_stream(key, np.uint64(0), OUTER_STREAM, outer)
    t = t_start
    n = 0
    spent = 0
    while True:
        t_f = step_plan(x, model_fast, auto, ratio, t_f_fixed, tolerance, reactants, rates, nu, fast)
        if n > 0 and auto:
            for k in range(m):
                if fast[k] != previous[k]:
                    counters[3] += 1
                    break
        previous[:] = fast
        fast_idx = np.flatnonzero(fast)
        slow_idx = np.flatnonzero(~fast)
        rates_avg = np.empty(slow_idx.shape[0])
        counters[2] += 1
        if t_f > 0.0:
            status, ne = inner_average(x, key, n, replicas, burn_in, t_f, fast_idx, slow_idx, reactants, rates,
                                       nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events - spent,
                                       ends, rates_avg)
            counters[0] += ne
            spent += ne
            if status != OK:
                return status, t
            if spent >= max_events:
                return MAX_EVENTS, t
        else:
            exact_rates(x, slow_idx, reactants, rates, rates_avg)
        status, t_next, fired, ne = outer_step(x, t, t_stop, rates_avg, slow_idx, fast_idx, ends, t_f, key, n,
                                               outer, reactants, rates, nu_ptr, nu_species, nu_change, dep_ptr,
                                               dep_idx, sorting, max_events - spent)
        if ne > 0:
            counters[4] += 1
            counters[0] += ne
            spent += ne
        if status != OK:
            return status, t_next
        if not fired:
            return OK, t_stop
        t = t_next
        n += 1
        counters[1] += 1
        spent += 1
        if spent >= max_events:
            return MAX_EVENTS, t


@numba.njit(cache=True)
def direct_window_kernel(x, t_start, t_stop, key, reactants, rates, nu_ptr, nu_species, nu_change,
                         dep_ptr, dep_idx, sorting, max_events, counters):
    """Advance one exact SSA trajectory (all reactions) from (x, t_start) to t_stop.

    The stream is ``(key, 0, DIRECT_STREAM)``; ``counters[1]`` accumulates the events.
    Returns (status, t)."""
    rng = np.empty(4, np.uint64)
    seed_stream(key, np.uint64(0), DIRECT_STREAM, rng)
    m = rates.shape[0]
    active = np.arange(m)
    events = np.empty(m, np.int64)
    status, ne, t = ssa_kernel(x, t_start, t_stop, np.empty(0), reactants, rates, nu_ptr, nu_species, nu_change,
                               dep_ptr, dep_idx, active, np.empty(0, np.int64), sorting, max_events, rng,
                               np.empty((0, x.shape[0]), np.int64), events, np.empty(0))
    counters[1] += ne
    return status, t


# ---------------------------------------------------------------------------- Python API
@dataclass(frozen=True)
class NestedParameters:
    """Parameters of the Nested SSA (see the module docstring).

    Parameters
    ----------
    replicas
        N; 0 means ⌈1/tolerance⌉.
    averaging_time
        T_f; 0 means ε(x)/tolerance, recomputed every outer step.
    burn_in
        T_0 (absolute time), discarded before the averaging window.
    tolerance
        λ; needed when ``replicas`` or ``averaging_time`` is 0.
    partition
        ``"model"`` (the model's fast flags) or ``"auto"``.
    partition_ratio
        θ of the automatic partition.
    engine
        SSA engine of the inner runs (and of the direct method): ``"direct"`` or ``"sorting"``.
    max_events
        Inner + outer events allowed per trajectory and window (0: no limit).
    """

    replicas: int = 0
    averaging_time: float = 0.0
    burn_in: float = 0.0
    tolerance: float = 0.0
    partition: str = "model"
    partition_ratio: float = 1e-3
    engine: str = "direct"
    max_events: int = 0

    def check(self) -> None:
        """Raise ``ValueError`` naming the parameter if the combination is invalid."""
        if self.replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {self.replicas}")
        for name in ("averaging_time", "burn_in", "tolerance"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        if (self.replicas == 0 or self.averaging_time == 0) and not self.tolerance > 0:
            missing = "replicas" if self.replicas == 0 else "averaging_time"
            raise ValueError(f"{missing} is 0 (derive it from the tolerance) but tolerance is 0; "
                             f"set {missing} or tolerance")
        if self.partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {sorted(PARTITIONS)}, got {self.partition!r}")
        if not (0 < self.partition_ratio < 1):
            raise ValueError(f"partition_ratio must be in (0, 1), got {self.partition_ratio}")
        if self.engine not in METHODS:
            raise ValueError(f"engine must be one of {sorted(METHODS)}, got {self.engine!r}")
        if self.max_events < 0:
            raise ValueError(f"max_events must be >= 0, got {self.max_events}")

    @property
    def n_replicas(self) -> int:
        """N actually used."""
        return self.replicas if self.replicas > 0 else max(1, math.ceil(1.0 / self.tolerance - 1e-12))


#: counters returned per window, in the order of ``nested_window_kernel``'s ``counters``
COUNTERS = ("inner_events", "outer_events", "outer_steps", "partition_changes", "continuations")


class WindowError(RuntimeError):
    """A trajectory could not be advanced (event limit, no reactant, negative count)."""


def status_error(status: int, network: ReactionNetwork, t: float, limit: int) -> str:
    if status == MAX_EVENTS:
        return (f"SSA of {network.name or 'the network'} exceeded max_events = {limit} events in one window "
                f"(at t = {t:.6g})")
    if status == NO_REACTANT:
        return (f"nested SSA at t = {t:.6g}: a slow reaction fired but no inner replica reached a state "
                f"where it can fire in {MAX_CONTINUATION_PIECES} averaging windows")
    if status == NEGATIVE_COUNT:
        return f"SSA produced a negative count at t = {t:.6g} (a bug)"
    return f"SSA kernel status {status} at t = {t:.6g}"


class WindowRunner:
    """Advances trajectories of one network window by window (the app's micro solver).

    Parameters
    ----------
    network
        The reaction network.
    method
        ``"nested"`` or ``"direct"``.
    params
        Nested SSA parameters (``engine`` and ``max_events`` apply to both methods).
    """

    def __init__(self, network: ReactionNetwork, method: str, params: NestedParameters) -> None:
        if method not in ("nested", "direct"):
            raise ValueError(f"method must be 'nested' or 'direct', got {method!r}")
        params.check()
        self.network = network
        self.method = method
        self.params = params
        self.sorting = METHODS[params.engine]
        self.max_events = params.max_events if params.max_events > 0 else np.iinfo(np.int64).max
        self.auto = PARTITIONS[params.partition]
        if method == "nested" and not self.auto and not network.fast.any():
            raise ValueError("partition = 'model' but the model marks no reaction fast "
                             "(set fast = true on the fast reactions or use partition = 'auto')")
        if method == "nested" and not self.auto and network.fast.all():
            raise ValueError("partition = 'model' but the model marks every reaction fast; "
                             "the Nested SSA needs slow reactions")

    def advance(self, x: np.ndarray, t_start: float, t_stop: float, key: int) -> np.ndarray:
        """Advance state ``x`` (int64, modified in place) over [t_start, t_stop] with window
        key ``key``; return the counters (int64[5], see :data:`COUNTERS`)."""
        net, p = self.network, self.params
        counters = np.zeros(len(COUNTERS), dtype=np.int64)
        k = np.uint64(key)
        if self.method == "direct":
            status, t = direct_window_kernel(x, float(t_start), float(t_stop), k, net.reactants, net.rates,
                                             net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr,
                                             net.dep_idx, self.sorting, self.max_events, counters)
        else:
            status, t = nested_window_kernel(
                x, float(t_start), float(t_stop), k, net.fast, self.auto, float(p.partition_ratio),
                int(p.n_replicas), float(p.averaging_time), float(p.tolerance), float(p.burn_in),
                net.reactants, net.rates, net.nu, net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr,
                net.dep_idx, self.sorting, self.max_events, counters)
        if status != OK:
            raise WindowError(status_error(status, net, t, self.max_events))
        return counters


def averaged_rates(network: ReactionNetwork, x: np.ndarray, key: int, params: NestedParameters,
                   outer_step: int = 0) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The inner SSA's estimate ã(x) of one outer step (the validation tests use it).

    Returns
    -------
    (rates, fast, eps, t_f)
        ``rates`` (M,) float64 with ã_j for the slow reactions and NaN for the fast ones;
        the partition used; ε(x); the averaging time T_f.
    """
    params.check()
    x = np.ascontiguousarray(x, dtype=np.int64)
    net = network
    fast = np.empty(net.n_reactions, dtype=bool)
    if PARTITIONS[params.partition]:
        auto_partition(x, net.reactants, net.rates, float(params.partition_ratio), fast)
    else:
        fast[:] = net.fast
    eps = time_scale(x, fast, net.reactants, net.rates, net.nu)
    t_f = params.averaging_time if params.averaging_time > 0 else eps / params.tolerance
    n = params.n_replicas
    slow = np.flatnonzero(~fast)
    out = np.full(net.n_reactions, np.nan)
    avg = np.empty(slow.size)
    ends = np.empty((n, net.n_species), dtype=np.int64)
    status, _ = inner_average(x, np.uint64(key), outer_step, n, float(params.burn_in), float(t_f),
                              np.flatnonzero(fast), slow, net.reactants, net.rates, net.nu_ptr, net.nu_species,
                              net.nu_change, net.dep_ptr, net.dep_idx, METHODS[params.engine],
                              np.iinfo(np.int64).max, ends, avg)
    if status != OK:
        raise WindowError(status_error(status, net, 0.0, 0))
    out[slow] = avg
    return out, fast, float(eps), float(t_f)


def run_ensemble(network: ReactionNetwork, method: str, params: NestedParameters, times, trajectories: int,
                 seed: int, *, first: int = 0, x0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Trajectories ``first .. first + trajectories - 1`` sampled at ``times`` (serially).

    Window k = [times[k], times[k+1]] of trajectory i uses the key
    ``task_seeds(seed, k, [i])`` -- the key the ``ssa`` application gives that task -- so
    these are bitwise the app's trajectories (run.seed = seed, t_0 = times[0]).

    Returns
    -------
    (states, counters)
        int64 (n, len(times), n_species) and the summed counters (n, 5) (:data:`COUNTERS`).
    """
    from ..core.rng import task_seeds
    times = np.asarray(times, dtype=np.float64)
    runner = WindowRunner(network, method, params)
    ids = np.arange(first, first + trajectories)
    states = np.empty((ids.size, times.size, network.n_species), dtype=np.int64)
    counters = np.zeros((ids.size, len(COUNTERS)), dtype=np.int64)
    start = network.initial_counts if x0 is None else np.asarray(x0, dtype=np.int64)
    keys = np.stack([task_seeds(seed, k, ids) for k in range(times.size - 1)]) if times.size > 1 else None
    for i in range(ids.size):
        x = start.copy()
        states[i, 0] = x
        for k in range(times.size - 1):
            counters[i] += runner.advance(x, times[k], times[k + 1], int(keys[k, i]))
            states[i, k + 1] = x
    return states, counters
