"""Every command a user can copy from README.md and docs/*.md runs as written.

What counts as a command is the rule in ``doc_commands.py`` (fenced sh/bash/shell/console
lines; lines of untagged/text fences and inline code spans that start with a program and
have an argument). Every distinct command text is in exactly one of three tables:

- ``RUN``: run as written with ``bash -c`` in a scratch copy of the repository root (symlinks
  to the repository's entries, ``drivers/`` copied, no ``runs/``), so that ``runs/...`` and
  every other relative output lands in the scratch directory. ``Run.args`` (``--set``s that
  shrink the run) are inserted before a ``--`` or appended: the command is unchanged, the run
  small. Commands with the same ``Run.group`` run in table order in one scratch directory (a
  run, then its restart). The exit code, the documented output files, documented stdout and
  summary values are asserted.
- ``MAKE``: ``make TARGET``, checked with ``make -n TARGET``: it must print the commands the
  docs say the target runs (those are in ``RUN`` or ``SKIP`` themselves).
- ``SKIP``: not run, with the reason.

The test fails, naming file:line, when a command in the docs is in no table, and when a table
entry no longer appears in the docs. Adding a command is one line in one table. mpirun
commands run at the ranks written; one with more than 2 ranks must say ``--oversubscribe``
(the docs' machine has 2 cores). Runs in the 1-rank pass only (it launches its own mpirun).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import hmmpar

from conftest import ROOT, mpi_env
from doc_commands import Command, all_commands, fenced_block, mpirun_ranks


@dataclass(frozen=True)
class Run:
    """How a documented command is run: shrinking arguments and what must hold afterwards."""

    args: tuple[str, ...] = ()
    group: str = ""
    code: int = 0
    outputs: tuple[str, ...] = ()
    stdout: str = ""
    summary: dict = field(default_factory=dict)  # {"runs/x/summary.json": {"key": value}}
    files: dict = field(default_factory=dict)  # {"name": ("docs/page.md", "marker")}: block written first
    timeout: float = 180.0
    venv: bool = False  # .venv/bin on PATH, for a bare `hmmpar` ("the console script in .venv/bin/", README)


def sets(*settings: str) -> tuple[str, ...]:
    return tuple(arg for setting in settings for arg in ("--set", setting))


ELLIPTIC = sets("macro.cells=[4,4]", "micro.n=8", "micro.eps=0.01", "run.progress_interval=0")
GMSH = sets("micro.n=4", "micro.batches=1", "run.progress_interval=0")
OU = sets("model.points=16", "micro.samples=100", "macro.dt=0.1", "run.progress_interval=0")
SSA = sets("ensemble.trajectories=4", "ensemble.t_end=0.2", "ensemble.samples=2", "run.progress_interval=0")
GAS = sets("macro.cells=[50]", "run.progress_interval=0")
CONVECTION = sets("time.t_end=0.05", "run.progress_interval=0")
GAS_2D = sets("macro.cells=[16,16]", "macro.t_end=0.1", "run.progress_interval=0")


def outputs(run_dir: str, *names: str) -> tuple[str, ...]:
    """The files a run writes into ``run_dir`` as its docs page lists them."""
    return tuple(f"{run_dir}/{name}" for name in ("summary.json", "run_config.toml", "timing.json", *names))


ELLIPTIC_FILES = ("elliptic.png", "elliptic.h5", "elliptic.xdmf")  # README.md, docs/elliptic.md
OU_FILES = ("ou_averaging.h5", "X.npy", "ou_averaging.png")  # docs/ou_averaging.md
SSA_FILES = ("ssa.h5", "ssa.png")  # docs/ssa.md
CONVECTION_FILES = ("convection.png", "convection.xdmf", "snapshots/convection_00000.h5")  # convection.md
GAS_FILES = ("gas_dynamics.h5", "gas_dynamics.xdmf", "gas_dynamics.png", "snapshots/gas_dynamics_00000.h5")  # gas_dynamics.md
H5PY_MPI = 'print(h5py.get_config().mpi)"'
MD_STATE = ".venv/bin/hmmpar md state --rho 0.5 --temperature 2.0 --shift --atoms 256 --equilibrate 2 --time 10"

RUN: dict[str, Run] = {
    "mpirun -n 2 .venv/bin/python drivers/couplers.py drivers/configs/couplers_bratu.toml":
        Run(sets("continuation.points=4", "run.progress_interval=0"),
            outputs=outputs("runs/couplers_bratu", "couplers.h5", "couplers.png"),
            summary={"runs/couplers_bratu/summary.json": {"method": "continuation", "branch_points": 4}}),
    "mpirun -n 2 .venv/bin/python drivers/couplers.py":
        Run(sets("run.progress_interval=0"),
            outputs=outputs("runs/couplers", "couplers.h5", "couplers.png", "checkpoints/ckpt_00000012.h5"),
            summary={"runs/couplers/summary.json": {"time": 0.048, "method": "patch_dynamics"}}),
    "mpirun -n 2 .venv/bin/python drivers/superparam.py":
        Run(sets("macro.t_end=0.002", "output.average_from=0.001", "run.progress_interval=0"),
            outputs=outputs("runs/superparam", "superparam.png", "superparam.xdmf", "snapshots/superparam_00000.h5"),
            summary={"runs/superparam/summary.json": {"time": 0.002, "superparam": True}}),
    "mpirun -n 2 .venv/bin/python drivers/convection.py":
        Run(CONVECTION, outputs=outputs("runs/convection", *CONVECTION_FILES),
            summary={"runs/convection/summary.json": {"time": 0.05, "ra": 10000.0}}),
    "mpirun --oversubscribe -n 2 .venv/bin/python -m hmmpar.cli run drivers/configs/elliptic.toml":
        Run(ELLIPTIC, outputs=outputs("runs/elliptic", *ELLIPTIC_FILES, "checkpoints/ckpt_00000003.h5",
                                        "checkpoints/ckpt_00000004.h5")),
    "mpirun --oversubscribe -n 4 .venv/bin/hmmpar run drivers/configs/ou_averaging.toml --set run.output_dir=runs/p4":
        Run(OU, group="p4", outputs=outputs("runs/p4", *OU_FILES, "checkpoints/ckpt_00000010.h5"),
            summary={"runs/p4/summary.json": {"time": 1.0}}),
    "mpirun --oversubscribe -n 4 .venv/bin/hmmpar run drivers/configs/ou_averaging.toml --restart latest "
    "--set run.output_dir=runs/p4 --set macro.t_end=2.0":
        Run(OU, group="p4", stdout="restarted from", summary={"runs/p4/summary.json": {"time": 2.0, "steps": 20}}),
    "mpirun -n 2 .venv/bin/python drivers/ou_averaging.py":
        Run(OU, group="ou", outputs=outputs("runs/ou_averaging", *OU_FILES),
            summary={"runs/ou_averaging/summary.json": {"time": 1.0}}),
    ".venv/bin/hmmpar run drivers/configs/ou_averaging.toml --restart latest --set macro.t_end=2.0":
        Run(OU, group="ou", stdout="restarted from", summary={"runs/ou_averaging/summary.json": {"time": 2.0}}),
    "mpirun -n 2 .venv/bin/python drivers/elliptic.py -- -macro_ksp_monitor":
        Run(ELLIPTIC + sets("micro.batches=1"), stdout="KSP Residual norm",
            outputs=outputs("runs/elliptic", *ELLIPTIC_FILES)),
    "mpirun -n 2 .venv/bin/python drivers/elliptic.py drivers/configs/elliptic_gmsh.toml":
        Run(GMSH, outputs=outputs("runs/elliptic_gmsh", *ELLIPTIC_FILES)),
    "mpirun -n 2 .venv/bin/python drivers/ssa.py":
        Run(SSA, timeout=300, outputs=outputs("runs/ssa_heat_shock", *SSA_FILES)),
    "mpirun -n 2 .venv/bin/python drivers/ssa.py drivers/configs/ssa_four_species.toml":
        Run(SSA, timeout=300, outputs=outputs("runs/ssa_four_species", *SSA_FILES)),
    "mpirun -n 2 .venv/bin/python drivers/gas_dynamics.py":
        Run(GAS, group="gas", outputs=outputs("runs/gas_dynamics", *GAS_FILES, "checkpoints/ckpt_00000020.h5"),
            summary={"runs/gas_dynamics/summary.json": {"time": 0.2, "problem": "sod"}}),
    ".venv/bin/hmmpar run drivers/configs/gas_dynamics.toml --restart latest --set macro.t_end=0.3":
        Run(GAS, group="gas", stdout="restarted from", summary={"runs/gas_dynamics/summary.json": {"time": 0.3}}),
    "mpirun -n 2 .venv/bin/python drivers/gas_dynamics.py --set macro.scheme=kinetic --set run.output_dir=runs/gas_kinetic":
        Run(GAS, outputs=outputs("runs/gas_kinetic", *GAS_FILES),
            summary={"runs/gas_kinetic/summary.json": {"scheme": "kinetic", "time": 0.2}}),
    "mpirun -n 2 .venv/bin/python drivers/gas_dynamics.py drivers/configs/gas_dynamics_2d.toml":
        Run(GAS_2D, outputs=outputs("runs/gas_dynamics_2d", *GAS_FILES),
            summary={"runs/gas_dynamics_2d/summary.json": {"dim": 2, "time": 0.1}}),
    ".venv/bin/python couplers_stability.py":
        Run(files={"couplers_stability.py": ("docs/couplers.md", "rho = np.linspace(-1.2, 1.2, 2401)")},
            stdout="k = 1, M = 4.9: 2 stable interval(s) on the real axis", outputs=("couplers_stability.png",)),
    ".venv/bin/python couplers_example.py":
        Run(files={"couplers_example.py": ("docs/couplers.md", "micro = SlowFastODE(")},
            stdout="X(1) = 1.153811 with 8000 micro steps"),
    "mpirun --oversubscribe -n 3 .venv/bin/python example.py":
        Run(files={"example.py": ("docs/farm.md", "farm = Farm(comm")}),
    '.venv/bin/python -c "import hmmpar, h5py; ' + H5PY_MPI: Run(stdout="True"),
    'H5PY_ALWAYS_USE_MPI=1 .venv/bin/python -c "import h5py; ' + H5PY_MPI: Run(stdout="True"),
    ".venv/bin/python -m pip list | grep -i h5py": Run(stdout="h5py"),
    "hmmpar apps": Run(venv=True, stdout="ou_averaging "),
    "hmmpar --version": Run(venv=True, stdout=f"hmmpar {hmmpar.__version__}"),
    MD_STATE: Run(stdout="md state: lj (r_c = 2.5, shifted), 256 atoms at density 0.5"),  # docs/md.md, ~2 s
}

BENCH = [f".venv/bin/python benchmarks/{name}.py"
         for name in ("farm", "elliptic", "md_noise", "ssa_engines", "ssa_nested", "scaling", "superparam_scaling", "md",
                      "gas_dynamics", "couplers")]
TEST = [".venv/bin/python -m pytest -q -p no:cacheprovider --with-mpi tests",
        *(f"mpirun --oversubscribe -n {n} .venv/bin/python -m pytest -q -p no:cacheprovider --with-mpi tests/mpi"
          for n in (2, 3))]
MAKE: dict[str, list[str]] = {
    "make demo": ["mpirun --oversubscribe -n 2 .venv/bin/python -m hmmpar.cli run drivers/configs/elliptic.toml"],
    "make test": TEST,
    "make bench": BENCH,
}

SUITE = "the test suite itself (would recurse); run by make test"
INSTALL = "installs software; the Makefile's setup does it (docs/install.md)"
CLUSTER = "cluster installation (module/spack/conda), not available here; docs/install.md says it is not tested"
SLURM = "needs Slurm; the sbatch scripts run in a real local Slurm in tests/slurm/test_slurm_jobs.py"
FRAGMENT = "names a command or option in prose, not a complete command"
SYNOPSIS = "usage synopsis with placeholders (CONFIG, PATH, ...)"
BENCHMARK = "a benchmark (minutes); make bench runs them"
SKIP: dict[str, str] = {
    "python tests/validation/micro/md/test_md_vs_eos.py":
        "prints the table of docs/md_validation.md from the runs tests/validation/micro/md/test_md_vs_eos.py makes",
    "mpirun -n 2 .venv/bin/python drivers/superparam.py drivers/configs/superparam_imbalanced.toml":
        "15-40 s depending on load; the config runs shrunk (25 steps) on 1 and 2 ranks in "
        "tests/system/test_superparam_app.py::test_imbalanced_columns_are_rebalanced_without_changing_the_trajectory",
    "mpirun -n 2 .venv/bin/python drivers/gas_dynamics.py drivers/configs/gas_dynamics_md.toml":
        "about a minute; the config runs shrunk in tests/validation/test_gas_dynamics_md.py",
    "mpirun -n 2 .venv/bin/python drivers/gas_dynamics.py drivers/configs/gas_dynamics_lj.toml":
        "about 10 minutes; the config runs shrunk in tests/validation/test_gas_dynamics_md.py",
    "make demo DEMO_CONFIG=path/to.toml": SYNOPSIS,
    "make setup": INSTALL,
    "make bench-dedalus": "benchmark that installs Dedalus 3 from PyPI and compiles it (minutes)",
    "apt-get install libfftw3-dev libfftw3-mpi-dev libopenmpi-dev python3-dev pkg-config": INSTALL,
    'pip install "dedalus>=3,<4"': INSTALL,
    ".venv/bin/python benchmarks/convection.py": BENCHMARK,
    ".venv/bin/python benchmarks/convection.py --repeats 2": BENCHMARK,
    "make bench-gillespy2": "benchmark that installs GillesPy2 from PyPI and compiles with g++ (minutes)",
    TEST[0]: SUITE, TEST[1]: SUITE, TEST[2]: SUITE,
    ".venv/bin/python -m pytest -q -p no:cacheprovider --with-mpi tests/faults": SUITE,
    "pytest -s": FRAGMENT,
    "make -n": FRAGMENT,
    "bash -c": FRAGMENT,
    "pytest pytest-mpi": FRAGMENT,
    "apt-get install -y make": INSTALL,
    "apt-get update": INSTALL,
    "apt-get install -y --no-install-recommends <missing>": INSTALL,
    "pip install --no-deps -e .": INSTALL,
    "pip install --no-deps": FRAGMENT,
    "pip install pytest pytest-mpi": INSTALL,
    "pip install python-libsbml": INSTALL,
    "pip install gillespy2": INSTALL,
    ".venv/bin/python -m pip install --no-deps -e .": INSTALL,
    ".venv/bin/python -m pip install pytest pytest-mpi": INSTALL,
    ".venv/bin/python -m pip uninstall h5py": "uninstalls a package (the remedy for a pip h5py)",
    'python -c "import h5py; ' + H5PY_MPI: "the cluster check in an activated venv; on Debian it prints False "
                                            "outside mpirun, as the page says (the Debian checks are run)",
    "python -m venv": FRAGMENT,
    "python -m hmmpar.cli": FRAGMENT,
    "module load python/3.11 openmpi hdf5-parallel petsc": CLUSTER,
    "module load ...": CLUSTER,
    "python -m venv --system-site-packages ~/venvs/hmmpar && . ~/venvs/hmmpar/bin/activate": CLUSTER,
    "pip install mpi4py numpy scipy numba matplotlib": CLUSTER,
    "CC=mpicc HDF5_MPI=ON HDF5_DIR=$HDF5_DIR pip install --no-binary=h5py h5py": CLUSTER,
    "PETSC_DIR=$PETSC_DIR PETSC_ARCH=$PETSC_ARCH pip install petsc4py": CLUSTER,
    "spack install py-mpi4py py-h5py+mpi py-petsc4py py-numba py-scipy py-matplotlib": CLUSTER,
    "spack load py-mpi4py py-h5py py-petsc4py py-numba py-scipy py-matplotlib": CLUSTER,
    'conda create -n hmmpar -c conda-forge python=3.11 petsc4py mpi4py "h5py=*=mpi*" numba scipy matplotlib': CLUSTER,
    "conda activate hmmpar": CLUSTER,
    "gmsh -2 -format msh22 square.geo": "needs Gmsh, not a dependency (the mesh it makes is in drivers/configs/meshes)",
    ".venv/bin/python benchmarks/scaling.py": BENCHMARK,
    ".venv/bin/python benchmarks/scaling.py --quick": BENCHMARK,
    ".venv/bin/python benchmarks/superparam_scaling.py": BENCHMARK,
    ".venv/bin/python benchmarks/superparam_scaling.py --quick": BENCHMARK,
    ".venv/bin/python benchmarks/superparam.py": BENCHMARK,
    ".venv/bin/python benchmarks/superparam.py --quick": BENCHMARK,
    ".venv/bin/python benchmarks/superparam.py --amplitude 0.2": BENCHMARK,
    ".venv/bin/python benchmarks/superparam.py --walls free-slip --lx 16 --dt 2e-4": BENCHMARK,
    ".venv/bin/python benchmarks/couplers.py": BENCHMARK,
    ".venv/bin/python benchmarks/couplers.py --quick": BENCHMARK,
    ".venv/bin/python benchmarks/ssa_engines.py --repeats 7": BENCHMARK,
    ".venv/bin/python benchmarks/ssa_gillespy2.py --repeats 5": BENCHMARK,
    ".venv/bin/python benchmarks/ssa_nested.py": BENCHMARK,
    ".venv/bin/python benchmarks/md_noise.py": BENCHMARK,
    ".venv/bin/python benchmarks/md_noise.py --quick": BENCHMARK,
    "hmmpar md state": FRAGMENT,
    "hmmpar md state --rho RHO (--temperature T | --energy E) [--potential lj|wca|none] [--cutoff RC] [--shift] "
    "[--tail-correction] [--atoms N] [--equilibrate T] [--time T] [--dt DT] [--seed S] [--json]": SYNOPSIS,
    "mpirun --oversubscribe": FRAGMENT,
    "mpirun -n 2": FRAGMENT,
    "mpirun --oversubscribe -n 64": FRAGMENT,
    "srun --mpi=$SRUN_MPI": FRAGMENT,
    "srun --mpi=list": SLURM,
    "scancel --signal=USR1 --batch JOBID": SLURM,
    "sbatch --dependency=afterany:$SLURM_JOB_ID": FRAGMENT,
    "sbatch slurm/elliptic.sbatch": SLURM,
    "sbatch slurm/couplers.sbatch": SLURM,
    "sbatch slurm/gas_dynamics.sbatch": SLURM,
    "sbatch --ntasks=64 --time=04:00:00 slurm/elliptic.sbatch my.toml --set micro.n=48": SLURM,
    "OUT=runs/big NTASKS=64 LAUNCHER=srun sbatch --ntasks=64 slurm/elliptic.sbatch my.toml": SLURM,
    'SWEEP_KEY=micro.eps SWEEP_VALUES="0.04 0.02 0.01" sbatch --array=0-2 slurm/sweep.sbatch elliptic '
    'drivers/configs/elliptic.toml --set macro.cells=[16,16]': SLURM,
    ".venv/bin/hmmpar gather runs/elliptic-<ARRAYJOBID> --param micro.eps --column error_vs_exact.l2 --csv sweep.csv "
    "--plot sweep.png --x micro.eps --y error_vs_exact.l2":
        "runs of a Slurm job array (<ARRAYJOBID>): tests/slurm/test_slurm_jobs.py::test_job_array_sweep_and_gather",
    "hmmpar run": FRAGMENT,
    "hmmpar validate": FRAGMENT,
    "hmmpar gather": FRAGMENT,
    "hmmpar ckpt info": FRAGMENT,
    "hmmpar run ... --restart auto": FRAGMENT,
    "hmmpar gather DIR...": SYNOPSIS,
    "hmmpar [--debug] run CONFIG [--set section.key=value ...] [--restart latest|auto|PATH] [--quiet] "
    "[--no-user-code] [-- PETSc options]":
        SYNOPSIS,
    "hmmpar validate CONFIG [--set section.key=value ...] [--print] [--no-user-code]": SYNOPSIS,
    "hmmpar validate --print": FRAGMENT,
    "hmmpar run --no-user-code": FRAGMENT,
    "hmmpar validate --no-user-code": FRAGMENT,
    "hmmpar run runs/x/run_config.toml --restart latest": SYNOPSIS,
    "kill -USR1 <pid of mpirun>": "placeholder pid: tests/faults/test_signals.py sends USR1 to mpirun",
    "scancel --signal=USR1 --batch JOB": SLURM,
    "scancel --signal=TERM --batch JOB": SLURM,
    "scancel JOB": SLURM,
    "scancel --signal=USR1 JOB": SLURM,
    "scancel --signal=USR1 JOBID": SLURM,
    "hmmpar validate CONFIG [--set ...] --print": SYNOPSIS,
    "hmmpar validate CONFIG --print": SYNOPSIS,
    "hmmpar ckpt info PATH": SYNOPSIS,
    "hmmpar gather RUN_DIR... [--param section.key ...] [--column KEY ...] [--csv PATH] [--plot PNG --x KEY --y KEY]":
        SYNOPSIS,
    "hmmpar run CONFIG --restart latest [--set ...]": SYNOPSIS,
    "hmmpar run CONFIG --restart auto [--set ...]": SYNOPSIS,
    "hmmpar run CONFIG --restart PATH [--set ...]": SYNOPSIS,
    "hmmpar run CONFIG --set macro.t_end=2.0 --set farm.mode=static --set run.output_dir=runs/x": SYNOPSIS,
}

DOC_COMMANDS: list[Command] = all_commands()
GROUPS: dict[str, list[str]] = {}
for _text, _run in RUN.items():
    GROUPS.setdefault(_run.group or _text, []).append(_text)


def test_every_command_in_the_docs_is_in_exactly_one_table():
    tables = {"RUN": RUN, "MAKE": MAKE, "SKIP": SKIP}
    problems = []
    for cmd in DOC_COMMANDS:
        found = [name for name, table in tables.items() if cmd.text in table]
        if len(found) != 1:
            where = "no table" if not found else "tables " + ", ".join(found)
            problems.append(f"{cmd.where}: command in {where} of tests/system/test_doc_commands.py: {cmd.text}")
    assert not problems, "\n".join(problems)


def test_every_table_entry_is_still_in_the_docs():
    written = {cmd.text for cmd in DOC_COMMANDS}
    stale = [f"{table_line(text)}: {name} entry: {text}"
             for name, table in (("RUN", RUN), ("MAKE", MAKE), ("SKIP", SKIP)) for text in table if text not in written]
    assert not stale, "table entries no longer in README.md or docs/*.md (remove or update them):\n" + "\n".join(stale)


def table_line(text: str) -> str:
    """file:line of the table entry for ``text`` in this file (its first 30 characters)."""
    here = Path(__file__)
    for number, line in enumerate(here.read_text().splitlines(), 1):
        if text[:30] in line:
            return f"{here.relative_to(ROOT)}:{number}"
    return str(here.relative_to(ROOT))


def test_mpirun_beyond_two_ranks_says_oversubscribe():
    """The docs' reference machine has 2 cores: more ranks need --oversubscribe as written."""
    bad = []
    for cmd in DOC_COMMANDS:
        try:
            argv = shlex.split(cmd.text)
        except ValueError:
            continue
        ranks = mpirun_ranks(argv)
        if ranks is not None and ranks > 2 and "--oversubscribe" not in argv:
            bad.append(f"{cmd.where}: {cmd.text}")
    assert not bad, "mpirun with more than 2 ranks and no --oversubscribe:\n" + "\n".join(bad)


def scratch_root(tmp: Path) -> Path:
    """A copy of the repository root to run commands in: symlinks, drivers/ copied, no runs/."""
    root = tmp / "repo"
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in ("runs", "drivers", ".git") or entry.name.startswith(".pytest"):
            continue
        (root / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "drivers", root / "drivers", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def with_args(text: str, args: tuple[str, ...]) -> str:
    """``text`` with ``args`` before its ``--`` (PETSc options) or at its end."""
    if not args:
        return text
    argv = shlex.split(text)
    at = argv.index("--") if "--" in argv else len(argv)
    return shlex.join(argv[:at] + list(args) + argv[at:])


def run_shell(command: str, cwd: Path, timeout: float, venv: bool = False) -> subprocess.CompletedProcess:
    """``bash -c command`` in its own session (with ``.venv/bin`` first on PATH if ``venv``);
    on timeout the whole session is killed."""
    env = mpi_env()
    if venv:
        env["PATH"] = f"{cwd / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s: {command}\n{err[-2000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def where(text: str) -> str:
    return ", ".join(c.where for c in DOC_COMMANDS if c.text == text) or "not in the docs"


@pytest.mark.parametrize("group", list(GROUPS))
def test_documented_command_runs(group, tmp_path):
    if int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
        pytest.skip("launches its own mpirun; runs in the 1-rank pass")
    root = scratch_root(tmp_path)
    for text in GROUPS[group]:
        spec = RUN[text]
        for name, (doc, marker) in spec.files.items():
            (root / name).write_text(fenced_block(doc, marker))
        p = run_shell(with_args(text, spec.args), root, spec.timeout, spec.venv)
        context = f"{where(text)}: {text}\nstdout:\n{p.stdout[-1500:]}\nstderr:\n{p.stderr[-1500:]}"
        assert p.returncode == spec.code, context
        assert spec.stdout in p.stdout, context
        missing = [name for name in spec.outputs if not (root / name).is_file()]
        assert not missing, f"missing outputs {missing}\n{context}"
        for name, values in spec.summary.items():
            summary = json.loads((root / name).read_text())
            assert {k: summary.get(k) for k in values} == values, context


@pytest.mark.parametrize("target", list(MAKE))
def test_make_target_runs_the_documented_commands(target, tmp_path):
    p = subprocess.run(["make", "-n", *target.split()[1:]], cwd=scratch_root(tmp_path), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    printed = [" ".join(line.split()) for line in p.stdout.splitlines()]
    missing = [cmd for cmd in MAKE[target] if cmd not in printed]
    assert not missing, f"{where(target)}: `{target}` does not run {missing}; make -n prints:\n{p.stdout}"
