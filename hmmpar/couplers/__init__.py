"""Time-scale couplers that need nothing from a micro model but a time-stepper (issue 14).

* :mod:`.stepper`: the protocol a micro model implements (:class:`MicroStepper`) and the
  window of estimator samples it returns (:class:`Window`);
* :mod:`.slow_fast`: a micro stepper for slow--fast ODE systems given as numba functions;
* :mod:`.hmm`: the seamless HMM (E, Ren & Vanden-Eijnden 2009) and, for comparison, the
  classical HMM that re-initialises the micro model every macro step;
* :mod:`.projective`: equation-free projective forward Euler (Gear & Kevrekidis 2003) and
  projective Runge--Kutta (Lee & Gear 2007) over a lift / evolve / restrict stepper
  (:class:`FreeStepper`), telescopic when nested (:class:`ProjectiveStepper`);
* :mod:`.stability`: the predicted stability of a (k, M) pair and the spectral-gap check;
* :mod:`.patches`, :mod:`.patches2d`: the gap-tooth scheme and patch dynamics with buffers
  (Samaey, Roose & Kevrekidis 2005, 2006) for heterogeneous diffusion in 1D (periodic, or
  Dirichlet with a reaction) and 2D (periodic);
* :mod:`.continuation`: coarse Newton--Krylov steady states (PETSc SNES), pseudo-arclength
  continuation and the leading eigenvalues of the coarse Jacobian (SLEPc or ARPACK);
* :mod:`.farmed`: the coarse time-stepper and the HMM micro runs spread over MPI ranks by
  the farm (bitwise the same on any rank count);
* steppers for hmmpar's micro models: :mod:`.ssa_stepper` (direct-SSA ensembles),
  :mod:`.nested_ssa_stepper`, :mod:`.ou_stepper`, :mod:`.md_stepper`, :mod:`.convection_stepper`.

Run from a config: the ``couplers`` application (:mod:`hmmpar.apps.couplers`, docs/couplers.md).
"""
from .continuation import (Branch, CoarseNewtonError, Continuation, ContinuationError, bratu_fold, coarse_newton,
                           leading_eigenvalues, pseudo_arclength)
from .convection_stepper import ConvectionStepper
from .farmed import FarmedMicroStepper, FarmedStepper
from .hmm import HMMResult, classical_hmm, seamless_hmm
from .md_stepper import MDStepper
from .nested_ssa_stepper import NestedSSAEnsembleStepper
from .ou_stepper import OUStepper
from .patches import PatchDiffusion, bratu, gap_tooth, harmonic_mean, macro_rate, patch_dynamics, steady_residual
from .patches2d import PatchDiffusion2D, macro_rate_2d
from .projective import (EulerODE, FreeStepper, LinearEuler, ProjectiveResult, ProjectiveStepper, amplification,
                         projective_euler, projective_rk, telescopic_amplification)
from .slow_fast import SlowFastODE
from .ssa_stepper import SSAEnsembleStepper, projective_euler_fit
from .stepper import MicroStepper, Window

__all__ = ["Branch", "CoarseNewtonError", "Continuation", "ContinuationError", "ConvectionStepper", "EulerODE",
           "FarmedMicroStepper", "FarmedStepper", "FreeStepper", "HMMResult", "LinearEuler", "MDStepper", "MicroStepper",
           "NestedSSAEnsembleStepper", "OUStepper", "PatchDiffusion", "PatchDiffusion2D", "ProjectiveResult",
           "ProjectiveStepper", "SSAEnsembleStepper", "SlowFastODE", "Window", "amplification", "bratu", "bratu_fold",
           "classical_hmm", "coarse_newton", "gap_tooth", "harmonic_mean", "leading_eigenvalues", "macro_rate",
           "macro_rate_2d", "patch_dynamics", "projective_euler", "projective_euler_fit", "projective_rk",
           "pseudo_arclength", "seamless_hmm", "steady_residual", "telescopic_amplification"]
