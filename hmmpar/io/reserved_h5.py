"""Parallel HDF5 files whose disk space is reserved before any rank writes to them.

Why: when the file system fills up (or a quota runs out) in the middle of a parallel
HDF5 write, the ``write(2)`` fails on some ranks only. HDF5 1.10 then leaves its
collective protocol on those ranks (a failed metadata flush skips a barrier the other
ranks wait in, then closes the MPI file, which is collective too), and the job hangs
with no message. Observed in hmmpar's full-disk test: one run in about a hundred,
stacks in ``H5AC__run_sync_point`` -> ``MPI_Barrier`` on one rank.

So the space is taken first, while only rank 0 touches the file with plain POSIX calls,
whose failure is an ordinary error that can be broadcast and raised on every rank:

1. rank 0 creates the file and ``fallocate(2)``\\ s ``nbytes`` (an upper estimate of the
   finished file) at offset 0; then it writes an empty HDF5 file (superblock and root
   group, 195 bytes for ``libver="v110"``) at the start;
2. the outcome is broadcast; on failure every rank raises the same
   :class:`ReservationError` and the file is removed, before HDF5 has opened it;
3. every rank opens the file with ``driver="mpio"`` in mode ``r+`` (mode ``w`` would
   truncate it and give the space back). HDF5's writes then land in allocated blocks,
   and its close truncates the file to the end of its data, which frees the rest.

File systems without ``fallocate`` (``EOPNOTSUPP``: some NFS, ZFS before 2.2; or a
platform without the call) get no reservation and keep the old risk; glibc's
``posix_fallocate`` emulation is not used, since it writes every block.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import io
import os
from pathlib import Path

#: HDF5 1.10 file format: its metadata carries checksums
LIBVER = ("v110", "v110")


class ReservationError(OSError):
    """Reserving a file's space failed on rank 0; raised on every rank with its errno,
    strerror and filename; ``nbytes`` is the size that was asked for."""

    nbytes: int = 0


@functools.lru_cache(maxsize=None)
def empty_hdf5_image(libver: tuple[str, str] = LIBVER) -> bytes:
    """Bytes of an empty HDF5 file (superblock and root group) written with ``libver``."""
    import h5py  # hmmpar's __init__ has asked Debian's h5py for its MPI build
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver=libver):
        pass
    return buffer.getvalue()


@functools.lru_cache(maxsize=None)
def _libc_fallocate():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fallocate = libc.fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate.restype = ctypes.c_int
    return fallocate


def allocate(fd: int, nbytes: int) -> bool:
    """Allocate blocks for bytes ``[0, nbytes)`` of ``fd`` (``fallocate(2)``, mode 0).

    Returns False when the file system or platform cannot (nothing reserved); raises
    :class:`OSError` for any other failure, e.g. ``ENOSPC`` or ``EDQUOT``.
    """
    fallocate = _libc_fallocate()
    if fallocate is None or nbytes <= 0:
        return False
    while True:
        if fallocate(fd, 0, 0, int(nbytes)) == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EINTR:
            continue
        if err in (errno.EOPNOTSUPP, errno.ENOSYS):
            return False
        raise OSError(err, os.strerror(err))


def reserve(path: str | Path, nbytes: int, libver: tuple[str, str] = LIBVER) -> bool:
    """Create ``path`` with ``nbytes`` allocated and an empty HDF5 file at its start
    (one process, POSIX calls only). Returns whether the space is reserved; on failure
    removes the file and raises :class:`OSError`."""
    image = empty_hdf5_image(libver)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        reserved = allocate(fd, max(int(nbytes), len(image)))
        if os.pwrite(fd, image, 0) != len(image):
            raise OSError(errno.EIO, f"short write of the HDF5 superblock to {path}")
    except OSError:
        os.close(fd)
        Path(path).unlink(missing_ok=True)
        raise
    os.close(fd)
    return reserved


def open_reserved(comm, path: str | Path, nbytes: int, libver: tuple[str, str] = LIBVER):
    """Create ``path`` with ``nbytes`` reserved and open it on every rank of ``comm``
    (collective). Raises :class:`ReservationError` on every rank if rank 0 could not
    reserve the space; the file is then absent.

    Parameters
    ----------
    comm
        The ranks that write the file (mpi4py communicator).
    path
        The file; replaced if it exists.
    nbytes
        Upper estimate of the finished file's size in bytes.
    libver
        HDF5 format bounds, for the empty file and for the objects written later.
    """
    import h5py
    failure = None
    if comm.rank == 0:
        try:
            reserve(path, nbytes, libver)
        except OSError as exc:
            failure = (exc.errno or errno.EIO, exc.strerror or str(exc))
    failure = comm.bcast(failure, root=0)
    if failure is not None:
        error = ReservationError(*failure, str(path))
        error.nbytes = int(nbytes)
        raise error
    if h5py.get_config().mpi:
        return h5py.File(path, "r+", driver="mpio", comm=comm, libver=libver)
    if comm.size > 1:
        raise RuntimeError("h5py was built without MPI support; parallel output needs an "
                           "MPI-enabled h5py (Debian: python3-h5py-mpi)")
    return h5py.File(path, "r+", libver=libver)
