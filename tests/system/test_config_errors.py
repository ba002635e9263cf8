"""Bad config or command line: exit code 2, one line naming the problem, printed once."""
from __future__ import annotations

import pytest

from conftest import ROOT, hmmpar_lines, run_mpi

GOOD = """
[run]
app = "ou_averaging"
[model]
points = 8
"""

CASES = {
    "unknown_key": (GOOD + "[farm]\nmin_chunck = 3\n",
                    "unknown config key farm.min_chunck", "did you mean 'min_chunk'?"),
    "wrong_type": (GOOD + "[macro]\ndt = \"small\"\n",
                   "config key macro.dt must be a number, got a string", '"small"'),
    "bool_for_int": (GOOD.replace("points = 8", "points = true"),
                     "config key model.points must be an integer", "boolean"),
    "out_of_range": (GOOD + "[micro]\nsamples = 0\n", "config key micro.samples must be >= 1", "got 0"),
    "bad_choice": (GOOD + "[farm]\nmode = \"dynamik\"\n", "farm.mode must be one of dynamic, static",
                   "did you mean 'dynamic'?"),
    "unknown_section": (GOOD + "[macr]\ndt = 0.1\n", "unknown config section [macr]", "did you mean 'macro'?"),
    "unknown_app": ('[run]\napp = "ou_averagin"\n', "unknown application 'ou_averagin'",
                    "did you mean 'ou_averaging'?"),
    "bad_toml": (GOOD + "[farm\n", "is not valid TOML", ""),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("ranks", [1, 2])
def test_bad_config_exit_2_one_line(tmp_path, case, ranks):
    text, must, hint = CASES[case]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    proc = run_mpi(ranks, ["-m", "hmmpar.cli", "run", str(cfg)], timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = hmmpar_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert must in lines[0] and hint in lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_file(tmp_path):
    proc = run_mpi(2, ["-m", "hmmpar.cli", "validate", str(tmp_path / "nope.toml")], timeout=60)
    assert proc.returncode == 2
    assert hmmpar_lines(proc.stderr) == [f"hmmpar: error: config file not found: {tmp_path / 'nope.toml'}"]


def test_set_override_is_validated(tmp_path):
    cfg = tmp_path / "good.toml"
    cfg.write_text(GOOD)
    proc = run_mpi(1, ["-m", "hmmpar.cli", "validate", str(cfg), "--set", "macro.dt=-1"], timeout=60)
    assert proc.returncode == 2
    assert "config key macro.dt must be > 0.0, got -1.0" in proc.stderr
    ok = run_mpi(1, ["-m", "hmmpar.cli", "validate", str(cfg), "--set", "macro.dt=0.5", "--print"], timeout=60)
    assert ok.returncode == 0 and "dt = 0.5" in ok.stdout


def test_bad_command_line_exit_2_once():
    proc = run_mpi(2, ["-m", "hmmpar.cli", "run"], timeout=60)
    assert proc.returncode == 2
    lines = hmmpar_lines(proc.stderr)
    assert len(lines) == 1 and "the following arguments are required: config" in lines[0]


def test_unwritable_output_dir_reported_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD.replace('app = "ou_averaging"', f'app = "ou_averaging"\noutput_dir = "{blocker}/out"'))
    proc = run_mpi(2, ["-m", "hmmpar.cli", "run", str(cfg)], timeout=60)
    assert proc.returncode == 2
    lines = hmmpar_lines(proc.stderr)
    assert len(lines) == 1 and f"output directory {blocker}/out is not writable" in lines[0]


def test_non_utf8_config(tmp_path):
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes('[run]\napp = "ou_averaging" # caf\xe9\n'.encode("latin-1"))
    proc = run_mpi(1, ["-m", "hmmpar.cli", "validate", str(cfg)], timeout=60)
    assert proc.returncode == 2
    assert hmmpar_lines(proc.stderr) == [f"hmmpar: error: config file {cfg} is not UTF-8 text"]


def test_ou_averaging_driver_runs_its_default_config(tmp_path):
    """drivers/ou_averaging.py with its default config (shortened with --set) on 2 ranks."""
    import json
    p = run_mpi(2, [str(ROOT / "drivers" / "ou_averaging.py"), "--set", f'run.output_dir="{tmp_path}"',
                    "--set", "macro.t_end=0.1", "--set", "micro.samples=200", "--set", "output.plots=false"])
    assert p.returncode == 0, p.stderr
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["steps"] == 5 and s["points"] == 256
