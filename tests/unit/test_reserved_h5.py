"""Files whose space is reserved before HDF5 writes them (hmmpar.io.reserved_h5)."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from mpi4py import MPI

import hmmpar  # noqa: F401  (before h5py: asks Debian's h5py for its MPI build)
import hmmpar.io.reserved_h5 as reserved_h5
from hmmpar.io.reserved_h5 import ReservationError, empty_hdf5_image, open_reserved

comm = MPI.COMM_SELF
MB = 2**20


def allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def test_space_is_held_while_writing_and_given_back_at_close(tmp_path):
    path = tmp_path / "f.h5"
    f = open_reserved(comm, path, 8 * MB)
    if allocated(path) < 8 * MB:
        f.close()
        pytest.skip("this file system does not support fallocate(2)")
    f.create_dataset("x", data=np.arange(1000.0))
    f.attrs["a"] = 1
    f.close()  # HDF5 truncates the file to the end of its data
    assert os.path.getsize(path) < 64 * 1024
    assert allocated(path) < 128 * 1024
    import h5py
    with h5py.File(path, "r") as g:
        assert np.array_equal(g["x"][...], np.arange(1000.0)) and g.attrs["a"] == 1
        # 1.10 format: superblock version 3, object headers with checksums
        assert g.id.get_create_plist().get_version()[0] == 3


def test_objects_are_written_in_the_1_10_format(tmp_path):
    import h5py
    path = tmp_path / "f.h5"
    with open_reserved(comm, path, MB) as f:
        f.create_dataset("x", data=np.zeros(3))
    assert open(path, "rb").read(9) == b"\x89HDF\r\n\x1a\n\x03"  # signature, superblock v3
    with h5py.File(path, "r") as g:
        # object header version 2 starts with "OHDR" (version 1 headers have no signature)
        addr = h5py.h5o.get_info(g["x"].id).addr
    with open(path, "rb") as raw:
        raw.seek(addr)
        assert raw.read(4) == b"OHDR"
    assert empty_hdf5_image() == empty_hdf5_image()  # cached, deterministic
    assert empty_hdf5_image()[:8] == b"\x89HDF\r\n\x1a\n"


def test_failed_reservation_raises_with_errno_and_leaves_no_file(tmp_path, monkeypatch):
    def full(fd, nbytes):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(reserved_h5, "allocate", full)
    path = tmp_path / "f.h5"
    path.write_bytes(b"old")
    with pytest.raises(ReservationError) as info:
        open_reserved(comm, path, MB)
    assert info.value.errno == errno.ENOSPC and info.value.strerror == "No space left on device"
    assert not path.exists()


def test_unsupported_fallocate_still_writes_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(reserved_h5, "allocate", lambda fd, nbytes: False)
    path = tmp_path / "f.h5"
    with open_reserved(comm, path, 8 * MB) as f:
        f.create_dataset("x", data=np.ones(10))
    import h5py
    with h5py.File(path, "r") as g:
        assert g["x"][...].sum() == 10.0
