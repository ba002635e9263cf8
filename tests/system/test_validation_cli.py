"""Bad input through the command line as a user meets it: exit 2, one line naming the key,
before any micro work and before the output directory exists; ``hmmpar validate`` makes
the same checks as ``hmmpar run`` and writes nothing."""
from __future__ import annotations

import os

import pytest

from conftest import hmmpar_lines, run_mpi

ELLIPTIC = """
[run]
app = "elliptic"
output_dir = "{out}"
[macro]
cells = [4, 4]
[micro]
eps = 0.01
n = 8
batches = 2
[output]
plots = false
"""

OU = """
[run]
app = "ou_averaging"
output_dir = "{out}"
[model]
points = 8
[macro]
t_end = 0.1
[micro]
samples = 200
[checkpoint]
every_steps = 1
[output]
plots = false
"""


def _config(tmp_path, template: str):
    out = tmp_path / "out"
    cfg = tmp_path / "c.toml"
    cfg.write_text(template.format(out=out))
    return cfg, out


def _one_error(proc, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = hmmpar_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("hmmpar: error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize("command, ranks, overrides, message", [
    ("run", 2, ["run.seed=18446744073709551616"], "config key run.seed must be <= 9223372036854775807"),
    ("run", 2, ["micro.n=10000"], "this run needs about "),
    ("validate", 1, ["coefficient.kind=\"voxels\"", "coefficient.file=\"no-such.npy\""], "no-such.npy"),
    ("validate", 1, ["macro.cells=[0, 0]"], "config key macro.cells: every entry must be >= 1"),
])
def test_run_and_validate_refuse_before_the_disk(tmp_path, command, ranks, overrides, message):
    """``validate`` and ``run`` share the checks (tests/unit/test_validation.py runs every
    case through that shared function); the output directory is never created."""
    cfg, out = _config(tmp_path, ELLIPTIC)
    args = ["-m", "hmmpar.cli", command, str(cfg)] + [f"--set={o}" for o in overrides]
    _one_error(run_mpi(ranks, args, timeout=60), message)
    assert not out.exists()


def test_validate_accepts_a_good_config_without_writing(tmp_path):
    cfg, out = _config(tmp_path, ELLIPTIC)
    proc = run_mpi(1, ["-m", "hmmpar.cli", "validate", str(cfg)], timeout=60)
    assert proc.returncode == 0 and f"{cfg}: ok (app elliptic)" in proc.stdout, proc.stderr
    assert not out.exists()


def test_too_few_cells_for_the_ranks(tmp_path):
    cfg, _ = _config(tmp_path, ELLIPTIC)
    proc = run_mpi(3, ["-m", "hmmpar.cli", "run", str(cfg), "--set=macro.cells=[1, 1]"], timeout=60)
    _one_error(proc, "config key macro.cells = [1, 1]: the box's 2 x 2 nodes cannot be split over 3 ranks")


def _holds_checkpoints(tmp_path):
    """A checkpoint directory (outside the output directory) with an earlier run's
    checkpoints (by name: a fresh run moves them aside without reading them)."""
    cfg, _ = _config(tmp_path, OU)
    ck = tmp_path / "ck"
    ck.mkdir()
    for step in (1, 2):
        (ck / f"ckpt_{step:08d}.h5").write_bytes(b"earlier run")
    return cfg, ck, ["ckpt_00000001.h5", "ckpt_00000002.h5"]


def test_checkpoint_directory_checked_before_earlier_checkpoints_move(tmp_path):
    """The writability probe comes first: a directory that refuses the probe (here the probe's
    name is taken by a directory) is one error and the earlier run's checkpoints stay put."""
    cfg, ck, before = _holds_checkpoints(tmp_path)
    assert before
    (ck / ".hmmpar-write-test").mkdir()
    proc = run_mpi(2, ["-m", "hmmpar.cli", "run", str(cfg), f"--set=checkpoint.directory=\"{ck}\""], timeout=60)
    _one_error(proc, f"checkpoint directory {ck} is not writable")
    assert sorted(p.name for p in ck.glob("ckpt_*.h5")) == before and not (ck / "previous-run").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_read_only_checkpoint_directory_with_checkpoints(tmp_path):
    cfg, ck, before = _holds_checkpoints(tmp_path)
    ck.chmod(0o555)
    try:
        proc = run_mpi(2, ["-m", "hmmpar.cli", "run", str(cfg), f"--set=checkpoint.directory=\"{ck}\""],
                       timeout=60)
    finally:
        ck.chmod(0o755)
    _one_error(proc, f"checkpoint directory {ck} is not writable: Permission denied")
    assert sorted(p.name for p in ck.glob("ckpt_*.h5")) == before


def test_control_characters_in_a_string_restart(tmp_path):
    """A string value with control characters is stored in every checkpoint's config text
    and read back as TOML on restart: the restart continues (exit 0) from the checkpoint."""
    cfg, _ = _config(tmp_path, OU)
    out = tmp_path / "out\t\x07\x1b\x7f\"q\\"
    from hmmpar.core.config import _toml_string
    common = ["-m", "hmmpar.cli", "run", str(cfg), f"--set=run.output_dir={_toml_string(str(out))}"]
    first = run_mpi(1, common + ["--quiet"], timeout=60)
    assert first.returncode == 0, first.stderr
    assert (out / "checkpoints").is_dir() and list((out / "checkpoints").glob("ckpt_*.h5"))
    again = run_mpi(2, common + ["--restart", "latest", "--set=macro.t_end=0.2"], timeout=60)
    assert "restarted from" in again.stdout and "(step 5," in again.stdout, again.stdout
    assert again.returncode == 0, again.stderr
    import json
    assert json.loads((out / "summary.json").read_text())["steps"] == 10  # 0.2 / macro.dt
