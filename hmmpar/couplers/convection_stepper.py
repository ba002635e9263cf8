r"""Boussinesq convection columns as a :class:`FreeStepper` whose macro state is the mean temperature.

The micro model is :class:`hmmpar.micro.convection.ConvectionModel` (2D Boussinesq
convection in a periodic box of depth 1, time in thermal diffusion times :math:`d^2/\kappa`,
docs/convection.md). Its horizontal mean temperature obeys

.. math::

    \partial_t\bar T = \partial_z^2\bar T - \partial_z\langle wT\rangle_x + f_T(z),
    \qquad \bar T(0) = \langle T_b\rangle_x,\ \bar T(1) = 0,

closed only through the eddy flux :math:`\langle wT\rangle` of the resolved convection
(superparameterization's micro/macro split, Grabowski 2001; Khairoutdinov & Randall 2001).
The coarse variable of equation-free projective integration (Kevrekidis et al., Commun.
Math. Sci. 1 (2003) 715; projective forward Euler, Gear & Kevrekidis, SIAM J. Sci. Comput.
24 (2003) 1091) is therefore the profile :math:`U = \bar T(z_j)` at the model's ``nz``
Chebyshev--Gauss--Lobatto levels (``model.z``, ascending, :math:`z_0 = 0`).

*Restriction* :math:`R(u)`: the :math:`k = 0` Fourier coefficient of :math:`T` at each level
(the model stores :math:`\hat T_k(z_j)` with ``norm="forward"``, so it is the mean).

*Lifting with memory* :math:`L(U)`: the last micro state the
stepper evolved (the end of the previous :meth:`ConvectionStepper.evolve` of the same batch
size) with its mean temperature replaced by :math:`U`; the convective perturbation
(:math:`k > 0` modes of :math:`T`, vorticity and mean flow at finite Pr) is kept, so the
eddies need not spin up again after every extrapolation (the choice of what to give
the unresolved fields is the lifting problem of equation-free computation; Kevrekidis &
Samaey, *Equation-free multiscale computation: algorithms and applications*, Annu. Rev.
Phys. Chem. 60 (2009) 321--344). The first lift (or one of a new
batch size) uses the model's conductive initial state with a random perturbation of
``amplitude`` (:meth:`ConvectionModel.initial_states`; generators
``hmmpar.core.rng.task_rng(seed, 0, b)`` for column :math:`b`) instead, its mean replaced
by :math:`U`. ``amplitude = 0`` with ``memory=False`` is the documented alternative of
lifting to the fluid at rest (exactly the heat equation below onset). The lifted column's
clock is set to :math:`t`.

*Evolution*: :meth:`ConvectionModel.advance` over ``steps`` :math:`\times h` (its own IMEX
steps, CFL- and buoyancy-limited, chosen per column: a column's trajectory is bitwise the
same alone or in any batch; :attr:`ConvectionStepper.substeps` records how many each
serial :meth:`~ConvectionStepper.evolve` call took).

*On the farm* (:class:`~hmmpar.couplers.farmed.FarmedStepper`): the columns are the units;
:meth:`~ConvectionStepper.evolve_units` advances them without touching the memory, and with
``memory=True`` the stepper asks for its memory back (``keeps_memory``): the farm returns
every column's state after the last inner step of a coarse time-stepper call and hands the
whole batch to :meth:`~ConvectionStepper.remember` on every rank, the state the serial
``evolve`` would have stored. So farmed projective integration is bitwise the serial one on
any number of ranks; :meth:`~ConvectionStepper.memory_state` and
:meth:`~ConvectionStepper.restore_memory` carry the memory through a checkpoint.
``substeps`` is only recorded by the serial ``evolve`` (farm tasks run on other ranks).

**Below onset** (:math:`\mathrm{Ra} < \mathrm{Ra}_c`, :data:`~hmmpar.micro.convection.RA_C_FREE_SLIP`
= :math:`27\pi^4/4` for free-slip walls) every perturbation decays, the fluid comes to rest
and :math:`\bar T` obeys the heat equation: a perturbation :math:`A\sin(\pi z)` of the
conductive profile decays at the exact rate :math:`\pi^2` (the diffusivity is 1 in these
units). Projective Euler multiplies it by :math:`\sigma = \rho_K((M + 1)\rho_1 - M)` per
outer step, with :math:`\rho_K` the micro model's factor over :math:`K` inner steps
(:math:`e^{-\pi^2 K h}` for an exact micro integrator; the IMEX stability function to the
power of the substeps for the model's), against the exact :math:`e^{-\pi^2(k + 1 + M)h}`.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.rng import task_rng
from ..micro.convection import ConvectionModel, ConvectionParams

__all__ = ["ConvectionStepper", "imex_stability"]


def imex_stability(tableau, z: complex | np.ndarray) -> np.ndarray:
    r"""The stability function :math:`R(z)` of an ARS scheme's implicit part (``model.tableau``)
    for :math:`y' = \lambda y` treated implicitly, :math:`z = \lambda\Delta t`: stage
    :math:`Y_i = y + z\sum_{j\ge1} a^I_{ij}Y_j`, :math:`R = Y_s/y` (stiffly accurate)."""
    A = np.asarray(tableau.a_imp)[1:, 1:]
    z = np.asarray(z, dtype=complex)
    out = np.empty(z.shape, dtype=complex)
    for idx, zz in np.ndenumerate(z):
        Y = np.linalg.solve(np.eye(A.shape[0]) - zz * A, np.ones(A.shape[0]))
        out[idx] = Y[-1]
    return out if out.ndim else out[()]


class ConvectionStepper:
    r"""Batches of convection columns as a :class:`~hmmpar.couplers.FreeStepper` whose macro
    state is the horizontal-mean temperature profile (module docstring).

    Parameters
    ----------
    params
        The convection box (:class:`~hmmpar.micro.convection.ConvectionParams`).
    h
        Inner step: the simulated time of one :meth:`evolve` step, in diffusion times (> 0).
    seed
        Root of the initial perturbations' streams (a whole number >= 0).
    amplitude
        Amplitude of the random temperature perturbation of a fresh lift (>= 0).
    bottom
        Bottom temperature (or flux) of the columns, a scalar (default 1).
    memory
        Lift from the last evolved micro state (True, default) or always from a fresh one.

    Attributes
    ----------
    model : ConvectionModel
        The micro model.
    nu : int
        ``nz``, the macro variables per state.
    substeps : list of int
        IMEX steps per column of each serial :meth:`evolve` call so far (column 0; not
        recorded by :meth:`evolve_units`, the farm's).
    keeps_memory : bool
        ``memory``: a :class:`~hmmpar.couplers.farmed.FarmedStepper` returns the evolved
        states through :meth:`remember`.

    Raises
    ------
    ValueError
        A non-positive ``h``, a negative ``amplitude``, a bad ``seed``; invalid ``params``
        raise the model's :class:`~hmmpar.core.errors.ConfigError` (one line naming the key).
    """

    def __init__(self, params: ConvectionParams, h: float, seed: int = 0, *, amplitude: float = 1e-3,
                 bottom: float = 1.0, memory: bool = True) -> None:
        if not (isinstance(h, (int, float)) and math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite number, got {h!r}")
        if not (isinstance(amplitude, (int, float)) and math.isfinite(amplitude) and amplitude >= 0):
            raise ValueError(f"amplitude must be a finite number >= 0, got {amplitude!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
        if not (isinstance(bottom, (int, float)) and math.isfinite(bottom)):
            raise ValueError(f"bottom must be a finite number, got {bottom!r}")
        self.model = ConvectionModel(params)
        self.h, self.seed, self.amplitude = float(h), int(seed), float(amplitude)
        self.bottom, self.memory = float(bottom), bool(memory)
        self.nu = self.model.nz
        self.substeps: list[int] = []
        self._last: np.ndarray | None = None

    def lift(self, U: np.ndarray, t: float) -> np.ndarray:
        """Columns (rows of ``model.state_dtype``) whose mean temperature is ``U`` ``(nb, nz)``."""
        U = np.atleast_2d(np.asarray(U, dtype=float))
        if U.ndim != 2 or U.shape[1] != self.nu:
            raise ValueError(f"U must have shape (nb, {self.nu}) (a profile at model.z), got {U.shape}")
        if not np.all(np.isfinite(U)):
            raise ValueError("U must be finite")
        nb = U.shape[0]
        if self.memory and self._last is not None and self._last.shape[0] == nb:
            S = self._last.copy()
        else:
            rngs = [task_rng(self.seed, 0, b) for b in range(nb)]
            S = self.model.initial_states(rngs, amplitude=self.amplitude, bottom=self.bottom)
        T = S["T"]
        T[:, :, 0] = U
        S["T"] = T
        S["t"] = float(t)
        return S

    def evolve(self, states: np.ndarray, t: float, steps: int) -> None:
        """Every column ``steps * h`` forward by the convection model (in place)."""
        if isinstance(steps, bool) or int(steps) != steps or steps < 0:
            raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
        if not isinstance(states, np.ndarray) or states.dtype != self.model.state_dtype:
            raise ValueError("states must be rows of model.state_dtype from lift()")
        if steps == 0:
            return
        diag = self.model.advance(states, int(steps) * self.h)
        self.substeps.append(int(diag["steps"][0]))
        self._last = states.copy()

    @property
    def lifted_bytes(self) -> int:
        """Bytes of one lifted column (a row of ``model.state_dtype``; the memory estimate)."""
        return int(self.model.state_dtype.itemsize)

    @property
    def keeps_memory(self) -> bool:
        return self.memory

    def evolve_units(self, states: np.ndarray, index: np.ndarray, t: float, steps: int) -> None:
        """Columns ``states`` (any sub-batch; ``index`` their places in the batch, unused: a
        column's trajectory does not depend on its batch) ``steps * h`` forward, in place,
        leaving the memory and ``substeps`` alone (the farm's evolution)."""
        if steps:
            self.model.advance(states, int(steps) * self.h)

    def remember(self, states: np.ndarray, t: float) -> None:
        """Take the whole evolved batch ``states`` as the memory of the next :meth:`lift`
        (the farm calls it on every rank after gathering the columns)."""
        self._last = np.array(states, dtype=self.model.state_dtype, copy=True)

    def memory_state(self) -> np.ndarray | None:
        """The memory, one row of ``model.state_dtype`` per batch member (None: none yet, or
        ``memory=False``)."""
        return None if not self.memory or self._last is None else self._last.copy()

    def restore_memory(self, rows: np.ndarray | None) -> None:
        """Set the memory from :meth:`memory_state`'s rows, or their raw bytes ``(nb, itemsize)``
        ``uint8`` (a checkpoint's); None clears it (the next lift is fresh)."""
        if rows is None:
            self._last = None
            return
        rows = np.asarray(rows)
        dt = self.model.state_dtype
        if rows.dtype != dt:
            if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != dt.itemsize:
                raise ValueError(f"memory rows must be model.state_dtype rows or (nb, {dt.itemsize}) bytes, "
                                 f"got {rows.dtype} {rows.shape}")
            rows = np.ascontiguousarray(rows).view(dt).reshape(rows.shape[0])
        self._last = rows.copy()

    def restrict(self, states: np.ndarray) -> np.ndarray:
        """The horizontal-mean temperature profiles ``(nb, nz)``."""
        return states["T"][:, :, 0].real.copy()
