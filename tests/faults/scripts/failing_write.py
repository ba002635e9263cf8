"""A checkpoint write that HDF5 cannot complete: ``failing_write.py DIR`` (DIR on a small
file system). ``os.statvfs`` is faked to report plenty of space, as when the disk fills
between hmmpar's free-space check and the write (another writer, a quota)."""
import os
import sys
from collections import namedtuple

import numpy as np
from mpi4py import MPI

from hmmpar.core.checkpoint import Block, Checkpointer
from hmmpar.core.errors import abort_on_error

comm = MPI.COMM_WORLD
Fake = namedtuple("Fake", "f_bavail f_frsize")
with abort_on_error(comm):
    ck = Checkpointer(comm, sys.argv[1], keep=3)
    for step, n in ((1, 10), (2, 250_000)):  # 2 MB do not fit on the 1 MB file system ...
        lo, hi = n * comm.rank // comm.size, n * (comm.rank + 1) // comm.size
        ck.write(step, 0.0, app="x", seed=1, config_text="", fields={"U": Block(np.ones(hi - lo), lo, n)})
        os.statvfs = lambda d: Fake(10**9, 4096)  # ... but the free-space check is fooled
