"""The ``ssa`` application as users run it: its driver, restarts across rank counts, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

import hmmpar  # noqa: F401 - MPI h5py
import h5py

from conftest import ROOT, hmmpar_lines, run_mpi

MODELS = ROOT / "drivers" / "configs" / "models"

CONFIG = """
[run]
app = "ssa"
seed = 4
output_dir = "{out}"
progress_interval = 0.0
[model]
file = "{model}"
[ensemble]
trajectories = 11
t_end = 0.5
samples = 5
[nested]
tolerance = 1.0
[output]
plots = false
species = ["s32", "DnaJ"]
[checkpoint]
every_steps = 1
keep = 10
"""


def hmmpar_run(n, cfg, *extra, timeout=180):
    return run_mpi(n, ["-m", "hmmpar.cli", "run", str(cfg), *extra], timeout=timeout)


def trajectories(out):
    with h5py.File(out / "ssa.h5", "r") as f:
        return np.array(f["trajectories"])


def test_driver_runs_its_default_config(tmp_path):
    """drivers/ssa.py (heat shock) shortened with --set, on 2 ranks: every output is there."""
    out = tmp_path / "hs"
    p = run_mpi(2, [str(ROOT / "drivers" / "ssa.py"), "--set", f'run.output_dir="{out}"',
                    "--set", "ensemble.trajectories=12", "--set", "ensemble.t_end=0.5",
                    "--set", "ensemble.samples=5"], timeout=180)
    assert p.returncode == 0, p.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["app"] == "ssa" and s["method"] == "nested" and s["trajectories"] == 12 and s["windows"] == 5
    assert s["parameters"]["replicas"] == 1 and s["events"]["outer"] > 0
    # ~1400 fast events per inner run (T_f = eps); most outer steps reuse the averages
    inner_runs = s["outer_steps"] - s["reused_averages"]
    assert s["events"]["inner"] > 1000 * inner_runs > 0 and s["reused_averages"] > s["outer_steps"] / 3
    assert set(s["final"]) == {"s32", "RNAP.s32", "s32.DnaJ", "DnaJ"}
    assert s["final"]["s32"]["se_mean"] > 0
    assert (out / "ssa.png").stat().st_size > 10_000
    with h5py.File(out / "ssa.h5", "r") as f:
        assert f["trajectories"].shape == (12, 6, 14) and f["trajectories"].chunks[0] == 12
        assert np.allclose(f["times"][:], np.linspace(0, 0.5, 6))
        assert f["observables/s32/histogram/counts"][:].sum() == 12
        assert np.allclose(f["mean"][-1, 2], s["final"]["s32"]["mean"])


def run_driver_config(config: str, out, *settings: str) -> dict:
    """drivers/ssa.py with drivers/configs/<config> on 2 ranks, output to ``out``, shortened
    by the ``--set`` settings; returns its summary.json."""
    sets = [arg for setting in (f'run.output_dir="{out}"',) + settings for arg in ("--set", setting)]
    p = run_mpi(2, [str(ROOT / "drivers" / "ssa.py"), str(ROOT / "drivers" / "configs" / config), *sets], timeout=180)
    assert p.returncode == 0, p.stderr
    return json.loads((out / "summary.json").read_text())


def test_three_scales_config_runs_through_the_driver(tmp_path):
    """drivers/configs/ssa_three_scales.toml (Nested SSA nested twice) through drivers/ssa.py,
    shortened with --set, on 2 ranks: the three-level parameters as applied and the outputs."""
    out = tmp_path / "ts"
    s = run_driver_config("ssa_three_scales.toml", out, "ensemble.trajectories=6", "ensemble.t_end=0.3",
                          "ensemble.samples=2")
    assert s["app"] == "ssa" and s["method"] == "nested" and s["trajectories"] == 6 and s["windows"] == 2
    par = s["parameters"]
    assert par["levels"] == 3 and par["replicas"] == 4 and par["ultrafast_replicas"] == 2
    assert par["levels_initial"] == [2, 2, 1, 1, 0, 0]
    assert par["averaging_time_initial"] == pytest.approx(4e-3)
    assert par["ultrafast_averaging_time_initial"] == pytest.approx(2e-6)
    assert s["events"]["inner"] > 1000 * s["outer_steps"] > 0
    assert set(s["final"]) == {"S1 + S2 + S3", "S4"}
    with h5py.File(out / "ssa.h5", "r") as f:
        x = f["trajectories"][:]
        assert x.shape == (6, 3, 4) and (x.sum(axis=2) == 30).all() and (x >= 0).all()
        assert np.array_equal(x[:, 0], np.tile([10, 10, 10, 0], (6, 1)))


def test_heat_shock_config_runs_through_the_driver_and_checkpoints_by_wall_time(tmp_path):
    """drivers/configs/ssa_heat_shock.toml (the SSA main job) through drivers/ssa.py, shortened
    with --set, on 2 ranks. Its checkpoints are by wall time (every 60 s), so a short run
    writes exactly one, after its last window."""
    out = tmp_path / "hs"
    s = run_driver_config("ssa_heat_shock.toml", out, "ensemble.trajectories=8", "ensemble.t_end=0.5",
                          "ensemble.samples=4")
    assert s["method"] == "nested" and s["trajectories"] == 8 and s["windows"] == 4
    assert [c.name for c in (out / "checkpoints").glob("ckpt_*.h5")] == ["ckpt_00000004.h5"]
    timing = json.loads((out / "timing.json").read_text())
    assert timing["checkpoint"]["count"] == 1
    with h5py.File(out / "ssa.h5", "r") as f:
        assert f["trajectories"].shape[:2] == (8, 5) and (f["trajectories"][:] >= 0).all()


def test_restart_on_other_rank_counts_is_bitwise_the_straight_run(tmp_path):
    """3 ranks straight, checkpoint after every window; restart from window 2 of 5 on 2
    ranks; and 1 rank straight: the same trajectories bit for bit."""
    cfg = tmp_path / "hs.toml"
    cfg.write_text(CONFIG.format(out=tmp_path / "three", model=MODELS / "heat_shock.toml"))
    p = hmmpar_run(3, cfg)
    assert p.returncode == 0, p.stderr
    p = hmmpar_run(2, cfg, "--set", f'run.output_dir="{tmp_path / "two"}"',
                   "--restart", str(tmp_path / "three" / "checkpoints" / "ckpt_00000002.h5"))
    assert p.returncode == 0, p.stderr
    assert "written on 3 rank(s), now 2" in p.stdout
    p = hmmpar_run(1, cfg, "--set", f'run.output_dir="{tmp_path / "one"}"')
    assert p.returncode == 0, p.stderr
    a, b, c = (trajectories(tmp_path / name) for name in ("three", "two", "one"))
    assert a.shape == (11, 6, 14) and a.tobytes() == b.tobytes() == c.tobytes()


@pytest.mark.parametrize("ranks,extra,message", [
    (2, '[model]\nfile = "nope.toml"\n', "config key model.file: cannot read {tmp}/nope.toml"),
    (1, '[model]\nfile = "{model}"\n[output]\nspecies = ["s33"]\n',
     "config key output.species: unknown species 's33' (did you mean 's32'?)"),
], ids=["bad_model_path", "unknown_species"])
def test_bad_input_is_one_line_naming_the_key_exit_2(tmp_path, ranks, extra, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[run]\napp = "ssa"\n' + extra.format(model=MODELS / "heat_shock.toml"))
    p = hmmpar_run(ranks, cfg, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], p.stderr
    assert "Traceback" not in p.stderr


ISSUE_MODEL = """
[species]
A = 4000000000000000000
B = 4000000000000000000
[[reactions]]
equation = "A + B -> 2 A"
rate = {rate}
fast = true
[[reactions]]
equation = "A -> B"
rate = 1.0
"""

# fast A <-> B relaxes; the slow reaction adds 2^61 C per firing (about 5 per unit time), so
# the 4th firing would pass 2^63 - 1: known only during micro work
WRAPPING_MODEL = """
[species]
A = 5
B = 5
C = 0
[[reactions]]
equation = "A -> B"
rate = 1000.0
fast = true
[[reactions]]
equation = "B -> A"
rate = 1000.0
fast = true
[[reactions]]
equation = "B -> B + 2305843009213693952 C"
rate = 1.0
"""


def guard_run(tmp_path, model: str, *settings: str):
    (tmp_path / "m.toml").write_text(model)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[run]\napp = "ssa"\noutput_dir = "{tmp_path / "out"}"\nprogress_interval = 0.0\n'
                   '[model]\nfile = "m.toml"\n[ensemble]\ntrajectories = 4\nt_end = 10.0\nsamples = 2\n'
                   '[nested]\ntolerance = 0.5\n[output]\nplots = false\n')
    sets = [arg for s in settings for arg in ("--set", s)]
    return hmmpar_run(2, cfg, *sets, timeout=300)


@pytest.mark.parametrize("rate", ["1e300", "1.0"])
def test_issue_overflow_model_is_refused_before_micro_work(tmp_path, rate):
    """Issue 11: this model looped for ever at t = 0. Rate 1e300 is above MAX_RATE; at rate 1
    the fast reaction raises A, which no fast reaction consumes. Exit 2, one line each."""
    p = guard_run(tmp_path, ISSUE_MODEL.format(rate=rate))
    assert p.returncode == 2, p.stderr
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and "m.toml: reaction 0 (A + B -> 2 A)" in lines[0], lines
    if rate == "1e300":
        assert lines[0].startswith("hmmpar: error: config key model.file: ") and "is above 1e+250" in lines[0]
    else:
        assert lines[0].startswith('hmmpar: error: config key nested.partition = "model": ')
        assert "is fast but raises 'A', which no fast reaction consumes" in lines[0]


@pytest.mark.parametrize("parallel", ["trajectories", "replicas"])
def test_count_overflow_during_micro_work_names_the_trajectory(tmp_path, parallel):
    p = guard_run(tmp_path, WRAPPING_MODEL, f'ensemble.parallel="{parallel}"', "ensemble.trajectories=1")
    assert p.returncode == 1, p.stderr
    lines = [line for line in hmmpar_lines(p.stderr) if "error" in line]
    assert len(lines) == 1, p.stderr
    assert "a species count passed 2^63 - 1 (int64 overflow) at t = " in lines[0]
    assert ("micro task 0 (step 0)" if parallel == "trajectories" else "trajectory 0: ") in lines[0]
    assert "internal error" not in p.stderr
