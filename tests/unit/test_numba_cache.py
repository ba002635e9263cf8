"""numba's cache goes to a directory named by a hash of hmmpar's sources (hmmpar/__init__.py),
so a changed module never runs against stale compiled callees of another."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import numpy as np
import hmmpar, os
from hmmpar.micro.ssa.streams import mix64
mix64(np.uint64(1))
print(os.environ["NUMBA_CACHE_DIR"])
"""


def run(env_extra: dict, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(tmp_path), **env_extra)
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1]


def test_cache_directory_is_keyed_by_the_sources_and_used(tmp_path):
    first = Path(run({}, tmp_path))
    assert first.parent == tmp_path / ".cache" / "hmmpar" / "numba" and len(first.name) == 16
    assert any(first.rglob("streams.mix64-*.nbi")), "numba wrote no cache index there"
    assert Path(run({}, tmp_path)) == first  # same sources, same directory


def test_user_choice_of_numba_cache_dir_is_kept(tmp_path):
    mine = tmp_path / "mine"
    assert run({"NUMBA_CACHE_DIR": str(mine)}, tmp_path) == str(mine)
    assert not (tmp_path / ".cache").exists()
