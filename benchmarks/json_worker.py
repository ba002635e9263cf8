"""Run a benchmark's worker process and read back the JSON line it prints (shared by the
scaling benchmarks, which launch themselves under mpirun)."""
from __future__ import annotations

import json
import subprocess
import time

from cpu_usage import system_busy


def run_json_worker(cmd: list[str], env: dict, label: str, timeout: float, tag: str) -> dict:
    """Run ``cmd``, print its label and wall time, and return the JSON object printed on its
    first stdout line that starts with ``tag``, with ``launch`` = {wall, busy_cores} (the
    machine's busy cores over the run) added; on failure ``{"error": ...}`` with the last
    lines of its output (a benchmark reports, it does not stop)."""
    print(f"  {label} ...", flush=True)
    t0 = time.perf_counter()
    busy0 = system_busy()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr, rc = f"timeout after {timeout} s", -1
    wall = time.perf_counter() - t0
    print(f"    {wall:.1f} s", flush=True)
    for line in stdout.splitlines():
        if line.startswith(tag):
            r = json.loads(line[len(tag):])
            r["launch"] = {"wall": wall, "busy_cores": (system_busy() - busy0) / wall}
            return r
    tail = (stderr or stdout).strip().splitlines()[-12:]
    print("    failed (exit %s):\n      %s" % (rc, "\n      ".join(tail)), flush=True)
    return {"error": f"exit {rc}: " + " | ".join(tail[-3:])}


def emit(tag: str, result: dict) -> None:
    """Print a worker's result as the one line :func:`run_json_worker` reads."""
    print(tag + json.dumps(result), flush=True)


def idle_wait(comm, pause: float = 0.01) -> None:
    """Wait for every rank of comm without spinning (a sleeping Ibarrier test loop)."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(pause)


def self_launching_main(args, workers: dict, driver_main, name: str, tag: str) -> int:
    """The main of a benchmark that is its own mpirun driver: in a worker process
    (``args.worker_run`` set) run that worker and emit its result; refuse to run the driver
    under mpirun; run the driver and never fail (a benchmark reports, exit 0)."""
    import os
    import sys
    if args.worker_run:
        result = workers[args.worker_run](args)
        if result is not None:
            emit(tag, result)
        return 0
    if any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")):
        print(f"benchmarks/{name}.py: run it without mpirun; it launches mpirun itself", file=sys.stderr)
        return 0
    try:
        return driver_main(args)
    except Exception as exc:  # noqa: BLE001 - benchmarks never fail
        print(f"{name} benchmark error: {exc!r}", file=sys.stderr)
        return 0
