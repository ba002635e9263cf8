"""hmmpar: an MPI-parallel framework for the Heterogeneous Multiscale Method."""
import os as _os

# Debian's h5py chooses its serial or MPI build at import time from the launcher's
# environment; a singleton run (no mpirun) would otherwise get the serial build.
_os.environ.setdefault("H5PY_ALWAYS_USE_MPI", "1")

__version__ = "0.1.0"
