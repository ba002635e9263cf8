"""Every rank prints warnings and then an error at the same instant (for test_error_lines.py).

    mpirun -n P python tests/faults/scripts/error_lines.py LINES REPEAT [print]

Each rank writes LINES warnings of about 3 x REPEAT bytes through hmmpar's stderr path, meets the
others at a barrier, then raises an error only it knows (``collective=False``), which
``abort_on_error`` prints before ``MPI_Abort``. With ``print`` the lines go through
``print(..., file=sys.stderr, flush=True)`` instead: the old way, for comparison.
"""
import sys

from mpi4py import MPI

from hmmpar.core import errors, log
from hmmpar.core.errors import HmmparError, abort_on_error

comm = MPI.COMM_WORLD
lines, repeat = int(sys.argv[1]), int(sys.argv[2])
if len(sys.argv) > 3 and sys.argv[3] == "print":
    def old_way(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
    log.stderr_line = errors.stderr_line = old_way


def payload(rank: int, i: int) -> str:
    return f"rank {rank} line {i} " + f"<{rank}>" * repeat + " end"


comm.Barrier()
for i in range(lines):
    log.stderr_line(f"hmmpar: warning: {payload(comm.rank, i)}")
comm.Barrier()
with abort_on_error(comm):
    raise HmmparError(payload(comm.rank, lines), collective=False)
