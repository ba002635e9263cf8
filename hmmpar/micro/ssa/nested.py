r"""The Nested SSA (E, Liu & Vanden-Eijnden, J. Chem. Phys. 123 (2005) 194107), compiled.

Reactions are split into fast (F) and slow (S). One outer step from the state x_n at t_n:

1. **Inner SSA.** N replicas k = 0..N-1 of the fast reactions only (the slow ones never
   fire), each started at x_n, run for a burn-in T_0 (discarded) and then for T_f, and the
   slow propensities are averaged over the second part and over the replicas:

   .. math:: \tilde a_j = \frac{1}{N} \sum_{k=0}^{N-1} \frac{1}{T_f}
             \int_{T_0}^{T_0+T_f} a_j(X^k_\tau)\, d\tau, \qquad j \in S.

   (The integrals come from :func:`hmmpar.micro.ssa.direct.ssa_kernel`'s ``integrate``; they
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
partition on both models in every state tested (``tests/unit/micro/ssa/test_nested_ssa_kernel.py``).

**Fast reactions need an equilibrium.** A fast reaction that raises a species no fast
reaction consumes (``0 -> A`` fast) makes the fast process grow without bound: there is
nothing to average and ε(x) is 0. :class:`WindowRunner` refuses such a model partition
(:class:`UnboundedFastError`), the automatic partition leaves such reactions slow
(:func:`demote_unbounded`), and a step whose T_f is 0 or not finite is an exact SSA step
of every reaction. Overflowing rates (ε NaN, ã₀ inf), a clock that cannot advance and
counts past 2^63 - 1 end the window with the statuses of :mod:`hmmpar.micro.ssa.direct`.

**Reuse of ã** (``reuse_averages``, two levels; an addition to the paper's algorithm).
Call a species *involved* if a fast reaction has it as a reactant or changes it. The fast
process reads and writes involved species only, so its law, and the law of the end
states, depend on the involved part of the start state alone; T_f and the automatic
partition's fast set depend on it too. Mass action factors each slow propensity as
a_j(x) = h_j(x) g_j(x), h_j = c_j times the factors of species that are not involved,
g_j the rest; h_j is constant during the inner runs, so ã_j = h_j(x_n) ⟨g_j⟩. When the
slow reaction that fired changes no involved species (heat shock: s32 <-> RNAP.s32, the
syntheses and degradations of mRNA, FtsH, GroEL...), the next outer step's inner runs
would start from the same involved state, and ã_j(x_{n+1}) = h_j(x_{n+1}) ⟨g_j⟩ reuses
the stored ⟨g_j⟩ = ã_j / h_j(x_n) without running them; ν_j is also added to every
replica end state, whose slow part thereby follows x. The estimate is the same
function of the involved state; only its randomness is shared between consecutive
outer steps (as if they had used common random numbers). Reuse ends at a jump that
touches an involved species, at a partition change, where ⟨g_j⟩ is unknown (h_j(x_n) = 0
and now h_j > 0), and at window boundaries (so restarts stay bitwise). The four-species
model never reuses (every slow reaction changes S2 or S3). Counter ``reused_averages``.

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

**Three time scales (nested twice)**, ``levels = 3``. Reactions have levels 2 (ultrafast,
U), 1 (fast, F) and 0 (slow, S) (:mod:`hmmpar.micro.ssa.model`). The Nested SSA nests: the
process the outer SSA averages over is itself a Nested SSA. One outer step from x_n:

1. **Middle replicas** k = 0..N-1 (:func:`middle_replica`), each a Nested SSA of F over U
   from x_n on [0, T_0 + T_f] (:func:`middle_run`). Its step m from the state z_m at τ_m:

   a. N₂ inner replicas l of U alone from z_m, burn-in T₀₂ then T_f₂, integrating every
      propensity of F ∪ S (:func:`replica_run` with active U, integrate F ∪ S):

      .. math:: \hat a_j(z_m) = \frac{1}{N_2} \sum_{l=0}^{N_2-1} \frac{1}{T_{f2}}
                \int_{T_{02}}^{T_{02}+T_{f2}} a_j(Y^l_\sigma)\, d\sigma, \qquad j \in F \cup S;

   b. one SSA step of F at the rates â (:func:`outer_step`): τ_{m+1} = τ_m − ln(u₁)/â₀^F,
      reaction i ∈ F by u₂, z_{m+1} = Z₂ + ν_i with Z₂ the end state of inner replica l
      drawn with probability a_i(Y^l_end)/Σ_l a_i (u₃) -- the rule of step 3 above, with its
      continuation;
   c. the slow propensities' time integral along the middle process is the sum over its
      steps of (step length x the inner replicas' average):

      .. math:: I^k_j = \sum_m \big|[\tau_m, \tau_{m+1}] \cap [T_0, T_0+T_f]\big|\,
                \hat a_j(z_m), \qquad j \in S,

      the last step cut at T_0 + T_f. The end state X^k_end of the middle replica is the
      end state of inner replica 0 of that last step (a state of the ultrafast
      equilibrium given the middle state), or z if that step averaged nothing.
2. ã_j = (1/(N T_f)) Σ_k I^k_j (:func:`replica_average`, replica order).
3. The outer SSA step at ã and x_{n+1} = Z + ν_j with Z = X^k_end drawn ∝ a_j(X^k_end)
   (:func:`outer_step_levels`). If every X^k_end has a_j = 0 the middle process of replica 0
   is continued in pieces of T_f until a_j > 0.

Parameters: N = ⌈1/λ⌉, T_f = ε₁(x_n)/λ with ε₁ = :func:`time_scale_between` (F, S) --
the relaxation time of F as S sees it -- and N₂ = ⌈1/λ₂⌉, T_f₂ = ε₂(z_m)/λ₂ with
ε₂ = :func:`time_scale_between` (U, F ∪ S), recomputed at every middle step (λ₂ defaults
to λ; each of N, T_f, N₂, T_f₂ may be fixed instead). Cost of one outer step: about
N (T_0 + T_f) â₀^F (1 + N₂ (T₀₂ + T_f₂) a₀^U) events, against N (T_0 + T_f) a₀^{F∪U} for
the two-level method with F ∪ U fast: nesting pays when â₀^F N₂ (T₀₂ + T_f₂) ≪ 1, i.e.
when many U events separate two F events. The error bound applies at each level: the
outer one as above with ε₁, N, T_f, and the middle process's law carries the bound of
its own averaging (ε₂/ε₁, N₂, T_f₂) into ã.

Partition: ``"model"`` takes the model's levels (it needs all three). ``"auto"``
(:func:`auto_levels`) applies the ratio test twice at every outer step: level 2 is
{a'_j ≥ θ max_k a'_k}; the test again on the remaining reactions, with their own
maximum, splits them into levels 1 and 0. A test that would mark all of its reactions
marks none, so with one gap only the step is the two-level step of the set level ≥ 1
(bitwise the ``levels = 2`` step with the same partition) and with none it is an exact
step. The levels hold for the whole outer step (its middle runs included). A model's
level-2 reactions run with ``levels = 2`` are simply fast.

**Random streams** (:mod:`hmmpar.micro.ssa.streams`): each window has a 64-bit key
(from ``(seed, window, trajectory)``); replica r of outer step n draws from stream
``(key, n, r)``, the outer SSA of the window from ``(key, 0, OUTER_STREAM)``. In a
three-level step, middle replica r of outer step n has its own key
k₂ = ``sub_key(key, n, r)`` and keys its streams like a window: its middle SSA
``(k₂, 0, OUTER_STREAM)``, inner replica r₂ of middle step m ``(k₂, m, r₂)``, the
continuation of that step ``(k₂, m, CONTINUATION_STREAM)``. The outer continuation is a
middle process with key ``sub_key(key, n, CONTINUATION_STREAM)`` whose step count runs on
across pieces. Every number is thus a function of (window key, n, r, m, r₂) alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from ..rng.xoshiro import uniform, uniform_open0
from .direct import (COUNT_OVERFLOW, MAX_EVENTS, METHODS, NEGATIVE_COUNT, NONFINITE, OK, rate_status, ssa_kernel,
                     status_message)
from .model import FAST, SLOW, ULTRAFAST, ReactionNetwork, propensity
from .streams import CONTINUATION_STREAM, DIRECT_STREAM, OUTER_STREAM, seed_stream, sub_key

#: extra kernel status codes (after OK, MAX_EVENTS, NEGATIVE_COUNT of the SSA kernel)
NO_REACTANT = 3

#: pieces of T_f the continuation may run before giving up (status NO_REACTANT)
MAX_CONTINUATION_PIECES = 10_000

PARTITIONS = {"model": False, "auto": True}

#: kinds of outer step (:func:`plan_step`): exact SSA step, two-level step, three-level step
EXACT_STEP, TWO_LEVEL_STEP, THREE_LEVEL_STEP = 0, 2, 3


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
def ratio_split(ap, member, ratio, fast):
    """The ratio test on the reactions with ``member[k]``: fast[k] = a'_k >= ratio * max a'
    (the max over the members); none if that is all of them (no gap). Non-members get
    False. Returns the number of fast members."""
    m = ap.shape[0]
    top = 0.0
    n_member = 0
    for k in range(m):
        if member[k]:
            n_member += 1
            if ap[k] > top:
                top = ap[k]
    n_fast = 0
    for k in range(m):
        fast[k] = member[k] and top > 0.0 and ap[k] >= ratio * top
        n_fast += fast[k]
    if n_fast == n_member:
        fast[:] = False
        n_fast = 0
    return n_fast


@numba.njit(cache=True)
def auto_partition(x, reactants, rates, ratio, fast):
    """Fill ``fast`` (bool[M]): a'_j(x) >= ratio * max_k a'_k(x); none if that is all of them
    (no gap between the time scales: the outer step is then an exact SSA step)."""
    m = rates.shape[0]
    ap = np.empty(m)
    for k in range(m):
        ap[k] = potential_propensity(k, x, reactants, rates)
    ratio_split(ap, np.ones(m, np.bool_), ratio, fast)


@numba.njit(cache=True)
def demote_unbounded(fast, keep, rates, nu):
    """Remove from ``fast`` (bool[M], in place) every reaction whose fast process has no
    equilibrium: one with rate > 0 that raises the count of a species which no reaction
    of ``fast | keep`` with rate > 0 lowers (``0 -> A`` with nothing fast consuming A; the
    fast process would make A grow without bound, so there is nothing to average and
    ε(x) says 0). Repeated until no reaction is removed (a removed consumer can leave
    another reaction unbounded). ``keep`` (bool[M]) are fast reactions that count as
    consumers but are not removed. Returns the number removed; O(M S) per pass."""
    m, ns = nu.shape
    consumed = np.empty(ns, np.bool_)
    removed = 0
    changed = True
    while changed:
        changed = False
        consumed[:] = False
        for k in range(m):
            if (fast[k] or keep[k]) and rates[k] > 0.0:
                for i in range(ns):
                    if nu[k, i] < 0:
                        consumed[i] = True
        for j in range(m):
            if fast[j] and rates[j] > 0.0:
                for i in range(ns):
                    if nu[j, i] > 0 and not consumed[i]:
                        fast[j] = False
                        removed += 1
                        changed = True
                        break
    return removed


def unbounded_fast_reaction(network: ReactionNetwork, fast: np.ndarray,
                            keep: np.ndarray | None = None) -> tuple[int, int] | None:
    """The first (reaction, species) that :func:`demote_unbounded` would remove from ``fast``
    (bool[M]), with ``keep`` as extra consumers; None if the fast process is bounded that way."""
    live = network.rates > 0
    consumers = (fast | keep) if keep is not None else fast
    consumed = ((network.nu < 0) & (consumers & live)[:, None]).any(axis=0)
    for j in np.flatnonzero(fast & live):
        for i in np.flatnonzero(network.nu[j] > 0):
            if not consumed[i]:
                return int(j), int(i)
    return None


@numba.njit(cache=True)
def auto_levels(x, reactants, rates, ratio, level):
    """Three-level partition (int64[M] ``level``: 2 ultrafast, 1 fast, 0 slow): the ratio test
    of :func:`auto_partition` applied twice, the second time to the reactions it left slow.

    Level 2 is {j : a'_j >= θ max_k a'_k}; of the rest, level 1 is {j : a'_j >= θ max_rest a'}
    and level 0 what remains. A test that would mark all of its reactions fast marks none
    (no gap): no gap at the top gives every reaction level 0 (an exact SSA step), no gap
    in the rest gives levels 2 and 0 only (a two-level step)."""
    m = rates.shape[0]
    ap = np.empty(m)
    for k in range(m):
        ap[k] = potential_propensity(k, x, reactants, rates)
    top = np.empty(m, np.bool_)
    level[:] = SLOW
    if ratio_split(ap, np.ones(m, np.bool_), ratio, top) == 0:
        return
    middle = np.empty(m, np.bool_)
    ratio_split(ap, ~top, ratio, middle)
    for k in range(m):
        if top[k]:
            level[k] = ULTRAFAST
        elif middle[k]:
            level[k] = FAST


@numba.njit(cache=True)
def time_scale(x, fast, reactants, rates, nu):
    """ε(x) of the module docstring: 1 / (slowest relaxation rate of a coupling species).

    Returns 0.0 if no fast reaction consumes anything (nothing to average)."""
    return time_scale_between(x, fast, ~fast, reactants, rates, nu)


@numba.njit(cache=True)
def time_scale_between(x, fast, slow, reactants, rates, nu):
    """ε(x) of the reactions ``fast`` as seen by the reactions ``slow`` (bool[M] each):
    the coupling species are those the fast set changes and the slow set has as
    reactants. :func:`time_scale` is ``slow = ~fast``; the three-level method uses
    (fast = level 1, slow = level 0) for ε₁ and (level 2, levels 0 and 1) for ε₂.
    0.0 if no fast reaction consumes anything, NaN if a propensity overflows float64."""
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
        if slow[j]:
            for q in range(2):
                i = reactants[j, q]
                if i >= 0 and changed[i] and consumption[i] > 0.0:
                    coupled[i] = True
                    any_coupled = True
    slowest = math.inf
    found = False
    for i in range(ns):
        if not consumption[i] < math.inf:  # a potential propensity overflowed
            return math.nan
        if consumption[i] > 0.0 and (coupled[i] or not any_coupled):
            slowest = min(slowest, consumption[i])
            found = True
    return 1.0 / slowest if found else 0.0


# ---------------------------------------------------------------------------- one outer step
@numba.njit(cache=True)
def step_plan(x, model_fast, auto, ratio, t_f_fixed, tolerance, reactants, rates, nu, fast):
    """Partition (written to ``fast``) and T_f of the outer step from x.

    Returns T_f, or 0.0 when there is nothing to average (no fast reaction, or none that
    consumes anything, or ε(x)/λ not finite): ``fast`` is then all False, so that the
    outer step is an exact SSA step of every reaction (a fast reaction is never dropped).
    The automatic partition leaves out of the fast set every reaction that
    :func:`demote_unbounded` removes."""
    if auto:
        auto_partition(x, reactants, rates, ratio, fast)
        demote_unbounded(fast, np.zeros(fast.shape[0], np.bool_), rates, nu)
    else:
        fast[:] = model_fast
    if not fast.any():
        return 0.0
    if t_f_fixed > 0.0:
        return t_f_fixed
    t_f = time_scale(x, fast, reactants, rates, nu) / tolerance
    if not (0.0 < t_f < math.inf):  # nothing relaxes (or overflow): every reaction fires exactly
        fast[:] = False
        return 0.0
    return t_f


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
def resample_index(j, ends, replicas, u, reactants, rates):
    """The replica k whose end state becomes Z: the first with Σ_{l<=k} a_j(X^l) > u Σ_l a_j(X^l)
    (the last with a_j > 0 on round-off); -1 if a_j = 0 at every end state."""
    total = 0.0
    for r in range(replicas):
        total += propensity(j, ends[r], reactants, rates)
    if not total > 0.0:
        return -1
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
    return chosen


@numba.njit(cache=True)
def _post_jump_state(j, x, ends, replicas, u, key, n, t_f, fast_idx, reactants, rates, nu_ptr,
                     nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events, out):
    """Z of the module docstring in ``out``; returns (status, continuation events)."""
    chosen = resample_index(j, ends, replicas, u, reactants, rates)
    if chosen >= 0:
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
    t_stop (or nothing slow can fire) nothing changes and j = -1; otherwise x
    becomes Z + ν_j (``ends``: the replicas' end states, unused when T_f = 0).

    Returns (status, t_next, j, continuation events): j is the slow reaction that fired,
    -1 if none did."""
    status, t_next, j, u_state = select_jump(t, t_stop, rates_avg, slow_idx, outer)
    if status != OK:
        return status, t, -1, 0
    if j < 0:
        return OK, t_next, -1, 0
    z = np.empty(x.shape[0], np.int64)
    ne = 0
    if t_f <= 0.0:
        z[:] = x
    else:
        status, ne = _post_jump_state(j, x, ends, ends.shape[0], u_state, key, n, t_f, fast_idx, reactants, rates,
                                      nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events, z)
        if status != OK:
            return status, t, -1, ne
    status = apply_jump(j, z, x, nu_ptr, nu_species, nu_change)
    return status, t_next, j if status == OK else -1, ne


@numba.njit(cache=True)
def select_jump(t, t_stop, rates_avg, slow_idx, outer):
    """The SSA step at the rates ``rates_avg`` (aligned with slow_idx), from stream ``outer``.

    Draws u₁, u₂, u₃ (none if every rate is 0). Returns (status, t_next, j, u₃): j = -1 and
    t_next = t_stop if nothing fires before t_stop; status ``NONFINITE`` if ã₀ is inf or
    NaN, ``STALLED`` if ã₀ |t| > 2^42 (:func:`~hmmpar.micro.ssa.direct.rate_status`; no draw then)."""
    q = slow_idx.shape[0]
    a0 = 0.0
    for i in range(q):
        a0 += rates_avg[i]
    if a0 != a0:
        return NONFINITE, t, -1, 0.0
    if not a0 > 0.0:
        return OK, t_stop, -1, 0.0  # nothing slow can happen: the state holds to t_stop
    status = rate_status(a0, t)
    if status != OK:
        return status, t, -1, 0.0
    t_next = t - math.log(uniform_open0(outer)) / a0
    target = uniform(outer) * a0
    u_state = uniform(outer)
    if t_next > t_stop:
        return OK, t_stop, -1, u_state
    j = -1
    cum = 0.0
    for i in range(q):
        if rates_avg[i] > 0.0:
            cum += rates_avg[i]
            j = slow_idx[i]  # round-off past the end: the last positive rate
            if cum > target:
                break
    return OK, t_next, j, u_state


@numba.njit(cache=True)
def apply_jump(j, z, x, nu_ptr, nu_species, nu_change):
    """x = z + ν_j (z is modified); x untouched and ``COUNT_OVERFLOW`` if a count ν_j raises
    would pass 2^63 - 1, ``NEGATIVE_COUNT`` if one would go below 0."""
    for p in range(nu_ptr[j], nu_ptr[j + 1]):
        z[nu_species[p]] += nu_change[p]
    for p in range(nu_ptr[j], nu_ptr[j + 1]):
        if nu_change[p] > 0 and z[nu_species[p]] < 0:
            return COUNT_OVERFLOW
    for i in range(z.shape[0]):
        if z[i] < 0:
            return NEGATIVE_COUNT
    x[:] = z
    return OK


# ---------------------------------------------------------------------------- reuse of ã
@numba.njit(cache=True)
def fast_species(level, reactants, nu_ptr, nu_species, nu_change, involved):
    """``involved[i]``: species i is a reactant of, or changed by, a reaction of level >= FAST."""
    involved[:] = False
    for j in range(level.shape[0]):
        if level[j] >= FAST:
            for q in range(2):
                if reactants[j, q] >= 0:
                    involved[reactants[j, q]] = True
            for p in range(nu_ptr[j], nu_ptr[j + 1]):
                if nu_change[p] != 0:
                    involved[nu_species[p]] = True


@numba.njit(cache=True)
def slow_factor(j, x, involved, reactants, rates):
    """h_j(x): c_j times the factors of the mass-action a_j(x) from species that no fast
    reaction reads or changes, so that a_j(x) = h_j(x) g_j(x) with g_j a function of the
    involved species only."""
    r0 = reactants[j, 0]
    r1 = reactants[j, 1]
    f = rates[j]
    if r0 < 0:
        return f
    if r1 == r0:
        if involved[r0]:
            return f
        n = float(x[r0])
        return f * n * (n - 1.0) * 0.5
    if not involved[r0]:
        f *= float(x[r0])
    if r1 >= 0 and not involved[r1]:
        f *= float(x[r1])
    return f


@numba.njit(cache=True)
def remember_fast_factors(x, slow_idx, averaged, involved, reactants, rates, factor, known):
    """Store ⟨g_i⟩ = ã_i / h_i(x) of the inner run from x (unknown where h_i(x) = 0)."""
    for i in range(slow_idx.shape[0]):
        h = slow_factor(slow_idx[i], x, involved, reactants, rates)
        known[i] = h > 0.0
        factor[i] = averaged[i] / h if h > 0.0 else 0.0


@numba.njit(cache=True)
def reused_rates(x, slow_idx, involved, reactants, rates, factor, known, out):
    """ã_i = h_i(x) ⟨g_i⟩ from the stored factors; False if one is needed but unknown."""
    for i in range(slow_idx.shape[0]):
        h = slow_factor(slow_idx[i], x, involved, reactants, rates)
        if known[i]:
            out[i] = h * factor[i]
        elif h == 0.0:
            out[i] = 0.0
        else:
            return False
    return True


@numba.njit(cache=True)
def jump_keeps_fast_state(j, involved, ends, nu_ptr, nu_species, nu_change):
    """True if slow reaction j changes no involved species; then ν_j is also applied to every
    replica end state, so that their slow part follows x."""
    for p in range(nu_ptr[j], nu_ptr[j + 1]):
        if nu_change[p] != 0 and involved[nu_species[p]]:
            return False
    for r in range(ends.shape[0]):
        for p in range(nu_ptr[j], nu_ptr[j + 1]):
            ends[r, nu_species[p]] += nu_change[p]
    return True


@numba.njit(cache=True)
def exact_rates(x, slow_idx, reactants, rates, out):
    """a_j(x) for j = slow_idx[i] (the rates when there is nothing to average)."""
    for i in range(slow_idx.shape[0]):
        out[i] = propensity(slow_idx[i], x, reactants, rates)


# ---------------------------------------------------------------------------- three levels
@numba.njit(cache=True)
def plan_step(levels, x, model_level, auto, ratio, t_f_fixed, tolerance, reactants, rates, nu, level):
    """Levels (written to ``level``, int64[M]), kind and T_f of the outer step from x.

    ``levels = 2``: :func:`step_plan` (``model_level >= 1`` is the model's fast set); level
    is 1 for fast, 0 for slow. ``levels = 3``: the model's levels or :func:`auto_levels`;
    with levels 2, 1 and 0 all present the step is a three-level one with
    T_f = ε₁(x)/λ, ε₁ = :func:`time_scale_between` (level 1, level 0); with level 1 empty
    it is the two-level step of the set ``level >= 1`` (what ``levels = 2`` does with the
    same partition); with no level >= 1 it is an exact SSA step.

    Returns
    -------
    (kind, t_f)
        ``THREE_LEVEL_STEP``, ``TWO_LEVEL_STEP`` or ``EXACT_STEP`` (T_f = 0: nothing to average).
    """
    m = rates.shape[0]
    if levels == 2:
        fast = np.empty(m, np.bool_)
        t_f = step_plan(x, model_level >= FAST, auto, ratio, t_f_fixed, tolerance, reactants, rates, nu, fast)
        for k in range(m):
            level[k] = FAST if fast[k] else SLOW
        return (TWO_LEVEL_STEP if t_f > 0.0 else EXACT_STEP), t_f
    if auto:
        auto_levels(x, reactants, rates, ratio, level)
        top = level == ULTRAFAST
        middle = level == FAST
        demote_unbounded(top, np.zeros(m, np.bool_), rates, nu)
        demote_unbounded(middle, top, rates, nu)
        for k in range(m):
            level[k] = ULTRAFAST if top[k] else (FAST if middle[k] else SLOW)
    else:
        level[:] = model_level
    n_mid = 0
    n_slow = 0
    n_ultra = 0
    for k in range(m):
        n_ultra += level[k] == ULTRAFAST
        n_mid += level[k] == FAST
        n_slow += level[k] == SLOW
    if n_ultra > 0 and n_slow == 0:  # nothing slow (only a model can say so): levels 2 over 1
        for k in range(m):
            if level[k] == FAST:
                level[k] = SLOW
        n_slow, n_mid = n_mid, 0
    if n_ultra == 0 or n_mid == 0:  # one gap or none: the two-level step of level >= 1
        fast = np.empty(m, np.bool_)
        for k in range(m):
            fast[k] = level[k] >= FAST
        t_f = step_plan(x, fast, False, ratio, t_f_fixed, tolerance, reactants, rates, nu, fast)
        for k in range(m):
            if not fast[k]:
                level[k] = SLOW
        return (TWO_LEVEL_STEP if t_f > 0.0 else EXACT_STEP), t_f
    if t_f_fixed > 0.0:
        return THREE_LEVEL_STEP, t_f_fixed
    t_f = time_scale_between(x, level == FAST, level == SLOW, reactants, rates, nu) / tolerance
    if 0.0 < t_f < math.inf:
        return THREE_LEVEL_STEP, t_f
    # the level-1 reactions consume nothing the slow ones read: the two-level step of level >= 1
    fast = np.empty(m, np.bool_)
    for k in range(m):
        fast[k] = level[k] >= FAST
    t_f = step_plan(x, fast, False, ratio, t_f_fixed, tolerance, reactants, rates, nu, fast)
    for k in range(m):
        level[k] = FAST if fast[k] else SLOW
    return (TWO_LEVEL_STEP if t_f > 0.0 else EXACT_STEP), t_f


@numba.njit(cache=True)
def middle_run(x, mkey, t_start, t_record, t_stop, m0, rng, level, replicas2, burn_in2, t_f2_fixed, tolerance2,
               reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events,
               end, integrals, stats):
    r"""The middle process: a Nested SSA of the level-1 reactions over the level-2 ones, from x
    over [t_start, t_stop], integrating the level-0 propensities over [t_record, t_stop].

    Middle step m from the state z at time τ (stream ids below):

    1. N₂ inner replicas (:func:`replica_run`, stream (mkey, m, r₂)) of the level-2 reactions
       from z over [0, T₀₂ + T_f₂], integrating every other propensity over the last T_f₂;
       :func:`replica_average` gives â_j(z) for the levels 1 and 0. T_f₂ = ε₂(z)/λ₂
       (:func:`time_scale_between` of level 2 against the rest) unless fixed; if it is 0,
       â_j(z) = a_j(z).
    2. :func:`outer_step` of the level-1 reactions at the rates â (u₁, u₂, u₃ from ``rng``):
       τ' = τ − ln(u₁)/â₀, and z ← Z₂ + ν_i with Z₂ the end state of inner replica l chosen
       with probability a_i(Y^l_end)/Σ a_i (continuation: stream (mkey, m, CONTINUATION_STREAM)).
    3. The level-0 integrals grow by |[τ, τ'] ∩ [t_record, t_stop]| · â_j(z), with τ' = t_stop
       for the last, truncated step.

    ``end`` is the end state of inner replica 0 of the last (truncated) step -- a state of
    the level-2 quasi-equilibrium given the middle state -- or z if that step averaged
    nothing. ``integrals`` (set) are aligned with the level-0 reactions (ascending).
    ``stats`` (int64[3]) accumulates inner (level-2) events, middle (level-1) events and
    continuations.

    Returns
    -------
    (status, m_next)
        ``OK`` or an error status; the index of the next middle step (continuation pieces
        go on counting from it, so their streams stay distinct).
    """
    ns = x.shape[0]
    ultra = level == ULTRAFAST
    rest = ~ultra
    ultra_idx = np.flatnonzero(ultra)
    rest_idx = np.flatnonzero(rest)
    rest_level = level[rest_idx]
    mid_pos = np.flatnonzero(rest_level == FAST)
    slow_pos = np.flatnonzero(rest_level == SLOW)
    mid_idx = rest_idx[mid_pos]
    q2 = rest_idx.shape[0]
    z = x.copy()
    ends2 = np.empty((replicas2, ns), np.int64)
    integrals2 = np.empty((replicas2, q2))
    averaged2 = np.empty(q2)
    rates_mid = np.empty(mid_pos.shape[0])
    integrals[:] = 0.0
    tau = t_start
    m = m0
    spent = 0
    while True:
        if t_f2_fixed > 0.0:
            t_f2 = t_f2_fixed
        else:
            t_f2 = time_scale_between(z, ultra, rest, reactants, rates, nu) / tolerance2
            if not t_f2 < math.inf:  # NaN: the ultrafast propensities overflow
                return NONFINITE, m
        if t_f2 > 0.0:
            for r2 in range(replicas2):
                status, ne = replica_run(z, mkey, m, r2, burn_in2, t_f2, ultra_idx, rest_idx, reactants, rates,
                                         nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting,
                                         max_events - spent, ends2[r2], integrals2[r2])
                stats[0] += ne
                spent += ne
                if status != OK:
                    return status, m
            replica_average(integrals2, t_f2, averaged2)
            if spent >= max_events:
                return MAX_EVENTS, m
        else:
            exact_rates(z, rest_idx, reactants, rates, averaged2)
        for i in range(mid_pos.shape[0]):
            rates_mid[i] = averaged2[mid_pos[i]]
        status, t_next, fired_j, ne = outer_step(z, tau, t_stop, rates_mid, mid_idx, ultra_idx, ends2, t_f2, mkey, m,
                                               rng, reactants, rates, nu_ptr, nu_species, nu_change, dep_ptr,
                                               dep_idx, sorting, max_events - spent)
        if ne > 0:
            stats[2] += 1
            stats[0] += ne
            spent += ne
        if status != OK:
            return status, m
        lo = max(tau, t_record)
        if t_next > lo:
            for i in range(slow_pos.shape[0]):
                integrals[i] += averaged2[slow_pos[i]] * (t_next - lo)
        if fired_j < 0:
            if t_f2 > 0.0:
                end[:] = ends2[0]
            else:
                end[:] = z  # not fired: z is the state held to t_stop
            return OK, m + 1
        tau = t_next
        m += 1
        stats[1] += 1
        spent += 1
        if spent >= max_events:
            return MAX_EVENTS, m


@numba.njit(cache=True)
def middle_replica(x, key, n, r, burn_in, t_f, level, replicas2, burn_in2, t_f2_fixed, tolerance2, reactants,
                   rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events, end,
                   integrals, stats):
    """Middle replica r of outer step n (the three-level analogue of :func:`replica_run`).

    :func:`middle_run` from x over [0, T₀ + T_f], recording over [T₀, T₀ + T_f], with the
    key ``sub_key(key, n, r)`` and its middle SSA on stream (sub_key, 0, OUTER_STREAM).
    Returns the status."""
    mkey = sub_key(key, np.uint64(n), np.uint64(r))
    rng = np.empty(4, np.uint64)
    seed_stream(mkey, np.uint64(0), OUTER_STREAM, rng)
    status, _ = middle_run(x, mkey, 0.0, burn_in, burn_in + t_f, 0, rng, level, replicas2, burn_in2, t_f2_fixed,
                           tolerance2, reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx,
                           sorting, max_events, end, integrals, stats)
    return status


@numba.njit(cache=True)
def middle_average(x, key, n, replicas, burn_in, t_f, level, replicas2, burn_in2, t_f2_fixed, tolerance2,
                   reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events,
                   ends, averaged, stats):
    """Three-level analogue of :func:`inner_average`: N :func:`middle_replica` runs, their
    end states in ``ends`` and ã_j (level-0 j, ascending) in ``averaged``. Returns the status."""
    slow_count = 0
    for k in range(level.shape[0]):
        slow_count += level[k] == SLOW
    integrals = np.empty((replicas, slow_count))
    for r in range(replicas):  # each replica may use max_events (the caller checks the sum)
        status = middle_replica(x, key, n, r, burn_in, t_f, level, replicas2, burn_in2, t_f2_fixed, tolerance2,
                                reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting,
                                max_events, ends[r], integrals[r], stats)
        if status != OK:
            return status
    replica_average(integrals, t_f, averaged)
    return OK


@numba.njit(cache=True)
def outer_step_levels(x, t, t_stop, rates_avg, slow_idx, ends, t_f, key, n, outer, level, replicas2, burn_in2,
                      t_f2_fixed, tolerance2, reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr,
                      dep_idx, sorting, max_events, stats):
    """:func:`outer_step` of a three-level step: the same draws and resampling over the middle
    replicas' end states; the continuation (every end state has a_j = 0) runs the middle
    process of replica 0 on in pieces of T_f, with key ``sub_key(key, n, CONTINUATION_STREAM)``,
    until a_j > 0 (``stats`` as in :func:`middle_run`; a continuation counts in stats[2]).

    Returns (status, t_next, fired)."""
    status, t_next, j, u_state = select_jump(t, t_stop, rates_avg, slow_idx, outer)
    if status != OK:
        return status, t, False
    if j < 0:
        return OK, t_next, False
    z = np.empty(x.shape[0], np.int64)
    if t_f <= 0.0:
        z[:] = x
    else:
        chosen = resample_index(j, ends, ends.shape[0], u_state, reactants, rates)
        if chosen >= 0:
            z[:] = ends[chosen]
        else:
            stats[2] += 1
            status = _continue_middle(j, ends[0], key, n, t_f, level, replicas2, burn_in2, t_f2_fixed, tolerance2,
                                      reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx,
                                      sorting, max_events, z, stats)
            if status != OK:
                return status, t, False
    status = apply_jump(j, z, x, nu_ptr, nu_species, nu_change)
    return status, t_next, status == OK


@numba.njit(cache=True)
def _continue_middle(j, start, key, n, t_f, level, replicas2, burn_in2, t_f2_fixed, tolerance2, reactants, rates,
                     nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events, out, stats):
    """The middle process from ``start`` in pieces of T_f until a_j(out) > 0 (NO_REACTANT after
    MAX_CONTINUATION_PIECES); one middle SSA stream and one middle-step count across pieces."""
    kc = sub_key(key, np.uint64(n), CONTINUATION_STREAM)
    rng = np.empty(4, np.uint64)
    seed_stream(kc, np.uint64(0), OUTER_STREAM, rng)
    state = start.copy()
    slow_count = 0
    for k in range(level.shape[0]):
        slow_count += level[k] == SLOW
    scratch = np.empty(slow_count)
    m = 0
    used0 = stats[0] + stats[1]
    for piece in range(MAX_CONTINUATION_PIECES):
        status, m = middle_run(state, kc, 0.0, t_f, t_f, m, rng, level, replicas2, burn_in2, t_f2_fixed, tolerance2,
                               reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting,
                               max_events - (stats[0] + stats[1] - used0), out, scratch, stats)
        if status != OK:
            return status
        if propensity(j, out, reactants, rates) > 0.0:
            return OK
        state[:] = out
    return NO_REACTANT


# ---------------------------------------------------------------------------- one window
@numba.njit(cache=True)
def nested_window_kernel(x, t_start, t_stop, key, model_fast, auto, ratio, replicas, t_f_fixed,
                         tolerance, burn_in, reactants, rates, nu, nu_ptr, nu_species, nu_change,
                         dep_ptr, dep_idx, sorting, max_events, counters, reuse=False):
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
    counters : int64[6]
        Accumulated: inner events, outer events (slow firings), outer steps started,
        partition changes, continuations, outer steps that reused ã.
    reuse : bool
        Reuse ã while slow jumps leave the fast species alone (module docstring).

    Returns
    -------
    (status, t) : (int, float)
        ``OK`` or an error status and the time reached.
    """
    model_level = np.empty(model_fast.shape[0], np.int64)
    for k in range(model_fast.shape[0]):
        model_level[k] = FAST if model_fast[k] else SLOW
    return window_loop(x, t_start, t_stop, key, 2, model_level, auto, ratio, replicas, t_f_fixed, tolerance, burn_in,
                       1, 0.0, 1.0, 0.0, reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx,
                       sorting, max_events, counters, reuse)


@numba.njit(cache=True)
def nested3_window_kernel(x, t_start, t_stop, key, model_level, auto, ratio, replicas, t_f_fixed, tolerance,
                          burn_in, replicas2, t_f2_fixed, tolerance2, burn_in2, reactants, rates, nu, nu_ptr,
                          nu_species, nu_change, dep_ptr, dep_idx, sorting, max_events, counters):
    """:func:`nested_window_kernel` with three levels (the model's ``level`` array, int64[M],
    or :func:`auto_levels`); ``replicas2``, ``t_f2_fixed`` (0: ε₂(z)/``tolerance2`` every
    middle step), ``tolerance2`` and ``burn_in2`` are N₂, T_f₂, λ₂ and T₀₂ of the middle
    level. Counters as there, with inner events = level-2 events + level-1 (middle) events
    and continuations at either level. Returns (status, t)."""
    return window_loop(x, t_start, t_stop, key, 3, model_level, auto, ratio, replicas, t_f_fixed, tolerance, burn_in,
                       replicas2, t_f2_fixed, tolerance2, burn_in2, reactants, rates, nu, nu_ptr, nu_species,
                       nu_change, dep_ptr, dep_idx, sorting, max_events, counters, False)


@numba.njit(cache=True)
def window_loop(x, t_start, t_stop, key, levels, model_level, auto, ratio, replicas, t_f_fixed, tolerance, burn_in,
                replicas2, t_f2_fixed, tolerance2, burn_in2, reactants, rates, nu, nu_ptr, nu_species, nu_change,
                dep_ptr, dep_idx, sorting, max_events, counters, reuse):
    """The outer loop of both window kernels (``levels`` 2 or 3): :func:`plan_step`, then the
    two-level step (:func:`inner_average` or, with ``reuse``, :func:`reused_rates`;
    :func:`outer_step`), the three-level step (:func:`middle_average`,
    :func:`outer_step_levels`) or an exact step; returns (status, t)."""
    m, ns = nu.shape
    level = np.empty(m, np.int64)
    previous = np.empty(m, np.int64)
    ends = np.empty((replicas, ns), np.int64)
    involved = np.zeros(ns, np.bool_)
    factor = np.empty(m)
    known = np.zeros(m, np.bool_)
    reusable = False  # stored factors valid and the fast state untouched since they were made
    outer = np.empty(4, np.uint64)
    seed_stream(key, np.uint64(0), OUTER_STREAM, outer)
    stats = np.zeros(3, np.int64)
    t = t_start
    n = 0
    spent = 0
    while True:
        kind, t_f = plan_step(levels, x, model_level, auto, ratio, t_f_fixed, tolerance, reactants, rates, nu, level)
        if n > 0 and auto:
            for k in range(m):
                if level[k] != previous[k]:
                    counters[3] += 1
                    reusable = False
                    break
        previous[:] = level
        slow_idx = np.flatnonzero(level == SLOW)
        rates_avg = np.empty(slow_idx.shape[0])
        counters[2] += 1
        if kind == THREE_LEVEL_STEP:
            stats[:] = 0
            status = middle_average(x, key, n, replicas, burn_in, t_f, level, replicas2, burn_in2, t_f2_fixed,
                                    tolerance2, reactants, rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx,
                                    sorting, max_events - spent, ends, rates_avg, stats)
            counters[0] += stats[0] + stats[1]
            counters[4] += stats[2]
            spent += stats[0] + stats[1]
            if status != OK:
                return status, t
            if spent >= max_events:
                return MAX_EVENTS, t
            stats[:] = 0
            status, t_next, fired = outer_step_levels(x, t, t_stop, rates_avg, slow_idx, ends, t_f, key, n, outer,
                                                      level, replicas2, burn_in2, t_f2_fixed, tolerance2, reactants,
                                                      rates, nu, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx,
                                                      sorting, max_events - spent, stats)
            counters[0] += stats[0] + stats[1]
            counters[4] += stats[2]
            spent += stats[0] + stats[1]
        else:
            fast_idx = np.flatnonzero(level >= FAST)
            if kind == TWO_LEVEL_STEP and reusable and reused_rates(x, slow_idx, involved, reactants, rates,
                                                                    factor, known, rates_avg):
                counters[5] += 1
            elif kind == TWO_LEVEL_STEP:
                status, ne = inner_average(x, key, n, replicas, burn_in, t_f, fast_idx, slow_idx, reactants, rates,
                                           nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, sorting,
                                           max_events - spent, ends, rates_avg)
                counters[0] += ne
                spent += ne
                if status != OK:
                    return status, t
                if spent >= max_events:
                    return MAX_EVENTS, t
                if reuse:
                    fast_species(level, reactants, nu_ptr, nu_species, nu_change, involved)
                    remember_fast_factors(x, slow_idx, rates_avg, involved, reactants, rates, factor, known)
            else:
                exact_rates(x, slow_idx, reactants, rates, rates_avg)
            status, t_next, j, ne = outer_step(x, t, t_stop, rates_avg, slow_idx, fast_idx, ends, t_f, key, n,
                                               outer, reactants, rates, nu_ptr, nu_species, nu_change, dep_ptr,
                                               dep_idx, sorting, max_events - spent)
            fired = j >= 0
            reusable = (reuse and fired and kind == TWO_LEVEL_STEP
                        and jump_keeps_fast_state(j, involved, ends, nu_ptr, nu_species, nu_change))
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
    levels
        2 (fast/slow) or 3 (ultrafast/fast/slow, nested twice). With 3, ``replicas``,
        ``averaging_time`` and ``burn_in`` are N, T_f and T₀ of the middle replicas and
        the ``ultrafast_*`` fields those of the innermost ones.
    ultrafast_replicas
        N₂; 0 means ⌈1/λ₂⌉.
    ultrafast_averaging_time
        T_f₂; 0 means ε₂(z)/λ₂, recomputed every middle step.
    ultrafast_burn_in
        T₀₂, discarded before the inner averaging window.
    ultrafast_tolerance
        λ₂; 0 means ``tolerance``.
    reuse_averages
        Two levels: reuse ã while slow jumps leave the fast species alone (module
        docstring, "Reuse"); the replica runs of such steps are skipped.
    """

    replicas: int = 0
    averaging_time: float = 0.0
    burn_in: float = 0.0
    tolerance: float = 0.0
    partition: str = "model"
    partition_ratio: float = 1e-3
    engine: str = "direct"
    max_events: int = 0
    levels: int = 2
    ultrafast_replicas: int = 0
    ultrafast_averaging_time: float = 0.0
    ultrafast_burn_in: float = 0.0
    ultrafast_tolerance: float = 0.0
    reuse_averages: bool = True

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
        if self.levels not in (2, 3):
            raise ValueError(f"levels must be 2 or 3, got {self.levels}")
        if self.ultrafast_replicas < 0:
            raise ValueError(f"ultrafast_replicas must be >= 0, got {self.ultrafast_replicas}")
        for name in ("ultrafast_averaging_time", "ultrafast_burn_in", "ultrafast_tolerance"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        if self.levels == 3 and (self.ultrafast_replicas == 0 or self.ultrafast_averaging_time == 0) \
                and not self.ultrafast_lambda > 0:
            missing = "ultrafast_replicas" if self.ultrafast_replicas == 0 else "ultrafast_averaging_time"
            raise ValueError(f"{missing} is 0 (derive it from the tolerance) but ultrafast_tolerance and "
                             f"tolerance are 0; set {missing} or a tolerance")

    @property
    def n_replicas(self) -> int:
        """N actually used."""
        return self.replicas if self.replicas > 0 else max(1, math.ceil(1.0 / self.tolerance - 1e-12))

    @property
    def ultrafast_lambda(self) -> float:
        """λ₂ actually used: ``ultrafast_tolerance``, or ``tolerance`` if that is 0."""
        return self.ultrafast_tolerance if self.ultrafast_tolerance > 0 else self.tolerance

    @property
    def n_ultrafast_replicas(self) -> int:
        """N₂ actually used."""
        if self.ultrafast_replicas > 0:
            return self.ultrafast_replicas
        return max(1, math.ceil(1.0 / self.ultrafast_lambda - 1e-12))


#: counters returned per window, in the order of ``nested_window_kernel``'s ``counters``
COUNTERS = ("inner_events", "outer_events", "outer_steps", "partition_changes", "continuations",
            "reused_averages")


class UnboundedFastError(ValueError):
    """The model partition makes a reaction fast whose fast process has no equilibrium."""


class WindowError(RuntimeError):
    """A trajectory could not be advanced (event limit, no reactant, negative count)."""


def status_error(status: int, network: ReactionNetwork, t: float, limit: int) -> str:
    if status == MAX_EVENTS:
        return (f"SSA of {network.name or 'the network'} exceeded max_events = {limit} events in one window "
                f"(at t = {t:.6g})")
    if status == NO_REACTANT:
        return (f"nested SSA at t = {t:.6g}: a slow reaction fired but no inner replica reached a state "
                f"where it can fire in {MAX_CONTINUATION_PIECES} averaging windows")
    return status_message(status, t, f"SSA of {network.name or 'the network'}")


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
        self.levels = params.levels if method == "nested" else 2
        if self.levels == 3 and not self.auto:
            if not (network.level == ULTRAFAST).any():
                raise ValueError("levels = 3 with partition = 'model' but the model marks no reaction ultrafast "
                                 "(set level = 2 on the ultrafast reactions, or use levels = 2 or partition = 'auto')")
            if not (network.level == FAST).any():
                raise ValueError("levels = 3 with partition = 'model' but the model marks no reaction fast at "
                                 "level 1 (set fast = true on the middle reactions, or use levels = 2)")

        if method == "nested" and not self.auto:
            self._check_bounded()

    def _check_bounded(self) -> None:
        """Refuse a model partition whose fast process has no equilibrium (:func:`demote_unbounded`):
        a fast reaction that raises a species no fast reaction consumes would otherwise be
        averaged over a process that never settles (wrong answers, or T_f = 0)."""
        net = self.network
        checks = [(net.level >= FAST, None, "fast", "no fast reaction")]
        if self.levels == 3:  # the innermost process alone, then the middle one over it
            checks = [(net.level == ULTRAFAST, None, "ultrafast (level 2)", "no ultrafast reaction"),
                      (net.level == FAST, net.level == ULTRAFAST, "fast (level 1)", "no reaction of level >= 1")]
        for fast, keep, what, who in checks:
            found = unbounded_fast_reaction(net, fast, keep)
            if found is not None:
                j, i = found
                name = net.species[i]
                raise UnboundedFastError(
                    f"{net.reactions[j].label(j)} is {what} but raises {name!r}, which {who} consumes: the fast "
                    "process grows without bound and has no equilibrium to average; make the reaction slow, add "
                    f"the fast reactions that consume {name!r}, or use partition = \"auto\" (which leaves such "
                    "reactions slow)")

    def advance(self, x: np.ndarray, t_start: float, t_stop: float, key: int) -> np.ndarray:
        """Advance state ``x`` (int64, modified in place) over [t_start, t_stop] with window
        key ``key``; return the counters (int64[6], see :data:`COUNTERS`)."""
        net, p = self.network, self.params
        counters = np.zeros(len(COUNTERS), dtype=np.int64)
        k = np.uint64(key)
        if self.method == "direct":
            status, t = direct_window_kernel(x, float(t_start), float(t_stop), k, net.reactants, net.rates,
                                             net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr,
                                             net.dep_idx, self.sorting, self.max_events, counters)
        elif self.levels == 3:
            status, t = nested3_window_kernel(
                x, float(t_start), float(t_stop), k, net.level, self.auto, float(p.partition_ratio),
                int(p.n_replicas), float(p.averaging_time), float(p.tolerance), float(p.burn_in),
                int(p.n_ultrafast_replicas), float(p.ultrafast_averaging_time), float(p.ultrafast_lambda),
                float(p.ultrafast_burn_in), net.reactants, net.rates, net.nu, net.nu_ptr, net.nu_species,
                net.nu_change, net.dep_ptr, net.dep_idx, self.sorting, self.max_events, counters)
        else:
            status, t = nested_window_kernel(
                x, float(t_start), float(t_stop), k, net.fast, self.auto, float(p.partition_ratio),
                int(p.n_replicas), float(p.averaging_time), float(p.tolerance), float(p.burn_in),
                net.reactants, net.rates, net.nu, net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr,
                net.dep_idx, self.sorting, self.max_events, counters, bool(p.reuse_averages))
        if status != OK:
            raise WindowError(status_error(status, net, t, self.max_events))
        return counters


@dataclass(frozen=True)
class RateEstimate:
    """One outer step's estimate ã(x) (:func:`estimate_rates`).

    Attributes
    ----------
    rates : float64[M]
        ã_j for the slow (level-0) reactions, NaN for the others.
    level : int64[M]
        The partition used (0 slow, 1 fast, 2 ultrafast; two levels: 0 and 1).
    kind : int
        ``THREE_LEVEL_STEP``, ``TWO_LEVEL_STEP`` or ``EXACT_STEP``.
    eps, t_f : float
        ε (ε₁ for a three-level step) at x, and T_f.
    inner_events, middle_events, continuations : int
        Events of the innermost SSA, of the middle SSA (three levels), continuations.
    """

    rates: np.ndarray
    level: np.ndarray
    kind: int
    eps: float
    t_f: float
    inner_events: int
    middle_events: int
    continuations: int


def estimate_rates(network: ReactionNetwork, x: np.ndarray, key: int, params: NestedParameters,
                   outer_step: int = 0) -> RateEstimate:
    """The inner estimate ã(x) of outer step ``outer_step`` with window key ``key``: the
    replicas (two levels) or middle replicas (three levels) a trajectory would run there."""
    params.check()
    x = np.ascontiguousarray(x, dtype=np.int64)
    net, p = network, params
    auto = PARTITIONS[p.partition]
    levels = p.levels
    level = np.empty(net.n_reactions, dtype=np.int64)
    kind, _ = plan_step(levels, x, net.level, auto, float(p.partition_ratio), float(p.averaging_time),
                        float(p.tolerance), net.reactants, net.rates, net.nu, level)
    if kind == THREE_LEVEL_STEP:
        eps = time_scale_between(x, level == FAST, level == SLOW, net.reactants, net.rates, net.nu)
    else:
        eps = time_scale(x, level >= FAST, net.reactants, net.rates, net.nu)
    t_f = p.averaging_time if p.averaging_time > 0 else eps / p.tolerance
    n = p.n_replicas
    slow = np.flatnonzero(level == SLOW)
    out = np.full(net.n_reactions, np.nan)
    avg = np.empty(slow.size)
    ends = np.empty((n, net.n_species), dtype=np.int64)
    stats = np.zeros(3, dtype=np.int64)
    if kind == EXACT_STEP:
        exact_rates(x, slow, net.reactants, net.rates, avg)
        status = OK
    elif kind == THREE_LEVEL_STEP:
        status = middle_average(x, np.uint64(key), outer_step, n, float(p.burn_in), float(t_f), level,
                                int(p.n_ultrafast_replicas), float(p.ultrafast_burn_in),
                                float(p.ultrafast_averaging_time), float(p.ultrafast_lambda), net.reactants,
                                net.rates, net.nu, net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx,
                                METHODS[p.engine], np.iinfo(np.int64).max, ends, avg, stats)
    else:
        status, stats[0] = inner_average(x, np.uint64(key), outer_step, n, float(p.burn_in), float(t_f),
                                         np.flatnonzero(level >= FAST), slow, net.reactants, net.rates, net.nu_ptr,
                                         net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx, METHODS[p.engine],
                                         np.iinfo(np.int64).max, ends, avg)
    if status != OK:
        raise WindowError(status_error(status, net, 0.0, 0))
    out[slow] = avg
    return RateEstimate(out, level, int(kind), float(eps), float(t_f), int(stats[0]), int(stats[1]), int(stats[2]))


def averaged_rates(network: ReactionNetwork, x: np.ndarray, key: int, params: NestedParameters,
                   outer_step: int = 0) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The inner SSA's estimate ã(x) of one outer step (the validation tests use it).

    Returns
    -------
    (rates, fast, eps, t_f)
        ``rates`` (M,) float64 with ã_j for the slow reactions and NaN for the fast ones;
        the partition used (levels >= 1 are fast); ε(x) (ε₁ for three levels); the
        averaging time T_f. :func:`estimate_rates` gives the levels and event counts too.
    """
    e = estimate_rates(network, x, key, params, outer_step)
    return e.rates, e.level >= FAST, e.eps, e.t_f


def run_ensemble(network: ReactionNetwork, method: str, params: NestedParameters, times, trajectories: int,
                 seed: int, *, first: int = 0, x0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Trajectories ``first .. first + trajectories - 1`` sampled at ``times`` (serially).

    Window k = [times[k], times[k+1]] of trajectory i uses the key
    ``task_seeds(seed, k, [i])`` -- the key the ``ssa`` application gives that task -- so
    these are bitwise the app's trajectories (run.seed = seed, t_0 = times[0]).

    Returns
    -------
    (states, counters)
        int64 (n, len(times), n_species) and the summed counters (n, 6) (:data:`COUNTERS`).
    """
    from ...core.rng import task_seeds
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
