r"""Time-scale couplers run from a config: one application, the method chosen by a key.

``run.app = "couplers"`` runs one of the methods of :mod:`hmmpar.couplers` on one of the
micro models of :mod:`hmmpar.apps.coupler_models` (``model.name``; a user's own stepper with
``model.name = "user"``), for ``coupler.t_end`` in outer steps. ``coupler.method``:

========================  ====================================================  ==================================
method                    outer step                                            micro work per outer step
========================  ====================================================  ==================================
``seamless``              forward Euler, ``coupler.dt``; micro never restarted  ``coupler.steps`` steps
``classical``             forward Euler, ``coupler.dt``; micro re-lifted        ``relax + window`` steps
``projective_euler``      :math:`(k + 1 + M)h`                                  :math:`k + 1` inner steps
``telescopic``            :math:`(k_o + 1 + M_o)(k + 1 + M)h` (two levels)     :math:`(k_o + 1)(k + 1)`
``projective_rk``         ``coupler.dt``, tableau ``coupler.tableau``           :math:`s(K + 1)` (s stages)
``patch_dynamics``        ``coupler.dt``, tableau ``coupler.tableau``           :math:`s` micro times per patch
``gap_tooth``             the micro time :math:`\tau`                           one micro time per patch
========================  ====================================================  ==================================

``continuation`` (steady branches in a parameter, not a time integration) runs as
:class:`~hmmpar.apps.coarse_continuation.CoarseContinuation`, which this class hands the
config to (:meth:`Couplers.__new__`) and which shares the schema, the models and the farm.

All micro work goes through the farm (:mod:`hmmpar.couplers.farmed`): the units (batch
members, patches) of every coarse time-stepper call or micro run are farm tasks, and their
results are gathered on every rank, where the (small) macro state is held whole. So a run
is bitwise the same on any number of ranks, and a checkpoint (the macro state, the seamless
method's micro states, a stepper's lifting memory, the farm-call counter, at an outer-step
boundary) restarts bitwise on any number of ranks.

Bad input found before any micro work: a method the model cannot serve (``seamless`` needs
an estimator; projective methods need a free stepper), a ``t_end`` that is not a whole
number of outer steps, a projective RK step not longer than its inner steps, a model with
no spectral gap for a projective method (a ConfigError, exit 2), a run whose replicated
micro states would not fit the node's memory (:meth:`Couplers.memory_estimate`, checked from
the config before the model is built), and a ``(k, M)`` that the linearised amplification
predicts unstable (a warning naming the mode and the growth; from the Jacobian of an ODE
model or of an SSA ensemble's rate equations, :mod:`hmmpar.couplers.stability`; measured by
power iteration for the other deterministic steppers).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hmmpar.apps.base import Application, FixedSteps
from hmmpar.apps.coupler_models import HMM_METHODS, MODELS, build, micro_bytes
from hmmpar.core.checkpoint import Block, CheckpointReader
from hmmpar.core.config import Field
from hmmpar.core.errors import CheckpointError, ConfigError, HmmparError, TaskError
from hmmpar.core.preflight import check_memory

METHODS = ("seamless", "classical", "projective_euler", "telescopic", "projective_rk", "patch_dynamics",
           "gap_tooth", "continuation")
#: most outer steps of a run (the history of macro states is kept whole)
MAX_STEPS = 1_000_000


class Couplers(FixedSteps, Application):
    """Seamless / classical HMM, projective integration, patch dynamics, gap-tooth and coarse continuation runs."""

    name = "couplers"
    drives_farm = True
    memory_keys = ("patches.n_patches", "patches.points_per_period", "patches.patch_periods",
                   "patches.buffer_periods", "ssa.replicas", "md.n_atoms", "model.points", "coupler.t_end")
    result_dtype = np.dtype([("unused", "f8")])
    schema = {
        "coupler": {
            "method": Field(str, "patch_dynamics", "the coupler (docs/couplers.md)", choices=METHODS),
            "dt": Field(float, 4e-3, "outer (macro) step of seamless, classical, projective_rk, patch_dynamics",
                        min=0.0, min_exclusive=True),
            "t_end": Field(float, 0.048, "final time (a whole number of outer steps)", min=0.0,
                           min_exclusive=True, physics=False),
            "tableau": Field(str, "rk4", "outer Runge-Kutta method of projective_rk and patch_dynamics",
                             choices=("euler", "rk2", "rk4")),
            "k": Field(int, 1, "projective_euler / telescopic inner level: inner steps before the last two",
                       min=0, max=10**6),
            "M": Field(float, 4.0, "projective_euler / telescopic inner level: extrapolation in inner steps",
                       min=0.0, max=1e6),
            "k_outer": Field(int, 1, "telescopic outer level: steps of the inner level before the last two",
                             min=0, max=10**6),
            "M_outer": Field(float, 4.0, "telescopic outer level: extrapolation in inner-level steps",
                             min=0.0, max=1e6),
            "fit_window": Field(int, 0, "projective_euler: 0 the chord of the last inner step; w >= 2 the "
                                "least-squares slope over the last w restricted values (<= k + 1; noisy steppers)",
                                min=0, max=10**6),
            "K": Field(int, 8, "projective_rk: damping inner steps before the chord of each stage", min=0,
                       max=10**6),
            "steps": Field(int, 1000, "seamless: micro steps per macro step", min=1, max=10**9),
            "estimator": Field(str, "window", "seamless: mean over the steps or the last state",
                               choices=("window", "instantaneous")),
            "relax": Field(int, 200, "classical: discarded micro steps after lifting", min=0, max=10**9),
            "window": Field(int, 800, "classical: averaged micro steps", min=1, max=10**9),
        },
        "model": {
            "name": Field(str, "homogenization", "micro model (hmmpar.apps.coupler_models)", choices=MODELS),
            "points": Field(int, 8, "seed / dissipative / ou: number of initial values X0", min=1, max=10**6),
            "x0_min": Field(float, 0.5, "seed / dissipative / ou: smallest X0"),
            "x0_max": Field(float, 1.5, "seed / dissipative / ou: largest X0"),
            "eps": Field(float, 1e-6, "seed / dissipative / ou: scale separation eps", min=0.0, min_exclusive=True,
                         max=1.0),
            "dtau": Field(float, 0.05, "seed / dissipative / ou: micro step in fast time t/eps (RK4 for the HMM "
                          "methods; forward Euler h = dtau eps for the projective ones)", min=0.0,
                          min_exclusive=True, max=1e3),
            "function": Field(str, "", "user: module:function or file.py:function, called as "
                              "function(params) -> (stepper, U0); runs user code", path="code", user_code=True),
            "params": Field(dict, {}, "user: the table passed to model.function"),
        },
        "ssa": {
            "network": Field(str, "", "ssa_ensemble: reaction network (TOML, docs/ssa.md), relative to the "
                             "config file", physics=False, path="input"),
            "species": Field(list, [], "ssa_ensemble: the macro species (default all)", item_type=str),
            "replicas": Field(int, 1000, "ssa_ensemble: replicas per macro state", min=2, max=10**8),
            "h": Field(float, 0.01, "ssa_ensemble: inner step (simulated time)", min=0.0, min_exclusive=True),
            "lifting": Field(str, "round", "ssa_ensemble: round (mean exact to 1/(2R)) or poisson (direct engine)",
                             choices=("round", "poisson")),
            "engine": Field(str, "direct", "ssa_ensemble: direct SSA replicas or Nested SSA replicas",
                            choices=("direct", "nested")),
            "slow": Field(list, [], "ssa_ensemble, nested: the slow variables as sums of species, e.g. "
                          "[\"S1 + S2\", \"S3 + S4\"]", item_type=str),
            "tolerance": Field(float, 0.2, "ssa_ensemble, nested: the Nested SSA's error tolerance", min=0.0,
                               min_exclusive=True, max=1.0),
        },
        "md": {
            "temperature": Field(float, 2.0, "md_piston: thermostat temperature (LJ units)", min=0.0,
                                 min_exclusive=True),
            "p_ext": Field(float, 1.0, "md_piston: external pressure on the piston"),
            "zeta": Field(float, 1.0, "md_piston: piston friction (dv/dt = (p - p_ext)/zeta)", min=0.0,
                          min_exclusive=True),
            "n_atoms": Field(int, 108, "md_piston: atoms per box", min=2, max=10**6),
            "dt": Field(float, 0.005, "md_piston: MD time step", min=0.0, min_exclusive=True, max=0.1),
            "thermostat_every": Field(int, 10, "md_piston: MD steps between thermostat actions", min=1,
                                      max=10**6),
        },
        "continuation": {
            "lam0": Field(float, 0.18, "continuation: the parameter of the first branch point"),
            "dlam": Field(float, 0.18, "continuation: parameter step to the second point (its sign: the direction)"),
            "ds": Field(float, 0.4, "continuation: first arclength step (norm sqrt(mean U^2 + lambda^2))",
                        min=0.0, min_exclusive=True),
            "points": Field(int, 30, "continuation: most branch points", min=3, max=100000, physics=False),
            "after_fold": Field(int, 2, "continuation: stop this many points after the first fold (0: never)",
                                min=0, max=100000, physics=False),
            "lam_min": Field(float, -1e300, "continuation: stop when lambda leaves [lam_min, lam_max]", physics=False),
            "lam_max": Field(float, 1e300, "continuation: stop when lambda leaves [lam_min, lam_max]", physics=False),
            "eigenvalues": Field(int, 1, "continuation: leading eigenvalues of the coarse Jacobian per point",
                                 min=0, max=1000),
            "eig_method": Field(str, "auto", "continuation: SLEPc (Krylov-Schur) or ARPACK; auto: SLEPc if "
                                "installed", choices=("auto", "slepc", "arpack")),
            "fd_step": Field(float, 1e-4, "continuation: relative differencing step of J v (about the square "
                             "root of the residual's relative noise)", min=0.0, min_exclusive=True, max=0.5),
            "atol": Field(float, 1e-5, "continuation: Newton tolerance on the residual norm", min=0.0,
                          min_exclusive=True),
            "max_halvings": Field(int, 5, "continuation: halvings of ds after failed correctors before the "
                                  "error", min=0, max=60),
            "refine": Field(float, 0.05, "continuation: fold refinement spacing over the branch spacing (0: "
                            "the parabola through the branch points)", min=0.0, max=0.5),
        },
        "convection": {
            "ra_over_critical": Field(float, 0.5, "convection: Rayleigh number over the infinite layer's critical "
                                      "one (27 pi^4/4 free-slip, 1707.762 no-slip); < 1: below onset, the heat "
                                      "equation is the reference", min=0.0, min_exclusive=True, max=1e8),
            "pr": Field(float, float("inf"), "convection: Prandtl number (inf: Stokes flow)", min=0.0,
                        min_exclusive=True, allow_inf=True),
            "aspect": Field(float, 2.0 * 2.0 ** 0.5, "convection: box width over depth (periodic; 2 sqrt 2 holds "
                            "the free-slip critical wavelength)", min=0.0, min_exclusive=True, max=1e3),
            "nx": Field(int, 16, "convection: Fourier points in x (even)", min=8, max=4096),
            "nz": Field(int, 17, "convection: Chebyshev points in z, walls included", min=9, max=513),
            "walls": Field(str, "free-slip", "convection: velocity condition at both walls",
                           choices=("free-slip", "no-slip")),
            "cfl": Field(float, 0.5, "convection: Courant number of the IMEX steps", min=0.0, min_exclusive=True,
                         max=1.0),
            "h": Field(float, 0.01, "convection: inner step of the projective methods, in diffusion times",
                       min=0.0, min_exclusive=True, max=1e3),
            "dt_max": Field(float, 0.0025, "convection: largest IMEX step (0: the model's buoyancy bound)",
                            min=0.0, max=1e3),
            "amplitude": Field(float, 1e-3, "convection: random temperature perturbation of a fresh lift",
                               min=0.0, max=1e3),
            "memory": Field(bool, True, "convection: lift from the last evolved columns (their eddies kept; "
                            "checkpointed) instead of a fresh perturbed conductive state"),
            "perturbations": Field(list, [0.1, -0.05], "convection: one column per A, initial mean "
                                   "T = 1 - z + A sin(pi z)", item_type=float, min_len=1, max_len=10**5),
        },
        "patches": {
            "mean": Field(float, 1.1, "a(y) = mean + amplitude sin(2 pi y)", min=0.0, min_exclusive=True),
            "amplitude": Field(float, 1.0, "a(y) = mean + amplitude sin(2 pi y)"),
            "eps": Field(float, 1.0 / 512, "period eps of the medium", min=0.0, min_exclusive=True, max=1.0),
            "n_patches": Field(int, 16, "macro grid points (one patch each)", min=3, max=10**6),
            "patch_periods": Field(float, 2.0, "patch width in periods eps", min=0.0, min_exclusive=True),
            "buffer_periods": Field(float, 4.0, "buffer width on each side in periods eps", min=0.0),
            "micro_time": Field(float, 0.5, "micro time per lift in eps^2", min=0.0, min_exclusive=True),
            "points_per_period": Field(int, 16, "fine cells per period", min=8, max=4096),
            "order": Field(int, 4, "degree of the lifting interpolant", choices=(2, 4)),
            "mode": Field(int, 1, "initial state sin(2 pi mode x) (2D: sin(2 pi mode x1))", min=1, max=10**6),
            "dimension": Field(int, 1, "1: patches on [0, 1]; 2: square patches on [0, 1]^2 (homogenization only)",
                               choices=(1, 2)),
            "medium": Field(str, "sine", "sine: a = mean + amplitude sin(2 pi y1) (2D: a laminate); self_dual "
                            "(2D): a = exp(amplitude sin(2 pi y1) sin(2 pi y2)), homogenized tensor I",
                            choices=("sine", "self_dual")),
        },
    }

    def __new__(cls, config, comm, timers):
        """A continuation (``coupler.method = "continuation"``) is a branch of steady states,
        not a time integration: its run is :class:`~hmmpar.apps.coarse_continuation.CoarseContinuation`,
        which shares this schema, the models and the farm."""
        if cls is Couplers and config["coupler.method"] == "continuation":
            from hmmpar.apps.coarse_continuation import CoarseContinuation
            cls = CoarseContinuation
        return super().__new__(cls)

    def __init__(self, config, comm, timers) -> None:
        super().__init__(config, comm, timers)
        self.method = config["coupler.method"]
        self.model = None
        self.steps = 0
        check_memory(comm, self)  # from the config, before the model allocates its micro states
        self.model = build(config, comm, self.method)
        st = self.model.stepper
        self.is_patch = hasattr(st, "steps_per_lift") and hasattr(st, "micro_time")
        if self.method in ("patch_dynamics", "gap_tooth") and not self.is_patch:
            raise ConfigError(f"config key coupler.method = {self.method!r} needs a patch model "
                              f"(model.name = 'homogenization'), not model.name = {config['model.name']!r}")
        self.wrapped = None
        self.step = 0
        self._set_up(config)

    def _set_up(self, config) -> None:
        """The outer step, its count and the stability checks (before any micro work)."""
        c = config.section("coupler")
        self.dt = self._outer_step(c)
        ratio = c["t_end"] / self.dt
        self.steps = max(1, round(ratio))
        if abs(self.steps - ratio) > 1e-9 * max(1.0, ratio):
            raise ConfigError(f"config key coupler.t_end = {c['t_end']:g} is not a whole number of outer steps of "
                              f"{self.dt:.6g} ({ratio:.6g}); {self._step_keys()}")
        if self.steps > MAX_STEPS:
            raise ConfigError(f"config key coupler.t_end: {self.steps} outer steps, more than {MAX_STEPS}")
        self._check_stability(c)
        self.U = self.model.U0.copy()
        self.S: np.ndarray | None = None  # seamless: the micro states, never re-lifted
        self.history = [self.U.copy()]

    def memory_estimate(self) -> int:
        r"""Peak bytes of this rank. The macro state and the lifted micro states are held
        whole on every rank (module docstring): with :math:`n_b` macro states of :math:`n_u`
        values, :math:`L` bytes of micro state per macro state (the stepper's
        ``lifted_bytes``: patches, replicas, boxes; :math:`8 n_u` if it does not say) and
        :math:`S` outer steps, :math:`4 n_b L` (the lifted batch, the farm's task rows, the
        result rows and their all-gather; :math:`5 n_b L` for a stepper with lifting memory,
        which keeps one more) plus the history of macro states, :math:`2 \cdot
        8 (S + 1) n_b n_u` (kept, and stacked for the output). Before the model is built,
        :math:`4\times` the micro states of :func:`~hmmpar.apps.coupler_models.micro_bytes`
        (the patch classes' set-up holds arrays of the lifted state's size)."""
        if self.model is None:  # not built yet: the micro states from the config alone
            return 4 * micro_bytes(self.config)
        nb, nu = self.model.U0.shape
        lifted = int(getattr(self.model.stepper, "lifted_bytes", 8 * nu))
        copies = 5 if getattr(self.model.stepper, "keeps_memory", False) else 4  # + the remembered batch
        return copies * nb * lifted + 16 * (self.steps + 1) * nb * nu

    def _step_keys(self) -> str:
        return {"projective_euler": "the step is (k + 1 + M) h: set coupler.k, coupler.M or model.dtau",
                "telescopic": "the step is (k_outer + 1 + M_outer)(k + 1 + M) h",
                "gap_tooth": "the step is the micro time patches.micro_time"}.get(self.method, "set coupler.dt")

    def _outer_step(self, c: dict) -> float:
        st, m = self.model.stepper, self.method
        if m == "projective_euler":
            if c["fit_window"] == 1 or c["fit_window"] > c["k"] + 1:
                raise ConfigError(f"config key coupler.fit_window = {c['fit_window']} must be 0 (the chord) or in "
                                  f"[2, k + 1] = [2, {c['k'] + 1}]")
            return (c["k"] + 1 + c["M"]) * st.h
        if m == "telescopic":
            return (c["k_outer"] + 1 + c["M_outer"]) * (c["k"] + 1 + c["M"]) * st.h
        if m == "gap_tooth":
            return float(st.micro_time)
        if m == "projective_rk" and not c["dt"] > (c["K"] + 1) * st.h:
            raise ConfigError(f"config key coupler.dt = {c['dt']:g} must exceed the inner steps' (K + 1) h = "
                              f"{(c['K'] + 1) * st.h:g} (coupler.K = {c['K']})")
        if m == "patch_dynamics" and not c["dt"] > st.micro_time:
            raise ConfigError(f"config key coupler.dt = {c['dt']:g} must exceed the patches' micro time "
                              f"{st.micro_time:g} (or the patches simulate the whole time: use gap_tooth)")
        return float(c["dt"])

    def _levels(self, c: dict) -> list[tuple[int, float]]:
        if self.method == "projective_euler":
            return [(c["k"], c["M"])]
        if self.method == "telescopic":
            return [(c["k"], c["M"]), (c["k_outer"], c["M_outer"])]
        if self.method == "projective_rk":  # a stage: K + 1 inner steps, chord of the last (M = 0 damping)
            return [(c["K"], 0.0)]
        return []

    def _check_stability(self, c: dict) -> None:
        """No spectral gap: ConfigError; an amplified mode: a warning (module docstring)."""
        from hmmpar.couplers.stability import jacobian_eigenvalues, no_gap_mode, worst_mode
        rhs = self.model.rhs
        if rhs is None or self.method in HMM_METHODS:
            return
        h = self.model.stepper.h
        worst = None
        for u in self.model.U0:
            eigs = jacobian_eigenvalues(rhs, 0.0, u)
            lam = no_gap_mode(eigs, self.dt)
            if lam is not None:
                raise ConfigError(f"config key coupler.method = {self.method!r}: model {self.config['model.name']!r} "
                                  f"has no spectral gap: its fast mode lambda = {lam:.3g} rotates (|Im| > |Re|), so "
                                  "inner steps cannot damp it; " + ("use coupler.method = 'seamless' or 'classical'"
                                                                   if self.model.inner == "euler" else
                                                                   "projective integration cannot serve this model"))
            window = c["fit_window"] if self.method == "projective_euler" else 0
            w = worst_mode(eigs, h, self._levels(c), inner=self.model.inner, window=window)
            if w is not None and (worst is None or w[1] > worst[1]):
                worst = w
        if worst is not None:
            lam, sigma = worst
            growth = sigma ** self.steps
            self.log.warning(f"coupler.method = {self.method!r} with {self._levels_text(c)} and h = {h:.3g} is "
                             f"predicted unstable: the mode lambda = {lam:.3g} (h lambda = {h * lam:.3g}) is "
                             f"amplified by |sigma| = {sigma:.4g} per outer step, {growth:.3g} over the run")

    def _levels_text(self, c: dict) -> str:
        return ", ".join(f"(k, M) = ({k}, {M:g})" for k, M in self._levels(c))

    def _wrap(self) -> None:
        from hmmpar.couplers.farmed import FarmedMicroStepper, FarmedStepper
        if self.farm is None:
            raise HmmparError("internal: the couplers application runs under the runner, which gives it the farm")
        cls = FarmedMicroStepper if self.method in HMM_METHODS else FarmedStepper
        self.wrapped = cls(self.model.stepper, self.farm, self.config["run.seed"])

    # ------------------------------------------------------------------ the run
    def initialize(self) -> None:
        self._wrap()
        self.U = self.model.U0.copy()
        self.history = [self.U.copy()]
        self.step = 0
        if (self.method in ("projective_euler", "telescopic", "projective_rk") and self.model.rhs is None
                and not getattr(self.model.stepper, "stochastic_units", False)):  # noise cannot be differenced
            self._warn_measured_amplification()

    def _warn_measured_amplification(self, iterations: int = 8) -> None:
        r"""No Jacobian to predict from (patches, a user's stepper): measure the outer step's
        largest amplification by power iteration on its finite-difference linearisation at
        ``U0``, :math:`v \leftarrow (P(U_0 + \delta v) - P(U_0))/\delta`, normalised
        (``iterations`` extra outer steps, collective), and warn if it exceeds 1."""
        c = self.config.section("coupler")
        U0 = self.model.U0
        st = self.model.stepper  # lifting memory (farmed.py): every evaluation from the initial one, left as found
        memory = st.memory_state() if hasattr(st, "memory_state") else None
        restore = getattr(st, "restore_memory", lambda rows: None)

        def P(U: np.ndarray) -> np.ndarray:
            restore(memory)
            return self._free_map(U, c)
        base = P(U0)
        v = np.cos(np.arange(U0.size) * 2.399963229728653).reshape(U0.shape)  # golden-angle pattern
        v /= np.linalg.norm(v)
        g = 0.0
        for _ in range(iterations):
            d = 1e-6 * (1.0 + float(np.linalg.norm(U0)))
            with np.errstate(over="ignore", invalid="ignore"):
                w = (P(U0 + d * v) - base) / d
            g = float(np.linalg.norm(w))
            if not (np.isfinite(g) and g > 0):
                restore(memory)
                return
            v = w / g
        restore(memory)
        if g > 1.0 + 1e-6:
            self.log.warning(f"coupler.method = {self.method!r} with {self._levels_text(c)}: the measured "
                             f"amplification of one outer step is {g:.4g} (power iteration at the initial state, "
                             f"{iterations} steps); unless the true dynamics grow, (k, M) is unstable for this "
                             f"model: {g ** self.steps:.3g} over the run")

    def _free_map(self, U: np.ndarray, c: dict, t: float = 0.0) -> np.ndarray:
        """One outer step of a projective method (Euler, chord or least-squares slope; the
        telescopic pair; RK) from ``U`` at ``t``: the run's step and the measured check's map."""
        from hmmpar.couplers.projective import TABLEAUX, ProjectiveStepper, _last_two, _prk_step
        w = self.wrapped
        if self.method == "projective_rk":
            return _prk_step(w, TABLEAUX[c["tableau"]], U, t, self.dt, c["K"], (c["K"] + 1) * w.h)
        if self.method == "telescopic":
            before, after = _last_two(ProjectiveStepper(w, c["k"], c["M"]), U, t, c["k_outer"])
            return after + c["M_outer"] * (after - before)
        if c["fit_window"] >= 2:
            from hmmpar.couplers.ssa_stepper import projective_fit_step
            return projective_fit_step(w, U, t, c["k"], c["M"], c["fit_window"])
        before, after = _last_two(w, U, t, c["k"])
        return after + c["M"] * (after - before)

    def advance(self, step: int) -> int:
        c, w, U = self.config.section("coupler"), self.wrapped, self.U
        t = step * self.dt
        before_submitted = w.submitted
        try:
            U = self._outer_step_of(step, t, c, w, U)
        except TaskError as exc:  # a micro task's result went NaN / Inf: name the outer step
            raise HmmparError(f"{self.method}: the micro simulations blew up in outer step {step + 1} (t = {t:.6g}): "
                              f"{exc}; the method is unstable for this model and step (see the start-up stability "
                              "warning)") from None
        if not np.all(np.isfinite(U)):
            raise HmmparError(f"{self.method}: the macro state is not finite at t = {t + self.dt:.6g} (outer step "
                              f"{step + 1}); the method is unstable for this model and step (see the start-up "
                              "stability warning; lower the step or change k, M)")
        self.U = U
        self.history.append(U.copy())
        self.step = step + 1
        return w.submitted - before_submitted

    def _outer_step_of(self, step: int, t: float, c: dict, w, U: np.ndarray) -> np.ndarray:
        """The macro state after outer step ``step`` of the configured method."""
        from hmmpar.couplers.patches import patch_step
        from hmmpar.couplers.projective import TABLEAUX, _last_two
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported by advance, once
            if self.method == "seamless":
                if self.S is None:
                    self.S = w.lift(U, 0.0)
                win = w.advance(self.S, U, t, c["steps"])
                U = U + self.dt * (win.mean if c["estimator"] == "window" else win.last)
            elif self.method == "classical":
                S = w.lift(U, t)
                if c["relax"]:
                    w.advance(S, U, t, c["relax"])
                U = U + self.dt * w.advance(S, U, t, c["window"]).mean
            elif self.method in ("projective_euler", "telescopic", "projective_rk"):
                U = self._free_map(U, c, t)
            elif self.method == "patch_dynamics":
                U = patch_step(w, TABLEAUX[c["tableau"]], U, t, self.dt)
            else:  # gap_tooth
                U = _last_two(w, U, t, w.steps_per_lift - 1)[1]
        return U

    # ------------------------------------------------------------------ checkpoints
    def _block(self, rows: np.ndarray) -> Block:
        from hmmpar.couplers.farmed import unit_block
        lo, hi = unit_block(rows.shape[0], self.comm.rank, self.comm.size)
        return Block(np.ascontiguousarray(rows[lo:hi]), lo, rows.shape[0])

    def _counts(self) -> dict:
        """The farm's call and work counters (a restart must continue them, :meth:`_restore_counts`)."""
        return {"step": self.step, "farm_calls": self.wrapped.calls, "unit_steps": self.wrapped.unit_steps}

    def _restore_counts(self, reader: CheckpointReader) -> None:
        self.step = int(reader.attrs["step"])
        self.wrapped.calls = int(reader.attrs["farm_calls"])
        self.wrapped.unit_steps = int(reader.attrs["unit_steps"])

    def checkpoint_data(self) -> dict:
        nb = self.U.shape[0]
        fields = {"U": self._block(self.U), "history": self._block(np.stack(self.history).reshape(len(self.history), -1))}
        if self.S is not None:
            fields["S"] = self._block(self.S.reshape(nb, -1))
        memory = getattr(self.model.stepper, "memory_state", lambda: None)()  # lifting memory (farmed.py)
        if memory is not None:  # one row per batch member, as raw bytes
            fields["stepper_memory"] = self._block(np.ascontiguousarray(memory).view(np.uint8).reshape(len(memory), -1))
        # a stepper whose lifting draws random numbers counts its lifts
        return {"fields": fields, "attrs": {**self._counts(), "stepper_memory": int(memory is not None),
                                            "stepper_lifts": int(getattr(self.model.stepper, "lifts", 0))}}

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        self._wrap()
        nb, nu = self.model.U0.shape
        if reader.rows("fields", "U") != nb:
            raise CheckpointError(f"checkpoint {reader.path} holds {reader.rows('fields', 'U')} macro states, this "
                                  f"config {nb}")
        self.U = reader.read_block("fields", "U", 0, nb).reshape(nb, nu).copy()
        n = reader.rows("fields", "history")
        self.history = list(reader.read_block("fields", "history", 0, n).reshape(n, nb, nu).copy())
        self._restore_counts(reader)
        if self.method == "seamless" and self.step > 0:
            self.S = reader.read_block("fields", "S", 0, nb).reshape(nb, -1).copy()
        if hasattr(self.model.stepper, "lifts"):
            self.model.stepper.lifts = int(reader.attrs.get("stepper_lifts", 0))
        if hasattr(self.model.stepper, "restore_memory"):
            m = int(reader.attrs.get("stepper_memory", 0)) and reader.rows("fields", "stepper_memory")
            self.model.stepper.restore_memory(reader.read_block("fields", "stepper_memory", 0, m) if m else None)

    # ------------------------------------------------------------------ outputs
    def finalize(self, outdir: Path) -> dict | None:
        if self.comm.rank != 0:
            return None
        t = self.sim_time
        times = self.dt * np.arange(len(self.history))
        H = np.stack(self.history)
        summary = {"app": self.name, "method": self.method, "model": self.config["model.name"],
                   "steps": self.step, "time": t, "outer_step": self.dt,
                   "micro_unit_steps": int(self.wrapped.unit_steps), **self.model.info}
        exact = None
        if self.model.exact is not None:
            exact = np.stack([self.model.exact(float(s)) for s in times])
            err = H[:, :, self.model.compare] - exact
            summary["max_abs_error_vs_reference"] = float(np.max(np.abs(err[-1])))
        if "species" in self.model.info:  # ssa_ensemble: the ensemble means reached
            summary["final_mean"] = dict(zip(self.model.info["species"], H[-1, 0].tolist()))
        if "p_ext" in self.model.info:  # md_piston: the densities the boxes reached
            summary["final_density"] = (1.0 / H[-1, :, 0]).tolist()
        if self.model.final is not None:  # e.g. convection: the Nusselt numbers of the final profiles
            summary.update(self.model.final(H[-1]))
        if "wavenumber" in self.model.info:  # patches: the decay rate of the mode
            amp = self._amplitudes(H)
            if np.all(amp > 0) and len(amp) > 1:
                rate = -float(np.polyfit(times, np.log(amp), 1)[0])
                ref = self.model.info["decay_rate_hom"]
                summary["decay_rate"] = rate
                summary["decay_rate_rel_error_vs_hom"] = rate / ref - 1.0
                # the same against the macro scheme's own rate with a*: the coupling's error alone
                summary["decay_rate_rel_error_vs_macro_scheme"] = rate / self.model.info["decay_rate_macro_scheme"] - 1.0
        import h5py
        with h5py.File(outdir / "couplers.h5", "w") as f:
            f["t"], f["U"] = times, H
            if exact is not None:
                f["reference"] = exact
            f.attrs["method"] = self.method
        if self.config["output.plots"]:
            self._plot(outdir / "couplers.png", times, H, exact)
        return summary

    def _amplitudes(self, H: np.ndarray) -> np.ndarray:
        st = self.model.stepper
        x = st.points[:, 0] if self.model.info.get("dimension") == 2 else st.centres
        s = np.sin(self.model.info["wavenumber"] * x)
        return H[:, 0, :] @ s / (s @ s)

    def _plot(self, path: Path, times: np.ndarray, H: np.ndarray, exact: np.ndarray | None) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        comp = self.model.compare
        if "wavenumber" in self.model.info:
            ax.semilogy(times, self._amplitudes(H), "o", label=f"{self.method} (patches)")
            ref = self.model.info["decay_rate_hom"]
            ax.semilogy(times, np.exp(-ref * times), "k-", label="homogenized, $a^*$ harmonic mean")
            ax.semilogy(times, np.exp(-self.model.info["decay_rate_arithmetic"] * times), "k:",
                        label="arithmetic mean of $a$")
            ax.set(xlabel="t", ylabel="amplitude of the initial mode")
        else:
            Y = H[:, :, comp].reshape(len(times), -1)
            ax.plot(times, Y, ".-", ms=3)
            if exact is not None:
                ax.plot(times, exact.reshape(len(times), -1), "k-", lw=0.7)
            ax.set(xlabel="t", ylabel="macro variables (black: averaged reference)")
        ax.set_title(f"couplers: {self.method}, model {self.config['model.name']}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
