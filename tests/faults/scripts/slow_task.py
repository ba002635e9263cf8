"""A farm run in which one micro task never ends: ``slow_task.py MODE KIND``.

MODE: ``dynamic`` or ``static``. KIND: how task 17 (5 for the numba kinds) hangs:
``sleep`` -- ``time.sleep(3600)`` in Python (interruptible by SIGALRM);
``nogil`` -- an endless numba loop that released the GIL (the watchdog thread aborts);
``gil``   -- an endless numba loop that holds the GIL (only faulthandler can end it).
The farm has ``task_time_limit = 0.2`` s and ``abort_grace = 0.5`` s. A first map (step 0)
of quick tasks lets each rank measure its time per task; the hang is at step 1.
"""
import sys
import time

import numpy as np
from mpi4py import MPI

from hmmpar.core.errors import abort_on_error
from hmmpar.core.farm import Farm

mode, kind = sys.argv[1], sys.argv[2]
comm = MPI.COMM_WORLD
N = 40
STUCK = 17 if kind == "sleep" else 5

if kind in ("nogil", "gil"):
    import numba

    @numba.njit(nogil=(kind == "nogil"))
    def spin(n):
        s = 0.0
        for i in range(n):
            s += (i % 7) * 1e-9
            if s < -1.0:
                break
        return s

    spin(10)  # compile before the time limit applies


def quick(rows, ctx):
    return {"y": rows["task_id"] * 1.0}


def solve(rows, ctx):
    out = np.empty(rows.shape[0])
    for i, tid in enumerate(rows["task_id"]):
        if tid == STUCK:
            if kind == "sleep":
                time.sleep(3600)
            else:
                spin(10**15)
        time.sleep(0.002)
        out[i] = tid
    return {"y": out}


with abort_on_error(comm):
    ids = np.arange(comm.rank, N, comm.size)
    tasks = np.zeros(ids.size, dtype=[("task_id", "i8")])
    tasks["task_id"] = ids
    farm = Farm(comm, mode=mode, task_time_limit=0.2, abort_grace=0.5)
    farm.map(quick, tasks, [("y", "f8")], step=0)
    farm.map(solve, tasks, [("y", "f8")], step=1)
