"""Every input file a run depends on is read here: paths, safe reads, content digests.

One module for the config file, voxel images (``coefficient.file``), Gmsh meshes
(``macro.mesh``), reaction-network models (``model.file``) and the source of user code
(``coefficient.function``). It gives

* **one path rule** (:func:`resolve_path`): ``~`` is expanded in every path; an *input*
  path written in a config file is relative to that file's directory, an *output* path
  (``run.output_dir``, ``checkpoint.directory``) to the working directory, and any path
  given with ``--set`` (or in a config given as text) to the working directory. The
  validated config holds the resolved absolute paths, so the config stored in a
  checkpoint and ``run_config.toml`` mean the same files from any working directory;
* **safe reads** (:func:`read_file`): a path that is not a regular file (a FIFO, a
  directory, a device, a socket) is refused *before* it is opened for reading (``os.stat``),
  the file is opened with ``O_NONBLOCK`` and checked again with ``fstat`` (closing the race
  with a swap to a FIFO), and at most :data:`LIMITS` bytes of each kind are read;
* **content digests** (:func:`read_input`): the SHA-256 of every input file read is
  recorded in the config's ledger (``Config.inputs``: key -> path, bytes, digest). The
  runner stores the ledger in every checkpoint and :func:`check_restart` refuses a
  restart whose input files changed content (exit 2, naming the key and the file), for
  every application alike;
* **parsers** of the kinds (:func:`parse_voxels`, :func:`parse_text`) with one-line
  errors naming the key and the file.

Every problem is a :class:`~hmmpar.core.errors.ConfigError` (exit 2) whose message starts
``config key <key>: <file> ...``; collective functions raise it on every rank.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hmmpar.core.errors import CheckpointError, ConfigError

MiB = 1 << 20

#: the largest file read of each kind, in bytes (documented in docs/config.md)
LIMITS = {
    "config": 16 * MiB,     # a TOML config file
    "model": 64 * MiB,      # a reaction-network model (TOML)
    "module": 16 * MiB,     # the source file of a user-code module
    "voxels": 1024 * MiB,   # a voxel image (.npy or HDF5)
    "mesh": 4096 * MiB,     # a Gmsh mesh
}

#: the numeric dtypes a voxel image may have (kinds: bool, unsigned, signed, float)
_VOXEL_KINDS = "buif"


class InputError(ConfigError):
    """A file that cannot be read as an input (exit 2): ``<what>: <path> <reason>``,
    with ``path`` and ``reason`` as attributes for callers that word it their way."""

    def __init__(self, what: str, path: str, reason: str) -> None:
        super().__init__(f"{what}: {reason.format(path=path)}")
        self.path, self.reason = path, reason.format(path=path)


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def format_size(nbytes: int) -> str:
    """``nbytes`` as ``12 MiB`` / ``3.5 KiB`` / ``7 B``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes} B"


def resolve_path(value: str, base: str | Path | None) -> str:
    """The absolute path of a path written in a config: ``~`` expanded, then relative to
    ``base`` (the config file's directory for inputs written in it; None: the working
    directory). The path is normalised but symbolic links are kept (``os.path.abspath``).
    An empty value stays empty (the key is unset)."""
    if not value:
        return value
    p = os.path.expanduser(value)
    if not os.path.isabs(p) and base is not None:
        p = os.path.join(os.fspath(base), p)
    return os.path.abspath(p)


def read_file(path: str | Path, kind: str, what: str) -> bytes | bytearray:
    """The whole content of a regular file, at most ``LIMITS[kind]`` bytes (not collective).

    Parameters
    ----------
    path
        The file.
    kind
        A key of :data:`LIMITS`.
    what
        The start of every error message, e.g. ``"config key model.file"``.

    Raises
    ------
    ConfigError
        ``<what>: <path> ...``: not found, not a regular file (FIFO, directory, device,
        socket; refused before it is opened for reading), larger than the limit, or
        unreadable.
    """
    path = os.fspath(path)
    limit = LIMITS[kind]
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(what, path, "cannot read {path}: no such file") from None
    except OSError as exc:
        raise InputError(what, path, "cannot read {path}: " + str(exc.strerror or exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(what, path, "{path} is " + _file_type(st.st_mode) + ", not a regular file")
    try:  # O_NONBLOCK: a FIFO swapped in after the stat does not block the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(what, path, "cannot read {path}: " + str(exc.strerror or exc)) from None
    too_big = "{path} is larger than the " + format_size(limit) + f" allowed for a {kind} file"
    try:
        st = os.fstat(fd)  # the file actually opened
        if not stat.S_ISREG(st.st_mode):
            raise InputError(what, path, "{path} is " + _file_type(st.st_mode) + ", not a regular file")
        if st.st_size > limit:
            raise InputError(what, path, too_big)
        buf = bytearray(st.st_size + 1)  # one byte more: a file that grew is noticed
        view, total = memoryview(buf), 0
        while True:
            if total == len(buf):
                if len(buf) > limit:
                    raise InputError(what, path, too_big)
                view.release()  # a bytearray with an exported view cannot grow
                buf.extend(bytes(min(len(buf), limit + 1 - len(buf))))
                view = memoryview(buf)
            n = os.readv(fd, [view[total:]])
            if n == 0:
                break
            total += n
        view.release()
        del buf[total:]
    except OSError as exc:
        raise InputError(what, path, "cannot read {path}: " + str(exc.strerror or exc)) from None
    finally:
        os.close(fd)
    return bytes(buf) if len(buf) < 1 << 16 else buf


def sha256(data: bytes | bytearray) -> str:
    """Hex SHA-256 of ``data`` (the digest stored for every input file)."""
    return hashlib.sha256(data).hexdigest()


def read_input(comm, config, key: str, kind: str, path: str | Path | None = None, *,
               share: bool = True) -> bytes | None:
    """Read the input file of config key ``key`` on rank 0 and record its digest (collective).

    Parameters
    ----------
    comm
        mpi4py communicator (None: this process alone).
    config
        The :class:`~hmmpar.core.config.Config`; its ledger gets ``key``.
    key
        The config key naming the file (``coefficient.file``); in every message.
    kind
        A key of :data:`LIMITS`.
    path
        The file (default: the config's resolved value of ``key``).
    share
        Broadcast the content to every rank (False: the other ranks get None).

    Raises
    ------
    ConfigError
        On every rank, naming the key and the file (see :func:`read_file`).
    """
    path = os.fspath(path if path is not None else config[key])
    data = problem = None
    rank = comm.rank if comm is not None else 0
    if rank == 0:
        try:
            data = read_file(path, kind, f"config key {key}")
        except ConfigError as exc:
            problem = str(exc)
    digest = {"path": path, "bytes": len(data), "sha256": sha256(data)} if data is not None else None
    if comm is not None and comm.size > 1:
        problem, digest = comm.bcast((problem, digest), root=0)
        if share and problem is None:
            data = comm.bcast(data, root=0)
    if problem:
        raise ConfigError(problem)
    config.inputs[key] = digest
    return data


def parse_text(data: bytes, key: str, path: str | Path) -> str:
    """UTF-8 text of a text input (model, module source); binary content is a ConfigError."""
    if b"\x00" in data:
        raise ConfigError(f"config key {key}: {path} is a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config key {key}: {path} is not UTF-8 text (byte {exc.start})") from None


def parse_voxels(data: bytes, key: str, path: str | Path, dataset: str = "") -> np.ndarray:
    """A voxel image from the bytes of a ``.npy`` file, or of an HDF5 file's ``dataset``.

    The image must be a 2D or 3D array of real numbers (booleans and integers are
    converted), finite and positive; ``.npy`` files are read with ``allow_pickle=False``.
    Every problem is a ConfigError naming ``key`` and ``path``.
    """
    name = f"config key {key}: {path}"
    if str(path).lower().endswith(".npy"):
        if data[:6] != b"\x93NUMPY":
            raise ConfigError(f"{name} is not a .npy file" + (" (it is empty)" if not data else ""))
        grid = _npy_array(data, name)
        where = name
    else:
        if data[:8] != b"\x89HDF\r\n\x1a\n":
            raise ConfigError(f"{name} is not an HDF5 file (voxel images are .npy files or HDF5 "
                              "files with coefficient.dataset)" + (" (it is empty)" if not data else ""))
        if not dataset:
            raise ConfigError(f"config key coefficient.dataset: name the dataset of the voxel image in {path}")
        import hmmpar  # noqa: F401 - selects the MPI build of h5py
        import h5py
        where = f"{name}, dataset {dataset!r}"
        try:
            with h5py.File(io.BytesIO(data), "r") as f:
                if dataset not in f:
                    names = []
                    f.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
                    raise ConfigError(f"{name} has no dataset {dataset!r} (datasets: "
                                      f"{', '.join(names[:8]) or 'none'})")
                obj = f[dataset]
                if not isinstance(obj, h5py.Dataset):
                    raise ConfigError(f"{where} is a group, not a dataset")
                if obj.dtype.kind not in _VOXEL_KINDS:
                    raise ConfigError(f"{where} has dtype {obj.dtype}, not a real number type")
                if obj.size * 8 > LIMITS["voxels"]:
                    raise ConfigError(f"{where} has {obj.size} voxels, more than allowed")
                grid = obj[()]
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{name} is a damaged HDF5 file ({' '.join(str(exc).split())})") from None
    grid = np.asarray(grid)
    if grid.dtype.kind not in _VOXEL_KINDS or grid.dtype.names is not None:
        raise ConfigError(f"{where} has dtype {grid.dtype}, not a real number type")
    if grid.ndim not in (2, 3):
        raise ConfigError(f"{where} is a {grid.ndim}D array of shape {grid.shape}; a voxel image is 2D or 3D")
    if grid.size == 0:
        raise ConfigError(f"{where} has shape {grid.shape}, no voxels")
    grid = np.asarray(grid, dtype=np.float64)  # no copy when it is float64 already
    if not np.isfinite(grid).all():
        bad = ~np.isfinite(grid)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(f"{where}: {int(bad.sum())} voxel value(s) are NaN or infinite (first at index {first})")
    if grid.min() <= 0:
        first = tuple(int(i) for i in np.argwhere(grid <= 0)[0])
        raise ConfigError(f"{where}: voxel values must be positive, got {grid[first]:g} at index {first}")
    return grid


def _npy_array(data: bytes | bytearray, name: str) -> np.ndarray:
    """The array of a ``.npy`` file's bytes without copying them (a view), pickles refused."""
    from numpy.lib import format as npy
    head = io.BytesIO(bytes(data[:1 << 20]))  # the header (small) only
    try:
        version = npy.read_magic(head)
        shape, fortran, dtype = (npy.read_array_header_1_0 if version == (1, 0) else
                                 npy.read_array_header_2_0)(head)
    except (ValueError, EOFError, OSError) as exc:
        raise ConfigError(f"{name} is not a valid .npy file: {' '.join(str(exc).split())}") from None
    if dtype.hasobject:
        raise ConfigError(f"{name} holds Python objects (pickled data), not a numeric array; "
                          "save the image with numpy.save of a float array")
    count = math.prod(shape)
    offset = head.tell()
    if len(data) - offset < count * dtype.itemsize:
        raise ConfigError(f"{name} is not a valid .npy file: truncated ({len(data) - offset} bytes of data, "
                          f"shape {shape} needs {count * dtype.itemsize})")
    grid = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return grid.reshape(shape[::-1]).transpose() if fortran else grid.reshape(shape)


# ---------------------------------------------------------------------- restart
def ledger_text(config) -> str:
    """The config's ledger as JSON text (stored in every checkpoint)."""
    return json.dumps(config.inputs, sort_keys=True)


def check_restart(config, stored: str | None, checkpoint: str | Path) -> None:
    """Refuse a restart whose input files changed since ``checkpoint`` was written.

    ``stored`` is the checkpoint's ledger (:func:`ledger_text`; None for a checkpoint
    written before hmmpar recorded input files). A file may have moved (the digest is
    compared, not the path); a changed content, an input the checkpoint did not use or
    one it used and this run does not are :class:`CheckpointError` (exit 2) naming the
    key and the file.
    """
    now: Mapping[str, Any] = config.inputs
    if stored is None:
        if now:
            key = sorted(now)[0]
            raise CheckpointError(f"checkpoint {checkpoint} does not record its input files (written by an "
                                  f"older hmmpar); cannot verify config key {key} ({now[key]['path']})")
        return
    try:
        before = json.loads(stored)
    except ValueError:
        raise CheckpointError(f"checkpoint {checkpoint}: its record of input files is damaged") from None
    for key in sorted(set(before) | set(now)):
        if key not in now:
            raise CheckpointError(f"checkpoint {checkpoint} was written with input file {before[key]['path']} "
                                  f"(config key {key}); this run does not read it")
        if key not in before:
            raise CheckpointError(f"checkpoint {checkpoint} was written without an input file for config key "
                                  f"{key}; this run reads {now[key]['path']}")
        if before[key]["sha256"] != now[key]["sha256"]:
            moved = "" if before[key]["path"] == now[key]["path"] else f" (then {before[key]['path']})"
            raise CheckpointError(f"config key {key}: the content of {now[key]['path']} changed since checkpoint "
                                  f"{checkpoint} was written{moved}; restore the file or start a fresh run")
