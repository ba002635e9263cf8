"""Time-scale couplers that need nothing from a micro model but a time-stepper (issue 14).

* :mod:`.stepper`: the protocol a micro model implements (:class:`MicroStepper`) and the
  window of estimator samples it returns (:class:`Window`);
* :mod:`.slow_fast`: a micro stepper for slow--fast ODE systems given as numba functions;
* :mod:`.hmm`: the seamless HMM (E, Ren & Vanden-Eijnden 2009) and, for comparison, the
  classical HMM that re-initialises the micro model every macro step;
* :mod:`.projective`: equation-free projective forward Euler (Gear & Kevrekidis 2003) and
  projective Runge--Kutta (Lee & Gear 2007) over a lift / evolve / restrict stepper
  (:class:`FreeStepper`), telescopic when nested (:class:`ProjectiveStepper`);
* :mod:`.patches`: the gap-tooth scheme and patch dynamics with buffers in 1D (Samaey,
  Roose & Kevrekidis 2005, 2006) for heterogeneous diffusion (:class:`PatchDiffusion`);
* :mod:`.ssa_stepper`: an SSA ensemble as a :class:`FreeStepper` (the ensemble mean as the
  macro state) and projective Euler with a least-squares slope (:func:`projective_euler_fit`).

Status (issue 14, first increment): the methods and their validation; not yet an app, the
farm, checkpoints, 2D patches, continuation or the OU/convection/MD steppers
(docs/couplers.md).
"""
from .hmm import HMMResult, classical_hmm, seamless_hmm
from .patches import PatchDiffusion, gap_tooth, harmonic_mean, macro_rate, patch_dynamics
from .projective import (EulerODE, FreeStepper, LinearEuler, ProjectiveResult, ProjectiveStepper, amplification,
                         projective_euler, projective_rk, telescopic_amplification)
from .slow_fast import SlowFastODE
from .ssa_stepper import SSAEnsembleStepper, projective_euler_fit
from .stepper import MicroStepper, Window

__all__ = ["EulerODE", "FreeStepper", "HMMResult", "LinearEuler", "MicroStepper", "PatchDiffusion", "ProjectiveResult", "ProjectiveStepper",
           "SSAEnsembleStepper", "SlowFastODE", "Window", "amplification", "classical_hmm", "gap_tooth", "harmonic_mean", "macro_rate",
           "patch_dynamics", "projective_euler", "projective_euler_fit", "projective_rk", "seamless_hmm",
           "telescopic_amplification"]
