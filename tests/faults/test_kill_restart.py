"""SIGKILL the whole MPI job at random instants, restart each time: the result is bitwise
that of a run that was never interrupted (invariant 3).

Five kills, drawn from a seeded RNG: two land deterministically inside a checkpoint write
(``HMMPAR_TEST_CHECKPOINT_PAUSE`` holds the temporary file open for a while, and the kill
comes while it does), three at a random delay after the launch wrote its first checkpoint
(anywhere in the micro solves, the macro step or a write). Each restart uses
``--restart latest`` on 1, 2 or 3 ranks in turn; the last one runs to the end.
"""
from __future__ import annotations

import random
import time

import numpy as np

from faults_helpers import hmmpar, kill_session, launch, list_ckpts, ou_config, session_processes

STEPS = 60


def wait_for(predicate, proc, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_five_sigkills_and_restarts_equal_uninterrupted_run(tmp_path):
    rng = random.Random(20261121)
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    kw = dict(points=64, dt=0.05, t_end=0.05 * STEPS, samples=40000,
              extra="[checkpoint]\nevery_steps = 1\nkeep = 3\n")
    ref_cfg = ou_config(tmp_path / "ref.toml", ref_out, **kw)
    cfg = ou_config(tmp_path / "killed.toml", out, **kw)
    # the uninterrupted run needs no checkpoints (run-control keys: results do not change)
    p = hmmpar(1, ref_cfg, "--set", "checkpoint.every_steps=0", "--set", "checkpoint.at_end=false")
    assert p.returncode == 0, p.stderr
    ckdir = out / "checkpoints"
    kinds = ["write", "random", "write", "random", "random"]
    rng.shuffle(kinds)
    log = []
    for i, kind in enumerate(kinds):
        ranks = (1, 2, 3)[i % 3]
        before = list_ckpts(ckdir)
        newest = before[-1] if before else 0
        args = ["-m", "hmmpar.cli", "run", str(cfg), "--quiet"] + (["--restart", "latest"] if i else [])
        env = {}
        if kind == "write":
            target = newest + rng.randint(1, 3)
            env["HMMPAR_TEST_CHECKPOINT_PAUSE"] = f"{target}:60"
            tmp = ckdir / f".ckpt_{target:08d}.h5.tmp"
            started = time.time()
            proc = launch(ranks, args, env=env)

            def writing() -> bool:  # this launch's temporary file, not one left by a kill
                try:
                    return tmp.stat().st_mtime > started
                except FileNotFoundError:
                    return False
            assert wait_for(writing, proc), f"kill {i}: checkpoint {target} was never started"
            time.sleep(rng.uniform(0.0, 0.3))  # inside the write: the pause holds the file open
        else:
            proc = launch(ranks, args)
            assert wait_for(lambda: list_ckpts(ckdir)[-1:] > [newest], proc), f"kill {i}: no progress"
            time.sleep(rng.uniform(0.0, 0.5))
        assert proc.poll() is None, f"kill {i}: the run ended before the kill\n{proc.stderr.read()}"
        orphans = kill_session(proc)
        assert orphans == [], f"kill {i}: ranks {orphans} survived the job's SIGKILL"
        assert session_processes(proc.pid) == []
        after = list_ckpts(ckdir)
        if kind == "write":  # the interrupted checkpoint never became visible
            assert target not in after and after[-1] == target - 1, (target, after)
        log.append((kind, ranks, newest, after[-1]))
        assert after[-1] < STEPS
    print("kills (kind, ranks, restarted from step, newest checkpoint after the kill):", log)
    p = hmmpar(2, cfg, "--restart", "latest")
    assert p.returncode == 0, p.stderr
    assert "restarted from" in p.stdout
    assert not list(ckdir.glob(".*.tmp"))  # the partial file of the last kill was removed
    a, b = np.load(ref_out / "X.npy"), np.load(out / "X.npy")
    assert a.tobytes() == b.tobytes(), log  # bitwise
    # every launch made progress and the kills covered both kinds
    assert all(last >= first for _, _, first, last in log)
    assert sum(k == "write" for k, *_ in log) == 2
