r"""A stochastic micro stepper: an ensemble of direct-SSA replicas as a :class:`FreeStepper`.

The macro state is the *ensemble mean* of copy numbers: for a
:class:`~hmmpar.micro.ssa.model.ReactionNetwork` with species counts :math:`x \in \mathbb N^S`
and chosen species :math:`I` (default all), :math:`U = \bar x_I = \frac1R\sum_{r=1}^R x^{(r)}_I`,
the coarse variable of equation-free computation (Kevrekidis, Gear, Hyman, Kevrekidis, Runborg
& Theodoropoulos, *Equation-free, coarse-grained multiscale computation*, Commun. Math. Sci. 1
(2003) 715--762, section 2: the coarse time-stepper lifts, runs the micro simulator, restricts).

*Lifting* :math:`L(U)`: :math:`R` replicas per macro state. ``lifting="round"`` (the default)
gives every replica :math:`\lfloor U_i\rfloor` and :math:`\operatorname{round}(R\{U_i\})`
randomly chosen replicas one more, so that the ensemble mean is :math:`U_i` to within
:math:`1/(2R)` and no lifting noise enters the mean; the ensemble starts (nearly) deterministic.
``lifting="poisson"`` draws :math:`x^{(r)}_i \sim \mathrm{Poisson}(U_i)` independently: the
mean is :math:`U_i` only in expectation (standard error :math:`\sqrt{U_i/R}`), but the
replicas start with Poisson statistics, the law of a monomolecular network's copy numbers
from a Poisson start (Jahnke & Huisinga, J. Math. Biol. 54 (2007) 1). Species outside
:math:`I` are set to ``background`` (default the network's initial counts) in every replica;
as for any lifting of an incomplete macro state, the inner steps must heal them (they must
relax fast onto a manifold parametrised by :math:`U`). The lifting's randomness is the
NumPy stream ``SeedSequence([seed, n])`` of the stepper's ``n``-th lift.

*Evolution* :math:`\Phi_h`: each replica runs the exact direct SSA
(:func:`~hmmpar.micro.ssa.direct.ssa_kernel`, compiled, one loop over the whole batch) for
``steps`` :math:`\times h` of time. The stream of replica ``r`` of macro state ``b`` in the
``c``-th :meth:`SSAEnsembleStepper.evolve` call after the ``n``-th lift is the counter-based
xoshiro256** stream ``(sub_key(key, n, c), b, r)`` of :mod:`hmmpar.micro.ssa.streams`
(``key`` from ``SeedSequence(seed)``): a run is a bitwise function of the seed and the
sequence of calls, on any rank. Lifting again starts a new ``n``.

*Restriction* :math:`R(u)`: the ensemble mean of the chosen species.

**Noise.** For a mass-action network the mean obeys :math:`\dot m = \sum_j \nu_j\,
\mathbb E[a_j(x)]` (the mean ODE when the propensities are linear; a moment-closure-free
coarse ODE otherwise, which is what the coarse stepper integrates). An ensemble mean
restricted after the inner steps carries a sampling error, and the chord slope over one
inner step,

.. math::

    \hat s = \frac{\bar x(t + h) - \bar x(t)}{h},\qquad
    \operatorname{Var}\hat s \approx \frac{\sum_j a_j\,\nu_j^2}{R\,h}\quad(h \text{ short}),

since over a short :math:`h` each replica's increment is a sum of independent Poisson
event counts of variance :math:`a_j h`. Projective forward Euler
(:func:`~hmmpar.couplers.projective.projective_euler`) sets
:math:`U^+ = \bar x_{k+1} + M h\,\hat s`, so the extrapolation over :math:`Mh` multiplies
the slope noise by :math:`Mh`: the outer step adds a noise of standard deviation about
:math:`M\sqrt{h\sum_j a_j\nu_j^2/R}` (plus the :math:`\sqrt{(k+1)h\sum_j a_j\nu_j^2/R}` of the
inner steps themselves), which grows with the extrapolation factor :math:`M` and shrinks
only as :math:`R^{-1/2}`. The noise then propagates like any perturbation of the macro
state: multiplied by the scheme's amplification :math:`\sigma` per outer step, so a stable
(dissipative) slow mode forgets it and the variance settles at
:math:`\operatorname{Var}\xi/(1 - \sigma^2)`. To control it, choose :math:`R` for the
required standard error and :math:`M` not larger than needed, or estimate the slope over
a longer window: :func:`projective_euler_fit` fits it by least squares over the last
``window`` restricted values of the :math:`k + 1` inner steps (Kevrekidis et al. 2003, section
2.2: the slope "estimated from the later part of the simulation", e.g. by a least-squares
fit), whose variance for a window of length :math:`(w - 1)h` is about
:math:`\frac65\sum_j a_j\nu_j^2/(R(w - 1)h)` instead of :math:`\sum_j a_j\nu_j^2/(R h)`.
*What it saves.* At a fixed ensemble size the projective run simulates the fraction
:math:`(k + 1)/(k + 1 + M)` of the time of a plain ensemble over the same interval, so it
costs about that fraction of the SSA events; but the noise of the ensemble mean is a
random walk in time, and a slope estimated over :math:`(k+1)h` and extrapolated over
:math:`Mh` replays it amplified: the standard error is larger than the plain ensemble's,
and at *equal* standard error the projective run costs about as much as the plain one or
more (measured on the birth--death validation, docs/couplers.md: 1.1 to 3.7 times; the
chord is the worst, a least-squares window as long as the extrapolation the best). We expect
the same with a spectral gap, since both runs pay the same events per simulated time (not
tested); a
saving at equal error would need variance reduction (correlated replicas, control
variates), not implemented here.

The stepper counts its cost: :attr:`SSAEnsembleStepper.events` (SSA events) and
:attr:`SSAEnsembleStepper.replica_time` (simulated time summed over replicas).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numba
import numpy as np

from ..micro.ssa.direct import MAX_EVENTS, METHODS, NEGATIVE_COUNT, OK, SSAError, ssa_kernel, status_message
from ..micro.ssa.model import ReactionNetwork
from ..micro.ssa.streams import seed_stream, sub_key
from .projective import FreeStepper, ProjectiveResult, check_projective

__all__ = ["LIFTINGS", "SSAEnsembleStepper", "fit_weights", "projective_euler_fit"]

#: the lifting rules of :class:`SSAEnsembleStepper` (module docstring)
LIFTINGS = ("round", "poisson")


@numba.njit(cache=True)
def _evolve_batch(S, duration, key, n, c, reactants, rates, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx,
                  active, sorting, max_events):
    """Every replica ``S[b, r]`` over ``[0, duration]`` (in place), stream ``(sub_key(key, n, c), b, r)``.

    Returns (status, events, b, r, t) with the failing replica and time when status != OK."""
    nb, R, nsp = S.shape
    kc = sub_key(key, np.uint64(n), np.uint64(c))
    rng = np.empty(4, np.uint64)
    no_samples = np.empty(0)
    no_states = np.empty((0, nsp), np.int64)
    no_integrate = np.empty(0, np.int64)
    no_integrals = np.empty(0)
    ev = np.empty(rates.shape[0], np.int64)
    total = 0
    for b in range(nb):
        for r in range(R):
            seed_stream(kc, np.uint64(b), np.uint64(r), rng)
            status, ne, t = ssa_kernel(S[b, r], 0.0, duration, no_samples, reactants, rates, nu_ptr, nu_species,
                                       nu_change, dep_ptr, dep_idx, active, no_integrate, sorting, max_events, rng,
                                       no_states, ev, no_integrals)
            total += ne
            if status != OK:
                return status, total, b, r, t
    return OK, total, -1, -1, duration


class SSAEnsembleStepper:
    r"""An ensemble of ``R`` direct-SSA replicas per macro state, as a :class:`FreeStepper`.

    Macro state ``U`` ``(nb, nu)``: the ensemble means of the ``nu`` chosen species; micro
    states ``(nb, R, n_species)`` int64 copy numbers. Lifting, streams, restriction and the
    noise of the slope are described in the module docstring.

    Parameters
    ----------
    network
        The reaction network.
    R
        Replicas per macro state (>= 2).
    h
        Inner step: the simulated time of one :meth:`evolve` step (> 0).
    seed
        Root of the lifting and SSA streams (an int >= 0).
    species
        The macro species (names or indices), in order; default all.
    lifting
        ``"round"`` or ``"poisson"`` (module docstring).
    background
        Counts of the species outside ``species`` in every lifted replica (default the
        network's initial counts).
    method
        ``"direct"`` or ``"sorting"`` (:mod:`hmmpar.micro.ssa.direct`).
    max_events
        Events allowed per replica and :meth:`evolve` call (default: no limit).

    Attributes
    ----------
    events : int
        SSA events fired so far (all replicas, all calls).
    replica_time : float
        Simulated time so far, summed over replicas: :math:`\sum` nb R steps h.
    lifts : int
        Lifts so far (the counter ``n`` of the streams).
    """

    def __init__(self, network: ReactionNetwork, R: int, h: float, seed: int = 0, *,
                 species: Iterable[int | str] | None = None, lifting: str = "round",
                 background: Sequence[int] | np.ndarray | None = None, method: str = "direct",
                 max_events: int | None = None) -> None:
        if not isinstance(network, ReactionNetwork):
            raise TypeError(f"network must be a ReactionNetwork, got {type(network).__name__}")
        if isinstance(R, (bool, np.bool_)) or int(R) != R or R < 2:
            raise ValueError(f"R must be a whole number >= 2 (replicas per macro state), got {R!r}")
        if not (isinstance(h, (int, float, np.floating, np.integer)) and math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite number, got {h!r}")
        if isinstance(seed, (bool, np.bool_)) or int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
        if lifting not in LIFTINGS:
            raise ValueError(f"lifting must be one of {list(LIFTINGS)}, got {lifting!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
        if species is None:
            idx = np.arange(network.n_species)
        else:
            idx = np.array([network.species_index(s) if isinstance(s, str) else int(s) for s in species],
                           dtype=np.int64)
            if idx.size == 0 or np.any((idx < 0) | (idx >= network.n_species)) or np.unique(idx).size != idx.size:
                raise ValueError(f"species must name distinct species of the network "
                                 f"({', '.join(network.species)}), got {list(species)!r}")
        bg = network.initial_counts if background is None else np.asarray(background)
        if bg.shape != (network.n_species,) or np.any(bg < 0) or not np.all(bg == np.round(bg)):
            raise ValueError(f"background must be {network.n_species} counts >= 0, got {background!r}")
        if max_events is None:
            max_events = np.iinfo(np.int64).max
        if int(max_events) < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events!r}")
        self.network, self.R, self.h, self.seed = network, int(R), float(h), int(seed)
        self.species, self.lifting, self.background = idx, lifting, bg.astype(np.int64)
        self.sorting, self.max_events = METHODS[method], int(max_events)
        self._key = np.uint64(np.random.SeedSequence(self.seed).generate_state(1, np.uint64)[0])
        self._active = np.arange(network.n_reactions, dtype=np.int64)
        self.lifts, self._calls = 0, 0
        self.events, self.replica_time = 0, 0.0

    @property
    def nu(self) -> int:
        """Macro variables per state (the chosen species)."""
        return int(self.species.size)

    @property
    def lifted_bytes(self) -> int:
        """Bytes of one lifted macro state, ``R`` int64 replicas (the memory estimate)."""
        return 8 * self.R * self.network.n_species

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        r"""``R`` replicas per row of ``U`` ``(nb, nu)`` whose ensemble mean is ``U`` (module
        docstring: exactly to :math:`1/(2R)` for ``"round"``, in expectation for ``"poisson"``).

        Returns ``(nb, R, n_species)`` int64; starts a new stream counter ``n``."""
        U = np.atleast_2d(np.asarray(U, dtype=float))
        if U.ndim != 2 or U.shape[1] != self.nu:
            raise ValueError(f"U must have shape (nb, {self.nu}) (the species "
                             f"{', '.join(self.network.species[i] for i in self.species)}), got {U.shape}")
        if not np.all(np.isfinite(U)):
            raise ValueError(f"U must be finite, got {U.tolist()}")
        if np.any(U < 0):
            raise ValueError(f"U must be >= 0 (mean copy numbers), got min {U.min():g}")
        if np.any(U > 2.0 ** 62):
            raise ValueError(f"U must be <= 2^62, got max {U.max():g}")
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.lifts]))
        self.lifts += 1
        self._calls = 0
        nb, R = U.shape[0], self.R
        S = np.empty((nb, R, self.network.n_species), dtype=np.int64)
        S[:] = self.background
        if self.lifting == "poisson":
            S[:, :, self.species] = rng.poisson(np.broadcast_to(U[:, None, :], (nb, R, self.nu)))
            return S
        base = np.floor(U)
        ups = np.rint((U - base) * R).astype(np.int64)  # replicas that get one more
        # replica r gets one more where its random rank is below ups: exactly ups of them
        ranks = np.argsort(rng.random((nb, self.nu, R)), axis=2).argsort(axis=2)
        S[:, :, self.species] = base.astype(np.int64)[:, None, :] + (ranks < ups[:, :, None]).transpose(0, 2, 1)
        return S

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        """Every replica ``steps * h`` of time by the direct SSA (in place); ``t`` is not used
        (mass-action networks are autonomous)."""
        if int(steps) != steps or steps < 0:
            raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
        if (not isinstance(states, np.ndarray) or states.dtype != np.int64 or states.ndim != 3
                or states.shape[1:] != (self.R, self.network.n_species) or not states.flags.c_contiguous):
            raise ValueError(f"states must be a C-contiguous int64 array (nb, {self.R}, {self.network.n_species}) "
                             "from lift()")
        if steps == 0:
            return
        net = self.network
        duration = int(steps) * self.h
        status, n_ev, b, r, tt = _evolve_batch(
            states, duration, self._key, self.lifts, self._calls, net.reactants, net.rates, net.nu_ptr,
            net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx, self._active, self.sorting, self.max_events)
        self._calls += 1
        self.events += int(n_ev)
        self.replica_time += states.shape[0] * self.R * duration
        self._check_status(status, b, r, tt, duration)

    # every replica of every macro state is a unit of the farm (hmmpar.couplers.farmed)
    #: leading axes of a lifted state that index units: macro state and replica
    unit_axes = 2
    #: farmed units draw from streams keyed by the farm task (evolve_units' ctx and part)
    stochastic_units = True

    def evolve_units(self, states: np.ndarray, index: np.ndarray, t: float, steps: int, *, ctx, part: int) -> None:
        """``steps * h`` of time for single replicas ``states`` ``(n, n_species)`` (int64) whose
        flat unit indices (macro state * R + replica) are ``index``, in a farm task. Replica
        ``g`` draws from the xoshiro256** stream of key ``ctx.seeds([g])`` (the farm's run seed,
        call and unit) and counter ``part``, whatever chunk or rank runs it
        (:meth:`~hmmpar.couplers.farmed.FarmedStepper.window_values`)."""
        net = self.network
        duration = int(steps) * self.h
        keys = ctx.seeds(np.asarray(index, dtype=np.int64))
        for i in range(states.shape[0]):
            one = states[i:i + 1, None, :]
            status, n_ev, _, _, tt = _evolve_batch(
                one, duration, np.uint64(keys[i]), int(part), 0, net.reactants, net.rates, net.nu_ptr,
                net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx, self._active, self.sorting,
                self.max_events)
            self.events += int(n_ev)
            self._check_status(status, int(index[i]) // self.R, int(index[i]) % self.R, tt, duration)
        self.replica_time += states.shape[0] * duration

    def restrict_units(self, states: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The chosen species' counts ``(n, nu)`` of single replicas."""
        return states[:, self.species].astype(float)

    def join_units(self, values: np.ndarray, nb: int) -> np.ndarray:
        """Replica values ``(nb * R, nu)`` in unit order as ensemble means ``(nb, nu)``."""
        return values.reshape(nb, self.R, -1).mean(axis=1)

    def _check_status(self, status: int, b: int, r: int, tt: float, duration: float) -> None:
        if status == OK:
            return
        where = f"replica {r} of macro state {b}"
        if status == MAX_EVENTS:
            raise RuntimeError(f"SSA ensemble stepper: {where} stopped after max_events={self.max_events} events "
                               f"at {tt:.6g} < {duration:.6g} into the step")
        if status == NEGATIVE_COUNT:
            raise AssertionError(f"SSA ensemble stepper: {where} produced a negative count (a bug)")
        raise SSAError(status_message(status, tt, f"SSA ensemble stepper, {where}"))

    def restrict(self, states: np.ndarray) -> np.ndarray:
        """The ensemble means ``(nb, nu)`` of the chosen species."""
        return states[:, :, self.species].mean(axis=1)


def fit_weights(window: int, h: float) -> np.ndarray:
    r"""Weights :math:`w` of the least-squares slope :math:`\hat s = \sum_i w_i u_i` of ``window``
    values :math:`u_i` at equally spaced times :math:`ih`:
    :math:`w_i = (i - \bar i)/(h\sum_l (l - \bar i)^2)`. For ``window = 2`` the chord."""
    if int(window) != window or window < 2:
        raise ValueError(f"window must be a whole number >= 2, got {window!r}")
    i = np.arange(int(window), dtype=float)
    d = i - i.mean()
    return d / (h * (d @ d))


def projective_fit_step(stepper: FreeStepper, U: np.ndarray, t: float, k: int, M: float, window: int,
                        w: np.ndarray | None = None) -> np.ndarray:
    """One outer step of :func:`projective_euler_fit` from ``U`` at ``t`` (``w``: the
    :func:`fit_weights`). A stepper that runs the inner steps elsewhere (the farm) offers
    ``window_values(U, t, k, window)``, the restrictions after the last ``window`` of the
    ``k + 1`` inner steps."""
    h = stepper.h
    w = fit_weights(int(window), h) if w is None else w
    own = getattr(stepper, "window_values", None)
    if own is not None:
        values = own(U, t, int(k), int(window))
    else:
        S = stepper.lift(U, t)
        values = []
        for j in range(int(k) + 1):
            stepper.evolve(S, t + j * h, 1)
            if j >= int(k) + 1 - window:
                values.append(stepper.restrict(S))
    with np.errstate(over="ignore", invalid="ignore"):
        slope = sum(wi * v for wi, v in zip(w, values))
        return values[-1] + (M * h) * slope


def projective_euler_fit(stepper: FreeStepper, U0: np.ndarray, t0: float, outer_steps: int, k: int, M: float,
                         window: int | None = None) -> ProjectiveResult:
    r"""Projective forward Euler with a least-squares slope (Kevrekidis et al. 2003, section 2.2).

    From the lifted state, :math:`k + 1` inner steps, restricting after each:
    :math:`U_j = R(u_j)`, :math:`j = 1..k+1`. The slope is the least-squares fit
    :math:`\hat s = \sum_i w_i U_{k+2-w+i}` (:func:`fit_weights`) over the last ``window``
    of them, and

    .. math::

        U^{n+1} = U_{k+1} + M h\,\hat s,

    an outer step of :math:`(k + 1 + M)h` like :func:`~hmmpar.couplers.projective.projective_euler`,
    which is the case ``window = 2`` (the chord of the last step; for a deterministic stepper
    the two agree to rounding). A longer window averages the noise of a stochastic
    stepper's slope (module docstring); on a smooth trajectory it adds a slope bias
    :math:`O(\text{window}\cdot h\,\ddot U)`.

    Parameters
    ----------
    stepper
        A :class:`FreeStepper`; :meth:`evolve` is called once per inner step.
    U0
        Macro state(s) ``(nb, nu)`` at ``t0``.
    outer_steps
        Number of outer steps (>= 1).
    k
        Inner steps before the last one (k >= 0; k + 1 inner steps, k + 1 restricted values).
    M
        Extrapolation length in inner steps (>= 0).
    window
        Restricted values in the fit, 2 .. k + 1 (default k + 1: all of them).
    """
    check_projective(k, M, outer_steps)
    k = int(k)
    window = k + 1 if window is None else window
    if int(window) != window or not 2 <= window <= k + 1:
        raise ValueError(f"window must be a whole number in [2, k + 1] = [2, {k + 1}], got {window!r}")
    h = stepper.h
    w = fit_weights(int(window), h)
    U = np.atleast_2d(np.asarray(U0, dtype=float)).copy()
    out = np.empty((int(outer_steps) + 1,) + U.shape)
    out[0] = U
    t = float(t0)
    for n in range(int(outer_steps)):
        U = projective_fit_step(stepper, U, t, k, M, int(window), w)
        t += (k + 1 + M) * h
        if not np.all(np.isfinite(U)):
            raise FloatingPointError(f"projective Euler (fit): the macro state is not finite at t = {t:.6g} "
                                     f"(outer step {n + 1}); (k, M) = ({k}, {M:g}) is outside the stable set")
        out[n + 1] = U
    return ProjectiveResult(t0 + (k + 1 + M) * h * np.arange(int(outer_steps) + 1), out,
                            int(outer_steps) * (k + 1))
