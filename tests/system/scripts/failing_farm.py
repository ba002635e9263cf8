"""A farm run in which tasks fail: ``failing_farm.py MODE STAMP_FILE``.

MODE ``raise``: every task computed on rank 2 raises (the rest take 2-20 ms).
MODE ``stuck``: task 5 never returns (rank 1), task on rank 2 raises -> MPI_Abort path.
Before raising, the failing task appends the wall time to STAMP_FILE.
"""
import sys
import time

import numpy as np
from mpi4py import MPI

from hmmpar.core.errors import abort_on_error
from hmmpar.core.farm import Farm

mode, stamp = sys.argv[1], sys.argv[2]
comm = MPI.COMM_WORLD


def solve(rows, ctx):
    if ctx.rank == 2:
        with open(stamp, "a") as f:
            f.write(f"{time.time()}\n")
        raise ValueError("micro model diverged")
    if mode == "stuck" and ctx.rank == 1:
        time.sleep(3600)
    for _ in rows:
        time.sleep(0.002 + 0.018 * ctx.rng(int(rows["task_id"][0])).random())
    return {"y": rows["task_id"] * 2.0}


with abort_on_error(comm):
    ids = np.arange(comm.rank, 600, comm.size)
    tasks = np.zeros(ids.size, dtype=[("task_id", "i8")])
    tasks["task_id"] = ids
    Farm(comm, abort_grace=3.0).map(solve, tasks, [("y", "f8")])
