r"""Lennard-Jones MD boxes under a damped piston as a :class:`MicroStepper`.

*Macro model* (an isothermal piston). A fluid of :math:`N` atoms at temperature :math:`T`
(a heat bath) is held in a cylinder by a massless piston with friction coefficient
:math:`\zeta` and a fixed external pressure :math:`p_{\rm ext}`. In the overdamped limit
the volume per atom :math:`v = V/N` obeys

.. math::

    \frac{dv}{dt} = F(v) = \frac{p(1/v, T) - p_{\rm ext}}{\zeta},

with :math:`p(\rho, T)` the fluid's equation of state, which the macro model does not know:
the micro model computes it. The fixed point :math:`v^* = 1/\rho^*` solves
:math:`p(\rho^*, T) = p_{\rm ext}`; it is stable wherever the fluid is mechanically stable
(:math:`\partial p/\partial v < 0`), with relaxation rate
:math:`\lambda = -p'(v^*)/\zeta = \rho^{*2}\,\partial_\rho p/\zeta`. The macro state is
``X = (v,)`` (``nx = 1``); :math:`T`, :math:`p_{\rm ext}` and :math:`\zeta` are parameters.
It is the simplest slow-fast problem whose macro rate needs a micro-computed pressure and
whose answer an independent equation of state predicts exactly (the adiabatic piston,
``X = (v, e)``, has a trajectory-dependent end state unless the friction heat goes back
into the gas; it is not implemented here).

*Micro model.* One periodic cubic box of :math:`N` atoms per macro instance, side
:math:`L = (N v)^{1/3}`, integrated by the velocity-Verlet engine of
:mod:`hmmpar.micro.md` (:class:`~hmmpar.micro.md.MDSystem`; no kernel is copied) with step
:math:`\delta\tau` (LJ time), thermostatted at :math:`T` by the canonical
stochastic velocity rescaling of Bussi, Donadio & Parrinello (J. Chem. Phys. 126, 014101
(2007)) every ``thermostat_every`` steps: with :math:`K` the thermal (peculiar) kinetic
energy, :math:`\bar K = \tfrac32(N-1)T`, :math:`N_f = 3(N-1)`,
:math:`c = e^{-\text{thermostat\_every}\,\delta\tau/\tau_T}`,

.. math::

    K' = cK + (1-c)\,\bar K\,\frac{R_1^2 + \chi^2_{N_f-1}}{N_f}
         + 2R_1\sqrt{c(1-c)K\bar K/N_f},

:math:`R_1 \sim N(0, 1)`, and the peculiar velocities are scaled by :math:`\sqrt{K'/K}`
(:func:`hmmpar.micro.md.engine._rescale`; Bussi et al.'s sign of the factor, a reversal of
all velocities with vanishing probability that leaves the kinetic energy's law unchanged,
is dropped). The configurations are then canonical at
:math:`T`, the ensemble of the equation-of-state oracles.

*Estimator.* The virial pressure of a sample (:func:`hmmpar.micro.md.sample_row`,
:math:`p = (2K + \sum_i \mathrm{tr}\,W_i)/(3V) + p_{\rm tail}`) gives
:math:`F(v, y) = (p(y) - p_{\rm ext})/\zeta`. :meth:`MDStepper.advance` samples after every
``sample_every``-th step (``steps`` must be a multiple of ``thermostat_every``, itself a
multiple of ``sample_every``): ``Window.mean`` is the mean over those
``steps / sample_every`` samples (the pressure's correlation time, ~0.05 LJ time, is longer
than ``sample_every`` :math:`\delta\tau` = 0.025 by default, so the thinning loses little),
``Window.last`` the sample after the last step.

*Lifting* (:meth:`MDStepper.lift`): :meth:`~hmmpar.micro.md.MDSystem.create` at density
:math:`1/v` (fcc lattice when :math:`N = 4n^3`, else random placement) with exact
Maxwell--Boltzmann velocities at :math:`T`, then ``t_lift`` of thermostatted MD to melt
the lattice and relax the structure.

*Re-constraining a continuing box* (seamless HMM: never re-initialised). When
:meth:`MDStepper.advance` is called with :math:`v_{\rm new}` different from the box's
current :math:`v` (state column 1), the box is dilated affinely,
:math:`\mathbf x_i \to s\,\mathbf x_i`, :math:`L \to sL`, :math:`s = (v_{\rm new}/v)^{1/3}`
(every periodic image scales with the box, so the configuration is the same periodic
fluid at the new density); the velocities are left as they are: the temperature is not a
macro variable here but the heat bath's, and the thermostat restores it within
:math:`\tau_T` (rescaling :math:`K` to its mean at every macro step would suppress its
canonical fluctuations). The first samples after a dilation carry the structure's
relaxation (a lag of order :math:`\varepsilon' = \Delta t/(n\,\delta\tau)` in the sense of
:mod:`hmmpar.couplers.hmm`); near the fixed point the dilations are small and of either
sign, so this lag biases the fixed point only at second order.

*State* ``(nb, 3 + 6N)`` float64 per box: ``[L, v, tau, x (3N), v (3N)]`` with
:math:`\tau` the micro time run since lifting (bookkeeping), positions (wrapped at the last
neighbour-list build) and velocities in atom order: a state travels in farm rows and
checkpoints as it is.

*Random numbers.* The :math:`c`-th :meth:`MDStepper.advance` (counted by
:attr:`MDStepper.calls`) draws the thermostat numbers of instance :math:`b` (row :math:`b`)
from ``task_rng(seed, c, b)``, the stream of farm task ``b`` at farm call ``c``
(``TaskContext.rng(b)``, used by :meth:`MDStepper.advance_units`), so a farm run is bitwise
the same on any number of ranks and a batch member gets what it would get alone at that
row. The :math:`k`-th :meth:`MDStepper.lift` draws instance :math:`b`'s lattice, velocities
and thermostat from ``task_rng(seed, k, b, family=INSTANCES)`` (a family apart from the
farm tasks', and the same on every rank, where a farmed stepper lifts).

References: E & Engquist, *The heterogeneous multiscale methods*, Commun. Math. Sci. 1
(2003) 87--132; E, Ren & Vanden-Eijnden, *A general strategy for designing seamless
multiscale methods*, J. Comput. Phys. 228 (2009) 5437--5453.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..core.rng import INSTANCES, task_rng
from ..micro.md import MDError, MDSystem, Potential, make_potential
from ..micro.md.engine import DEFAULT_SKIN, _rescale
from ..micro.md.estimators import C_P
from .stepper import Window

if TYPE_CHECKING:
    from ..core.farm import TaskContext

__all__ = ["MDStepper"]

#: state columns before the positions: box side L, volume per atom v, micro time run
HEADER = 3


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or not value > 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _whole(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


class MDStepper:
    r"""A batch of thermostatted LJ boxes, one per macro instance, driven by the volume per
    atom: the micro model of the isothermal piston (module docstring).

    Parameters
    ----------
    temperature
        :math:`T` of the heat bath (> 0, LJ units).
    p_ext
        External pressure :math:`p_{\rm ext}` (finite).
    zeta
        Piston friction :math:`\zeta` (> 0): :math:`\dot v = (p - p_{\rm ext})/\zeta`.
    n_atoms
        Atoms per box (>= 2; fcc start when :math:`4n^3`). The box side
        :math:`(N v)^{1/3}` must exceed :math:`2r_c`, which bounds ``v`` from below.
    potential
        :func:`~hmmpar.micro.md.make_potential` (default LJ cut at 2.5 and shifted, the
        potential of the PeTS equation of state).
    dtau
        Velocity-Verlet step :math:`\delta\tau` (LJ time, > 0).
    seed
        Root of the random streams (whole number >= 0).
    tau_t
        Thermostat time :math:`\tau_T` (> 0).
    sample_every, thermostat_every
        Steps between pressure samples and between thermostat kicks (``thermostat_every``
        a multiple of ``sample_every``; ``steps`` of :meth:`advance` a multiple of
        ``thermostat_every``).
    t_lift
        Thermostatted MD run by :meth:`lift` after building the box (LJ time, >= 0).
    skin
        Neighbour-list skin.

    Attributes
    ----------
    nx : int
        1 (the volume per atom v).
    calls : int
        :meth:`advance` calls so far (the ``step`` key of the next call's streams).
    lifts : int
        :meth:`lift` calls so far.

    Raises
    ------
    ValueError
        One line naming the parameter at fault.
    """

    nx = 1

    def __init__(self, temperature: float, p_ext: float, zeta: float, n_atoms: int = 108,
                 potential: Potential | None = None, dtau: float = 0.005, seed: int = 0, tau_t: float = 0.1,
                 sample_every: int = 5, thermostat_every: int = 10, t_lift: float = 2.0,
                 skin: float = DEFAULT_SKIN) -> None:
        self.temperature = _positive("temperature", temperature)
        if isinstance(p_ext, bool) or not isinstance(p_ext, (int, float, np.floating, np.integer)) \
                or not math.isfinite(p_ext):
            raise ValueError(f"p_ext must be a finite number, got {p_ext!r}")
        self.p_ext = float(p_ext)
        self.zeta = _positive("zeta", zeta)
        self.n_atoms = _whole("n_atoms", n_atoms, 2)
        if potential is None:
            potential = make_potential("lj", 2.5, shift=True)
        if not isinstance(potential, Potential):
            raise ValueError(f"potential must be a hmmpar.micro.md Potential, got {type(potential).__name__}")
        self.potential = potential
        self.dtau = _positive("dtau", dtau)
        self.seed = _whole("seed", seed, 0)
        self.tau_t = _positive("tau_t", tau_t)
        self.sample_every = _whole("sample_every", sample_every, 1)
        self.thermostat_every = _whole("thermostat_every", thermostat_every, 1)
        if self.thermostat_every % self.sample_every:
            raise ValueError(f"thermostat_every must be a multiple of sample_every = {self.sample_every}, "
                             f"got {thermostat_every!r}")
        if isinstance(t_lift, bool) or not isinstance(t_lift, (int, float)) or not math.isfinite(t_lift) \
                or t_lift < 0:
            raise ValueError(f"t_lift must be a finite time >= 0, got {t_lift!r}")
        self.lift_steps = -(-int(round(t_lift / self.dtau)) // self.thermostat_every) * self.thermostat_every
        self.skin = _positive("skin", skin)
        #: smallest volume per atom a box can have: side (N v)^(1/3) > 2 r_c
        self.v_min = (2.0 * potential.cutoff) ** 3 / self.n_atoms if potential.interacting else 0.0
        self.width = HEADER + 6 * self.n_atoms
        self.calls = 0
        self.lifts = 0

    # ------------------------------------------------------------------ checks
    def check_volumes(self, X: np.ndarray) -> np.ndarray:
        """``X`` as ``(nb, 1)`` volumes per atom, each finite and above :attr:`v_min` (ValueError)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.ndim != 2 or X.shape[1] != 1:
            raise ValueError(f"X must have shape (nb, 1) (the volume per atom), got {X.shape}")
        bad = ~(np.isfinite(X[:, 0]) & (X[:, 0] > self.v_min))
        if bad.any():
            raise ValueError(f"X must be a finite volume per atom > {self.v_min:.6g} (box side > 2 r_c with "
                             f"{self.n_atoms} atoms), got {X[bad, 0][0]!r} at row {int(np.argmax(bad))}")
        return X

    def _check_states(self, states: np.ndarray, nb: int) -> None:
        if not isinstance(states, np.ndarray) or states.shape != (nb, self.width) or states.dtype != np.float64:
            raise ValueError(f"states must be a float64 array of shape {(nb, self.width)} from lift(), "
                             f"got {getattr(states, 'shape', type(states).__name__)}")

    # ------------------------------------------------------------------ micro pieces
    def _thermostat(self, system: MDSystem, rng: np.random.Generator) -> None:
        """One canonical velocity-rescaling kick (module docstring)."""
        n = system.n_atoms
        nf = 3 * (n - 1)
        c = math.exp(-self.thermostat_every * self.dtau / self.tau_t)
        vel = system.v
        pec = vel - vel.mean(axis=0)
        k = 0.5 * float(np.sum(pec * pec))
        kbar = 0.5 * nf * self.temperature
        r1 = rng.standard_normal()
        chi2 = rng.chisquare(nf - 1) if nf > 1 else 0.0
        k_new = c * k + (1.0 - c) * kbar * (r1 * r1 + chi2) / nf + 2.0 * r1 * math.sqrt(c * (1.0 - c) * k * kbar / nf)
        _rescale(vel, k_new)

    def _run(self, system: MDSystem, steps: int, rng: np.random.Generator, sample: bool) -> np.ndarray:
        out = []
        for _ in range(steps // self.thermostat_every):
            s = system.run(self.thermostat_every, self.dtau, sample_every=self.sample_every if sample else 0)
            if sample:
                out.append(s[:, C_P])
            self._thermostat(system, rng)
        return np.concatenate(out) if out else np.empty(0)

    def _system(self, row: np.ndarray) -> MDSystem:
        n = self.n_atoms
        x = row[HEADER:HEADER + 3 * n].reshape(n, 3)
        v = row[HEADER + 3 * n:].reshape(n, 3)
        return MDSystem(x, v, row[0], self.potential, self.skin)

    def _store(self, row: np.ndarray, system: MDSystem, steps: int) -> None:
        n = self.n_atoms
        row[HEADER:HEADER + 3 * n] = system.positions.reshape(-1)
        row[HEADER + 3 * n:] = system.velocities.reshape(-1)
        row[2] += steps * self.dtau

    @property
    def lifted_bytes(self) -> int:
        """Bytes of one lifted box, ``3 + 6N`` float64 (the memory estimate)."""
        return 8 * self.width

    # ------------------------------------------------------------------ the protocol
    def lift(self, X: np.ndarray, t: float) -> np.ndarray:
        """Boxes ``(nb, 3 + 6N)`` at the volumes per atom ``X`` ``(nb, 1)``, thermostatted at
        T for ``t_lift`` (module docstring); the k-th call draws from
        ``task_rng(seed, k, b, family=INSTANCES)``."""
        X = self.check_volumes(X)
        S = self.lift_units(X, np.arange(X.shape[0]), t, self.lifts)
        self.lifts += 1
        return S

    @property
    def lifted_unit(self) -> tuple[np.dtype, tuple[int, ...]]:
        """The dtype and shape of one lifted box (a farm's result rows, :meth:`lift_units`)."""
        return np.dtype(np.float64), (self.width,)

    def lift_units(self, X: np.ndarray, ids: np.ndarray, t: float, k: int) -> np.ndarray:
        """The boxes of batch members ``ids`` at volumes ``X`` ``(n, 1)`` in lift call ``k``:
        rows ``ids`` of that :meth:`lift` (member b draws from ``task_rng(seed, k, b,
        family=INSTANCES)``), so a farm may lift the members on any rank
        (:class:`~hmmpar.couplers.farmed.FarmedMicroStepper`); the counter is the caller's."""
        X = self.check_volumes(X)
        S = np.zeros((X.shape[0], self.width))
        for i, b in enumerate(np.asarray(ids, dtype=np.int64)):
            rng = task_rng(self.seed, int(k), int(b), family=INSTANCES)
            v = float(X[i, 0])
            system = MDSystem.create(self.n_atoms, 1.0 / v, self.potential, rng, self.temperature, skin=self.skin)
            S[i, 0], S[i, 1] = float(system.box[0]), v
            self._run(system, self.lift_steps, rng, sample=False)
            self._store(S[i], system, 0)
        return S

    def advance(self, states: np.ndarray, X: np.ndarray, t: float, steps: int) -> Window:
        """``steps`` thermostatted MD steps of every box (in place) at the volume per atom
        ``X`` (boxes whose v differs are dilated first); the window of
        :math:`(p - p_{\\rm ext})/\\zeta`. Call c draws row b's numbers from
        ``task_rng(seed, c, b)``."""
        steps = self._check_steps(steps)
        X = self.check_volumes(X)
        self._check_states(states, X.shape[0])
        rngs = [task_rng(self.seed, self.calls, b) for b in range(X.shape[0])]
        self.calls += 1
        return self._advance(states, X, steps, rngs)

    def advance_units(self, states: np.ndarray, X: np.ndarray, t: float, steps: int, ids: np.ndarray,
                      ctx: "TaskContext") -> Window:
        """:meth:`advance` of the instances ``ids`` of a farmed batch
        (:class:`~hmmpar.couplers.farmed.FarmedMicroStepper`): instance ``b`` draws from
        ``ctx.rng(b)`` = ``task_rng(seed, c, b)`` of the farm's call c, the numbers
        :meth:`advance` gives row b at its c-th call with the run's seed."""
        steps = self._check_steps(steps)
        X = self.check_volumes(X)
        self._check_states(states, X.shape[0])
        return self._advance(states, X, steps, [ctx.rng(int(b)) for b in np.asarray(ids)])

    def _check_steps(self, steps: int) -> int:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1 \
                or steps % self.thermostat_every:
            raise ValueError(f"steps must be a positive multiple of thermostat_every = {self.thermostat_every}, "
                             f"got {steps!r}")
        return int(steps)

    def _advance(self, states: np.ndarray, X: np.ndarray, steps: int,
                 rngs: Sequence[np.random.Generator]) -> Window:
        nb = X.shape[0]
        mean = np.empty((nb, 1))
        last = np.empty((nb, 1))
        for b in range(nb):
            row = states[b]
            v_new = float(X[b, 0])
            if v_new != row[1]:
                side = (self.n_atoms * v_new) ** (1.0 / 3.0)
                row[HEADER:HEADER + 3 * self.n_atoms] *= side / row[0]
                row[0], row[1] = side, v_new
            try:
                system = self._system(row)
                p = self._run(system, steps, rngs[b], sample=True)
            except MDError:
                row[:] = np.nan     # the coupler reports the non-finite macro state
                mean[b, 0] = last[b, 0] = np.nan
                continue
            self._store(row, system, steps)
            mean[b, 0] = (float(np.mean(p)) - self.p_ext) / self.zeta
            last[b, 0] = (float(p[-1]) - self.p_ext) / self.zeta
        return Window(mean, last, steps)

    def restrict(self, states: np.ndarray) -> np.ndarray:
        """The volumes per atom ``(nb, 1)`` of the boxes."""
        return np.array(states[:, 1:2], dtype=float)
