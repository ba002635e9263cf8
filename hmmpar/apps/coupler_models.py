r"""The micro models the ``couplers`` application can drive, built from its config.

* ``seed``, ``dissipative``: the slow--fast ODE examples of :mod:`hmmpar.couplers.examples`
  over ``model.points`` initial values :math:`X_0 \in [x_{0,\min}, x_{0,\max}]`; a
  :class:`~hmmpar.couplers.SlowFastODE` (RK4 in fast time) for the HMM methods, the full
  system's forward Euler steps (:class:`~hmmpar.couplers.EulerODE`, :math:`h =
  \delta\tau\,\varepsilon`) for the projective ones. The averaged solution is the reference:
  :math:`X(t) = X_0 + t` (seed), :math:`\dot X = -X^3 + \cos t + \sin(\sqrt2\,t)` solved to
  1e-12 by SciPy (dissipative).
* ``ou``: the runtime's averaging demo (:mod:`hmmpar.apps.ou_averaging`) as a
  :class:`~hmmpar.couplers.ou_stepper.OUStepper` for the HMM methods: fast OU processes
  sampled exactly, estimator :math:`-y^2 X`; the reference is the averaged equation's exact
  solution :math:`X_0/\sqrt{(1 + X_0^2)e^{2t} - X_0^2}`.
* ``md_piston``: LJ boxes (:class:`~hmmpar.couplers.md_stepper.MDStepper`, section ``md``)
  under an isothermal overdamped piston, :math:`X = v` the volume per atom starting in
  ``[x0_min, x0_max]``, :math:`\dot v = (p(1/v, T) - p_{\rm ext})/\zeta` with the boxes'
  virial pressure, for the HMM methods; no reference in the app (the equation-of-state
  oracle validates it in tests/validation/couplers/test_md_stepper.py); summary.json gives
  the final densities.
* ``ssa_ensemble``: ``ssa.replicas`` direct-SSA (:class:`~hmmpar.couplers.SSAEnsembleStepper`)
  or, with ``ssa.engine = "nested"``, Nested-SSA replicas
  (:class:`~hmmpar.couplers.NestedSSAEnsembleStepper`, slow variables ``ssa.slow`` such as
  ``"S1 + S2"``) of the network ``ssa.network``, every replica a farm task; the macro state
  the ensemble mean of ``ssa.species`` (direct) or of the slow variables (nested), for ``projective_euler`` (the chord, or the
  least-squares slope over ``coupler.fit_window`` inner steps); no reference in the app.
* ``homogenization``: :class:`~hmmpar.couplers.PatchDiffusion`, patches with buffers of
  :math:`u_t = (a(x/\varepsilon)u_x)_x`, :math:`a(y) = \bar a + A\sin 2\pi y`, periodic on
  [0, 1], :math:`u(0) = \sin 2\pi m x`; the reference is the homogenized solution
  :math:`e^{-a^*(2\pi m)^2 t}\sin 2\pi m x` with the harmonic mean
  :math:`a^* = \sqrt{\bar a^2 - A^2}`.
* ``bratu``: the same patches on (0, 1) with :math:`u = 0` at both ends and the reaction
  :math:`\lambda e^u` (``boundary="dirichlet"``, :func:`~hmmpar.couplers.patches.bratu`),
  for ``coupler.method = "continuation"`` in :math:`\lambda`; the reference is the
  homogenized fold :math:`\lambda_c = 3.513830719\,a^*` (the 1D Bratu turning point,
  :func:`~hmmpar.couplers.continuation.bratu_fold`, scaled by :math:`a^*`).
* ``convection``: Boussinesq convection columns
  (:class:`~hmmpar.couplers.convection_stepper.ConvectionStepper`, section ``convection``),
  the macro state the horizontal-mean temperature :math:`\bar T(z_j)` at the ``nz``
  Chebyshev levels, one column per entry :math:`A` of ``convection.perturbations``:
  :math:`\bar T(0, z) = 1 - z + A\sin\pi z`; for the free-stepper methods
  (``projective_euler``, ``telescopic``, ``projective_rk``). The columns lift with memory
  (``convection.memory``: the last evolved eddies, carried through the farm and the
  checkpoints) or from the conductive state plus a random perturbation of
  ``convection.amplitude``. Below onset (:math:`\mathrm{Ra} < \mathrm{Ra}_c`, the infinite
  layer's :math:`27\pi^4/4` for free-slip walls, 1707.76 for no-slip ones) the fluid comes to
  rest and the reference is the heat equation's :math:`\bar T = 1 - z + A e^{-\pi^2 t}\sin\pi z`;
  above onset there is none. summary.json gives the final Nusselt numbers
  :math:`-\partial_z\bar T` at both walls.
* ``user``: ``model.function`` (``module:function`` or ``file.py:function``: user code,
  trusted, run on every rank) called as ``function(params) -> (stepper, U0)`` with the
  table ``model.params``; the stepper is a :class:`~hmmpar.couplers.MicroStepper` (for
  ``seamless`` / ``classical``) or a :class:`~hmmpar.couplers.FreeStepper` (the rest).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hmmpar.core.errors import ConfigError, one_line

#: built-in models
MODELS = ("seed", "dissipative", "ou", "md_piston", "ssa_ensemble", "homogenization", "bratu", "convection",
          "user")
#: the methods a free stepper without patches serves (convection)
FREE_METHODS = ("projective_euler", "telescopic", "projective_rk")
#: critical Rayleigh numbers of the infinite layer: free-slip 27 pi^4 / 4 (Rayleigh 1916), no-slip 1707.762
#: (Reid & Harris 1958; Chandrasekhar, Hydrodynamic and Hydromagnetic Stability, 1961, table III)
RA_CRITICAL = {"free-slip": 27.0 * math.pi ** 4 / 4.0, "no-slip": 1707.762}
#: the methods that need a constrained stepper with an estimator (MicroStepper)
HMM_METHODS = ("seamless", "classical")


@dataclass
class CouplerModel:
    """A built micro model: the stepper, the initial macro state ``U0`` ``(nb, nu)``, and the
    reference solution ``exact(t) -> (nb, nu)`` of the macro variables it has (or None)."""

    stepper: object
    U0: np.ndarray
    exact: Callable[[float], np.ndarray] | None = None
    #: the macro components compared with ``exact`` (the slow part of a full ODE state)
    compare: slice = field(default_factory=lambda: slice(None))
    #: the full right-hand side ``rhs(t, u, out)`` (ODE models, and the rate equations of an SSA
    #: ensemble's mean: the predicted stability check)
    rhs: Callable | None = None
    #: the inner step's factor on a mode of ``rhs``: ``"euler"`` :math:`1 + h\lambda`, ``"exact"``
    #: :math:`e^{h\lambda}` (:func:`hmmpar.couplers.stability.worst_mode`)
    inner: str = "euler"
    info: dict = field(default_factory=dict)
    #: extra summary entries from the final macro state ``(nb, nu)`` (e.g. convection's Nusselt numbers)
    final: Callable[[np.ndarray], dict] | None = None


def initial_points(points: int, lo: float, hi: float) -> np.ndarray:
    """``points`` initial values evenly spaced in ``[lo, hi]``."""
    return np.linspace(lo, hi, points) if points > 1 else np.array([lo])


def averaged_dissipative(X0: np.ndarray) -> Callable[[float], np.ndarray]:
    r"""The reference of the dissipative example: :math:`\dot X = -X^3 + \cos t + \sin(\sqrt2 t)`
    from every :math:`X_0`, by SciPy's DOP853 at rtol 1e-12 (an ODE oracle, not our code)."""
    from scipy.integrate import solve_ivp

    def exact(t: float) -> np.ndarray:
        if t == 0.0:
            return X0[:, None].copy()
        sol = solve_ivp(lambda s, x: -x ** 3 + math.cos(s) + math.sin(math.sqrt(2.0) * s), (0.0, t), X0,
                        method="DOP853", rtol=1e-12, atol=1e-14)
        return sol.y[:, -1][:, None]
    return exact


def micro_bytes(config) -> int:
    r"""Bytes of the lifted micro states of all macro states, from the config alone (the
    memory check before any model allocates them): patches :math:`N^d\,(w_p + 2w_b + 1)^d
    n_p^d` float64 (:math:`N` = ``patches.n_patches``, widths in periods, :math:`n_p` =
    ``patches.points_per_period``, :math:`d` = ``patches.dimension``), SSA ensembles
    ``ssa.replicas`` int64 per species (at least one), MD ``model.points`` boxes of
    :math:`3 + 6` ``md.n_atoms`` float64, convection one column per perturbation (two
    complex :math:`n_z(n_x/2 + 1)` fields); 0 for the small ODE models and a user's stepper."""
    name = config["model.name"]
    if name in ("homogenization", "bratu"):
        p = config.section("patches")
        d = p["dimension"]
        per_patch = ((p["patch_periods"] + 2 * p["buffer_periods"] + 1) * p["points_per_period"]) ** d
        return int(8 * p["n_patches"] ** d * per_patch)
    if name == "ssa_ensemble":
        return 8 * config["ssa.replicas"] * max(1, len(config["ssa.species"]), len(config["ssa.slow"]))
    if name == "md_piston":
        return 8 * config["model.points"] * (3 + 6 * config["md.n_atoms"])
    if name == "convection":  # T and omega (nz, nx/2 + 1) complex, U (nz,), bottom (nx,) per column
        q = config.section("convection")
        return len(q["perturbations"]) * (32 * q["nz"] * (q["nx"] // 2 + 1) + 8 * (q["nz"] + q["nx"]) + 24)
    return 0


def build(config, comm, method: str) -> CouplerModel:
    """The micro model of config section ``model`` for ``method`` (ConfigErrors name the key)."""
    m = config.section("model")
    name = m["name"]
    if name in ("seed", "dissipative"):
        return _slow_fast(m, name, method)
    if name == "ou":
        return _ou(m, method, config["run.seed"])
    if name == "md_piston":
        return _md_piston(config, method)
    if name == "ssa_ensemble":
        return _ssa_ensemble(config, comm, method)
    if name in ("homogenization", "bratu"):
        return _patches(config.section("patches"), bratu=name == "bratu")
    if name == "convection":
        return _convection(config, method)
    return _user(config, comm, method)


def _slow_fast(m: dict, name: str, method: str) -> CouplerModel:
    from hmmpar.couplers import EulerODE, SlowFastODE
    from hmmpar.couplers import examples as ex
    if m["x0_max"] < m["x0_min"]:
        raise ConfigError("config key model.x0_max must be >= model.x0_min")
    X0 = initial_points(m["points"], m["x0_min"], m["x0_max"])
    eps, dtau = m["eps"], m["dtau"]
    if name == "seed":
        exact = lambda t: (X0 + t)[:, None]  # noqa: E731 - the averaged equation X' = 1
        if method in HMM_METHODS:
            return CouplerModel(SlowFastODE(ex.f_seed, ex.g_seed, 1, 2, eps, dtau, ex.SEED_Y0), X0[:, None], exact)
        U0 = np.column_stack([X0, np.tile(ex.SEED_Y0, (X0.size, 1))])
        return CouplerModel(EulerODE(ex.full_rhs_seed(eps), dtau * eps), U0, exact, slice(0, 1),
                            ex.full_rhs_seed(eps))
    exact = averaged_dissipative(X0)
    if method in HMM_METHODS:
        return CouplerModel(SlowFastODE(ex.f_dissipative, ex.g_dissipative, 1, 1, eps, dtau, _relaxed_y),
                            X0[:, None], exact)
    U0 = np.column_stack([X0, X0])
    rhs = ex.full_rhs_dissipative(eps)
    return CouplerModel(EulerODE(rhs, dtau * eps), U0, exact, slice(0, 1), rhs)


def _ou(m: dict, method: str, seed: int) -> CouplerModel:
    from hmmpar.apps.ou_averaging import exact_solution
    from hmmpar.couplers.ou_stepper import OUStepper
    if method not in HMM_METHODS:
        raise ConfigError(f"config key coupler.method = {method!r}: model 'ou' is a MicroStepper with an estimator "
                          "(no free evolution of X); use 'seamless' or 'classical'")
    if m["x0_max"] < m["x0_min"]:
        raise ConfigError("config key model.x0_max must be >= model.x0_min")
    X0 = initial_points(m["points"], m["x0_min"], m["x0_max"])
    return CouplerModel(OUStepper(m["eps"], m["dtau"], seed), X0[:, None], lambda t: exact_solution(X0, t)[:, None])


def _md_piston(config, method: str) -> CouplerModel:
    from hmmpar.couplers.md_stepper import MDStepper
    if method not in HMM_METHODS:
        raise ConfigError(f"config key coupler.method = {method!r}: model 'md_piston' is a MicroStepper with an "
                          "estimator (the piston's rate from the box pressure); use 'seamless' or 'classical'")
    m, md = config.section("model"), config.section("md")
    if m["x0_max"] < m["x0_min"]:
        raise ConfigError("config key model.x0_max must be >= model.x0_min")
    keys = ("steps",) if method == "seamless" else ("relax", "window")
    for key in keys:
        n = config[f"coupler.{key}"]
        if n % md["thermostat_every"]:
            raise ConfigError(f"config key coupler.{key} = {n} must be a multiple of md.thermostat_every = "
                              f"{md['thermostat_every']} (the thermostat acts every that many MD steps)")
    try:
        st = MDStepper(md["temperature"], md["p_ext"], md["zeta"], md["n_atoms"], dtau=md["dt"],
                       seed=config["run.seed"], thermostat_every=md["thermostat_every"])
        X0 = initial_points(m["points"], m["x0_min"], m["x0_max"])[:, None]
        st.check_volumes(X0)
    except ValueError as exc:
        raise ConfigError(f"config section md / model.x0_min: {exc}") from None
    return CouplerModel(st, X0, info={"temperature": md["temperature"], "p_ext": md["p_ext"]})


def _ssa_ensemble(config, comm, method: str) -> CouplerModel:
    import tomllib

    from hmmpar.couplers import SSAEnsembleStepper
    from hmmpar.io.inputs import parse_text, read_input
    from hmmpar.micro.ssa.model import NetworkError, ReactionNetwork
    if method != "projective_euler":
        raise ConfigError(f"config key coupler.method = {method!r}: model 'ssa_ensemble' runs with "
                          "'projective_euler' (chord, or the least-squares slope of coupler.fit_window)")
    q = config.section("ssa")
    if not q["network"]:
        raise ConfigError("config key ssa.network: model.name = 'ssa_ensemble' needs a reaction network file "
                          "(TOML, docs/ssa.md)")
    data = read_input(comm, config, "ssa.network", "model")
    text = parse_text(data, "ssa.network", q["network"])
    try:
        network = ReactionNetwork.from_dict(tomllib.loads(text), source=str(q["network"]))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config key ssa.network: {q['network']}: TOML syntax error: {exc}") from None
    except NetworkError as exc:
        raise ConfigError(f"config key ssa.network: {exc}") from None
    try:
        if q["engine"] == "nested":
            from hmmpar.couplers.nested_ssa_stepper import NestedSSAEnsembleStepper
            from hmmpar.micro.ssa.nested import NestedParameters
            if not q["slow"]:
                raise ValueError("ssa.slow must list the slow variables, e.g. [\"S1 + S2\", \"S3 + S4\"]")
            groups = [[name.strip() for name in v.split("+")] for v in q["slow"]]
            st = NestedSSAEnsembleStepper(network, groups, q["replicas"], q["h"],
                                          NestedParameters(tolerance=q["tolerance"]), seed=config["run.seed"])
            names = list(q["slow"])
            U0 = (st.W @ network.initial_counts).astype(float)[None, :]
        else:
            st = SSAEnsembleStepper(network, q["replicas"], q["h"], seed=config["run.seed"],
                                    species=q["species"] or None, lifting=q["lifting"])
            names = [network.species[i] for i in st.species]
            U0 = network.initial_counts[st.species].astype(float)[None, :]
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"config section ssa: {one_line(exc)}") from None
    if q["engine"] == "direct" and np.array_equal(st.species, np.arange(network.n_species)):
        # the mean's rate equations predict (k, M)'s stability; the inner steps follow the flow
        return CouplerModel(st, U0, rhs=rate_equations(network), inner="exact", info={"species": names})
    return CouplerModel(st, U0, info={"species": names})


def rate_equations(network) -> Callable:
    r"""The reaction-rate equations of ``network``, :math:`\dot x = \sum_j \nu_j a_j(x)`, as
    ``rhs(t, x, out)``, with the engines' mass-action propensities read as polynomials of a
    continuous state: :math:`k_j`, :math:`k_j x_i`, :math:`k_j x_i(x_i - 1)/2`,
    :math:`k_j x_i x_l` (:func:`hmmpar.micro.ssa.model.propensity`). For a network of
    reactions of order at most one the ensemble mean obeys them exactly (the moment
    equations close); otherwise they are its mean-field approximation."""
    reactants = np.asarray(network.reactants)
    rates = np.asarray(network.rates, dtype=float)
    nu = np.asarray(network.nu, dtype=float)
    r0, r1 = reactants[:, 0], reactants[:, 1]
    first, pair = r0 >= 0, r1 >= 0
    dimer, hetero = pair & (r1 == r0), pair & (r1 != r0)

    def rhs(t: float, x: np.ndarray, out: np.ndarray) -> None:
        a = rates.copy()
        a[first] *= x[r0[first]]
        a[dimer] *= 0.5 * (x[r1[dimer]] - 1.0)
        a[hetero] *= x[r1[hetero]]
        out[:] = nu.T @ a
    return rhs


def _convection(config, method: str) -> CouplerModel:
    r"""Convection columns for the free-stepper methods (module docstring), from section
    ``convection``; invalid boxes are the model's one-line ConfigErrors, prefixed with the
    section so that they name the config key."""
    from hmmpar.couplers.convection_stepper import ConvectionStepper
    from hmmpar.micro.convection import ConvectionParams
    if method not in FREE_METHODS:
        raise ConfigError(f"config key coupler.method = {method!r}: model 'convection' is a free stepper of the "
                          f"mean temperature profile (no estimator, no patches); use {', '.join(FREE_METHODS)}")
    q = config.section("convection")
    ra_c = RA_CRITICAL[q["walls"]]
    p = ConvectionParams(ra=q["ra_over_critical"] * ra_c, pr=q["pr"], aspect=q["aspect"], nx=q["nx"], nz=q["nz"],
                         walls=q["walls"], cfl=q["cfl"], dt_max=q["dt_max"] or None)
    p.validate(prefix="config key convection.")  # ra = ra_over_critical Ra_c > 0 by the schema
    st = ConvectionStepper(p, q["h"], seed=config["run.seed"], amplitude=q["amplitude"], memory=q["memory"])
    z = st.model.z
    A = np.asarray(q["perturbations"], dtype=float)
    if not np.all(np.isfinite(A)):
        raise ConfigError("config key convection.perturbations: the amplitudes A must be finite numbers")
    s = np.sin(np.pi * z)
    U0 = (1.0 - z)[None, :] + A[:, None] * s[None, :]
    below = q["ra_over_critical"] < 1.0

    def heat(t: float) -> np.ndarray:  # below onset the fluid comes to rest: the heat equation
        return (1.0 - z)[None, :] + (A * math.exp(-math.pi ** 2 * t))[:, None] * s[None, :]
    exact = heat if below else None
    dz = st.model.dz

    def final(U: np.ndarray) -> dict:
        dT = np.asarray(U) @ dz.T
        return {"nusselt_bottom": (-dT[:, 0]).tolist(), "nusselt_top": (-dT[:, -1]).tolist()}
    info = {"ra": p.ra, "ra_critical": ra_c, "below_onset": below, "perturbations": A.tolist()}
    if below:
        info["decay_rate_heat"] = math.pi ** 2
    return CouplerModel(st, U0, exact, info=info, final=final)


def _numba_relaxed_y():
    import numba

    @numba.njit
    def relaxed_y(t, x, out):  # the dissipative example's fast variable starts at y = x
        out[0] = x[0]
    return relaxed_y


_relaxed_y = _numba_relaxed_y()

#: PatchDiffusion's argument names -> config keys (its ValueErrors name the argument)
_PATCH_KEYS = {"eps": "patches.eps", "n_patches": "patches.n_patches", "patch_width": "patches.patch_periods",
               "buffer_width": "patches.buffer_periods", "micro_time": "patches.micro_time",
               "points_per_period": "patches.points_per_period", "order": "patches.order"}


def _patch_error(exc: ValueError) -> ConfigError:
    """A patch class's ValueError (it starts with the argument's name) as one line naming the
    config key of that argument (:data:`_PATCH_KEYS`), else the section."""
    text = str(exc)
    key = _PATCH_KEYS.get(text.split(" ", 1)[0])
    return ConfigError(f"config key {key}: {text} (widths in periods eps, micro_time in eps^2)" if key
                       else f"config section patches: {text}")


def _patches_2d(p: dict) -> CouplerModel:
    r"""Square patches on :math:`[0, 1]^2` (:class:`~hmmpar.couplers.PatchDiffusion2D`), initial
    state :math:`\sin 2\pi m x_1`. Media with an exact homogenized tensor: the laminate
    :math:`\bar a + A\sin 2\pi y_1`, :math:`A^* = \mathrm{diag}(\sqrt{\bar a^2 - A^2}, \bar a)`,
    and the self-dual :math:`e^{s\sin 2\pi y_1\sin 2\pi y_2}`, :math:`A^* = I` (Keller 1964,
    Dykhne 1970; docs/couplers.md)."""
    from hmmpar.couplers import PatchDiffusion2D
    eps, mean, amp = p["eps"], p["mean"], p["amplitude"]
    if p["medium"] == "self_dual":
        def a(y1, y2):
            return np.exp(amp * np.sin(2.0 * np.pi * y1) * np.sin(2.0 * np.pi * y2))
        a11 = 1.0
    else:
        if not abs(amp) < mean:
            raise ConfigError(f"config keys patches.mean = {mean:g}, patches.amplitude = {amp:g}: a(y) = mean + "
                              "amplitude sin(2 pi y1) must stay positive (|amplitude| < mean)")

        def a(y1, y2):
            return mean + amp * np.sin(2.0 * np.pi * y1) + 0.0 * y2
        a11 = math.sqrt(mean * mean - amp * amp)
    try:
        st = PatchDiffusion2D(a, eps, p["n_patches"], p["patch_periods"] * eps, p["buffer_periods"] * eps,
                              p["micro_time"] * eps ** 2, p["points_per_period"], p["order"])
    except ValueError as exc:
        raise _patch_error(exc) from None
    k = 2.0 * math.pi * p["mode"]
    U0 = np.sin(k * st.points[:, 0])[None, :]

    def exact(t: float) -> np.ndarray:
        return math.exp(-a11 * k * k * t) * U0
    from hmmpar.couplers import macro_rate_2d
    return CouplerModel(st, U0, exact, info={"a_hom": a11, "decay_rate_hom": a11 * k * k,
                                             "decay_rate_macro_scheme": macro_rate_2d(k, 0.0, a11, 1.0, st.Dx,
                                                                                      st.patch_width, st.order),
                                             "decay_rate_arithmetic": float(np.mean(a(*np.meshgrid(
                                                 *(2 * [np.arange(256) / 256]))))) * k * k,
                                             "domain_fraction": st.domain_fraction, "wavenumber": k,
                                             "dimension": 2})


def _patches(p: dict, bratu: bool = False) -> CouplerModel:
    from hmmpar.couplers import PatchDiffusion
    from hmmpar.couplers.continuation import bratu_fold
    from hmmpar.couplers.patches import bratu as bratu_reaction
    if p["dimension"] == 2:
        if bratu:
            raise ConfigError("config key patches.dimension = 2: the bratu model is 1D (Dirichlet patches)")
        return _patches_2d(p)
    if p["medium"] != "sine":
        raise ConfigError(f"config key patches.medium = {p['medium']!r} needs patches.dimension = 2")
    mean, amp = p["mean"], p["amplitude"]
    if not abs(amp) < mean:
        raise ConfigError(f"config keys patches.mean = {mean:g}, patches.amplitude = {amp:g}: a(y) = mean + "
                          "amplitude sin(2 pi y) must stay positive (|amplitude| < mean)")
    eps = p["eps"]

    def a(y):
        return mean + amp * np.sin(2.0 * np.pi * y)
    try:
        st = PatchDiffusion(a, eps, p["n_patches"], p["patch_periods"] * eps, p["buffer_periods"] * eps,
                            p["micro_time"] * eps ** 2, p["points_per_period"], p["order"],
                            boundary="dirichlet" if bratu else "periodic", reaction=bratu_reaction if bratu else None)
    except ValueError as exc:
        raise _patch_error(exc) from None
    if st.nf * st.dx >= st.Dx * (1 - 1e-12):  # allowed by the library (its exactness tests), not in a run
        raise ConfigError(f"config keys patches.patch_periods + 2 patches.buffer_periods = {st.nf * st.dx / eps:g} "
                          f"periods reach the macro spacing {st.Dx / eps:g} periods: the patches and their buffers "
                          "overlap and cost at least the full simulation; use fewer or narrower patches")
    a_star = math.sqrt(mean * mean - amp * amp)
    if bratu:
        return CouplerModel(st, np.zeros((1, st.N)), info={"a_hom": a_star, "lam_c_hom": bratu_fold()[0] * a_star,
                                                           "domain_fraction": st.domain_fraction})
    k = 2.0 * math.pi * p["mode"]
    x = st.centres
    U0 = np.sin(k * x)[None, :]

    def exact(t: float) -> np.ndarray:
        return math.exp(-a_star * k * k * t) * U0
    from hmmpar.couplers import macro_rate
    return CouplerModel(st, U0, exact, info={"a_hom": a_star, "decay_rate_hom": a_star * k * k,
                                             "decay_rate_macro_scheme": macro_rate(k, a_star, st.Dx, st.patch_width,
                                                                                   st.order),
                                             "decay_rate_arithmetic": mean * k * k,
                                             "domain_fraction": st.domain_fraction, "wavenumber": k})


def _user(config, comm, method: str) -> CouplerModel:
    from hmmpar.couplers import FreeStepper, MicroStepper
    from hmmpar.io.user_code import load_user_function
    if not config["model.function"]:
        raise ConfigError("config key model.function: model.name = 'user' needs 'module:function' or "
                          "'file.py:function'")
    fn = load_user_function(comm, config, "model.function")
    try:
        made = fn(dict(config["model.params"]))
        stepper, U0 = made
    except Exception as exc:  # noqa: BLE001 - user code may raise anything
        raise ConfigError(f"config key model.function = {config['model.function']!r}: calling it with "
                          f"model.params raised {one_line(exc)} (it must return (stepper, U0))") from None
    want = MicroStepper if method in HMM_METHODS else FreeStepper
    missing = [a for a in (("nx", "dtau", "lift", "advance", "restrict") if want is MicroStepper
                           else ("h", "lift", "evolve", "restrict")) if not hasattr(stepper, a)]
    if missing:
        kind = "a MicroStepper" if want is MicroStepper else "a FreeStepper"
        raise ConfigError(f"config key model.function: coupler.method = {method!r} needs {kind}; the stepper "
                          f"returned has no {', '.join(missing)}")
    U0 = np.atleast_2d(np.asarray(U0, dtype=float))
    if not np.all(np.isfinite(U0)):
        raise ConfigError("config key model.function: the initial macro state U0 it returned is not finite")
    return CouplerModel(stepper, U0)
