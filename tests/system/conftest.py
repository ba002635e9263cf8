"""Helpers for tests that launch hmmpar under mpirun as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"


def mpi_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.update(OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONUNBUFFERED="1")
    # a test run inside mpirun must not inherit the outer job's identity
    for key in list(env):
        if key.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_ess", "OMPI_MCA_orte_ess")):
            env.pop(key)
    env.update(extra or {})
    return env


def mpirun_cmd(n: int, args: list[str]) -> list[str]:
    return ["mpirun", "--oversubscribe", "-n", str(n), sys.executable, *args]


def run_mpi(n: int, args: list[str], *, timeout: float = 120, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` on ``n`` ranks; never hangs the test suite (timeout)."""
    return subprocess.run(mpirun_cmd(n, args), capture_output=True, text=True, timeout=timeout,
                          env=mpi_env(env), cwd=cwd or ROOT)


def hmmpar_lines(stderr: str) -> list[str]:
    """The lines hmmpar itself printed on stderr (mpirun adds its own banners)."""
    return [line for line in stderr.splitlines() if line.startswith("hmmpar")]


@pytest.fixture
def small_ou_config(tmp_path) -> Path:
    """A small ou_averaging config (20 steps, cheap micro tasks) in a fresh directory."""
    cfg = tmp_path / "ou.toml"
    cfg.write_text(f"""
[run]
app = "ou_averaging"
seed = 7
output_dir = "{tmp_path / 'out'}"
progress_interval = 0.0

[model]
points = 37

[macro]
dt = 0.05
t_end = 1.0

[micro]
samples = 400
""")
    return cfg
