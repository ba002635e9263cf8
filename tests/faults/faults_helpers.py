"""Helpers for the fault tests: launch hmmpar under mpirun, kill it, find leftovers.

Not named ``conftest`` so that it does not shadow tests/system/conftest.py, whose test
modules import helpers from ``conftest``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    env.pop("HMMPAR_TEST_CHECKPOINT_PAUSE", None)
    env.update(extra or {})
    return env


def mpirun_cmd(n: int, args: list[str]) -> list[str]:
    return ["mpirun", "--oversubscribe", "-n", str(n), sys.executable, *args]


def run_mpi(n: int, args: list[str], *, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` on ``n`` ranks in a session of its own; never hangs the suite:
    on timeout the whole session is killed."""
    proc = launch(n, args, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(proc)
        raise
    finally:
        leftovers = session_processes(proc.pid)
        if leftovers:
            kill_session(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def hmmpar(n: int, cfg: Path, *extra: str, env: dict | None = None, timeout: float = 120):
    return run_mpi(n, ["-m", "hmmpar.cli", "run", str(cfg), *extra], env=env, timeout=timeout)


def launch(n: int, args: list[str], *, env: dict | None = None) -> subprocess.Popen:
    """Start ``mpirun`` in a new session (so the whole job can be killed at once)."""
    return subprocess.Popen(mpirun_cmd(n, args), env=mpi_env(env), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def session_processes(sid: int) -> list[int]:
    """Pids of the live processes in session ``sid`` (mpirun and its ranks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            found.append(int(entry.name))
    return found


def kill_session(proc: subprocess.Popen, settle: float = 2.0) -> list[int]:
    """SIGKILL the whole job at once: every process group in mpirun's session (OpenMPI
    puts each rank in a process group of its own, so ``killpg`` of mpirun's group alone
    leaves the ranks running until they notice, about a second later). Reaps mpirun and
    returns the pids still alive ``settle`` seconds later (killed then: orphans)."""
    groups = set()
    for pid in session_processes(proc.pid) + [proc.pid]:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate(timeout=30)
    deadline = time.monotonic() + settle
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    orphans = session_processes(proc.pid)
    for pid in orphans:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return orphans


def hmmpar_lines(stderr: str) -> list[str]:
    """The lines hmmpar itself printed on stderr (mpirun adds its own banners)."""
    return [line for line in stderr.splitlines() if line.startswith("hmmpar")]


def ou_config(path: Path, out: Path, *, points: int = 37, dt: float = 0.05, t_end: float = 1.0,
              samples: int = 400, extra: str = "") -> Path:
    """A small ou_averaging config writing to ``out``."""
    path.write_text(f"""
[run]
app = "ou_averaging"
seed = 7
output_dir = "{out}"
progress_interval = 0.0

[model]
points = {points}

[macro]
dt = {dt}
t_end = {t_end}

[micro]
samples = {samples}

[output]
plots = false
{extra}
""")
    return path


def list_ckpts(directory: Path) -> list[int]:
    """Steps of the complete checkpoints in ``directory``, ascending."""
    return sorted(int(p.name[5:-3]) for p in Path(directory).glob("ckpt_*.h5"))
