"""One run at a time per output and checkpoint directory: an advisory lock held by rank 0.

Two runs writing into the same directory destroy each other's checkpoints (a fresh run
moves the other's files aside, and the next write deletes its temporary file). So
``hmmpar run`` first takes an exclusive ``flock(2)`` on ``DIR/.hmmpar.lock`` in its output
directory and in its checkpoint directory, on rank 0, and keeps the file open until the
run ends. A second run finds the lock taken and stops, before anything in the directory
is touched, with one line naming the holder::

    hmmpar: error: output directory runs/a is in use by another hmmpar run (pid 4711 on host
    node12, started 2026-12-07T03:10:02+00:00); wait for it to end or choose another
    run.output_dir

The kernel releases a ``flock`` when its holder dies, however it dies: the lock file of a
killed run stays behind but blocks nothing. Its text (pid, host, start time) is only
information for the message. A file system without ``flock`` (some Lustre mounts) gives a
warning and the run goes on unlocked.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Iterable

from .errors import ConfigError
from .log import stderr_line

LOCK_NAME = ".hmmpar.lock"
#: the config key that moves each kind of directory, for the message
_KEYS = {"output directory": "run.output_dir", "checkpoint directory": "checkpoint.directory"}


def directory_problem(what: str, directory: Path, exc: OSError) -> str:
    """The one-line reason why ``directory`` (an output or checkpoint ``what``) cannot be
    written, from the ``OSError`` of an attempt: full, or not writable."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{what} {directory} is full ({exc.strerror})"
    return f"{what} {directory} is not writable: {exc.strerror or exc}"


class RunLock:
    """The locks rank 0 holds on a run's directories; :meth:`release` (or ``with``) frees them."""

    def __init__(self) -> None:
        self.fds: list[int] = []
        self.unlocked: list[str] = []  # directories that could not be locked (no flock there)

    def release(self) -> None:
        """Unlock and close. The lock files stay: deleting one could let two runs lock
        different files of the same name."""
        while self.fds:
            fd = self.fds.pop()
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    """The text the holder wrote into the lock file (it may not have written it yet)."""
    for _ in range(20):
        text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        if text:
            return text
        time.sleep(0.01)
    return "holder not recorded"


def _lock_one(lock: RunLock, directory: Path, what: str, seen: set) -> str | None:
    """Take the lock of one directory into ``lock``; return the problem, or None. A
    directory already in ``seen`` (the same inode under another name) is skipped: a second
    ``flock`` through another descriptor would be refused by this process's own lock."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        st = os.stat(directory)
        if (st.st_dev, st.st_ino) in seen:
            return None
        seen.add((st.st_dev, st.st_ino))
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        return directory_problem(what, directory, exc)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        return (f"{what} {directory} is in use by another hmmpar run ({holder}); wait for it "
                f"to end or choose another {_KEYS.get(what, what)}")
    except OSError as exc:  # ENOLCK, EINVAL, ENOSYS: no flock on this file system
        os.close(fd)
        lock.unlocked.append(f"{directory} ({exc.strerror or exc})")
        return None
    lock.fds.append(fd)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    text = f"pid {os.getpid()} on host {socket.gethostname()}, started {started}\n".encode()
    try:  # information only; a full disk is reported by the write probe that follows
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
    except OSError:
        pass
    return None


def lock_run_directories(comm, directories: Iterable[tuple[Path, str]]) -> RunLock:
    """Lock each ``(directory, what)`` (``what``: "output directory" or "checkpoint
    directory") for this run, creating the directory if needed (collective; rank 0 locks).

    Raises
    ------
    ConfigError
        On every rank, when another run holds a lock (the message names its pid, host and
        start time) or a directory cannot be created; the locks already taken are freed.
    """
    lock, problem = RunLock(), None
    if comm.rank == 0:
        seen: set = set()
        for directory, what in directories:
            problem = _lock_one(lock, Path(directory), what, seen)
            if problem:
                lock.release()
                break
        for where in lock.unlocked:
            stderr_line(f"hmmpar: warning: cannot lock {where}: a second run into this "
                        "directory would not be detected")
    problem = comm.bcast(problem, root=0)
    if problem:
        raise ConfigError(problem)
    return lock
