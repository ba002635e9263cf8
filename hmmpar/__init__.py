"""hmmpar: an MPI-parallel framework for the Heterogeneous Multiscale Method."""
import hashlib as _hashlib
import os as _os
import sys as _sys
from pathlib import Path as _Path

# Debian's h5py chooses its serial or MPI build at import time from the launcher's
# environment; a singleton run (no mpirun) would otherwise get the serial build.
_os.environ.setdefault("H5PY_ALWAYS_USE_MPI", "1")

__version__ = "0.1.0"


def _numba_cache_dir() -> None:
    """Point numba's on-disk cache (``cache=True``) at a directory named by a hash of
    hmmpar's sources, unless ``NUMBA_CACHE_DIR`` is set.

    numba checks a cached function only against the time stamp of its own file, and a
    compiled caller holds its compiled callees: after ``micro/ssa/direct.py`` changes, the
    cached kernels of ``micro/ssa/nested.py`` would keep running the old SSA kernel. A
    directory per source state makes every change start from an empty cache. Old directories stay in
    ``~/.cache/hmmpar/numba`` (a few MB each) until removed.
    """
    if _os.environ.get("NUMBA_CACHE_DIR"):
        return
    root = _Path(__file__).resolve().parent
    digest = _hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    base = _Path(_os.environ.get("XDG_CACHE_HOME") or _Path.home() / ".cache") / "hmmpar" / "numba"
    _os.environ["NUMBA_CACHE_DIR"] = str(base / digest.hexdigest()[:16])
    if "numba" in _sys.modules:  # imported before hmmpar: make numba read the variable again
        from numba.core import config
        config.reload_config()


_numba_cache_dir()
