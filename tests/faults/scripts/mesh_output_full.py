"""The mesh output of a solution does not fit on the file system: ``mesh_output_full.py
PATH``. Every rank must get the same ReservationError before HDF5 opens the file; each
prints one line ``rank R: errno E nbytes N`` and the script exits 0."""
import sys
from pathlib import Path

from mpi4py import MPI

import hmmpar  # noqa: F401
from hmmpar.io.reserved_h5 import ReservationError
from hmmpar.macro.box_q1 import BoxQ1

comm = MPI.COMM_WORLD
mesh = BoxQ1(comm, [400, 400])
U = mesh.dm.createGlobalVec()
try:
    mesh.write(Path(sys.argv[1]), U, {})  # 160 801 nodes: 1.29 MB of data on a 1 MB file system
except ReservationError as exc:
    print(f"rank {comm.rank}: errno {exc.errno} nbytes {exc.nbytes} file {exc.filename}", flush=True)
else:
    print(f"rank {comm.rank}: written", flush=True)
