"""The couplers app (run.app = "couplers"): the farmed methods give the serial library's
answers bitwise on 1, 2 and 3 ranks and across a restart on another rank count; the default
config reproduces the homogenized decay rate; bad input is one line before any micro work."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, hmmpar_lines, run_mpi

CONFIG = ROOT / "drivers" / "configs" / "couplers.toml"
SEAMLESS = ("model.name=\"dissipative\"", "coupler.method=\"seamless\"", "coupler.dt=0.05", "coupler.t_end=0.5",
            "coupler.steps=200", "model.points=5")


def run(n, out: Path, *sets: str, restart: bool = False, config: Path = CONFIG):
    args = ["-m", "hmmpar.cli", "run", str(config), "--set", f'run.output_dir="{out}"',
            "--set", "run.progress_interval=0", "--set", "output.plots=false",
            *[a for s in sets for a in ("--set", s)]]
    if restart:
        args += ["--restart", "latest"]
    return run_mpi(n, args, timeout=300)


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def trajectory(out: Path) -> np.ndarray:
    import hmmpar  # noqa: F401 - Debian's MPI h5py
    import h5py
    with h5py.File(out / "couplers.h5") as f:
        return f["U"][()]


def test_default_config_reproduces_the_homogenized_decay_rate(tmp_path):
    """The default config is the validation problem of
    tests/validation/couplers/test_patch_dynamics.py (its error budget: -0.20 % against
    a* (2 pi)^2 = 18.0913, all terms known to within 1 %), now with every patch a farm task;
    its trajectory is bitwise the serial patch_dynamics'."""
    from hmmpar.couplers import PatchDiffusion, patch_dynamics
    out = tmp_path / "patch"
    p = run(2, out)
    assert p.returncode == 0, p.stderr
    s = summary(out)
    a_star = math.sqrt(1.1 ** 2 - 1.0)
    assert s["decay_rate_hom"] == pytest.approx(a_star * (2 * math.pi) ** 2, rel=1e-12)
    assert abs(s["decay_rate_rel_error_vs_hom"]) < 0.01
    assert s["decay_rate"] < 0.5 * s["decay_rate_arithmetic"]
    assert s["domain_fraction"] == pytest.approx(0.3125)
    eps = 1 / 512
    st = PatchDiffusion(lambda y: 1.1 + np.sin(2 * np.pi * y), eps, 16, 2 * eps, 4 * eps, 0.5 * eps ** 2, 16, 4)
    ref = patch_dynamics(st, np.sin(2 * np.pi * st.centres)[None], 0.0, 12, 4e-3, "rk4")
    assert trajectory(out).tobytes() == ref.U.tobytes()


def ranks_and_restart(tmp_path: Path, sets: tuple[str, ...], t_end: str, half: str, every: int) -> np.ndarray:
    """Run ``sets`` to ``t_end`` on 1 and 3 ranks, and to ``half`` on 1 rank (checkpoints every
    ``every`` steps) then restarted on 2 ranks to ``t_end``; assert the three trajectories and
    micro work are bitwise equal and return the trajectory."""
    runs = {}
    for n in (1, 3):
        out = tmp_path / f"r{n}"
        p = run(n, out, *sets, f"coupler.t_end={t_end}")
        assert p.returncode == 0, p.stderr
        runs[n] = trajectory(out)
    split = tmp_path / "split"
    p = run(1, split, *sets, f"coupler.t_end={half}", f"checkpoint.every_steps={every}")
    assert p.returncode == 0, p.stderr
    p = run(2, split, *sets, f"coupler.t_end={t_end}", restart=True)
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout
    assert runs[1].tobytes() == runs[3].tobytes() == trajectory(split).tobytes()
    assert summary(split)["micro_unit_steps"] == summary(tmp_path / "r1")["micro_unit_steps"]
    return runs[1]


@pytest.mark.parametrize("sets", [(), SEAMLESS], ids=["patch_dynamics", "seamless"])
def test_one_two_three_ranks_and_a_restart_are_bitwise_equal(tmp_path, sets):
    """The seamless run checkpoints its micro states (never re-lifted): the restart on
    another rank count continues them bitwise."""
    ranks_and_restart(tmp_path, sets, "0.5" if sets else "0.048", "0.25" if sets else "0.024", 2)


def test_seamless_app_is_the_library_seamless_hmm(tmp_path):
    """Same micro states, same estimator: the farmed run equals hmm.seamless_hmm bitwise,
    and its error against the averaged equation is the library's (validated in
    tests/validation/couplers/test_seamless_hmm.py)."""
    from hmmpar.apps.coupler_models import _relaxed_y, averaged_dissipative
    from hmmpar.couplers import SlowFastODE, seamless_hmm
    from hmmpar.couplers import examples as ex
    out = tmp_path / "s"
    p = run(2, out, *SEAMLESS)
    assert p.returncode == 0, p.stderr
    X0 = np.linspace(0.5, 1.5, 5)
    st = SlowFastODE(ex.f_dissipative, ex.g_dissipative, 1, 1, 1e-6, 0.05, _relaxed_y)
    ref = seamless_hmm(st, X0[:, None], 0.0, 0.5, 0.05, 200)
    assert trajectory(out).tobytes() == ref.X.tobytes()
    err = np.max(np.abs(ref.X[-1, :, 0] - averaged_dissipative(X0)(0.5)[:, 0]))
    assert summary(out)["max_abs_error_vs_reference"] == pytest.approx(err, rel=1e-9)


SELF_DUAL = ("patches.dimension=2", 'patches.medium="self_dual"', f"patches.eps={1 / 510!r}", "patches.n_patches=6",
             "patches.patch_periods=1.0", "patches.buffer_periods=3.375", "patches.micro_time=0.26",
             "patches.points_per_period=8", "coupler.dt=1e-3", "coupler.t_end=2e-3")


def test_2d_patches_through_the_farm_are_the_library_run(tmp_path):
    """Square patches in the self-dual medium exp(sin 2 pi y1 sin 2 pi y2) (A* = I, Keller /
    Dykhne; validated in tests/validation/couplers/test_patch_dynamics_2d.py with these
    settings): 3 ranks give bitwise the serial patch_dynamics, and the decay rate is the
    macro scheme's with A* = I to its known terms (1e-3; the raw rate is 1.2 % below (2 pi)^2,
    the 6-point macro grid's factor)."""
    from hmmpar.couplers import PatchDiffusion2D, patch_dynamics
    out = tmp_path / "p2d"
    p = run(3, out, *SELF_DUAL)
    assert p.returncode == 0, p.stderr
    eps = 1 / 510
    st = PatchDiffusion2D(lambda y1, y2: np.exp(np.sin(2 * np.pi * y1) * np.sin(2 * np.pi * y2)), eps, 6, eps,
                          3.375 * eps, 0.26 * eps ** 2, 8, 4)
    ref = patch_dynamics(st, np.sin(2 * np.pi * st.points[:, 0])[None], 0.0, 2, 1e-3, "rk4")
    assert trajectory(out).tobytes() == ref.U.tobytes()
    s = summary(out)
    assert s["domain_fraction"] < 0.01
    assert abs(s["decay_rate_rel_error_vs_macro_scheme"]) < 1e-3


def test_stochastic_ou_stepper_through_the_farm_is_the_library_run(tmp_path):
    """The OU demo's stepper draws instance b's normals from the farm task's stream
    (seed, call, b) however the batch is cut: 3 ranks give bitwise the serial seamless_hmm
    (whose error against the exact averaged solution is validated in
    tests/validation/couplers/test_ou_stepper.py)."""
    from hmmpar.couplers import seamless_hmm
    from hmmpar.couplers.ou_stepper import OUStepper
    out = tmp_path / "ou"
    p = run(3, out, 'model.name="ou"', 'coupler.method="seamless"', "coupler.dt=0.02", "coupler.t_end=1.0",
            "coupler.steps=400", "model.dtau=0.5", "model.points=16", "model.x0_min=0.2", "model.x0_max=2.0")
    assert p.returncode == 0, p.stderr
    X0 = np.linspace(0.2, 2.0, 16)
    ref = seamless_hmm(OUStepper(1e-6, 0.5, 2026), X0[:, None], 0.0, 1.0, 0.02, 400)
    assert trajectory(out).tobytes() == ref.X.tobytes()


def test_md_boxes_through_the_farm_are_the_library_run(tmp_path):
    """Seamless HMM of the isothermal piston with LJ boxes (md_piston): the boxes are never
    re-lifted, their thermostat draws from the farm task's stream, and 3 ranks give bitwise
    the serial seamless_hmm (whose equilibrium is validated against the PeTS equation of state
    in tests/validation/couplers/test_md_stepper.py)."""
    from hmmpar.couplers import seamless_hmm
    from hmmpar.couplers.md_stepper import MDStepper
    out = tmp_path / "md"
    p = run(3, out, 'model.name="md_piston"', 'coupler.method="seamless"', "coupler.dt=0.1", "coupler.t_end=0.5",
            "coupler.steps=50", "model.points=3", "model.x0_min=1.7", "model.x0_max=2.8")
    assert p.returncode == 0, p.stderr
    X0 = np.linspace(1.7, 2.8, 3)[:, None]
    ref = seamless_hmm(MDStepper(2.0, 1.0, 1.0, 108, dtau=0.005, seed=2026, thermostat_every=10), X0, 0.0, 0.5, 0.1,
                       50)
    assert trajectory(out).tobytes() == ref.X.tobytes()
    assert summary(out)["final_density"] == pytest.approx(list(1.0 / ref.X[-1, :, 0]), rel=1e-15)


def test_classical_md_lifts_every_box_once_as_a_farm_task(tmp_path):
    """Classical HMM re-lifts the boxes every macro step (an equilibration run per box): the
    farm lifts each box once, on some rank, instead of every rank lifting all of them, and the
    result is still bitwise the serial classical_hmm on 3 ranks (box b of lift k draws from
    task_rng(seed, k, b), wherever it runs)."""
    from hmmpar.couplers import classical_hmm
    from hmmpar.couplers.md_stepper import MDStepper
    out = tmp_path / "md_classical"
    p = run(3, out, 'model.name="md_piston"', 'coupler.method="classical"', "coupler.dt=0.1", "coupler.t_end=0.2",
            "coupler.relax=20", "coupler.window=30", "model.points=3", "model.x0_min=1.7", "model.x0_max=2.8")
    assert p.returncode == 0, p.stderr
    X0 = np.linspace(1.7, 2.8, 3)[:, None]
    st = MDStepper(2.0, 1.0, 1.0, 108, dtau=0.005, seed=2026, thermostat_every=10)
    ref = classical_hmm(st, X0, 0.0, 0.2, 0.1, 20, 30)
    assert st.lifts == 2
    assert trajectory(out).tobytes() == ref.X.tobytes()


SSA = ('model.name="ssa_ensemble"', f'ssa.network="{ROOT / "drivers" / "configs" / "models" / "birth_death.toml"}"', 'coupler.method="projective_euler"',
       "coupler.k=4", "coupler.M=15.0", "coupler.fit_window=5", "coupler.t_end=4.0")


def test_ssa_ensemble_replicas_are_farm_tasks_bitwise_on_any_rank_count(tmp_path):
    """Coarse projective integration of a direct-SSA ensemble (birth-death, 1000 replicas,
    least-squares slope over 5 inner steps), every replica a farm task whose stream is keyed by
    (run seed, farm call, replica): bitwise the same on 1 and 3 ranks and across a restart from
    1 to 2 ranks, and within the statistical error of the exact mean m(t) = 200 (1 - e^-t) --
    the error model of tests/validation/couplers/test_ssa_projective.py (same k, M, window, R,
    h): the expected projective trajectory and the variance of U_n about it."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "ssa_projective", ROOT / "tests" / "validation" / "couplers" / "test_ssa_projective.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    U = ranks_and_restart(tmp_path, SSA[:-1], "4.0", "2.0", 3)[:, 0, 0]
    mean, V, _ = model.predicted(4, 15, 5)
    t = 0.2 * np.arange(U.size)
    tol = 4 * np.sqrt(V) + np.abs(mean - model.exact_mean(t)) + np.arange(U.size) / (2 * 1000)
    assert np.all(np.abs(U - model.exact_mean(t)) <= tol), (U - model.exact_mean(t), tol)


def test_nested_ssa_replicas_are_farm_tasks_bitwise_on_any_rank_count(tmp_path):
    """Nested-SSA replicas of the four-species model (E, Liu & Vanden-Eijnden 2005) as farm
    tasks under projective Euler on the slow variables y1 = S1 + S2, y2 = S3 + S4: 1 and 3
    ranks give the same bits; the network conserves y1 + y2 = 100 in every replica and the
    projective step is linear, so the means keep y1 + y2 = 100 to rounding, and y2 moves from
    0 towards its equilibrium 50: the projective method's expected value at t = 1.5 is 42.40
    (amplification 0.5337 per outer step, test_nested_ssa_stepper.py) with a standard
    deviation of 1.15 sqrt(200/50) = 2.3 at 50 replicas; the band (25, 55) is over 5 of them."""
    sets = ('model.name="ssa_ensemble"', 'ssa.engine="nested"', 'ssa.slow=["S1 + S2", "S3 + S4"]',
            f'ssa.network="{ROOT / "drivers" / "configs" / "models" / "four_species.toml"}"',
            "ssa.replicas=50", "ssa.h=0.05", 'coupler.method="projective_euler"', "coupler.k=1", "coupler.M=8.0",
            "coupler.t_end=1.5")
    runs = {}
    for n in (1, 3):
        out = tmp_path / f"r{n}"
        p = run(n, out, *sets)
        assert p.returncode == 0, p.stderr
        runs[n] = trajectory(out)
    assert runs[1].tobytes() == runs[3].tobytes()
    U = runs[1][:, 0, :]
    assert np.allclose(U.sum(axis=1), 100.0, rtol=0, atol=1e-10)
    assert U[0, 1] == 0.0 and 25.0 < U[-1, 1] < 55.0


def test_projective_rk_and_telescopic_apps_match_the_library(tmp_path):
    from hmmpar.couplers import EulerODE, ProjectiveStepper, projective_euler, projective_rk
    from hmmpar.couplers import examples as ex
    X0 = np.linspace(0.5, 1.5, 3)
    U0 = np.column_stack([X0, X0])
    st = EulerODE(ex.full_rhs_dissipative(1e-5), 0.5e-5)
    out = tmp_path / "prk"
    p = run(2, out, 'model.name="dissipative"', 'coupler.method="projective_rk"', "coupler.dt=0.01",
            "coupler.t_end=0.1", "model.dtau=0.5", "model.eps=1e-5", "coupler.K=12", "model.points=3")
    assert p.returncode == 0, p.stderr
    ref = projective_rk(st, U0, 0.0, 10, 0.01, 12, "rk4")
    assert trajectory(out).tobytes() == ref.U.tobytes()
    out = tmp_path / "tel"
    p = run(3, out, 'model.name="dissipative"', 'coupler.method="telescopic"', "coupler.k=3", "coupler.M=6",
            "coupler.k_outer=2", "coupler.M_outer=5", "coupler.t_end=0.0032", "model.dtau=0.5", "model.eps=1e-5",
            "model.points=3")
    assert p.returncode == 0, p.stderr
    assert "predicted unstable" not in p.stderr
    ref = projective_euler(ProjectiveStepper(EulerODE(ex.full_rhs_dissipative(1e-5), 0.5e-5), 3, 6.0), U0, 0.0,
                           8, 2, 5.0)
    assert trajectory(out).tobytes() == ref.U.tobytes()


CONVECTION = ('model.name="convection"', 'coupler.method="projective_euler"', "coupler.k=2", "coupler.M=5.0")


def convection_library_run(ra: float, amplitude: float, outer: int) -> tuple[np.ndarray, np.ndarray]:
    """The serial projective_euler of the app's convection columns (default section
    convection: 16 x 17, aspect 2 sqrt 2, Pr = inf, h = 0.01, dt_max = h / 4, A = (0.1, -0.05);
    the config's run seed 2026); the trajectory and z."""
    from hmmpar.couplers import projective_euler
    from hmmpar.couplers.convection_stepper import ConvectionStepper
    from hmmpar.micro.convection import RA_C_FREE_SLIP, ConvectionParams
    p = ConvectionParams(ra=ra * RA_C_FREE_SLIP, aspect=2 * math.sqrt(2), nx=16, nz=17, dt_max=0.0025)
    st = ConvectionStepper(p, 0.01, seed=2026, amplitude=amplitude)
    z = st.model.z
    U0 = (1 - z)[None, :] + np.array([0.1, -0.05])[:, None] * np.sin(np.pi * z)[None, :]
    return projective_euler(st, U0, 0.0, outer, 2, 5.0).U, z


def test_convection_below_onset_is_the_library_run_at_the_projective_rate(tmp_path):
    """Convection columns at Ra = Ra_c / 2 lifting with memory (eddies of amplitude 1e-3 kept
    across the extrapolations, carried through the farm): 3 ranks give bitwise the serial
    projective_euler, and the mean profile stays 1 - z + A_n sin(pi z) with A_n / A_0 =
    sigma^n, sigma = amplification(e^{-pi^2 h}, 2, 5) (decay rate 12.84 for pi^2 = 9.87),
    within the error budget of tests/validation/couplers/test_convection_stepper.py: the
    IMEX factor (< 1e-4 relative per step at dt_max = h / 4) and the eddy flux (quadratic in
    the amplitude, < 1e-6 on A). summary.json's Nusselt number is -dT/dz(0) = 1 - pi A_N."""
    from hmmpar.couplers import amplification
    out = tmp_path / "below"
    p = run(3, out, *CONVECTION, "coupler.t_end=0.4")
    assert p.returncode == 0, p.stderr
    assert "amplification" not in p.stderr                      # measured at start-up: < 1 below onset
    U = trajectory(out)
    ref, z = convection_library_run(0.5, 1e-3, 5)
    assert U.tobytes() == ref.tobytes()
    s_z = np.sin(np.pi * z)
    A = (U - (1 - z)) @ s_z / (s_z @ s_z)                        # (6, 2)
    assert np.abs(U - (1 - z) - A[..., None] * s_z).max() < 1e-6
    sigma = float(amplification(math.exp(-math.pi ** 2 * 0.01), 2, 5.0))
    n = np.arange(6)[:, None]
    predicted = A[0] * sigma ** n
    assert np.all(np.abs(A - predicted) <= np.abs(predicted) * ((1 + 1e-4) ** n - 1) + 1e-6 * n)
    rate = -np.log(A[-1] / A[0]) / 0.4
    assert np.allclose(rate, -math.log(sigma) / 0.08, rtol=1e-4, atol=0)
    assert -math.log(sigma) / 0.08 == pytest.approx(12.84, abs=0.01)
    s = summary(out)
    assert s["below_onset"] and s["decay_rate_heat"] == pytest.approx(math.pi ** 2)
    assert s["nusselt_bottom"] == pytest.approx(list(1 - math.pi * A[-1]), abs=1e-5)
    heat = 0.1 * math.exp(-math.pi ** 2 * 0.4)
    assert s["max_abs_error_vs_reference"] == pytest.approx(abs(A[-1, 0] - heat), rel=1e-3)


def test_convection_above_onset_with_memory_is_bitwise_on_any_rank_count_and_restart(tmp_path):
    """At Ra = 2 Ra_c the eddies grow (rate 1.5 pi^2 for Pr = inf) and the lifting memory
    matters: 1 and 3 ranks and a restart from 1 to 2 ranks (the memory checkpointed) give the
    same bits, which are the serial library's; summary.json's Nusselt numbers are -dT/dz of the
    final profiles at both walls."""
    from hmmpar.micro.convection.chebyshev import diff_matrix
    sets = CONVECTION + ("convection.ra_over_critical=2.0", "convection.amplitude=0.01")
    U = ranks_and_restart(tmp_path, sets, "0.4", "0.16", 1)
    ref, z = convection_library_run(2.0, 1e-2, 5)
    assert U.tobytes() == ref.tobytes()
    s = summary(tmp_path / "r1")
    assert not s["below_onset"] and "max_abs_error_vs_reference" not in s
    dT = U[-1] @ diff_matrix(z.size).T
    assert s["nusselt_bottom"] == pytest.approx(list(-dT[:, 0]), rel=1e-12)
    assert s["nusselt_top"] == pytest.approx(list(-dT[:, -1]), rel=1e-12)


def test_convection_with_an_hmm_method_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "bad"
    p = run(1, out, 'model.name="convection"', 'coupler.method="seamless"')
    assert p.returncode == 2, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and "coupler.method" in lines[0] and "convection" in lines[0], p.stderr


BRATU = ROOT / "drivers" / "configs" / "couplers_bratu.toml"


def branch(out: Path) -> tuple[np.ndarray, ...]:
    import hmmpar  # noqa: F401 - Debian's MPI h5py
    import h5py
    with h5py.File(out / "couplers.h5") as f:
        return f["lambda"][()], f["U"][()], f["eigenvalues"][()]


def test_continuation_is_the_library_branch_on_1_2_3_ranks_and_across_a_restart(tmp_path):
    """The coarse continuation (Newton-Krylov on the farmed patch-dynamics slope, SLEPc or
    ARPACK eigenvalues) takes bitwise the path of the serial pseudo_arclength on the same
    patches -- whose fold is validated against 3.513830719 a* in
    tests/validation/couplers/test_coarse_bifurcation.py with these parameters -- on 1 and 3
    ranks, and after a restart from 1 to 2 ranks that allows more points."""
    from hmmpar.couplers import PatchDiffusion
    from hmmpar.couplers.continuation import pseudo_arclength
    from hmmpar.couplers.patches import bratu, steady_residual
    runs = {}
    out = tmp_path / "r3"
    p = run(3, out, "continuation.points=5", config=BRATU)
    assert p.returncode == 0, p.stderr
    runs[3] = branch(out)
    split = tmp_path / "split"  # 1 rank, then 2
    p = run(1, split, "continuation.points=3", "checkpoint.every_steps=1", config=BRATU)
    assert p.returncode == 0, p.stderr
    p = run(2, split, "continuation.points=5", restart=True, config=BRATU)
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout
    runs["split"] = branch(split)
    eps = 1 / 512
    st = PatchDiffusion(lambda y: 1.1 + np.sin(2 * np.pi * y), eps, 15, 2 * eps, 4 * eps, 0.5 * eps ** 2, 16, 2,
                        boundary="dirichlet", reaction=bratu)
    import tomllib
    lam0 = tomllib.loads(BRATU.read_text())["continuation"]["lam0"]
    assert lam0 == pytest.approx(0.4 * math.sqrt(1.1 ** 2 - 1), rel=1e-15)
    ref = pseudo_arclength(steady_residual(st), np.zeros(15), lam0, lam0, 0.4, points=5, after_fold=2, atol=1e-5,
                           fd_step=1e-4)
    for got in runs.values():
        assert got[0].tobytes() == ref.lam.tobytes() and got[1].tobytes() == ref.U.tobytes()
        assert got[2].tobytes() == ref.eigenvalues.tobytes()
    assert summary(split)["F_evaluations"] == summary(tmp_path / "r3")["F_evaluations"] == ref.total_evaluations


def user_module() -> str:
    """The user-stepper example of docs/couplers.md (so the page's code is what runs)."""
    text = (ROOT / "docs" / "couplers.md").read_text()
    start = text.index("```python\nimport numpy as np\nfrom hmmpar.couplers import LinearEuler")
    return text[start + len("```python\n"):text.index("```", start + 10)]


def test_user_stepper_follows_the_projective_amplification_exactly(tmp_path):
    """The docs' user FreeStepper (file.py:function, trusted code): u' = lam u with forward Euler
    steps of h; projective Euler multiplies every mode by rho^k ((M + 1) rho - M),
    rho = 1 + h lam (Gear & Kevrekidis 2003), so after N steps U = sigma^N exactly (to
    rounding, 1e-12)."""
    (tmp_path / "mine.py").write_text(user_module())
    cfg = tmp_path / "user.toml"
    cfg.write_text(CONFIG.read_text().replace('name = "homogenization"', 'name = "user"\nfunction = "mine.py:make"\n'
                                              'params = {lam = [-1.0, -800.0], h = 0.002}'))
    out = tmp_path / "u"
    p = run(2, out, 'coupler.method="projective_euler"', "coupler.k=2", "coupler.M=3.0", "coupler.t_end=0.06",
            config=cfg)
    assert p.returncode == 0, p.stderr
    U = trajectory(out)
    rho = 1 + 0.002 * np.array([-1.0, -800.0])
    sigma = rho ** 2 * (4 * rho - 3)
    n = np.arange(U.shape[0])[:, None]
    np.testing.assert_allclose(U[:, 0, :], sigma[None, :] ** n, rtol=1e-12, atol=1e-300)
    # no Jacobian to predict from: the start-up power iteration measures the fast mode's
    # |sigma| = 0.36 * 5.4 = 1.944 (the slow one's is 0.994) and warns
    warned = [x for x in hmmpar_lines(p.stderr) if "measured amplification" in x]
    assert len(warned) == 1, p.stderr
    measured = float(warned[0].split("outer step is ")[1].split(" ")[0])
    assert measured == pytest.approx(abs(sigma).max(), rel=1e-3)


@pytest.mark.parametrize("sets, key", [
    (("coupler.t_end=0.05",), "coupler.t_end"),
    (('model.name="dissipative"', 'coupler.method="patch_dynamics"'), "coupler.method"),
    (("patches.buffer_periods=2.0",), "patches.buffer_periods"),
    (("patches.amplitude=1.2",), "patches.amplitude"),
    (("patches.n_patches=64", "patches.buffer_periods=3.5"), "patches.buffer_periods"),
    (("coupler.dt=1e-6",), "coupler.dt"),
    (('model.name="user"',), "model.function"),
    (('model.name="dissipative"', 'coupler.method="projective_rk"', "coupler.dt=1e-7", "coupler.K=1000"),
     "coupler.dt"),
    (('coupler.method="continuation"',), "coupler.method"),
    (('model.name="ou"', 'coupler.method="projective_rk"'), "coupler.method"),
    (SSA[:2] + ('coupler.method="seamless"',), "coupler.method"),
    (SSA[:-1] + ("coupler.fit_window=9", "coupler.t_end=4.0"), "coupler.fit_window"),
    (('model.name="ssa_ensemble"', 'coupler.method="projective_euler"'), "ssa.network"),
    (('model.name="md_piston"', 'coupler.method="seamless"', "coupler.steps=55"), "coupler.steps"),
    (('model.name="md_piston"', 'coupler.method="seamless"', "coupler.steps=50", "model.x0_min=0.1"),
     "config section md"),
    (('coupler.method="continuation"', 'model.name="bratu"', "continuation.lam_max=0.1"), "continuation.lam0"),
    (('coupler.method="continuation"', 'model.name="bratu"', "continuation.eigenvalues=20"),
     "continuation.eigenvalues"),
    # 1e6 patches of 11 periods of 4096 cells: 1.4 TB of lifted state, refused before any is allocated
    (("patches.n_patches=1000000", "patches.eps=1e-8", "patches.points_per_period=4096"), "patches.n_patches"),
    (('model.name="convection"', 'coupler.method="classical"'), "coupler.method"),
    (('model.name="convection"', 'coupler.method="patch_dynamics"'), "coupler.method"),
    (CONVECTION + ("convection.nx=15",), "convection.nx"),
    (CONVECTION + ("convection.ra_over_critical=1000.0",), "convection.nz"),   # the boundary-layer rule
])
def test_bad_input_is_a_config_error_naming_the_key(sets, key):
    """Found while the application is built (``hmmpar validate``, before any micro work);
    the command-line path (one line, exit 2) is the next test's."""
    from mpi4py import MPI

    from hmmpar.core.config import load_config
    from hmmpar.core.errors import ConfigError
    from hmmpar.core.preflight import prepare
    cfg = load_config(CONFIG, sets)
    with pytest.raises(ConfigError) as err:
        prepare(cfg, MPI.COMM_SELF)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_a_continuation_that_cannot_start_says_where_and_why(tmp_path):
    """Past the fold (lambda = 3 > lambda_c = 1.61) the Bratu patches have no steady state:
    the first Newton solve fails, and the run ends with one line naming the branch point, lambda,
    the iterations, the residual and PETSc's reason (exit 1: the input is valid, the problem
    has no solution there)."""
    out = tmp_path / "nosol"
    p = run(1, out, "continuation.lam0=3.0", "continuation.eigenvalues=0", config=BRATU)
    assert p.returncode == 1, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert "start point 0 (lambda = 3)" in lines[0] and "did not converge" in lines[0] and "PETSc reason" in lines[0]


def test_an_unstable_k_m_for_an_ssa_ensemble_is_predicted_from_its_rate_equations():
    """Birth-death's mean obeys m' = 200 - m exactly (first-order reactions), so the start-up
    check predicts from lambda = -1 and the SSA inner steps' exact flow rho = e^{-h}: at
    h = 0.5, k = 2, M = 8 and the least-squares slope over 3 values, |sigma| = 1.310 > 1 (a
    warning with that number); the validated (k, M) = (4, 15) at h = 0.01 is not warned."""
    from hmmpar.couplers.stability import fit_amplification
    args = ["-m", "hmmpar.cli", "validate", str(CONFIG), *[a for s in SSA[:3] for a in ("--set", s)]]
    p = run_mpi(1, args + ["--set", "ssa.h=0.5", "--set", "coupler.k=2", "--set", "coupler.M=8.0",
                           "--set", "coupler.fit_window=3", "--set", "coupler.t_end=5.5"], timeout=120)
    assert p.returncode == 0, p.stderr
    warned = [x for x in hmmpar_lines(p.stderr) if "predicted unstable" in x]
    assert len(warned) == 1, p.stderr
    sigma = float(warned[0].split("|sigma| = ")[1].split(" ")[0])
    want = abs(fit_amplification(np.exp(-0.5), 2, 8.0, 3))
    assert want > 1 and sigma == pytest.approx(want, rel=1e-3)
    p = run_mpi(1, args + [a for s in SSA[3:] for a in ("--set", s)], timeout=120)
    assert p.returncode == 0 and "predicted unstable" not in p.stderr, p.stderr


def test_no_spectral_gap_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "bad"
    p = run(1, out, 'model.name="seed"', 'coupler.method="projective_rk"', "coupler.dt=0.01", "coupler.t_end=0.1")
    assert p.returncode == 2, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and "no spectral gap" in lines[0] and "coupler.method" in lines[0], p.stderr
    assert not (out / "summary.json").exists()


def test_an_unstable_k_m_is_warned_with_the_predicted_growth_and_the_blow_up_named(tmp_path):
    """(k, M) = (0, 5) with h lambda = -0.5 on the fast mode: sigma = 6 (0.5) - 5 = -2
    (amplification formula), so the run is warned at start-up and the blow-up, when it
    comes, is one line naming the outer step."""
    out = tmp_path / "unstable"
    p = run(1, out, 'model.name="dissipative"', 'coupler.method="projective_euler"', "coupler.k=0",
            "coupler.M=5.0", "model.dtau=0.5", "coupler.t_end=6e-4", "model.points=1")
    lines = hmmpar_lines(p.stderr)
    assert any("predicted unstable" in x and "|sigma| = 2 " in x for x in lines), p.stderr
    assert p.returncode == 1, p.stderr
    assert "outer step" in lines[-1] and "unstable" in lines[-1], p.stderr
