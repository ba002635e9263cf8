"""Command line: ``hmmpar run | validate | ckpt info | gather | md state | apps``.

Everything after ``--`` goes to PETSc unchanged (``-ksp_type cg -pc_type gamg``).
Errors are one line on stderr, printed once, with the documented exit codes
(:mod:`hmmpar.core.errors`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hmmpar import __version__
from hmmpar.core.errors import ConfigError, abort_on_error


class _Parser(argparse.ArgumentParser):
    """argparse that raises ConfigError (printed once, exit 2) instead of printing per rank."""

    def error(self, message: str):  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hmmpar", description="MPI-parallel Heterogeneous Multiscale Method")
    parser.add_argument("--version", action="version", version=f"hmmpar {__version__}")
    parser.add_argument("--debug", action="store_true", help="print tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run an application from a TOML config")
    run.add_argument("config", help="TOML config file")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a config value (repeatable)")
    run.add_argument("--restart", metavar="latest|auto|PATH",
                     help="continue from the newest complete checkpoint (auto: if there is one, "
                          "else start fresh), or from PATH")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--no-user-code", dest="no_user_code", action="store_true",
                     help="refuse a config that names user code (coefficient.function): exit 2")

    val = sub.add_parser("validate", help="check a config without running it")
    val.add_argument("config")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    val.add_argument("--print", dest="show", action="store_true", help="print the complete config")
    val.add_argument("--no-user-code", dest="no_user_code", action="store_true",
                     help="refuse a config that names user code (coefficient.function): exit 2")

    ck = sub.add_parser("ckpt", help="checkpoint tools")
    cksub = ck.add_subparsers(dest="ckpt_command", required=True, parser_class=_Parser)
    info = cksub.add_parser("info", help="describe a checkpoint file")
    info.add_argument("path")

    ga = sub.add_parser("gather", help="one table (CSV, Markdown, plot) from the summary.json of many runs")
    ga.add_argument("paths", nargs="+", help="run directories, or directories to search for summary.json")
    ga.add_argument("--param", action="append", default=[], metavar="SECTION.KEY",
                    help="config key to add as a column (from run_config.toml); the first sorts the rows")
    ga.add_argument("--column", action="append", default=[], metavar="KEY",
                    help="summary value to show (dotted, e.g. error_vs_exact.l2); default all")
    ga.add_argument("--csv", metavar="PATH", help="write the table as CSV")
    ga.add_argument("--plot", metavar="PATH", help="PNG of the --y columns against --x")
    ga.add_argument("--x", metavar="KEY")
    ga.add_argument("--y", action="append", default=[], metavar="KEY")

    md = sub.add_parser("md", help="molecular-dynamics tools")
    mdsub = md.add_subparsers(dest="md_command", required=True, parser_class=_Parser)
    st = mdsub.add_parser("state", help="equation of state of one (density, temperature or energy) point by NVE MD",
                          description="Equilibrate a periodic box by velocity rescaling, then sample it in NVE and "
                                      "print pressure, energies and temperature with their standard errors "
                                      "(reduced Lennard-Jones units).")
    st.add_argument("--rho", type=float, required=True, help="number density")
    target = st.add_mutually_exclusive_group(required=True)
    target.add_argument("--temperature", type=float, help="target temperature (velocity rescaling)")
    target.add_argument("--energy", type=float, help="target internal energy per atom")
    st.add_argument("--potential", choices=["lj", "wca", "none"], default="lj")
    st.add_argument("--cutoff", type=float, help="LJ cutoff radius (default 2.5)")
    st.add_argument("--shift", action="store_true", help="shift the LJ energy to zero at the cutoff")
    st.add_argument("--tail-correction", dest="tail_correction", action="store_true",
                    help="add the long-range corrections to energy and pressure")
    st.add_argument("--atoms", type=int, default=500, help="atoms in the box (default 500; fcc start if 4 n^3)")
    st.add_argument("--equilibrate", type=float, default=5.0, help="equilibration time (default 5)")
    st.add_argument("--time", type=float, default=20.0, help="sampling time (default 20)")
    st.add_argument("--dt", type=float, default=0.005, help="time step (default 0.005)")
    st.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    st.add_argument("--json", action="store_true", help="print the result as JSON")

    sub.add_parser("apps", help="list the applications")
    return parser


def main(argv: list[str] | None = None) -> int:
    from hmmpar.core.checkpoint import STOP_SIGNALS
    STOP_SIGNALS.install()  # first: a SLURM signal during start-up must not kill a rank
    argv = list(sys.argv[1:] if argv is None else argv)
    petsc_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, petsc_args = argv[:i], argv[i + 1:]
    import petsc4py
    petsc4py.init(["hmmpar"] + petsc_args)
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    with abort_on_error(comm, debug="--debug" in argv):
        args = build_parser().parse_args(argv)
        return _dispatch(args, comm)
    return 1  # pragma: no cover - abort_on_error always exits on error


def _dispatch(args, comm) -> int:
    from hmmpar.core.config import load_config
    from hmmpar.core.log import RankLog

    log = RankLog(comm, quiet=getattr(args, "quiet", False))
    if args.command == "apps":
        from hmmpar.apps import APPS, app_class
        for name in sorted(APPS):
            doc = (app_class(name).__doc__ or "").strip().splitlines()[0]
            log.info(f"{name:<16} {doc}")
        return 0
    if args.command == "gather":
        from hmmpar.gather import main as gather_main
        table = None
        problem = None
        if comm.rank == 0:
            try:
                table = gather_main(args)
            except ConfigError as exc:
                problem = str(exc)
        table, problem = comm.bcast((table, problem), root=0)
        if problem:
            raise ConfigError(problem)
        log.info(table)
        return 0
    if args.command == "md":
        from hmmpar.core.errors import HmmparError
        text = problem = None
        if comm.rank == 0:  # one box, computed by rank 0
            try:
                text = _md_state(args)
            except HmmparError as exc:
                problem = exc
        text, problem = comm.bcast((text, problem), root=0)
        if problem is not None:
            raise problem
        log.info(text)
        return 0
    if args.command == "validate":
        from hmmpar.core.preflight import prepare
        cfg = load_config(args.config, args.overrides, allow_user_code=not args.no_user_code)
        prepare(cfg, comm)  # the checks `run` makes before touching the disk (input files too), and nothing more
        log.info(cfg.dumps() if args.show else f"{args.config}: ok (app {cfg['run.app']})")
        return 0
    if args.command == "ckpt":
        from hmmpar.core.checkpoint import describe
        from hmmpar.core.errors import CheckpointError
        text = problem = None
        if comm.rank == 0:
            try:  # the data are verified against their checksums: a mismatch is exit 2
                text, problem = describe(args.path)
            except CheckpointError as exc:
                problem = str(exc)
        text, problem = comm.bcast((text, problem), root=0)
        if text:
            log.info(text)
        if problem:
            raise CheckpointError(problem)
        return 0
    if args.command == "run":
        from hmmpar.core.runner import run
        cfg = load_config(args.config, args.overrides, allow_user_code=not args.no_user_code)
        run(cfg, comm, restart=args.restart, log=log)
        return 0
    raise ConfigError(f"unknown command {args.command}")


def _md_state(args) -> str:
    """``hmmpar md state``: the text (or JSON) to print."""
    import json

    from hmmpar.core.rng import task_rng
    from hmmpar.micro.md.box import state_point
    from hmmpar.micro.md.potentials import make_potential

    import math

    if args.seed < 0:
        raise ConfigError(f"--seed: must be >= 0, got {args.seed}")
    if args.atoms < 2:
        raise ConfigError(f"--atoms: must be >= 2, got {args.atoms}")
    for flag, value, low in (("--dt", args.dt, 0.0), ("--time", args.time, 0.0)):
        if not (math.isfinite(value) and value > low):
            raise ConfigError(f"{flag}: must be a finite number > 0, got {value}")
    if not (math.isfinite(args.equilibrate) and args.equilibrate >= 0):
        raise ConfigError(f"--equilibrate: must be a finite number >= 0, got {args.equilibrate}")
    potential = make_potential(args.potential, args.cutoff, shift=args.shift, tail_correction=args.tail_correction)
    r = state_point(args.rho, potential, args.atoms, task_rng(args.seed, 0, 0), temperature=args.temperature,
                    energy=args.energy, dt=args.dt, t_equilibrate=args.equilibrate, t_sample=args.time)
    if args.json:
        out = {"input": {"rho": args.rho, "temperature": args.temperature, "energy": args.energy,
                         "potential": args.potential, "cutoff": potential.cutoff, "shift": potential.shift,
                         "tail_correction": potential.tail_correction, "atoms": args.atoms,
                         "equilibrate": args.equilibrate, "time": args.time, "dt": args.dt, "seed": args.seed}}
        out.update(r.as_dict())
        return json.dumps(out)
    rows = [("pressure", r.pressure, r.pressure_err),
            ("potential energy per atom", r.potential_energy, r.potential_energy_err),
            ("total energy per atom", r.total_energy, r.total_energy_err),
            ("temperature", r.temperature, r.temperature_err)]
    lines = [f"md state: {potential.describe()}, {r.n_atoms} atoms at density {r.density:g}, "
             f"equilibrate {args.equilibrate:g}, sample {args.time:g} ({r.n_samples} samples), seed {args.seed}"]
    lines += [f"  {name:<27} {value:>12.6f} +- {err:.6f}" for name, value, err in rows]
    phase = "two-phase (demixed box)" if r.two_phase else "homogeneous"
    lines.append(f"  {'S(k_min)':<27} {r.structure_factor_kmin:>12.4g}    {phase}")
    if not r.converged:
        lines.append("  (error bars not converged: sample longer)")
    lines.append(f"  {'atom-steps per second':<27} {r.atom_steps_per_second:>12.4g}    "
                 f"({r.atom_steps} atom-steps in {r.seconds:.2f} s)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())


def driver_main(default_config: str | Path, argv: list[str] | None = None) -> int:
    """Entry point of a driver script: ``hmmpar run`` with ``default_config`` unless the
    first argument names another config (``drivers/*.py [CONFIG] [run options]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        args = [str(default_config)] + args
    return main(["run"] + args)
