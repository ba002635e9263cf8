r"""A Nested-SSA ensemble as a :class:`FreeStepper`: projective integration over the Nested SSA.

The Nested SSA (E, Liu & Vanden-Eijnden, *Nested stochastic simulation algorithm for
chemical kinetic systems with disparate rates*, J. Chem. Phys. 123 (2005) 194107;
:mod:`hmmpar.micro.ssa.nested`) already removes the fast time scale of a reaction network:
its outer SSA fires the slow reactions at rates :math:`\tilde a_j` averaged over inner
replicas of the fast reactions, about :math:`N(T_0 + T_f)\,a_0^F` inner events per slow event,
which does not grow as :math:`\varepsilon \to 0` when :math:`T_0, T_f \propto \varepsilon`. What is left is the slow time scale itself,
and the sampling noise. This stepper stacks equation-free projective integration (Gear &
Kevrekidis, SIAM J. Sci. Comput. 24 (2003) 1091; Kevrekidis et al., Commun. Math. Sci. 1
(2003) 715, section 2) on top: the coarse variable is the *ensemble mean of the slow
variables* of ``R`` Nested-SSA trajectories per macro state, so
:func:`~hmmpar.couplers.projective.projective_euler` extrapolates the mean over :math:`Mh`
after simulating :math:`(k + 1)h`.

*Slow variables.* ``slow`` lists, for each macro variable :math:`i`, the species whose counts
it sums, :math:`y_i = \sum_{s \in G_i} x_s` (four-species model: :math:`y_1 = x_1 + x_2`,
:math:`y_2 = x_3 + x_4`, the quantities the fast reactions conserve). The groups are disjoint;
species in no group are set to ``background`` (default the network's initial counts) at
lifting.

*Lifting* :math:`L(U)`: ``R`` replicas per macro state; variable :math:`i` gets
:math:`\lfloor U_i\rfloor` in every replica and one more in :math:`\operatorname{round}(R\{U_i\})`
random replicas (the ensemble mean is :math:`U_i` to :math:`1/(2R)`, no lifting noise), and
each replica's :math:`n_i` is split evenly over the species of :math:`G_i` (the remainder to the
first ones). The even split is the mean of the fast equilibrium of symmetric unimolecular
pairs (four-species model, where it makes :math:`\mathbb E\tilde a` exact on the first outer
step); for other fast subnetworks the split is off-equilibrium and the first outer step's
:math:`\tilde a` carries the relaxation bias :math:`O(e^{-\alpha T_0/\varepsilon}/(1 + T_f/\varepsilon))` of
the paper's bound: set ``params.burn_in`` :math:`T_0` to a few :math:`\varepsilon` to remove it.

*Evolution* :math:`\Phi_h^{\text{steps}}`: every replica runs the Nested SSA over
:math:`[t, t + \text{steps}\cdot h]` as one window of
:class:`~hmmpar.micro.ssa.nested.WindowRunner` (the ``ssa`` application's micro solver,
compiled). *Random streams*: in the :math:`c`-th :meth:`NestedSSAEnsembleStepper.evolve` call
(:math:`c = 0, 1, \dots` since construction, :attr:`NestedSSAEnsembleStepper.calls`) replica
:math:`r` of macro state :math:`b` uses the window key
``hmmpar.core.rng.task_seeds(seed, c, [b * R + r])``, the key the ``ssa`` application gives
window :math:`c` of trajectory :math:`bR + r`: a farm handing these trajectories to any rank
reproduces the run bitwise. The lifting draws from ``SeedSequence([seed, n])`` for the
:math:`n`-th lift.

*Restriction* :math:`R(u)`: the ensemble means of the slow variables.

**Error.** For a network whose averaged slow propensities are linear in :math:`y` (the
four-species model: :math:`\bar a = y_1/2,\ y_2/2`) the mean obeys the averaged linear ODE
exactly, so projective Euler's deterministic part is the amplification
:math:`\sigma(\rho) = \rho^k((M + 1)\rho - M)` per outer step of each mode, with
:math:`\rho = e^{\lambda h}` (the inner integrator is the exact flow of the mean);
the statistical part is the ensemble's sampling noise amplified by the extrapolation
(:mod:`hmmpar.couplers.ssa_stepper`: standard deviation about :math:`M\sqrt{h\sum_j a_j\nu_j^2/R}`
per outer step, shrinking only as :math:`R^{-1/2}`); the Nested SSA adds its own
:math:`O(\varepsilon + 1/\sqrt{N(1 + T_f/\varepsilon)})` (E, Liu & Vanden-Eijnden 2005).

Counters: :attr:`NestedSSAEnsembleStepper.inner_events` and
:attr:`NestedSSAEnsembleStepper.outer_events` (summed over replicas and calls),
:attr:`NestedSSAEnsembleStepper.replica_time`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..core.rng import task_seeds
from ..micro.ssa.model import ReactionNetwork
from ..micro.ssa.nested import NestedParameters, WindowRunner

__all__ = ["NestedSSAEnsembleStepper"]


class NestedSSAEnsembleStepper:
    r"""``R`` Nested-SSA trajectories per macro state, as a :class:`~hmmpar.couplers.FreeStepper`
    whose macro state is the ensemble mean of slow variables (module docstring).

    Parameters
    ----------
    network
        The reaction network (fast reactions flagged, or ``params.partition = "auto"``).
    slow
        One group of species (names or indices) per macro variable; the variable is the sum
        of their counts. Disjoint groups.
    R
        Trajectories per macro state (>= 2).
    h
        Inner step: the simulated time of one :meth:`evolve` step (> 0).
    params
        Nested SSA parameters (:class:`~hmmpar.micro.ssa.nested.NestedParameters`).
    seed
        Root of the streams (a whole number >= 0).
    background
        Counts of the species in no group, in every lifted replica (default: the network's
        initial counts).

    Attributes
    ----------
    calls, lifts : int
        :meth:`evolve` and :meth:`lift` calls so far (the stream counters).
    inner_events, outer_events : int
        Events of the inner (fast) and outer (slow) SSAs, all replicas and calls.
    replica_time : float
        Simulated time summed over replicas.

    Raises
    ------
    ValueError
        Empty, unknown or overlapping ``slow`` groups, ``R < 2``, a non-positive ``h``, a bad
        ``seed`` or ``background``, or invalid ``params``.
    """

    def __init__(self, network: ReactionNetwork, slow: Sequence[Sequence[int | str]], R: int, h: float,
                 params: NestedParameters, seed: int = 0, *,
                 background: Sequence[int] | np.ndarray | None = None) -> None:
        if not isinstance(network, ReactionNetwork):
            raise TypeError(f"network must be a ReactionNetwork, got {type(network).__name__}")
        if isinstance(R, (bool, np.bool_)) or int(R) != R or R < 2:
            raise ValueError(f"R must be a whole number >= 2 (trajectories per macro state), got {R!r}")
        if not (isinstance(h, (int, float, np.floating, np.integer)) and math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite number, got {h!r}")
        if isinstance(seed, (bool, np.bool_)) or int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
        groups = []
        for g in slow:
            idx = [network.species_index(s) if isinstance(s, str) else int(s) for s in g]
            if not idx or any(i < 0 or i >= network.n_species for i in idx):
                raise ValueError(f"slow groups must be non-empty lists of species of the network "
                                 f"({', '.join(network.species)}), got {list(g)!r}")
            groups.append(np.array(idx, dtype=np.int64))
        flat = np.concatenate(groups) if groups else np.empty(0, np.int64)
        if not groups or np.unique(flat).size != flat.size:
            raise ValueError(f"slow must be one or more disjoint groups of species, got {slow!r}")
        bg = network.initial_counts if background is None else np.asarray(background)
        if bg.shape != (network.n_species,) or np.any(bg < 0) or not np.all(bg == np.round(bg)):
            raise ValueError(f"background must be {network.n_species} counts >= 0, got {background!r}")
        self.runner = WindowRunner(network, "nested", params)  # checks params (one-line ValueErrors)
        self.network, self.params, self.groups = network, params, groups
        self.R, self.h, self.seed = int(R), float(h), int(seed)
        self.background = bg.astype(np.int64)
        self.background[flat] = 0
        W = np.zeros((len(groups), network.n_species), dtype=np.int64)
        for i, g in enumerate(groups):
            W[i, g] = 1
        self.W = W
        self.lifts = self.calls = 0
        self.inner_events = self.outer_events = 0
        self.replica_time = 0.0

    @property
    def nu(self) -> int:
        """Macro variables per state."""
        return len(self.groups)

    @property
    def lifted_bytes(self) -> int:
        """Bytes of one lifted macro state, ``R`` int64 replicas (the memory estimate)."""
        return 8 * self.R * self.network.n_species

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        """``(nb, R, n_species)`` int64 replicas whose slow-variable means are ``U`` ``(nb, nu)``
        to within 1/(2R) (module docstring)."""
        U = np.atleast_2d(np.asarray(U, dtype=float))
        if U.ndim != 2 or U.shape[1] != self.nu:
            raise ValueError(f"U must have shape (nb, {self.nu}), got {U.shape}")
        if not np.all(np.isfinite(U)) or np.any(U < 0) or np.any(U > 2.0 ** 62):
            raise ValueError(f"U must be finite counts in [0, 2^62], got min {U.min():g}, max {U.max():g}")
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.lifts]))
        self.lifts += 1
        nb, R = U.shape[0], self.R
        base = np.floor(U)
        ups = np.rint((U - base) * R).astype(np.int64)
        ranks = np.argsort(rng.random((nb, self.nu, R)), axis=2).argsort(axis=2)
        n = base.astype(np.int64)[:, :, None] + (ranks < ups[:, :, None])       # (nb, nu, R)
        S = np.empty((nb, R, self.network.n_species), dtype=np.int64)
        S[:] = self.background
        for i, g in enumerate(self.groups):
            q, rem = np.divmod(n[:, i, :], g.size)                              # even split
            S[:, :, g] = q[:, :, None] + (np.arange(g.size)[None, None, :] < rem[:, :, None])
        return S

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        """Every trajectory over ``[t, t + steps h]`` by the Nested SSA, one window (in place)."""
        if isinstance(steps, (bool, np.bool_)) or int(steps) != steps or steps < 0:
            raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
        if (not isinstance(states, np.ndarray) or states.dtype != np.int64 or states.ndim != 3
                or states.shape[1:] != (self.R, self.network.n_species)):
            raise ValueError(f"states must be an int64 array (nb, {self.R}, {self.network.n_species}) from lift()")
        if steps == 0:
            return
        nb = states.shape[0]
        keys = task_seeds(self.seed, self.calls, np.arange(nb * self.R))
        self.calls += 1
        t0, t1 = float(t), float(t) + int(steps) * self.h
        for b in range(nb):
            for r in range(self.R):
                x = np.ascontiguousarray(states[b, r])
                c = self.runner.advance(x, t0, t1, int(keys[b * self.R + r]))
                states[b, r] = x
                self.inner_events += int(c[0])
                self.outer_events += int(c[1])
        self.replica_time += nb * self.R * (t1 - t0)

    def restrict(self, states: np.ndarray) -> np.ndarray:
        """The ensemble means ``(nb, nu)`` of the slow variables."""
        return (states @ self.W.T).mean(axis=1)

    # every replica of every macro state is a unit of the farm (hmmpar.couplers.farmed)
    #: leading axes of a lifted state that index units: macro state and replica
    unit_axes = 2
    #: farmed units draw from streams keyed by the farm task (evolve_units' ctx and part)
    stochastic_units = True

    def evolve_units(self, states: np.ndarray, index: np.ndarray, t: float, steps: int, *, ctx, part: int) -> None:
        """One Nested-SSA window over ``[t, t + steps h]`` for single replicas ``states``
        ``(n, n_species)`` (int64) with flat unit indices (macro state * R + replica)
        ``index``, in a farm task: replica ``g``'s window key is drawn from
        ``SeedSequence([ctx.seeds([g]), part])`` (the farm's run seed, call and unit, and the
        part of the coarse time-stepper call), whatever chunk or rank runs it."""
        t0, t1 = float(t), float(t) + int(steps) * self.h
        keys = ctx.seeds(np.asarray(index, dtype=np.int64))
        for i in range(states.shape[0]):
            key = int(np.random.SeedSequence([int(keys[i]), int(part)]).generate_state(1, np.uint64)[0])
            x = np.ascontiguousarray(states[i])
            c = self.runner.advance(x, t0, t1, key)
            states[i] = x
            self.inner_events += int(c[0])
            self.outer_events += int(c[1])
        self.replica_time += states.shape[0] * (t1 - t0)

    def restrict_units(self, states: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The slow variables ``(n, nu)`` of single replicas."""
        return (states @ self.W.T).astype(float)

    def join_units(self, values: np.ndarray, nb: int) -> np.ndarray:
        """Replica values ``(nb * R, nu)`` in unit order as ensemble means ``(nb, nu)``."""
        return values.reshape(nb, self.R, -1).mean(axis=1)
