"""Command line: ``hmmpar run | validate | ckpt info | gather | apps``.

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


if __name__ == "__main__":
    sys.exit(main())


def driver_main(default_config: str | Path, argv: list[str] | None = None) -> int:
    """Entry point of a driver script: ``hmmpar run`` with ``default_config`` unless the
    first argument names another config (``drivers/*.py [CONFIG] [run options]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        args = [str(default_config)] + args
    return main(["run"] + args)
