"""The HMM time loop shared by every application: farm, progress, checkpoints, report."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hmmpar.core.checkpoint import (STOP_SIGNALS, Checkpointer, checkpoint_run_id, estimate_size,
                                    format_bytes, list_checkpoints, new_run_id, open_checkpoint,
                                    resolve_restart, same_run)
from hmmpar.core.config import Config, load_config
from hmmpar.core.errors import CheckpointError, ConfigError, HmmparError, RequeueExit
from hmmpar.core.farm import Farm
from hmmpar.core.log import Progress, RankLog
from hmmpar.core.preflight import prepare
from hmmpar.core.rundir import directory_problem, lock_run_directories
from hmmpar.core.timing import FarmStats, Timers, format_report, gather_report, write_report
from hmmpar.io.inputs import check_restart, ledger_text


def check_output_dir(comm, directory: Path, what: str = "output directory") -> None:
    """Create ``directory`` and prove it writable, before any micro work (collective)."""
    problem = None
    if comm.rank == 0:
        probe = directory / ".hmmpar-write-test"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"x" * 4096)
            probe.unlink()
        except OSError as exc:
            problem = directory_problem(what, directory, exc)
            try:
                probe.unlink(missing_ok=True)  # a partial probe on a full disk
            except OSError:
                pass
    problem = comm.bcast(problem, root=0)
    if problem:
        raise ConfigError(problem)


def checkpoint_size(data: dict, config_text: str, ranks: int) -> int:
    """Estimated bytes of one checkpoint file holding ``data`` (``checkpoint_data()``)."""
    return estimate_size([data.get(g, {}) for g in ("fields", "instances", "tasks")], config_text, ranks)


def planned_checkpoints(cfg: Config, first: int, n_steps: int) -> int | None:
    """How many checkpoints the steps ``first .. n_steps`` will write (None: unbounded,
    i.e. by wall time); a SIGTERM/SIGUSR1 checkpoint counts as one."""
    if cfg["checkpoint.every_seconds"] > 0:
        return None
    every = cfg["checkpoint.every_steps"]
    # multiples of `every` in first+1 .. n_steps-1, counted without a loop over the steps
    n = (n_steps - 1) // every - first // every if every and n_steps - 1 > first else 0
    if cfg["checkpoint.at_end"] and first < n_steps:
        n += 1
    return max(1, n)


def check_checkpoint_space(comm, directory: Path, estimate: int, keep: int,
                           planned: int | None, *, statvfs=os.statvfs) -> None:
    """Refuse to start when the checkpoint file system cannot hold this run's checkpoints
    (collective; rank 0 decides). At the peak ``keep`` complete files plus the one being
    written exist; checkpoints already in ``directory`` (a restart) count as written."""
    problem = None
    if comm.rank == 0:
        existing = len(list_checkpoints(directory))
        new = keep + 1 - existing if planned is None else min(planned, keep + 1 - existing)
        new = max(1, new)
        try:
            st = statvfs(directory)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = None  # no free-space figure: the write probe already passed
        need = new * estimate
        if free is not None and free < need:
            problem = (f"checkpoint directory {directory} has {format_bytes(free)} free; this run's "
                       f"checkpoints need about {format_bytes(need)} ({new} file(s) of {format_bytes(estimate)}, "
                       f"checkpoint.keep = {keep}); free space, lower checkpoint.keep or set "
                       "checkpoint.directory")
    problem = comm.bcast(problem, root=0)
    if problem:
        raise CheckpointError(problem)


def retire_previous_checkpoints(comm, directory: Path) -> int:
    """A fresh run moves an earlier run's checkpoints to ``previous-run/`` (replacing what
    was there), so that ``--restart latest`` and the keep-K pruning only ever see this
    run's checkpoints. Nothing is deleted but the run before the previous one. Returns the
    number of files moved (collective); a directory where they cannot be moved (read-only)
    is a :class:`ConfigError` on every rank."""
    return _move_checkpoints(comm, directory, lambda: list_checkpoints(directory), "previous-run",
                             "the {n} checkpoint(s) of an earlier run", replace=True)


def set_aside_checkpoints(comm, directory: Path, run_id: str, step: int) -> int:
    """After a restart from step ``step`` of run ``run_id``: move the checkpoints in
    ``directory`` that are not on this run's line -- newer than ``step`` (skipped as
    corrupt by ``--restart latest``, or abandoned by ``--restart PATH`` of an older file) or
    of another run -- into ``set-aside/`` (never deleted), so that pruning and a later
    ``--restart latest`` see only this run's files. Returns the number moved (collective);
    a directory where they cannot be moved is a :class:`ConfigError` on every rank."""
    def stale() -> list[tuple[int, Path]]:
        out = []
        for s, p in list_checkpoints(directory):
            other = None if s > step else checkpoint_run_id(p)  # None (unreadable): left to pruning
            if s > step or (other is not None and not same_run(other, run_id)):
                out.append((s, p))
        return out

    return _move_checkpoints(comm, directory, stale, "set-aside", "{n} checkpoint(s) not of this run")


def _move_checkpoints(comm, directory: Path, pick, folder: str, what: str, *, replace: bool = False) -> int:
    """Rank 0 moves the checkpoints ``pick()`` lists into ``directory/folder`` (emptied
    first when ``replace``); the count is broadcast, and an OSError is one
    :class:`ConfigError` on every rank naming ``what`` (with ``{n}`` the count)."""
    moved, problem = 0, None
    if comm.rank == 0:
        files = pick()
        target = directory / folder
        if files:
            try:
                if replace and target.is_dir() and not target.is_symlink():
                    import shutil
                    shutil.rmtree(target)
                elif replace:
                    target.unlink(missing_ok=True)
                target.mkdir(exist_ok=True)
                for _, path in files:
                    os.replace(path, target / path.name)
                moved = len(files)
            except OSError as exc:
                problem = (directory_problem("checkpoint directory", directory, exc)
                           + f" (moving {what.format(n=len(files))} to {target})")
    moved, problem = comm.bcast((moved, problem), root=0)
    if problem:
        raise ConfigError(problem)
    return moved


def checkpoint_directory(cfg: Config) -> Path:
    return Path(cfg["checkpoint.directory"] or Path(cfg["run.output_dir"]) / "checkpoints")


def run(cfg: Config, comm, *, restart: str | None = None, log: RankLog | None = None) -> dict | None:
    """Run an application to its end; return the summary on rank 0.

    The output and checkpoint directories are locked for the run's life
    (:func:`~hmmpar.core.rundir.lock_run_directories`): a second run into either is refused
    with exit 2 before anything in them is touched. Raises :class:`RequeueExit` (exit 75)
    after checkpointing on SIGTERM/SIGUSR1.
    """
    log = log or RankLog(comm)
    wall0 = time.perf_counter()
    timers = Timers()
    app = prepare(cfg, comm, timers)  # the checks of `hmmpar validate`, before touching the disk
    with lock_run_directories(comm, [(Path(cfg["run.output_dir"]), "output directory"),
                                     (checkpoint_directory(cfg), "checkpoint directory")]):
        return _run(cfg, comm, app, timers, wall0, restart=restart, log=log)


def _run(cfg: Config, comm, app, timers: Timers, wall0: float, *, restart: str | None,
         log: RankLog) -> dict | None:
    """:func:`run` after :func:`~hmmpar.core.preflight.prepare`, its directories locked."""
    outdir = Path(cfg["run.output_dir"])
    stats = FarmStats()
    app.micro_stats = stats  # an instance pool built by initialize / load_checkpoint reports here
    app.log = log
    check_output_dir(comm, outdir)
    if comm.rank == 0:  # the resolved config, defaults filled in (read by `hmmpar gather`)
        (outdir / "run_config.toml").write_text(cfg.dumps())
    farm = Farm(comm, mode=cfg["farm.mode"], retry=cfg["farm.retry"], min_chunk=cfg["farm.min_chunk"],
                task_time_limit=cfg["farm.task_time_limit"], stats=stats)
    app.farm = farm  # an application that drives the farm itself (app.drives_farm) calls it from advance
    ck = Checkpointer(comm, checkpoint_directory(cfg), keep=cfg["checkpoint.keep"],
                      every_steps=cfg["checkpoint.every_steps"],
                      every_seconds=cfg["checkpoint.every_seconds"], signals=STOP_SIGNALS)
    # an unwritable or full checkpoint location is reported now, before a fresh run moves
    # an earlier run's checkpoints aside (which needs the directory writable) or any micro work
    check_output_dir(comm, ck.directory, "checkpoint directory")
    seed = cfg["run.seed"]
    verified: dict = {}
    with timers.phase("io"):
        path = resolve_restart(comm, restart, ck.directory, info=verified) if restart else None
    if path is not None:
        with timers.phase("io"), open_checkpoint(comm, path) as reader:
            _check_compatible(cfg, reader)
            app.load_checkpoint(reader)
        check = (f"; checksums of {format_bytes(verified['bytes'])} verified in {verified['seconds']:.2f} s"
                 if verified.get("blocks") else "")
        log.info(f"restarted from {path} (step {reader.step}, t = {reader.time:g}, "
                 f"written on {reader.ranks} rank(s), now {comm.size}{check})")
    else:
        moved = retire_previous_checkpoints(comm, ck.directory)
        if moved:
            log.warning(f"fresh run: moved {moved} checkpoint(s) of an earlier run to "
                        f"{ck.directory / 'previous-run'}")
        app.initialize()
    first = app.step
    if first > app.n_steps:
        raise CheckpointError(f"the checkpoint is at step {first} (t = {app.sim_time:g}), past the end "
                              f"of this run ({app.n_steps} steps); raise the final time to continue")
    ck.run_id = _run_identity(comm, ck, reader if path is not None else None, log)
    with timers.phase("io"):
        estimate = checkpoint_size(app.checkpoint_data(), cfg.dumps(), comm.size)
    check_checkpoint_space(comm, ck.directory, estimate, ck.keep, planned_checkpoints(cfg, first, app.n_steps))
    steps = f"about {app.n_steps} steps (estimated)" if app.steps_estimated else f"{app.n_steps} steps"
    log.info(f"hmmpar {cfg['run.app']}: {steps} on {comm.size} rank(s), output in {outdir}")
    progress = Progress(log, app.n_steps, first_step=first, interval=cfg["run.progress_interval"])
    last_written = first if path is not None else None
    unsaved = False  # a step since the last checkpoint changed the checkpointed state
    step = first
    while app.more_steps(step):
        if app.persistent_instances or app.drives_farm:
            t_farm = time.perf_counter()
            tasks_done = comm.allreduce(int(app.advance(step)))
            timers.add("farm_total", time.perf_counter() - t_farm)
        else:
            tasks_done = _farm_rounds(app, farm, timers, step, seed, comm)
        unsaved = unsaved or app.step_changes_checkpoint(step)
        done = step + 1
        more = app.more_steps(done)
        progress.total = app.n_steps if more else done
        progress.update(done, app.sim_time, tasks_done)
        now, stop = ck.due(done)
        if (now or stop) and more:
            _write(ck, app, cfg, done, timers)
            last_written, unsaved = done, False
        if stop and more:
            raise RequeueExit(f"checkpointed at step {done} after signal; requeue to continue "
                              f"(exit code 75)")
        step = done
    if cfg["checkpoint.at_end"] and last_written != step and unsaved:
        _write(ck, app, cfg, step, timers)
    with timers.phase("io"):
        summary = app.finalize(outdir)
    timers.add("micro", stats.busy)
    timers.add("farm_comm", stats.comm)
    timers.add("idle", stats.idle)
    report = gather_report(comm, timers, stats, time.perf_counter() - wall0)
    if comm.rank == 0:
        report["checkpoint"] = {"count": len(ck.written), "seconds": ck.seconds, "bytes": ck.bytes}
        write_report(report, outdir / "timing.json")
        log.info(format_report(report))
        if summary is not None:  # the application's summary, with the run's timing added
            summary["timing"] = {"wall_seconds": report["wall_seconds"],
                                 "load_imbalance": report["farm"]["load_imbalance"]}
            if "placements" in report["farm"]:  # measured per placement of a rebalanced pool
                summary["timing"]["load_imbalance_per_placement"] = [
                    p["load_imbalance"] for p in report["farm"]["placements"]]
                summary["timing"]["load_imbalance_cpu_per_placement"] = [
                    p["load_imbalance_cpu"] for p in report["farm"]["placements"]]
            (outdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            log.info(f"summary: {json.dumps({k: v for k, v in summary.items() if k not in ('timing', 'series', 'profiles', 'averages')})}")
    return summary


def _farm_rounds(app, farm, timers: Timers, step: int, seed: int, comm) -> int:
    """The farm rounds of one step: absorb returns the next round's rows or None.
    Returns the number of tasks computed (over all ranks)."""
    with timers.phase("reconstruct"):
        rows = app.tasks(step)
    tasks_done = 0
    while True:
        t_farm = time.perf_counter()
        results = farm.map(app.solve, rows, app.result_dtype, step=step, seed=seed)
        timers.add("farm_total", time.perf_counter() - t_farm)
        tasks_done += farm.last_total
        rows = app.absorb(step, results)
        if not _another_round(comm, rows, step):
            return tasks_done


def _another_round(comm, rows, step: int) -> bool:
    """Whether ``absorb`` asked for another farm round (rows, not None) on every rank; ranks
    that disagree would leave some in ``farm.map`` forever, so that is an error on all."""
    asking = comm.allreduce(int(rows is not None))
    if 0 < asking < comm.size:
        raise HmmparError(f"internal: at step {step}, {asking} of {comm.size} ranks asked for another "
                          "farm round of the step and the others did not")
    return asking > 0


def _run_identity(comm, ck: Checkpointer, reader, log: RankLog) -> str:
    """This run's identity: a new one for a fresh run (``reader`` None); after a restart the
    checkpoint's (a new one for a file written before identities existed), once the files
    not on the run's line are moved aside."""
    run_id = reader.run_id if reader is not None else ""
    run_id = run_id or comm.bcast(new_run_id() if comm.rank == 0 else None, root=0)
    if reader is None:
        return run_id
    moved = set_aside_checkpoints(comm, ck.directory, run_id, reader.step)
    if moved:
        log.warning(f"restart from step {reader.step}: moved {moved} checkpoint(s) that are newer "
                    f"or of another run to {ck.directory / 'set-aside'}")
    return run_id


def _write(ck: Checkpointer, app, cfg: Config, step: int, timers: Timers) -> None:
    with timers.phase("io"):
        data = app.checkpoint_data()
        attrs = {**data.get("attrs", {}), "input_files": ledger_text(cfg)}  # checked at restart
        ck.write(step, app.sim_time, app=cfg["run.app"], seed=cfg["run.seed"], config_text=cfg.dumps(),
                 fields=data.get("fields", {}), instances=data.get("instances", {}),
                 tasks=data.get("tasks", {}), attrs=attrs)


def _check_compatible(cfg: Config, reader) -> None:
    if reader.app != cfg["run.app"]:
        raise CheckpointError(f"checkpoint {reader.path} was written by app '{reader.app}', "
                              f"config runs '{cfg['run.app']}'")
    # the input files (images, meshes, models, user modules) by content, wherever they are now
    stored_inputs = reader.attrs.get("input_files")
    check_restart(cfg, None if stored_inputs is None else str(stored_inputs), reader.path)
    stored = load_config(reader.config_text, is_text=True)
    diffs = cfg.physics_differences(stored)
    if diffs:
        raise CheckpointError(f"checkpoint {reader.path} was written with a different model: "
                              + "; ".join(diffs[:3]) + ("" if len(diffs) <= 3 else f" (+{len(diffs) - 3} more)"))
