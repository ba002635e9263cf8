r"""The micro time-stepper protocol: all a coupler may ask of a micro model.

A micro model is a batch of ``nb`` independent micro states (an ensemble, a set of
patches, one state per macro point). Each is constrained by a macro state
:math:`X_b \in \mathbb R^{n_x}` and the macro time :math:`t`, both held fixed while the
micro model runs. A coupler needs three things:

* :meth:`MicroStepper.lift`: micro states consistent with macro states (the
  re-initialisation of the classical HMM, the lifting of equation-free methods);
* :meth:`MicroStepper.advance`: ``steps`` micro steps of the stepper's own size
  :math:`\delta\tau` (in its own, fast, time) with the constraints held fixed, returning the
  estimator's samples (:class:`Window`): the macro data :math:`F(t, X_b, y_b)` (a slow rate,
  a flux) averaged over the steps and its value after the last one;
* :meth:`MicroStepper.restrict`: the macro variables a micro state represents.

A coupler never looks inside a state: if one needs to know which model it drives, this
protocol is missing a method.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Window:
    """The estimator's samples over one :meth:`MicroStepper.advance` call.

    Attributes
    ----------
    mean : ndarray
        ``(nb, nx)``: :math:`\\frac1n\\sum_{s=1}^{n} F(t, X_b, y_b^{(s)})`, the mean over the
        states after each of the ``n`` steps (the windowed estimator).
    last : ndarray
        ``(nb, nx)``: :math:`F(t, X_b, y_b^{(n)})` (the instantaneous estimator).
    steps : int
        Micro steps taken per state (the work, in steps, is ``nb * steps``).
    """

    mean: np.ndarray
    last: np.ndarray
    steps: int


@runtime_checkable
class MicroStepper(Protocol):
    """A batch of micro states driven by macro constraints (see the module docstring)."""

    #: macro variables per state
    nx: int
    #: the micro step in the stepper's own (fast) time
    dtau: float

    def lift(self, X: np.ndarray, t: float) -> np.ndarray:
        """Micro states ``(nb, ...)`` consistent with the macro states ``X`` ``(nb, nx)`` at
        time ``t`` (a new array)."""
        ...

    def advance(self, states: np.ndarray, X: np.ndarray, t: float, steps: int) -> Window:
        """``steps`` micro steps of every state (in place) with ``X`` and ``t`` held fixed."""
        ...

    def restrict(self, states: np.ndarray) -> np.ndarray:
        """The macro variables ``(nb, nx)`` of the micro states."""
        ...
