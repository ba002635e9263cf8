"""Parallel HDF5 checkpoints: atomic, complete or absent, restartable on any rank count.

Layout (format ``hmmpar-checkpoint`` version 1; see docs/checkpoint-format.md)::

    /meta                 group; attributes format, format_version, hmmpar_version, app,
                          step, time, seed, ranks (rank count at write), written_at (UTC)
    /meta/config          the complete config as TOML text (UTF-8 bytes, uint8 dataset)
    /fields/<name>        macro fields, rows in global order (dof, point, element)
    /instances/<name>     persistent micro states, rows in instance_id order
    /tasks/<name>         cached micro results, rows keyed by task_id
    /app                  attributes of the application's own scalar state

Every array is written by the rank that owns its rows ``[start, start + n)`` of the
global dataset through h5py's ``driver="mpio"`` (independent transfers, so a rank with
no rows never has to enter a collective write). Writing goes to ``.<name>.tmp`` in the
same directory; when every rank has closed the file, rank 0 renames it to its final
name (an atomic ``rename(2)``) and syncs the directory. A killed run therefore leaves
either the previous complete checkpoint set or one more; a leftover ``.tmp`` is ignored
and removed by the next write. The last ``keep`` checkpoints are kept.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

import hmmpar
from .errors import CheckpointError

FORMAT = "hmmpar-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt_(\d{8,})\.h5$")


@dataclass
class Block:
    """This rank's rows ``[start, start + len(rows))`` of a global array of ``global_rows``."""

    rows: np.ndarray
    start: int
    global_rows: int


def _h5py():
    import h5py  # after hmmpar's import, which asks Debian's h5py for its MPI build
    return h5py


def _open_parallel(comm, path: Path, mode: str):
    h5py = _h5py()
    if h5py.get_config().mpi:
        return h5py.File(path, mode, driver="mpio", comm=comm)
    if comm.size > 1:
        raise CheckpointError("h5py was built without MPI support; parallel checkpoints need "
                              "an MPI-enabled h5py (Debian: python3-h5py-mpi)")
    return h5py.File(path, mode)


def checkpoint_name(step: int) -> str:
    return f"ckpt_{step:08d}.h5"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``directory`` as (step, path), oldest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


class SignalFlag:
    """Remembers SIGTERM/SIGUSR1 (SLURM's pre-timeout signal) until the next step boundary.

    The command line installs one flag as it starts (:data:`STOP_SIGNALS`) and keeps it
    until the process exits, so a signal that comes early (during start-up) or late
    (after the last step) never kills a rank with the default action.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous = {}

    def install(self) -> "SignalFlag":
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        self.received = signum


#: The process-wide flag; ``hmmpar.cli.main`` installs it first thing.
STOP_SIGNALS = SignalFlag()


class Checkpointer:
    """Decides when to checkpoint, writes checkpoints atomically and prunes old ones.

    Parameters
    ----------
    comm
        Communicator of the run (all of its ranks call :meth:`due` and :meth:`write`).
    directory
        Where the checkpoints go (created by rank 0).
    keep
        Complete checkpoints to keep (>= 1).
    every_steps, every_seconds
        Checkpoint when ``step % every_steps == 0`` and/or when ``every_seconds`` of
        wall time passed since the last checkpoint (0 disables either).
    """

    def __init__(self, comm, directory: str | Path, *, keep: int = 3, every_steps: int = 0,
                 every_seconds: float = 0.0, signals: SignalFlag | None = None) -> None:
        self.comm = comm
        self.directory = Path(directory)
        self.keep = max(1, int(keep))
        self.every_steps = int(every_steps)
        self.every_seconds = float(every_seconds)
        self.signals = signals
        self.last_time = time.monotonic()
        self.written: list[Path] = []
        self.seconds = 0.0
        self.bytes = 0

    def due(self, step: int) -> tuple[bool, bool]:
        """Collective: (checkpoint now?, was a stop signal received?) — the same on every rank."""
        by_steps = self.every_steps > 0 and step % self.every_steps == 0
        by_time = self.every_seconds > 0 and time.monotonic() - self.last_time >= self.every_seconds
        signalled = self.signals is not None and self.signals.received is not None
        flags = np.array([by_steps or by_time, signalled], dtype=np.int32)
        from mpi4py import MPI
        self.comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
        return bool(flags[0] or flags[1]), bool(flags[1])

    def write(self, step: int, sim_time: float, *, app: str, seed: int, config_text: str,
              fields: Mapping[str, Block] = {}, instances: Mapping[str, Block] = {},
              tasks: Mapping[str, Block] = {}, attrs: Mapping[str, object] = {}) -> Path:
        """Write one checkpoint collectively; return its final path (on every rank)."""
        t0 = time.perf_counter()
        comm = self.comm
        final = self.directory / checkpoint_name(step)
        tmp = self.directory / f".{final.name}.tmp"
        if comm.rank == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
            for stale in self.directory.glob(".ckpt_*.h5.tmp"):
                stale.unlink(missing_ok=True)
        comm.Barrier()
        nbytes = 0
        with _open_parallel(comm, tmp, "w") as f:
            meta = f.create_group("meta")
            meta.attrs["format"] = FORMAT
            meta.attrs["format_version"] = FORMAT_VERSION
            meta.attrs["hmmpar_version"] = hmmpar.__version__
            meta.attrs["app"] = app
            meta.attrs["step"] = int(step)
            meta.attrs["time"] = float(sim_time)
            meta.attrs["seed"] = int(seed)
            meta.attrs["ranks"] = comm.size
            meta.attrs["written_at"] = comm.bcast(
                _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), root=0)
            # parallel HDF5 cannot write variable-length strings: store UTF-8 bytes
            text = np.frombuffer(config_text.encode(), dtype=np.uint8)
            cfg_set = meta.create_dataset("config", shape=text.shape, dtype=np.uint8)
            if comm.rank == 0:
                cfg_set[:] = text
            app_group = f.create_group("app")
            for key, value in attrs.items():
                app_group.attrs[key] = value
            for group_name, blocks in (("fields", fields), ("instances", instances), ("tasks", tasks)):
                group = f.create_group(group_name)
                for name in sorted(blocks):  # the same creation order on every rank
                    nbytes += self._write_block(group, name, blocks[name])
            _test_pause(step)
        comm.Barrier()  # every rank has closed the file
        if comm.rank == 0:
            os.replace(tmp, final)
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            for _, old in list_checkpoints(self.directory)[:-self.keep]:
                old.unlink(missing_ok=True)
        comm.Barrier()
        self.last_time = time.monotonic()
        self.seconds += time.perf_counter() - t0
        self.bytes += comm.allreduce(nbytes)
        self.written.append(final)
        return final

    def _write_block(self, group, name: str, block: Block) -> int:
        rows = np.ascontiguousarray(block.rows)
        shapes = self.comm.allgather((rows.dtype.str if rows.dtype.names is None else rows.dtype.descr,
                                      rows.shape[1:], block.global_rows))
        if any(s != shapes[0] for s in shapes):
            raise CheckpointError(f"checkpoint dataset {group.name}/{name}: ranks disagree on "
                                  "dtype, row shape or global size", collective=False)
        dset = group.create_dataset(name, shape=(block.global_rows,) + rows.shape[1:], dtype=rows.dtype)
        if rows.shape[0]:
            dset[block.start:block.start + rows.shape[0]] = rows
        return rows.nbytes


def _test_pause(step: int) -> None:
    """Test hook: ``HMMPAR_TEST_CHECKPOINT_PAUSE=STEP:SECONDS`` sleeps inside that write,
    with the temporary file open, so a test can kill the run mid-checkpoint."""
    hook = os.environ.get("HMMPAR_TEST_CHECKPOINT_PAUSE")
    if hook:
        at, seconds = hook.split(":")
        if int(at) == step:
            time.sleep(float(seconds))


class CheckpointReader:
    """An open checkpoint: its metadata and block reads of its datasets.

    Open collectively with :func:`open_checkpoint`; close with :meth:`close` or ``with``.
    """

    def __init__(self, comm, path: Path) -> None:
        self.comm = comm
        self.path = path
        self.file = _open_parallel(comm, path, "r")
        meta = self.file["meta"]
        self.step = int(meta.attrs["step"])
        self.time = float(meta.attrs["time"])
        self.seed = int(meta.attrs["seed"])
        self.app = str(meta.attrs["app"])
        self.ranks = int(meta.attrs["ranks"])
        self.config_text = meta["config"][()].tobytes().decode()
        self.attrs = dict(self.file["app"].attrs)

    def __enter__(self) -> "CheckpointReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def rows(self, group: str, name: str) -> int:
        """Global row count of a dataset."""
        return self._dataset(group, name).shape[0]

    def read_block(self, group: str, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of ``/<group>/<name>``."""
        dset = self._dataset(group, name)
        if stop <= start:
            return np.empty((0,) + dset.shape[1:], dtype=dset.dtype)
        return dset[start:stop]

    def _dataset(self, group: str, name: str):
        key = f"{group}/{name}"
        if key not in self.file:
            raise CheckpointError(f"checkpoint {self.path} has no dataset /{key}")
        return self.file[key]


def _inspect(path: Path) -> str | None:
    """Why ``path`` is not a readable hmmpar checkpoint, or None if it is (serial open)."""
    h5py = _h5py()
    if not path.is_file():
        return f"checkpoint not found: {path}"
    try:
        with h5py.File(path, "r") as f:
            if "meta" not in f or f["meta"].attrs.get("format") != FORMAT:
                return f"{path} is not an hmmpar checkpoint"
            version = int(f["meta"].attrs.get("format_version", -1))
            if version != FORMAT_VERSION:
                return (f"checkpoint {path} has format version {version}; this hmmpar "
                        f"({hmmpar.__version__}) reads version {FORMAT_VERSION}")
            for key in ("step", "time", "seed", "app", "ranks"):
                if key not in f["meta"].attrs:
                    return f"checkpoint {path} lacks /meta attribute '{key}'"
            f["meta/config"][()]
    except OSError as exc:
        return f"checkpoint {path} is unreadable or truncated ({' '.join(str(exc).split())[:120]})"
    return None


def resolve_restart(comm, spec: str, directory: str | Path) -> Path | None:
    """Turn ``--restart latest|auto|PATH`` into a checked checkpoint path (collective).

    ``latest`` takes the newest complete checkpoint in ``directory`` that opens cleanly;
    an unreadable newer one is skipped with a warning on rank 0. ``auto`` is ``latest``
    when ``directory`` holds any checkpoint and None (a fresh run) when it holds none, which
    is what a batch script that may be a first start or a requeue wants.
    """
    problem, chosen, skipped = None, None, []
    if comm.rank == 0:
        if spec in ("latest", "auto"):
            candidates = list_checkpoints(directory)
            if not candidates and spec == "latest":
                problem = f"--restart latest: no checkpoint in {directory}"
            for _, path in reversed(candidates):
                why = _inspect(path)
                if why is None:
                    chosen = path
                    break
                skipped.append(why)
            if chosen is None and problem is None and candidates:
                problem = f"--restart {spec}: no usable checkpoint; " + skipped[0]
        else:
            problem = _inspect(Path(spec))
            chosen = Path(spec)
        for why in skipped if chosen is not None else []:
            import sys
            print(f"hmmpar: warning: skipping {why}", file=sys.stderr, flush=True)
    problem, chosen = comm.bcast((problem, chosen), root=0)
    if problem:
        raise CheckpointError(problem)
    return chosen


def open_checkpoint(comm, path: str | Path) -> CheckpointReader:
    """Open a checked checkpoint on every rank of ``comm``."""
    return CheckpointReader(comm, Path(path))


def describe(path: str | Path) -> str:
    """Human-readable summary for ``hmmpar ckpt info`` (serial)."""
    p = Path(path)
    problem = _inspect(p)
    if problem:
        raise CheckpointError(problem)
    h5py = _h5py()
    lines = [f"checkpoint {p}"]
    with h5py.File(p, "r") as f:
        meta = f["meta"].attrs
        for key in ("format", "format_version", "hmmpar_version", "app", "step", "time", "seed",
                    "ranks", "written_at"):
            if key in meta:
                value = meta[key]
                lines.append(f"  {key:<15} {value.decode() if isinstance(value, bytes) else value}")
        for group in ("fields", "instances", "tasks"):
            if group in f:
                for name, dset in f[group].items():
                    lines.append(f"  /{group}/{name:<20} {dset.shape} {dset.dtype}")
        if len(f["app"].attrs):
            lines.append("  app state: " + ", ".join(f"{k}={v}" for k, v in f["app"].attrs.items()))
    return "\n".join(lines)
