"""``hmmpar md state`` as a user runs it: text and JSON output, and one-line errors with
exit code 2 for bad inputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FAST = ["--atoms", "108", "--equilibrate", "1", "--time", "2"]


def hmmpar(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run([sys.executable, "-m", "hmmpar.cli", "md", "state", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)


def test_state_prints_values_with_errors_and_json_parses():
    p = hmmpar("--rho", "0.5", "--temperature", "2.0", *FAST)
    assert p.returncode == 0, p.stderr
    for name in ("pressure", "potential energy per atom", "total energy per atom", "temperature",
                 "atom-steps per second"):
        assert name in p.stdout
    assert "+-" in p.stdout
    q = hmmpar("--rho", "0.5", "--temperature", "2.0", "--json", "--shift", "--cutoff", "2.2", *FAST)
    assert q.returncode == 0, q.stderr
    out = json.loads(q.stdout)
    assert out["input"]["cutoff"] == 2.2 and out["input"]["shift"] is True
    assert out["n_atoms"] == 108 and out["atom_steps"] == 108 * 600
    assert 1.5 < out["temperature"] < 2.5 and out["temperature_err"] > 0
    assert len(out["momentum_flux"]) == 3 and len(out["energy_flux"]) == 3
    r = hmmpar("--rho", "0.2", "--energy", "1.5", "--potential", "none", "--json", *FAST)
    assert r.returncode == 0, r.stderr
    ideal = json.loads(r.stdout)
    assert ideal["pressure"] == pytest.approx(2 / 3 * 0.2 * 1.5, rel=1e-12)


@pytest.mark.parametrize("args, message", [
    (["--rho", "-1", "--temperature", "1"], "rho: the density must be > 0, got -1"),
    (["--rho", "nan", "--temperature", "1"], "rho: must be finite, got nan"),
    (["--rho", "0.5", "--temperature", "inf"], "temperature: must be finite, got inf"),
    (["--rho", "0.5"], "one of the arguments --temperature --energy is required"),
    (["--rho", "0.5", "--temperature", "1", "--energy", "1"], "not allowed with argument"),
    (["--rho", "1.2", "--atoms", "32", "--temperature", "1"],
     "box side L = 2.988 < 2 r_c = 5 (32 atoms at density 1.2"),
    (["--rho", "0.5", "--energy", "-9"], "state below the ground state"),
    (["--rho", "0.5", "--temperature", "1", "--cutoff", "-1"], "cutoff: must be a finite number > 0"),
    (["--rho", "0.5", "--temperature", "1", "--potential", "morse"], "invalid choice: 'morse'"),
    (["--rho", "0.5", "--temperature", "1", "--time", "0"], "--time: must be a finite number > 0"),
])
def test_bad_inputs_exit_2_with_one_line(args, message):
    p = hmmpar(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hmmpar: error: ") and message in lines[0], p.stderr
    assert p.stdout == ""
