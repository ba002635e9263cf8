"""The checks before a run that need no output directory, shared by ``run`` and ``validate``.

:func:`prepare` validates what the config alone cannot: it constructs the application
(which reads and checks its input files, formulas and mesh: every problem is a
``ConfigError`` naming the key or file) and compares the application's memory
estimate with the memory of each node. It writes nothing to disk, so ``hmmpar
validate`` can call it, and ``hmmpar run`` calls it before creating or locking the
output directory: what ``validate`` accepts, ``run`` starts.
"""
from __future__ import annotations

import socket
from pathlib import Path

from hmmpar.core.checkpoint import format_bytes
from hmmpar.core.config import Config
from hmmpar.core.errors import ConfigError
from hmmpar.core.timing import Timers

MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")


def prepare(cfg: Config, comm, timers: Timers | None = None):
    """Construct the application of ``cfg`` and check its memory (collective).

    Returns
    -------
    Application
        Ready for ``initialize`` or ``load_checkpoint``.

    Raises
    ------
    ConfigError
        Bad input found by the application, or an estimate beyond a node's memory.
    """
    from hmmpar.apps import app_class
    cls = app_class(cfg["run.app"])
    try:
        app = cls(cfg, comm, timers or Timers())
    except MemoryError:  # an app without an estimate, or one that missed: not an internal error
        keys = ", ".join(cls.memory_keys) or f"the [{'], ['.join(cls.schema)}] sections"
        raise ConfigError(f"setting up the {cfg['run.app']} run on rank {comm.rank} ran out of memory; "
                          f"make the problem smaller ({keys}) or use more nodes", collective=False) from None
    check_memory(comm, app)
    return app


def node_memory(meminfo: Path = MEMINFO, cgroup: Path = CGROUP) -> tuple[int, str] | None:
    """Bytes this node can give a new run, and where that figure comes from.

    ``MemAvailable`` of ``/proc/meminfo``: the kernel's estimate of what new allocations
    can get without swapping (free memory plus the page cache it can drop). ``MemTotal``
    would count memory other processes hold, ``MemFree`` would miss the reclaimable
    cache. Kernels before 3.14 lack MemAvailable: ``MemTotal`` is used then. A cgroup v2
    limit (a container, a Slurm job with memory enforcement) lowers the figure to
    ``memory.max - memory.current``. None when neither is known (not Linux).
    """
    found: dict[str, int] = {}
    try:
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if key in ("MemAvailable", "MemTotal") and parts:
                found[key] = int(parts[0]) * 1024  # kB
    except (OSError, ValueError):
        pass
    which = "MemAvailable" if "MemAvailable" in found else "MemTotal" if "MemTotal" in found else None
    best = (found[which], f"{which} in {meminfo}") if which else None
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        used = int((cgroup / "memory.current").read_text().strip())
        if limit != "max":
            room = int(limit) - used
            if best is None or room < best[0]:
                best = (max(room, 0), f"cgroup limit {cgroup / 'memory.max'} less memory.current")
    except (OSError, ValueError):
        pass
    return best


def check_memory(comm, app, *, memory=node_memory) -> None:
    """Refuse (exit 2) a run whose ranks on one node together would allocate more than
    that node has (collective). Each rank's figure is ``app.memory_estimate()``; the
    ranks of a node are those of ``comm.Split_type(COMM_TYPE_SHARED)``."""
    estimate = int(app.memory_estimate())
    try:
        from mpi4py import MPI
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    except (ImportError, AttributeError):  # a communicator without MPI: one node
        node = None
    total = node.allreduce(estimate) if node is not None else estimate
    leader = node is None or node.rank == 0
    ranks = node.size if node is not None else 1
    if node is not None:
        node.Free()
    problem = None
    if leader and total > 0:
        have = memory()
        if have is not None and total > have[0]:
            keys = ", ".join(getattr(app, "memory_keys", ())) or "the config"
            problem = (f"this run needs about {format_bytes(total)} of memory on node {socket.gethostname()} "
                       f"({ranks} rank(s), estimate driven by {keys}) but the node has "
                       f"{format_bytes(have[0])} ({have[1]}); make the problem smaller or use more nodes")
    problems = comm.allgather(problem)
    first = next((p for p in problems if p), None)
    if first:
        raise ConfigError(first)
