"""A real single-node Slurm for the tests: started once per session, stopped afterwards.

``tests/slurm/local_slurm.sh`` installs slurm-wlm and munge when they are missing (root and
Debian's apt needed) and starts munged, slurmctld and slurmd. The tests skip, with the
reason, only where that is impossible (not root and no Slurm running); in CI (root) they run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "local_slurm.sh"


def _running() -> bool:
    return subprocess.run([str(SCRIPT), "status"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def slurm():
    """Slurm up for the session; stops it at the end if this session started it."""
    was_running = _running()
    if not was_running:
        if os.geteuid() != 0:
            pytest.skip("Slurm is not running and starting it (tests/slurm/local_slurm.sh) needs root")
        if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
            pytest.skip("Slurm is not installed and this machine has no apt-get to install it")
        p = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            pytest.fail(f"could not start the local Slurm: {p.stderr.strip() or p.stdout.strip()}")
    yield
    if not was_running:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=60)
