"""Submitting and watching Slurm jobs from the tests (``scontrol``; no accounting needed)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def job_env(**extra: str) -> dict:
    """The environment of a submission: the venv's Python, no outer MPI job's identity."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_ess", "OMPI_MCA_orte_ess", "SLURM_"))}
    env.update(PYTHON=sys.executable, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def sbatch(args: list[str], **env: str) -> str:
    """Submit from the repository root; returns the job id."""
    p = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, cwd=ROOT,
                       env=job_env(**env), timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().split(";")[0]


def job_field(job: str, field: str) -> str | None:
    p = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30)
    m = re.search(rf"\b{field}=(\S+)", p.stdout)
    return m.group(1) if m else None


def job_states(job: str) -> list[str]:
    """States of a job or of every element of an array job."""
    p = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30)
    return re.findall(r"\bJobState=(\S+)", p.stdout)


FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
         "PREEMPTED"}


#: seconds a requeued job is held before the tests release it (Slurm itself waits longer)
REQUEUE_GRACE = 3.0


def wait_final(job: str, timeout: float = 300.0, release_requeued: bool = True) -> list[str]:
    """Wait until the job (every array element) is in a final state. A requeued job waits
    for a begin time Slurm sets in the future; the tests release it after
    :data:`REQUEUE_GRACE` seconds instead. (Released at once, the new launch can fall in
    the same second as the revocation of the old launch's credential, and slurmd then
    refuses it: "Killing non-startable batch job: Job credential revoked".)"""
    t0 = time.monotonic()
    held_since = None
    while time.monotonic() - t0 < timeout:
        states = job_states(job)
        if states and all(s in FINAL for s in states):
            return states
        if release_requeued and job_field(job, "Reason") == "BeginTime":
            held_since = held_since or time.monotonic()
            if time.monotonic() - held_since >= REQUEUE_GRACE:
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True,
                               timeout=30)
        time.sleep(0.5)
    subprocess.run(["scancel", job], capture_output=True)
    raise AssertionError(f"job {job} not finished after {timeout:.0f} s (states {job_states(job)})")


def wait_for(predicate, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
