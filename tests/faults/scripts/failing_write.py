"""A checkpoint write on a file system too small for it: ``failing_write.py DIR [MODE]``
(DIR on a small file system). ``os.statvfs`` is faked to report plenty of space, as when
the disk fills between hmmpar's free-space check and the write (another writer, a quota).

MODE ``reserve`` (default): the space reservation before HDF5 opens the file fails.
MODE ``no-fallocate``: the file system cannot reserve space (``fallocate`` unsupported), so
HDF5's own write or close fails."""
import os
import sys
from collections import namedtuple

import numpy as np
from mpi4py import MPI

import hmmpar.io.reserved_h5 as reserved_h5
from hmmpar.core.checkpoint import Block, Checkpointer
from hmmpar.core.errors import abort_on_error

comm = MPI.COMM_WORLD
Fake = namedtuple("Fake", "f_bavail f_frsize")
if len(sys.argv) > 2 and sys.argv[2] == "no-fallocate":
    reserved_h5.allocate = lambda fd, nbytes: False
with abort_on_error(comm):
    ck = Checkpointer(comm, sys.argv[1], keep=3)
    for step, n in ((1, 10), (2, 250_000)):  # 2 MB do not fit on the 1 MB file system ...
        lo, hi = n * comm.rank // comm.size, n * (comm.rank + 1) // comm.size
        ck.write(step, 0.0, app="x", seed=1, config_text="", fields={"U": Block(np.ones(hi - lo), lo, n)})
        os.statvfs = lambda d: Fake(10**9, 4096)  # ... but the free-space check is fooled
