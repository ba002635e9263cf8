"""Cost of checkpoint checksums on a ~100 MB checkpoint (measurement, not a test).

    mpirun -n P python tests/faults/scripts/checksum_cost.py [MB] [REPEATS] [DIR]

Writes the same checkpoint (one float64 field of MB megabytes, in P blocks) REPEATS times
each with and without the CRC-32 table, interleaved, and verifies the file as
``--restart`` does (``verify_checkpoint``: every rank a share of the blocks) and as
``hmmpar ckpt info`` does (serially). Prints one JSON line (rank 0). Numbers are for
files in the page cache: a write is not synced to the disk, and a verification right
after it reads from memory.
"""
import json
import shutil
import sys
import tempfile
import time

import numpy as np
from mpi4py import MPI

import hmmpar.core.checkpoint as C

comm = MPI.COMM_WORLD
mb = float(sys.argv[1]) if len(sys.argv) > 1 else 100.0
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 8
base = sys.argv[3] if len(sys.argv) > 3 else None
n = int(mb * 1e6 / 8)
lo, hi = n * comm.rank // comm.size, n * (comm.rank + 1) // comm.size
x = np.random.default_rng(comm.rank).random(hi - lo)
d = comm.bcast(tempfile.mkdtemp(dir=base) if comm.rank == 0 else None)
writers = {"with_checksums": C.Checkpointer(comm, d, keep=1),
           "without_checksums": C.Checkpointer(comm, d, keep=1, checksums=False)}
times = {k: [] for k in writers}
verify_parallel, verify_serial = [], []
step = 0
for r in range(reps):
    for mode, ck in writers.items():
        step += 1
        comm.Barrier()
        t = time.perf_counter()
        path = ck.write(step, 0.0, app="bench", seed=1, config_text="x = 1\n",
                        fields={"X": C.Block(x, lo, n)})
        times[mode].append(comm.allreduce(time.perf_counter() - t, op=MPI.MAX))
        if mode == "with_checksums":
            comm.Barrier()
            problem, info = C.verify_checkpoint(comm, path)
            assert problem is None, problem
            verify_parallel.append(info["seconds"])
            if comm.rank == 0:
                t = time.perf_counter()
                text, problem = C.describe(path)
                verify_serial.append(time.perf_counter() - t)
                assert problem is None, problem
if comm.rank == 0:
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(json.dumps({
        "ranks": comm.size, "megabytes": n * 8 / 1e6, "repeats": reps,
        "write_seconds_median": med,
        "write_seconds_min": {k: float(np.min(v)) for k, v in times.items()},
        "checksum_overhead_seconds": med["with_checksums"] - med["without_checksums"],
        "verify_all_ranks_seconds_median": float(np.median(verify_parallel)),
        "verify_rank0_serial_seconds_median": float(np.median(verify_serial)),
    }))
    shutil.rmtree(d)
