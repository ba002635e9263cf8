"""The batch scripts in slurm/ under a real Slurm (issue 5): the elliptic, convection and
superparametrization jobs against direct runs, a
time-stepping job that is signalled before its time limit and continues (requeued on the
same rank count, or resubmitted on another), and a job array gathered into one table."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import hmmpar  # noqa: F401 - MPI h5py
import h5py

from slurm_jobs import ROOT, job_env, sbatch, wait_final, wait_for

pytestmark = pytest.mark.usefixtures("slurm")


def mpirun(n: int, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = job_env(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run(["mpirun", "--oversubscribe", "-n", str(n), sys.executable, *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


def test_elliptic_demo_job_matches_a_direct_run(tmp_path):
    """sbatch slurm/elliptic.sbatch (the default config, 4096 cell problems, 2 ranks) gives
    the same U as the same run under a plain mpirun: bitwise."""
    out = tmp_path / "slurm"
    job = sbatch([f"--output={tmp_path / 'job.out'}", "slurm/elliptic.sbatch"], OUT=str(out))
    assert wait_final(job, timeout=600) == ["COMPLETED"], (tmp_path / "job.out").read_text()
    direct = tmp_path / "direct"
    p = mpirun(2, ["drivers/elliptic.py", "--set", f'run.output_dir="{direct}"'])
    assert p.returncode == 0, p.stderr
    with h5py.File(out / "elliptic.h5", "r") as a, h5py.File(direct / "elliptic.h5", "r") as b:
        Ua, Ub = np.array(a["nodal/U"]), np.array(b["nodal/U"])
        assert Ua.shape == (33, 33) and Ua.max() > 0.01
        assert Ua.tobytes() == Ub.tobytes()
        assert np.array(a["cell/A_H_00"]).tobytes() == np.array(b["cell/A_H_00"]).tobytes()
    s = json.loads((out / "summary.json").read_text())
    assert s["cell_problems_solved_this_run"] == 4096


def superparam_state(out) -> bytes:
    """The coarse temperature of every column at the end, its heat content and the boxes'
    sub-step count (JSON floats round-trip exactly)."""
    s = json.loads((out / "summary.json").read_text())
    return json.dumps([s["profiles"]["column_T"], s["heat_content"], s["micro_substeps"], s["steps"]]).encode()


def convection_state(out) -> bytes:
    """The box's diagnostics series (every sample of Nu, Vrms, KE...) and its last snapshot."""
    s = json.loads((out / "summary.json").read_text())
    last = sorted((out / "snapshots").glob("convection_*.h5"))[-1]
    with h5py.File(last, "r") as f:
        fields = b"".join(f[name][()].tobytes() for name in sorted(f))
    return json.dumps([s["series"], s["time"], s["sub_steps"]]).encode() + fields


def couplers_state(out) -> bytes:
    """The macro state after every outer step."""
    with h5py.File(out / "couplers.h5", "r") as f:
        return f["U"][()].tobytes()


#: driver -> (the options of the short run, its final state)
SHORT = {
    "couplers": (["--set", "output.plots=false"], couplers_state),
    "convection": (["--set", "time.t_end=0.05", "--set", "output.plots=false"], convection_state),
    "superparam": (["--set", "macro.t_end=0.004", "--set", "output.average_from=0", "--set", "output.plots=false"],
                   superparam_state),
}


@pytest.mark.parametrize("app", sorted(SHORT))
def test_convection_and_superparam_jobs_match_a_direct_run(tmp_path, app):
    """sbatch slurm/convection.sbatch (one task), slurm/superparam.sbatch and
    slurm/couplers.sbatch (two) with the
    driver's default config, shortened, complete and give bitwise the final state of the
    same driver and options under a plain ``mpirun -n 2``."""
    options, final_state = SHORT[app]
    out = tmp_path / "slurm"
    log = tmp_path / "job.out"
    job = sbatch([f"--output={log}", f"slurm/{app}.sbatch", *options], OUT=str(out))
    assert wait_final(job, timeout=300) == ["COMPLETED"], log.read_text()
    assert f"hmmpar_job: {app}, config (driver default)" in log.read_text()
    direct = tmp_path / "direct"
    p = mpirun(2, [f"drivers/{app}.py", *options, "--set", f'run.output_dir="{direct}"'])
    assert p.returncode == 0, p.stderr
    assert final_state(out) == final_state(direct)
    end = {"convection": 0.05, "superparam": 0.004, "couplers": 0.048}[app]
    assert json.loads((out / "summary.json").read_text())["time"] == pytest.approx(end, rel=1e-12)


OU = ["--set", "macro.t_end=0.8", "--set", "checkpoint.every_steps=1", "--set", "checkpoint.keep=3"]
SSA = ["--set", "ensemble.trajectories=200", "--set", "checkpoint.every_steps=1", "--set", "checkpoint.keep=3"]
GAS = ["--set", "checkpoint.every_steps=1", "--set", "checkpoint.keep=3", "--set", "output.plots=false"]
# the demo with the short steps and narrow free-slip columns it had when these timings were set
SUPERPARAM = ["--set", "macro.lx=8.0", "--set", "macro.dt=2e-4", "--set", "model.walls=free-slip",
              "--set", "output.average_from=0", "--set", "macro.t_end=0.012", "--set", "checkpoint.every_steps=1",
              "--set", "checkpoint.keep=3", "--set", "output.plots=false"]


def ssa_trajectories(out) -> bytes:
    with h5py.File(out / "ssa.h5", "r") as f:
        return f["trajectories"][()].tobytes()


def gas_state(out) -> bytes:
    with h5py.File(out / "gas_dynamics.h5", "r") as f:
        return b"".join(f[name][()].tobytes() for name in ("rho", "u", "p", "E"))


#: app -> (its config, the options of the test run, its final state)
JOBS = {
    "ou_averaging": ("drivers/configs/ou_averaging.toml", OU, lambda out: np.load(out / "X.npy").tobytes()),
    "ssa": ("drivers/configs/ssa_four_species.toml", SSA,
            ssa_trajectories),
    "gas_dynamics": ("drivers/configs/gas_dynamics.toml", GAS, gas_state),
    "superparam": ("drivers/configs/superparam.toml", SUPERPARAM, superparam_state),
}


@pytest.mark.parametrize("app,mode,next_ranks,launcher", [("ou_averaging", "requeue", 2, "mpirun"),
                                                           ("ssa", "resubmit", 3, "mpirun"),
                                                           ("ou_averaging", "requeue", 2, "srun"),
                                                           ("gas_dynamics", "resubmit", 3, "mpirun"),
                                                           ("superparam", "resubmit", 3, "mpirun")])
def test_signalled_job_checkpoints_continues_and_matches(tmp_path, app, mode, next_ranks, launcher):
    """The pre-timeout signal (``scancel --signal=USR1 --batch``) reaches hmmpar through the
    script's trap and mpirun; the job checkpoints, exits 75 and is requeued (same 2 ranks) or
    resubmitted (3 ranks); the continuation restarts from the checkpoint, and the final
    state equals an uninterrupted run's bit for bit: the OU averaging's X, the Nested SSA
    ensemble's trajectories, the gas-dynamics cell states (an adaptive CFL step: the
    continuation must reproduce every step size), the superparametrization's coarse columns
    (its boxes' states move from 2 to 3 ranks through the checkpoint). With ``LAUNCHER=srun`` the ranks are
    Slurm tasks (PMIx) and srun forwards the signal."""
    config, options, final_state = JOBS[app]
    out = tmp_path / "job"
    log = tmp_path / "job.out"
    job = sbatch([f"--output={log}", f"slurm/{app}.sbatch", config, *options],
                 OUT=str(out), CONTINUE=mode, NEXT_NTASKS=str(next_ranks), LAUNCHER=launcher)
    ckdir = out / "checkpoints"
    wait_for(lambda: len(list(ckdir.glob("ckpt_*.h5"))) >= 2, 120, "the job's first checkpoints")
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True, timeout=30)
    first = wait_final(job, timeout=300, release_requeued=False) if mode == "resubmit" else None
    if mode == "requeue":
        assert wait_final(job, timeout=300) == ["COMPLETED"], log.read_text()
        text = log.read_text()
        assert "requeueing job" in text and text.count(f"hmmpar_job: {app}") == 2
        assert "written on 2 rank(s), now 2" in text
    else:
        assert first == ["FAILED"]  # exit 75: this job is done, its continuation takes over
        text = log.read_text()
        assert "submitting the continuation" in text
        cont = [line.strip() for line in text.splitlines() if line.strip().isdigit()]
        assert len(cont) == 1, text
        assert wait_final(cont[0], timeout=300) == ["COMPLETED"], log.read_text()
        text = log.read_text()  # the continuation appended to the same file
        assert text.count(f"hmmpar_job: {app}") == 2 and "written on 2 rank(s), now 3" in text
    assert "got USR1" in text and "checkpointed at step" in text
    straight = tmp_path / "straight"
    p = mpirun(1, [f"drivers/{app}.py", config, *options, "--set", f'run.output_dir="{straight}"'])
    assert p.returncode == 0, p.stderr
    assert final_state(out) == final_state(straight)


def test_job_array_sweep_and_gather(tmp_path):
    """A 3-element job array over micro.eps (slurm/sweep.sbatch) completes, and
    ``hmmpar gather`` makes one table with a row per element, sorted by eps."""
    out = tmp_path / "sweep"
    eps = ["0.04", "0.01", "0.02"]
    job = sbatch(["--array=0-2", f"--output={tmp_path / 'el-%a.out'}", "slurm/sweep.sbatch", "elliptic",
                  "drivers/configs/elliptic.toml", "--set", "macro.cells=[8, 8]", "--set", "micro.n=8",
                  "--set", "output.plots=false"],
                 OUT=str(out), SWEEP_KEY="micro.eps", SWEEP_VALUES=" ".join(eps), NTASKS="1")
    assert wait_final(job, timeout=300) == ["COMPLETED"] * 3
    assert sorted(p.name for p in out.iterdir()) == ["0", "1", "2"]
    table = tmp_path / "sweep.csv"
    p = subprocess.run([sys.executable, "-m", "hmmpar.cli", "gather", str(out), "--param", "micro.eps",
                        "--column", "U_max", "--column", "cell_problems", "--csv", str(table),
                        "--plot", str(tmp_path / "sweep.png"), "--x", "micro.eps", "--y", "U_max"],
                       capture_output=True, text=True, cwd=ROOT, env=job_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(table.open()))
    assert [float(r["micro.eps"]) for r in rows] == sorted(map(float, eps))
    assert all(int(r["cell_problems"]) == 8 * 8 * 4 for r in rows)
    assert all(0.0 < float(r["U_max"]) < 0.1 for r in rows)
    assert "| run | micro.eps | U_max | cell_problems |" in p.stdout
    assert (tmp_path / "sweep.png").stat().st_size > 1000
