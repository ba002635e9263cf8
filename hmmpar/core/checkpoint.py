"""Parallel HDF5 checkpoints: atomic, complete or absent, restartable on any rank count.

Layout (format ``hmmpar-checkpoint`` version 2; see docs/checkpoint-format.md)::

    /meta                 group; attributes format, format_version, hmmpar_version, app,
                          step, time, seed, ranks (rank count at write), written_at (UTC)
    /meta/config          the complete config as TOML text (UTF-8 bytes, uint8 dataset)
    /fields/<name>        macro fields, rows in global order (dof, point, element)
    /instances/<name>     persistent micro states, rows in instance_id order
    /tasks/<name>         cached micro results, rows keyed by task_id
    /app                  attributes of the application's own scalar state
    /meta/checksums       (datasets, ranks) table of (start, stop, crc32): the rows
                          [start, stop) of each dataset that each rank wrote, and their
                          CRC-32; attribute ``datasets`` names the table's rows in order.
                          Verified before a restart uses the file.

The file is written with HDF5's 1.10 format (``libver="v110"``), whose metadata (object
headers, attributes, B-trees) carries HDF5's own checksums; the CRC-32 tables cover the
data. Version 1 files (no tables, 1.8 format) are still read, unverified.

Every array is written by the rank that owns its rows ``[start, start + n)`` of the
global dataset through h5py's ``driver="mpio"`` (independent transfers, so a rank with
no rows never has to enter a collective write). Writing goes to ``.<name>.tmp`` in the
same directory, whose disk space rank 0 reserves before HDF5 opens it
(:mod:`hmmpar.io.reserved_h5`: a disk that filled up is then one error on every rank, not
a failed write inside HDF5 on some ranks, which can hang the others); when every rank
has closed the file, rank 0 renames it to its final
name (an atomic ``rename(2)``) and syncs the directory. A killed run therefore leaves
either the previous complete checkpoint set or one more; a leftover ``.tmp`` is ignored
and removed by the next write. The last ``keep`` checkpoints are kept.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import signal
import stat
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

import hmmpar
from ..io.reserved_h5 import ReservationError, open_reserved
from .errors import CheckpointError, HmmparError
from .log import stderr_line
from .rundir import directory_problem

FORMAT = "hmmpar-checkpoint"
FORMAT_VERSION = 2
#: format versions this hmmpar reads (1: no checksums)
READABLE_VERSIONS = (1, 2)
_NAME = re.compile(r"^ckpt_(\d{8,})\.h5$")
GROUPS = ("fields", "instances", "tasks")
#: one row of a checksum table: rows [start, stop) written by one rank, CRC-32 of their bytes
CHECKSUM_DTYPE = np.dtype([("start", "<i8"), ("stop", "<i8"), ("crc32", "<u4")])
_VERIFY_SLICE = 64 * 2**20  # bytes read at a time when verifying
_UNCLOSABLE: list = []  # files whose close failed (see Checkpointer.write)


@dataclass
class Block:
    """This rank's rows ``[start, start + len(rows))`` of a global array of ``global_rows``."""

    rows: np.ndarray
    start: int
    global_rows: int


def _h5py():
    import h5py  # after hmmpar's import, which asks Debian's h5py for its MPI build
    return h5py


def _require_parallel_h5py(comm) -> None:
    if comm.size > 1 and not _h5py().get_config().mpi:
        raise CheckpointError("h5py was built without MPI support; parallel checkpoints need "
                              "an MPI-enabled h5py (Debian: python3-h5py-mpi)")


def _open_parallel(comm, path: Path, mode: str):
    """Open an existing checkpoint on every rank of ``comm`` (new ones: :func:`open_reserved`)."""
    h5py = _h5py()
    _require_parallel_h5py(comm)
    if h5py.get_config().mpi:
        return h5py.File(path, mode, driver="mpio", comm=comm)
    return h5py.File(path, mode)


def _packed(dtype: np.dtype) -> bool:
    """True if ``dtype`` has no padding bytes (which need not survive a write/read)."""
    if dtype.subdtype is not None:
        return _packed(dtype.subdtype[0])
    if dtype.names is None:
        return True
    end = 0
    for name in dtype.names:
        sub, offset = dtype.fields[name][:2]
        if offset != end or not _packed(sub):
            return False
        end += sub.itemsize
    return end == dtype.itemsize


def checksum(rows: np.ndarray, crc: int = 0) -> int:
    """CRC-32 of the bytes of ``rows`` (C order; structured rows without padding),
    continuing from ``crc``: ``checksum(b, checksum(a)) == checksum(concatenate([a, b]))``."""
    a = np.ascontiguousarray(rows)
    if not _packed(a.dtype):
        from numpy.lib.recfunctions import repack_fields
        a = np.ascontiguousarray(repack_fields(a, recurse=True))
    return zlib.crc32(a, crc) & 0xFFFFFFFF


def checkpoint_name(step: int) -> str:
    return f"ckpt_{step:08d}.h5"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``directory`` as (step, path), oldest first: the regular files
    named ``ckpt_<step>.h5`` (a directory or broken link of that name is not one). Every
    function that looks for checkpoints -- ``--restart latest``, pruning, retiring an earlier
    run's files -- goes through this one."""
    d = Path(directory)
    try:
        entries = list(d.iterdir())
    except OSError:  # absent, not a directory, or unreadable
        return []
    found = []
    for p in entries:
        m = _NAME.match(p.name)
        if m:
            try:
                regular = stat.S_ISREG(os.stat(p).st_mode)
            except OSError:
                regular = False
            if regular:
                found.append((int(m.group(1)), p))
    return sorted(found)


def new_run_id() -> str:
    """A fresh run's identity: 16 random hex digits, stored in each of its checkpoints."""
    return secrets.token_hex(8)


def checkpoint_run_id(path: str | Path) -> str | None:
    """The run identity stored in checkpoint ``path`` (serial open of its metadata): ``""``
    for a file written before run identities existed, None if its metadata are damaged (a
    restart would skip it). A readable file of a format version this hmmpar does not read
    (a newer hmmpar's) gets the identity ``"format version V"``, which is no run's: pruning
    leaves it alone."""
    p = Path(path)
    bad = _inspect(p)
    if bad is not None:
        return bad[0] if bad[0].startswith("format version") else None
    try:
        with _h5py().File(p, "r") as f:
            value = f["meta"].attrs.get("run_id", "")
    except Exception:  # noqa: BLE001 - damaged after all
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def same_run(run_id: str | None, this_run: str) -> bool:
    """Does a checkpoint with identity ``run_id`` belong to the run ``this_run``? A file
    without identity (``""``: written before run identities existed) belongs to every run."""
    return run_id is not None and run_id in ("", this_run)


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
                 every_seconds: float = 0.0, signals: SignalFlag | None = None,
                 checksums: bool = True) -> None:
        self.comm = comm
        self.directory = Path(directory)
        self.keep = max(1, int(keep))
        self.every_steps = int(every_steps)
        self.every_seconds = float(every_seconds)
        self.signals = signals
        #: store CRC-32 tables (format 2); False only to measure their cost
        self.checksums = bool(checksums)
        self.last_time = time.monotonic()
        #: this run's identity, stored in every checkpoint (set by the runner after a fresh
        #: start or a restart); pruning deletes only this run's files
        self.run_id = ""
        self.written: list[Path] = []
        self._run_ids: dict[tuple[Path, int], str | None] = {}  # (path, mtime_ns) -> run id
        self.seconds = 0.0
        self.bytes = 0
        # importing h5py takes 25-40 ms; every application writes its output with h5py,
        # so that is a cost of the run, paid here, not one of the first checkpoint
        _h5py()

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
        groups = (fields, instances, tasks)
        need = estimate_size(groups, config_text, comm.size)
        problem = None
        if comm.rank == 0:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                for stale in self.directory.glob(".ckpt_*.h5.tmp"):
                    stale.unlink(missing_ok=True)
                problem = self._space_problem(step, need)
            except OSError as exc:
                problem = (f"cannot write checkpoint {step}: "
                           + directory_problem("checkpoint directory", self.directory, exc))
        # a full disk is found here, before HDF5 is in the middle of a write that fails
        problem = comm.bcast(problem, root=0)
        if problem:
            raise HmmparError(problem)
        _require_parallel_h5py(comm)
        nbytes = 0
        f = None
        try:
            try:  # the space is taken before HDF5 writes: a disk filling up now fails here, on every rank
                f = open_reserved(comm, tmp, need)
            except ReservationError as exc:
                raise HmmparError(self._space_problem(step, need, exc)) from None
            try:
                nbytes = self._fill(f, step, sim_time, app, seed, config_text, attrs, groups)
            except (OSError, RuntimeError):
                raise  # not closed: close is collective, the other ranks may be elsewhere
            except BaseException:
                f.close()  # an error every rank raised at the same point (e.g. bad blocks)
                raise
            f.close()
        except (OSError, RuntimeError) as exc:  # e.g. the disk filled up during the run
            # h5py raises OSError with an errno, or (MPI-IO) RuntimeError without one. The
            # file is left open: HDF5 1.10 crashes on a second close after a failed one,
            # also when the object is collected or in its MPI_Finalize hook. So the object
            # is kept and the process ends without finalizing (hard_exit; MPI_Abort on
            # more ranks), which the abort path does for this error anyway.
            if f is not None:
                _UNCLOSABLE.append(f)
            reason = os.strerror(exc.errno) if getattr(exc, "errno", None) else _hdf5_message(exc)
            try:
                st = os.statvfs(self.directory)
                reason += f"; {format_bytes(st.f_bavail * st.f_frsize)} free on its file system"
            except OSError:
                pass
            raise HmmparError(f"writing checkpoint {tmp} failed: {reason}; the previous "
                              "checkpoints are intact", collective=False, hard_exit=True) from None
        comm.Barrier()  # every rank has closed the file
        if comm.rank == 0:
            try:
                os.replace(tmp, final)
                fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise HmmparError(f"renaming checkpoint {tmp} to {final.name} failed: "
                                  f"{exc.strerror or exc}; the previous checkpoints are intact",
                                  collective=False) from None
            self.written.append(final)
            self.prune()
        comm.Barrier()
        self.last_time = time.monotonic()
        self.seconds += time.perf_counter() - t0
        self.bytes += comm.allreduce(nbytes)
        if comm.rank != 0:
            self.written.append(final)
        return final

    def prune(self) -> list[Path]:
        """Rank 0: delete what is not among this run's newest ``keep`` valid checkpoints.

        The directory's checkpoints (:func:`list_checkpoints`) are sorted into this run's
        valid files (written by this process, or with readable metadata and this run's
        identity), invalid files (metadata unreadable: a restart would skip them), and other
        runs' files. The valid ones beyond the newest ``keep`` and every invalid one are
        deleted; other runs' files are left alone. A deletion that fails (a read-only
        directory) is a warning, never an error: the checkpoint just written is complete.
        Returns the deleted paths.
        """
        valid, invalid = [], []
        mine = set(self.written)
        for step, path in list_checkpoints(self.directory):
            if path in mine:
                valid.append(path)
                continue
            run_id = self._run_id_of(path)
            if run_id is None:
                invalid.append(path)
            elif same_run(run_id, self.run_id):
                valid.append(path)
        deleted = []
        for path in valid[:-self.keep] + invalid:
            try:
                path.unlink(missing_ok=True)
                deleted.append(path)
            except OSError as exc:
                stderr_line(f"hmmpar: warning: could not delete old checkpoint {path}: "
                            f"{exc.strerror or exc}")
        return deleted

    def _run_id_of(self, path: Path) -> str | None:
        """:func:`checkpoint_run_id`, remembered per file version (each file is opened once)."""
        try:
            key = (path, os.stat(path).st_mtime_ns)
        except OSError:
            return None
        if key not in self._run_ids:
            self._run_ids[key] = checkpoint_run_id(path)
        return self._run_ids[key]

    def _fill(self, f, step, sim_time, app, seed, config_text, attrs, groups) -> int:
        """Create and write everything in the open file ``f``; return this rank's data bytes."""
        comm = self.comm
        nbytes = 0
        meta = f.create_group("meta")
        meta.attrs["format"] = FORMAT
        meta.attrs["format_version"] = FORMAT_VERSION if self.checksums else 1
        meta.attrs["hmmpar_version"] = hmmpar.__version__
        meta.attrs["app"] = app
        meta.attrs["step"] = int(step)
        meta.attrs["time"] = float(sim_time)
        meta.attrs["seed"] = int(seed)
        meta.attrs["ranks"] = comm.size
        meta.attrs["run_id"] = self.run_id
        meta.attrs["written_at"] = comm.bcast(
            _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), root=0)
        sums: list[tuple[str, tuple[int, int, int]]] = []  # this rank's blocks
        # parallel HDF5 cannot write variable-length strings: store UTF-8 bytes
        text = np.frombuffer(config_text.encode(), dtype=np.uint8)
        cfg_set = meta.create_dataset("config", shape=text.shape, dtype=np.uint8)
        if comm.rank == 0:
            cfg_set[:] = text
        if self.checksums:
            sums.append(("meta/config", _block_sum(0, text if comm.rank == 0 else text[:0])))
        app_group = f.create_group("app")
        for key, value in attrs.items():
            app_group.attrs[key] = value
        for group_name, blocks in zip(GROUPS, groups):
            group = f.create_group(group_name)
            for name in sorted(blocks):  # the same creation order on every rank
                nbytes += self._write_block(group, name, blocks[name], sums)
        if self.checksums:
            self._write_checksums(meta, sums)
        _test_pause(step)
        return nbytes

    def _space_problem(self, step: int, need: int, failed: OSError | None = None) -> str | None:
        """Why checkpoint ``step`` (about ``need`` bytes) cannot be written to the directory,
        or None: the free space is short, or reserving it ``failed``."""
        try:
            st = os.statvfs(self.directory)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = None
        if failed is not None:
            where = f" ({format_bytes(free)} free on its file system)" if free is not None else ""
            return (f"reserving {format_bytes(need)} for checkpoint {step} in {self.directory} failed: "
                    f"{failed.strerror}{where}; the previous checkpoints are intact")
        if free is None or free >= need:
            return None
        return (f"checkpoint directory {self.directory} has {format_bytes(free)} free, checkpoint "
                f"{step} needs about {format_bytes(need)}; the previous checkpoints are intact")

    def _write_block(self, group, name: str, block: Block, sums: list) -> int:
        rows = np.ascontiguousarray(block.rows)
        shapes = self.comm.allgather((rows.dtype.str if rows.dtype.names is None else rows.dtype.descr,
                                      rows.shape[1:], block.global_rows, int(block.start), rows.shape[0]))
        if any(s[:3] != shapes[0][:3] for s in shapes):
            raise CheckpointError(f"checkpoint dataset {group.name}/{name}: ranks disagree on "
                                  "dtype, row shape or global size", collective=False)
        gap = _tiling_problem([(s[3], s[3] + s[4]) for s in shapes], block.global_rows)
        if gap:
            raise CheckpointError(f"checkpoint dataset {group.name}/{name}: the ranks' blocks {gap}",
                                  collective=False)
        dset = group.create_dataset(name, shape=(block.global_rows,) + rows.shape[1:], dtype=rows.dtype)
        if rows.shape[0]:
            dset[block.start:block.start + rows.shape[0]] = rows
        if self.checksums:
            sums.append((f"{group.name.strip('/')}/{name}", _block_sum(block.start, rows)))
        return rows.nbytes

    def _write_checksums(self, meta, sums: list) -> None:
        """``/meta/checksums``: one row per dataset, one column per rank; each rank writes
        its own column (start, stop, CRC-32 of the rows it wrote)."""
        table = meta.create_dataset("checksums", shape=(len(sums), self.comm.size), dtype=CHECKSUM_DTYPE)
        table.attrs["algorithm"] = "crc32"
        table.attrs["datasets"] = [key for key, _ in sums]
        column = np.array([v for _, v in sums], dtype=CHECKSUM_DTYPE)
        table[:, self.comm.rank] = column


def _block_sum(start: int, rows: np.ndarray) -> tuple[int, int, int]:
    """(start, stop, CRC-32) of a rank's rows; (0, 0, 0) when it has none."""
    n = rows.shape[0]
    return (int(start), int(start) + n, checksum(rows)) if n else (0, 0, 0)


#: bytes of HDF5 metadata per file (superblock, groups, attributes, checksum table) and per
#: dataset (object header), on top of the data; measured about 8 kB and 0.5 kB, taken generously
FILE_OVERHEAD = 64 * 1024
DATASET_OVERHEAD = 4 * 1024


def estimate_size(groups, config_text: str, ranks: int) -> int:
    """Bytes of a checkpoint file holding the blocks of ``groups`` (mappings name -> Block,
    e.g. fields, instances, tasks) written by ``ranks`` ranks; an upper estimate."""
    total, count = len(config_text.encode()), 1
    for blocks in groups:
        for block in blocks.values():
            rows = np.asarray(block.rows)
            total += int(block.global_rows) * rows.dtype.itemsize * int(np.prod(rows.shape[1:], dtype=np.int64))
            count += 1
    return total + FILE_OVERHEAD + count * (DATASET_OVERHEAD + ranks * CHECKSUM_DTYPE.itemsize)


def _tiling_problem(blocks: list[tuple[int, int]], n: int) -> str | None:
    """Why the non-empty ``[start, stop)`` blocks do not tile ``[0, n)`` exactly, or None."""
    end = 0
    for start, stop in sorted(b for b in blocks if b[1] > b[0]):
        if start != end:
            what = "overlap" if start < end else "leave a gap"
            return f"{what} at row {min(start, end)} (of {n})"
        end = stop
    if end != n:
        return f"leave a gap at row {end} (of {n})" if end < n else f"end at row {end}, past {n}"
    return None


def _test_pause(step: int) -> None:
    """Test hook: ``HMMPAR_TEST_CHECKPOINT_PAUSE=STEP:SECONDS`` sleeps inside that write,
    with the temporary file open, so a test can kill the run mid-checkpoint;
    ``STEP:@PATH`` waits there until ``PATH`` exists (at most 120 s)."""
    hook = os.environ.get("HMMPAR_TEST_CHECKPOINT_PAUSE")
    if hook:
        at, what = hook.split(":", 1)
        if int(at) != step:
            return
        if not what.startswith("@"):
            time.sleep(float(what))
            return
        deadline = time.monotonic() + 120
        while not os.path.exists(what[1:]) and time.monotonic() < deadline:
            time.sleep(0.01)


class CheckpointReader:
    """An open checkpoint: its metadata and block reads of its datasets.

    Open collectively with :func:`open_checkpoint`; close with :meth:`close` or ``with``.
    """

    def __init__(self, comm, path: Path) -> None:
        self.comm = comm
        self.path = path
        self.file = _open_parallel(comm, path, "r")
        meta = self.file["meta"]
        self.format_version = int(meta.attrs.get("format_version", 1))
        self.step = int(meta.attrs["step"])
        self.time = float(meta.attrs["time"])
        self.seed = int(meta.attrs["seed"])
        self.app = str(meta.attrs["app"])
        self.ranks = int(meta.attrs["ranks"])
        run_id = meta.attrs.get("run_id", "")
        #: the identity of the run that wrote the file ("" before run identities existed)
        self.run_id = run_id.decode() if isinstance(run_id, bytes) else str(run_id)
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


def _hdf5_message(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__


def _inspect(path: Path) -> tuple[str, str] | None:
    """Why ``path`` is not a usable checkpoint, from its metadata (serial open, no data read):
    ``(reason, message)`` -- the reason for a ``skipping PATH: reason`` warning and the
    one-line error -- or None if it passes."""
    h5py = _h5py()
    if not path.is_file():
        return "not found", f"checkpoint not found: {path}"
    try:
        with h5py.File(path, "r") as f:
            if "meta" not in list(f.keys()):
                return "not an hmmpar checkpoint", f"{path} is not an hmmpar checkpoint"
            attrs = dict(f["meta"].attrs)  # opening /meta checks its header's checksum (v2)
            if attrs.get("format") != FORMAT:
                return "not an hmmpar checkpoint", f"{path} is not an hmmpar checkpoint"
            version = int(attrs.get("format_version", -1))
            if version not in READABLE_VERSIONS:
                why = (f"format version {version}; this hmmpar ({hmmpar.__version__}) reads versions "
                       + ", ".join(map(str, READABLE_VERSIONS)))
                return why, f"checkpoint {path} has {why}"
            for key in ("step", "time", "seed", "app", "ranks"):
                if key not in attrs:
                    return f"lacks /meta attribute '{key}'", f"checkpoint {path} lacks /meta attribute '{key}'"
            f["meta/config"][()]
            dict(f["app"].attrs)
    except Exception as exc:  # noqa: BLE001 - OSError, or KeyError/RuntimeError from damaged metadata
        why = f"unreadable or truncated ({_hdf5_message(exc)})"
        return why, f"checkpoint {path} is {why}"
    return None


# ---------------------------------------------------------------------- checksums
def _checksum_plan(f) -> tuple[list[tuple[int, str, int, int, int]], str | None]:
    """The blocks of a version-2 file as (bytes, dataset, start, stop, crc32), largest
    first, or a problem with its checksum tables (missing, or not tiling a dataset)."""
    if "meta/checksums" not in f:
        return [], "no /meta/checksums table"
    tables = f["meta/checksums"]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in tables.attrs.get("datasets", [])]
    if len(names) != tables.shape[0]:
        return [], "the /meta/checksums table does not match its list of datasets"
    rows = dict(zip(names, tables[()]))
    keys = ["meta/config"] + [f"{g}/{name}" for g in GROUPS if g in f for name in f[g]]
    blocks = []
    for key in keys:
        if key not in rows:
            return [], f"no checksum for /{key}"
        dset, table = f[key], rows[key]
        spans = [(int(a), int(b)) for a, b in zip(table["start"], table["stop"])]
        gap = _tiling_problem(spans, dset.shape[0])
        if gap:
            return [], f"the checksum table of /{key} does not match its rows: blocks {gap}"
        row_bytes = dset.dtype.itemsize * int(np.prod(dset.shape[1:], dtype=np.int64))
        blocks += [(row_bytes * (b - a), key, a, b, int(c))
                   for (a, b), c in zip(spans, table["crc32"]) if b > a]
    blocks.sort(key=lambda x: (-x[0], x[1], x[2]))
    return blocks, None


def _share(blocks: list, part: int, parts: int) -> list:
    """The blocks verified by ``part`` of ``parts``: largest first to the least loaded part."""
    load = [0] * parts
    mine = []
    for block in blocks:
        p = min(range(parts), key=lambda q: (load[q], q))
        load[p] += block[0]
        if p == part:
            mine.append(block)
    return mine


def _verify_blocks(f, blocks: list) -> str | None:
    """First block whose data do not match its CRC-32 (or cannot be read), else None."""
    for _, key, start, stop, crc in blocks:
        dset = f[key]
        row_bytes = max(1, dset.dtype.itemsize * int(np.prod(dset.shape[1:], dtype=np.int64)))
        step = max(1, _VERIFY_SLICE // row_bytes)
        try:
            c = 0
            for a in range(start, stop, step):
                c = checksum(dset[a:min(stop, a + step)], c)
        except Exception as exc:  # noqa: BLE001 - a damaged file
            return f"cannot read /{key} rows [{start}, {stop}) ({_hdf5_message(exc)})"
        if c != crc:
            return (f"checksum mismatch in /{key} rows [{start}, {stop}) "
                    f"(stored crc32 {crc:08x}, data {c:08x})")
    return None


def verify_checkpoint(comm, path: str | Path) -> tuple[str | None, dict]:
    """Check the data of a checkpoint against its checksum tables (collective).

    Every rank opens the file (``driver="mpio"``) and verifies a share of the written
    blocks, balanced by bytes; one ``allgather`` collects the verdicts. Returns the first
    problem found (or None) and ``{"version", "blocks", "bytes", "seconds"}``. A version-1
    file has no tables: no problem, ``blocks = 0``.
    """
    t0 = time.perf_counter()
    plan = problem = None
    version, mine = 1, []
    f = _open_parallel(comm, Path(path), "r")
    try:
        if comm.rank == 0:
            try:
                version = int(f["meta"].attrs.get("format_version", 1))
                plan, problem = _checksum_plan(f) if version >= 2 else ([], None)
            except Exception as exc:  # noqa: BLE001
                plan, problem = [], f"cannot read the checksum tables ({_hdf5_message(exc)})"
        version, plan, problem = comm.bcast((version, plan, problem), root=0)
        if problem is None:
            mine = _share(plan, comm.rank, comm.size)
            local = _verify_blocks(f, mine)
            found = [p for p in comm.allgather(local) if p]
            problem = found[0] if found else None
    finally:
        f.close()
    info = {"version": version, "blocks": len(plan), "bytes": sum(b[0] for b in plan),
            "seconds": comm.allreduce(time.perf_counter() - t0, op=_max())}
    return problem, info


def _max():
    from mpi4py import MPI
    return MPI.MAX


def resolve_restart(comm, spec: str, directory: str | Path, info: dict | None = None) -> Path | None:
    """Turn ``--restart latest|auto|PATH`` into a checked checkpoint path (collective).

    Each candidate is checked in two stages: its metadata on rank 0 (serial open), then
    its data against the stored CRC-32s on all ranks (:func:`verify_checkpoint`).
    ``latest`` takes the newest complete checkpoint in ``directory`` that passes; each
    newer one that fails is reported on rank 0 as ``hmmpar: warning: skipping PATH:
    REASON``. ``auto`` is ``latest`` when ``directory`` holds any checkpoint and None (a
    fresh run) when it holds none, which is what a batch script that may be a first start
    or a requeue wants. A ``PATH`` that fails is an error. ``info``, if given, receives the
    verification statistics of the chosen file.
    """
    problem, candidates = None, []
    if comm.rank == 0:
        if spec in ("latest", "auto"):
            candidates = [p for _, p in reversed(list_checkpoints(directory))]
            if not candidates and spec == "latest":
                problem = f"--restart latest: no checkpoint in {directory}"
        else:
            candidates = [Path(spec)]
    problem, candidates = comm.bcast((problem, candidates), root=0)
    if problem:
        raise CheckpointError(problem)
    chosen, skipped, stats = None, [], {}
    for path in candidates:
        bad = comm.bcast(_inspect(path) if comm.rank == 0 else None, root=0)
        if bad is None:
            why, stats = verify_checkpoint(comm, path)
            if why:
                bad = (f"corrupt: {why}", f"checkpoint {path} is corrupt: {why}")
        if bad is None:
            chosen = path
            break
        skipped.append((path, bad))
    if chosen is None and skipped:
        if spec in ("latest", "auto"):
            raise CheckpointError(f"--restart {spec}: no usable checkpoint; {skipped[0][1][1]}")
        raise CheckpointError(skipped[0][1][1])
    if comm.rank == 0:
        for path, (reason, _) in skipped:
            stderr_line(f"hmmpar: warning: skipping {path}: {reason}")
        if chosen is not None and stats.get("version") == 1:
            stderr_line(f"hmmpar: warning: checkpoint {chosen} has format version 1 (no checksums): "
                        "its data are not verified")
    if info is not None:
        info.update(stats)
    return chosen


def open_checkpoint(comm, path: str | Path) -> CheckpointReader:
    """Open a checked checkpoint on every rank of ``comm``."""
    return CheckpointReader(comm, Path(path))


def describe(path: str | Path) -> tuple[str, str | None]:
    """``hmmpar ckpt info`` (serial): the summary text, and the problem if the data do not
    match their checksums (None if they do, or if the file has none). Metadata problems
    raise :class:`CheckpointError`."""
    p = Path(path)
    bad = _inspect(p)
    if bad:
        raise CheckpointError(bad[1])
    h5py = _h5py()
    lines = [f"checkpoint {p}"]
    problem = None
    with h5py.File(p, "r") as f:
        meta = f["meta"].attrs
        for key in ("format", "format_version", "hmmpar_version", "app", "step", "time", "seed",
                    "ranks", "written_at", "run_id"):
            if key in meta:
                value = meta[key]
                lines.append(f"  {key:<15} {value.decode() if isinstance(value, bytes) else value}")
        for group in GROUPS:
            if group in f:
                for name, dset in f[group].items():
                    lines.append(f"  /{group}/{name:<20} {dset.shape} {dset.dtype}")
        if len(f["app"].attrs):
            lines.append("  app state: " + ", ".join(f"{k}={v}" for k, v in f["app"].attrs.items()))
        if int(meta.get("format_version", 1)) < 2:
            lines.append("  checksums       none (format version 1): data not verified")
        else:
            t0 = time.perf_counter()
            try:
                plan, problem = _checksum_plan(f)
            except Exception as exc:  # noqa: BLE001
                plan, problem = [], f"cannot read the checksum tables ({_hdf5_message(exc)})"
            problem = problem or _verify_blocks(f, plan)
            if problem:
                lines.append(f"  checksums       FAILED: {problem}")
                problem = f"checkpoint {p} is corrupt: {problem}"
            else:
                n = sum(b[0] for b in plan)
                lines.append(f"  checksums       ok (crc32 of {len(plan)} blocks, {format_bytes(n)}, "
                             f"verified in {time.perf_counter() - t0:.2f} s)")
    return "\n".join(lines), problem


def format_bytes(nbytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if nbytes < 1000 or unit == "PB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
