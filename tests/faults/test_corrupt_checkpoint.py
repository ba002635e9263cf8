"""Damaged checkpoints are detected (CRC-32 of every written block, HDF5's metadata
checksums) and ``--restart latest`` falls back to the previous complete checkpoint with a
warning naming the bad file; the run still ends bitwise equal to an uninterrupted one."""
from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
from mpi4py import MPI

import hmmpar  # noqa: F401 - Debian's MPI h5py
import h5py

from faults_helpers import hmmpar as run_hmmpar
from faults_helpers import hmmpar_lines, list_ckpts, ou_config, run_mpi
from hmmpar.core.checkpoint import Block, Checkpointer, describe, resolve_restart, verify_checkpoint
from hmmpar.core.errors import CheckpointError

STEPS = 20  # the whole run; the damaged runs stop at 10 and are continued


def flip(path, offset: int, count: int = 4) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = bytearray(f.read(count))
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def data_offset(path, key: str) -> int:
    with h5py.File(path, "r") as f:
        offset = f[key].id.get_offset()  # contiguous dataset: its bytes start here
        assert offset is not None
        return offset


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A reference run of 20 steps, and a run stopped after 10 with checkpoints 6, 8, 10."""
    base = tmp_path_factory.mktemp("corrupt")
    kw = dict(t_end=0.05 * STEPS, extra="[checkpoint]\nevery_steps = 2\nkeep = 3\n")
    ref = ou_config(base / "ref.toml", base / "ref", **kw)
    p = run_hmmpar(1, ref)
    assert p.returncode == 0, p.stderr
    half = ou_config(base / "half.toml", base / "half", **kw)
    p = run_hmmpar(2, half, "--set", f"macro.t_end={0.05 * STEPS / 2}")
    assert p.returncode == 0, p.stderr
    assert list_ckpts(base / "half" / "checkpoints") == [6, 8, 10]
    return base, np.load(base / "ref" / "X.npy")


def copy_run(runs, name):
    base, ref_x = runs
    out = base / name
    shutil.copytree(base / "half", out)
    cfg = ou_config(base / f"{name}.toml", out, t_end=0.05 * STEPS,
                    extra="[checkpoint]\nevery_steps = 2\nkeep = 3\n")
    return cfg, out / "checkpoints", ref_x


def continue_run(n, cfg, out_ck, ref_x, *extra):
    p = run_hmmpar(n, cfg, "--restart", "latest", *extra)
    assert p.returncode == 0, p.stderr
    assert np.load(out_ck.parent / "X.npy").tobytes() == ref_x.tobytes()  # bitwise
    return p


def test_truncated_newest_falls_back_with_warning(runs):
    cfg, ck, ref_x = copy_run(runs, "truncated")
    newest = ck / "ckpt_00000010.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    p = continue_run(2, cfg, ck, ref_x)
    warnings = [l for l in hmmpar_lines(p.stderr) if "warning: skipping" in l]
    assert len(warnings) == 1 and warnings[0].startswith(f"hmmpar: warning: skipping {newest}: unreadable or truncated")
    assert "restarted from" in p.stdout and "ckpt_00000008.h5 (step 8" in p.stdout


def test_flipped_data_bytes_are_caught_by_the_checksum(runs):
    cfg, ck, ref_x = copy_run(runs, "flipped")
    newest = ck / "ckpt_00000010.h5"
    flip(newest, data_offset(newest, "fields/X") + 8 * 30)  # row 30, in rank 1's block
    p = continue_run(3, cfg, ck, ref_x)
    lines = hmmpar_lines(p.stderr)
    # PETSc gave 2 ranks rows [0, 19) and [19, 37): the flip is in the second block
    assert lines[0].startswith(f"hmmpar: warning: skipping {newest}: corrupt: checksum mismatch in "
                               "/fields/X rows [19, 37) (stored crc32 ")
    assert "ckpt_00000008.h5 (step 8" in p.stdout and "checksums of" in p.stdout


def test_two_bad_files_fall_back_two_steps(runs):
    """Flipped bytes in the stored config of 10, a flipped metadata byte (the step
    attribute, caught by HDF5's own checksum) in 8: the restart takes 6."""
    cfg, ck, ref_x = copy_run(runs, "two")
    c10, c8 = ck / "ckpt_00000010.h5", ck / "ckpt_00000008.h5"
    flip(c10, data_offset(c10, "meta/config") + 10, 1)
    raw = c8.read_bytes()
    at = raw.find(struct.pack("<q", 8), raw.find(b"step\x00"))  # the /meta step attribute's value
    assert at > 0
    flip(c8, at, 1)
    p = continue_run(1, cfg, ck, ref_x)
    warnings = [l for l in hmmpar_lines(p.stderr) if "warning: skipping" in l]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"hmmpar: warning: skipping {c10}: corrupt: checksum mismatch in /meta/config")
    assert warnings[1].startswith(f"hmmpar: warning: skipping {c8}: unreadable or truncated")
    assert "incorrect metadata checksum" in warnings[1]
    assert "ckpt_00000006.h5 (step 6" in p.stdout


def test_restart_from_a_corrupt_path_is_one_line_exit_2(runs):
    cfg, ck, _ = copy_run(runs, "path")
    bad = ck / "ckpt_00000010.h5"
    flip(bad, data_offset(bad, "fields/X"))
    p = run_hmmpar(2, cfg, "--restart", str(bad))
    assert p.returncode == 2
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"hmmpar: error: checkpoint {bad} is corrupt: checksum mismatch in /fields/X rows [0, 19)")
    assert "step" not in p.stdout  # no micro work
    info = run_mpi(1, ["-m", "hmmpar.cli", "ckpt", "info", str(bad)])
    assert info.returncode == 2
    assert "checksums       FAILED: checksum mismatch in /fields/X rows [0, 19)" in info.stdout
    good = run_mpi(1, ["-m", "hmmpar.cli", "ckpt", "info", str(ck / "ckpt_00000008.h5")])
    assert good.returncode == 0 and "checksums       ok (crc32 of 3 blocks" in good.stdout


def test_all_checkpoints_bad_is_an_error(runs):
    cfg, ck, _ = copy_run(runs, "allbad")
    for step in list_ckpts(ck):
        path = ck / f"ckpt_{step:08d}.h5"
        flip(path, data_offset(path, "fields/X"))
    p = run_hmmpar(2, cfg, "--restart", "latest")
    assert p.returncode == 2
    lines = hmmpar_lines(p.stderr)
    assert len(lines) == 1 and lines[0].startswith(
        f"hmmpar: error: --restart latest: no usable checkpoint; checkpoint {ck / 'ckpt_00000010.h5'} is corrupt")


# ------------------------------------------------------------------ in-process (one rank)
comm = MPI.COMM_SELF
REC = np.dtype([("a", "u1"), ("y", "f8", (2,))], align=True)  # with padding bytes


def write(ck, step):
    rec = np.zeros(5, dtype=REC)
    rec["a"], rec["y"] = np.arange(5), np.arange(10.0).reshape(5, 2) * step
    return ck.write(step, 0.1 * step, app="demo", seed=1, config_text="a = 1\n",
                    fields={"U": Block(np.linspace(0, 1, 9) * step, 0, 9)},
                    instances={"rec": Block(rec, 0, 5)})


def test_version_1_files_are_read_with_a_note(tmp_path, capfd):
    ck = Checkpointer(comm, tmp_path, checksums=False)  # what hmmpar wrote before checksums
    path = write(ck, 3)
    with h5py.File(path) as f:
        assert f["meta"].attrs["format_version"] == 1 and "checksums" not in f["meta"]
    info = {}
    assert resolve_restart(comm, "latest", tmp_path, info=info) == path
    assert info["version"] == 1 and info["blocks"] == 0
    assert f"hmmpar: warning: checkpoint {path} has format version 1 (no checksums)" in capfd.readouterr().err
    text, problem = describe(path)
    assert problem is None and "checksums       none (format version 1)" in text


def test_padded_structured_rows_verify_and_a_flip_in_them_is_found(tmp_path):
    path = write(Checkpointer(comm, tmp_path), 4)
    assert verify_checkpoint(comm, path)[0] is None
    flip(path, data_offset(path, "instances/rec") + REC.itemsize * 3 + 8)
    problem, info = verify_checkpoint(comm, path)
    assert problem.startswith("checksum mismatch in /instances/rec rows [0, 5)")
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is corrupt: checksum mismatch"):
        resolve_restart(comm, str(path), tmp_path)


def test_blocks_that_do_not_tile_the_dataset_are_refused(tmp_path):
    ck = Checkpointer(comm, tmp_path)
    with pytest.raises(CheckpointError, match="the ranks' blocks leave a gap at row 0 .of 9."):
        ck.write(1, 0.0, app="demo", seed=1, config_text="", fields={"U": Block(np.zeros(4), 5, 9)})
