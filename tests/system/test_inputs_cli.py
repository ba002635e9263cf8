"""Input files as users meet them on the command line, under mpirun: a FIFO model file,
an input changed between run and restart, user code and --no-user-code, and the working
directory kept off the import path. Each run has a timeout and asserts the exit code and
the exact one-line message."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import ROOT, hmmpar_lines, mpi_env, run_mpi

ELLIPTIC = """[run]
app = "elliptic"
output_dir = "{out}"
progress_interval = 0.0
[macro]
cells = [2, 2]
[coefficient]
{coefficient}
[micro]
eps = 0.01
n = 4
batches = 2
[checkpoint]
every_steps = 1
[output]
plots = false
"""


def hmmpar(n: int, *args, cwd: Path | None = None, timeout: float = 120):
    return run_mpi(n, ["-m", "hmmpar.cli", *map(str, args)], timeout=timeout, cwd=cwd)


def test_fifo_model_file_is_refused_on_two_ranks_without_hanging(tmp_path):
    """The reproduction of issue 11: rank 0 blocked reading a FIFO named by model.file."""
    os.mkfifo(tmp_path / "model.toml")
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[run]\napp = "ssa"\noutput_dir = "{tmp_path / "out"}"\n[model]\nfile = "model.toml"\n')
    p = hmmpar(2, "run", cfg, timeout=60)
    assert p.returncode == 2, p.stderr
    assert hmmpar_lines(p.stderr) == [f"hmmpar: error: config key model.file: {tmp_path / 'model.toml'} is a FIFO, "
                                      "not a regular file"]
    assert not (tmp_path / "out" / "checkpoints").exists()  # refused before the run's set-up


def test_changed_voxel_file_refuses_restart_on_two_ranks(tmp_path):
    """A restart after the image changed would mix A_H of two coefficients: exit 2 naming
    the key and the file; with the image restored the restart works."""
    image = np.array([[1.0, 10.0], [10.0, 1.0]])
    np.save(tmp_path / "img.npy", image)
    cfg = tmp_path / "ell.toml"
    cfg.write_text(ELLIPTIC.format(out=tmp_path / "out", coefficient='kind = "voxels"\nfile = "img.npy"'))
    p = hmmpar(2, "run", cfg, "--set", "checkpoint.at_end=false")
    assert p.returncode == 0, p.stderr
    np.save(tmp_path / "img.npy", 2 * image)
    p = hmmpar(2, "run", cfg, "--restart", "latest")
    assert p.returncode == 2, p.stderr
    ck = tmp_path / "out" / "checkpoints" / "ckpt_00000002.h5"
    assert hmmpar_lines(p.stderr) == [f"hmmpar: error: config key coefficient.file: the content of "
                                      f"{tmp_path / 'img.npy'} changed since checkpoint {ck} was written; "
                                      "restore the file or start a fresh run"]
    np.save(tmp_path / "img.npy", image)
    p = hmmpar(2, "run", cfg, "--restart", "latest")
    assert p.returncode == 0, p.stderr
    assert f"restarted from {ck}" in p.stdout


def test_user_code_keys_and_the_import_path(tmp_path):
    """A module in the working directory is not importable by name (its import-time code
    never runs; the file form file.py:function is tested in tests/unit/test_inputs.py);
    --no-user-code refuses the key in validate, run and the drivers before any import."""
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "imported"
    (work / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                     "def a(x, y):\n    return 2.0\n")
    cfg = work / "ell.toml"
    cfg.write_text(ELLIPTIC.format(out=tmp_path / "out", coefficient='kind = "function"\nfunction = "evilmod:a"'))
    env = mpi_env()
    p = subprocess.run([sys.executable, "-m", "hmmpar.cli", "validate", "ell.toml"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert hmmpar_lines(p.stderr) == [
        "hmmpar: error: config key coefficient.function: cannot import module 'evilmod' (ModuleNotFoundError: "
        "No module named 'evilmod'); a module in the working directory is not imported: write "
        "'file.py:function' (relative to the config file) or install the module"]
    assert not marker.exists()
    refused = (f'hmmpar: error: config key coefficient.function = "{work}/evilmod.py:a" runs user code '
               "(imports a Python module); refused by --no-user-code")
    cfg.write_text(cfg.read_text().replace('"evilmod:a"', '"evilmod.py:a"'))
    for args in ([sys.executable, "-m", "hmmpar.cli", "validate", cfg, "--no-user-code"],
                 ["mpirun", "--oversubscribe", "-n", "2", sys.executable, "-m", "hmmpar.cli", "run", cfg,
                  "--no-user-code"],
                 [sys.executable, ROOT / "drivers" / "elliptic.py", cfg, "--no-user-code"]):
        p = subprocess.run(list(map(str, args)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, p.stderr
        assert hmmpar_lines(p.stderr) == [refused], args
    assert not marker.exists() and not (tmp_path / "out").exists()
