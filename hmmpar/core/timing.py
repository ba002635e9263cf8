"""Per-phase wall-clock timers, farm statistics and the end-of-run report.

Each rank accumulates seconds per phase (``macro_assemble``, ``macro_solve``,
``micro``, ``farm_comm``, ``io``, ``idle``...) and the farm adds its per-rank counters.
:func:`gather_report` collects them on rank 0 and returns min/mean/max over ranks and
the load imbalance ``max(busy) / mean(busy)`` (1.0 is perfect balance).

An instance pool that moves instances between ranks (a rebalance) marks the farm
statistics there (:meth:`FarmStats.mark`); the report then also gives the load imbalance
of every placement, measured on the busy time between the marks, so the effect of
rebalancing shows in measured time, not only in the costs it was planned on.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

#: Phases printed in this order (others follow alphabetically).
PHASE_ORDER = ("macro_assemble", "macro_solve", "micro", "farm_comm", "io", "idle")


class Timers:
    """Accumulated seconds per named phase on this rank."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float, count: int = 1) -> None:
        self.seconds[name] += seconds
        self.counts[name] += count


class FarmStats:
    """What the farm did on this rank: tasks computed, busy, idle and communication time."""

    def __init__(self) -> None:
        self.tasks = 0
        self.busy = 0.0
        self.idle = 0.0
        self.comm = 0.0
        self.calls = 0
        #: CPU seconds of this process within ``busy`` (measured by an instance pool only):
        #: unlike wall time, it does not grow when other processes share the cores
        self.busy_cpu = 0.0
        #: ``(calls, busy, busy_cpu)`` at each change of placement (:meth:`mark`), in order
        self.marks: list[tuple[int, float, float]] = []

    def mark(self) -> None:
        """Note that the work is placed anew from here on (collective in spirit: every rank
        of the run must mark at the same call, as :meth:`InstancePool.rebalance
        <hmmpar.core.instances.InstancePool.rebalance>` does when it moves instances)."""
        self.marks.append((self.calls, self.busy, self.busy_cpu))

    def as_array(self) -> np.ndarray:
        return np.array([self.tasks, self.busy, self.idle, self.comm, self.calls], dtype=float)


def gather_report(comm, timers: Timers, farm: FarmStats | None, wall: float) -> dict | None:
    """Collect every rank's timers on rank 0; return the report dict there, None elsewhere."""
    names = sorted(set().union(*comm.allgather(sorted(timers.seconds))))
    local = np.array([timers.seconds.get(n, 0.0) for n in names], dtype=float)
    stats = (farm or FarmStats()).as_array()
    all_t = comm.gather(local, root=0)
    all_f = comm.gather(stats, root=0)
    all_m = comm.gather(list((farm or FarmStats()).marks), root=0)
    comm_cpu = comm.gather((farm or FarmStats()).busy_cpu, root=0)
    if comm.rank != 0:
        return None
    t = np.array(all_t).reshape(comm.size, len(names))
    f = np.array(all_f)
    ordered = [n for n in PHASE_ORDER if n in names] + [n for n in names if n not in PHASE_ORDER]
    phases = {
        n: {"min": float(t[:, names.index(n)].min()), "mean": float(t[:, names.index(n)].mean()),
            "max": float(t[:, names.index(n)].max())}
        for n in ordered
    }
    busy = f[:, 1]
    imbalance = _imbalance(busy)
    report = {
        "ranks": comm.size,
        "wall_seconds": wall,
        "phases": phases,
        "farm": {
            "tasks_per_rank": f[:, 0].astype(int).tolist(),
            "busy_seconds": busy.tolist(),
            "idle_seconds": f[:, 2].tolist(),
            "comm_seconds": f[:, 3].tolist(),
            "load_imbalance": imbalance,
        },
    }
    cpu = np.array(comm_cpu)
    placements = _placements(all_m, f[:, 4], busy, cpu)
    if placements:
        report["farm"]["placements"] = placements
    return report


def _imbalance(busy: np.ndarray) -> float:
    return float(busy.max() / busy.mean()) if busy.size and busy.mean() > 0 else 1.0


def _placements(marks: list[list[tuple[int, float, float]]], calls: np.ndarray, busy: np.ndarray,
                cpu: np.ndarray) -> list[dict]:
    """Busy time (wall and CPU) and load imbalance of every placement between the ranks'
    marks (no marks: [])."""
    n = min(len(m) for m in marks)  # the same on every rank (the marks are collective)
    if n == 0:
        return []

    def series(j: int, end: np.ndarray) -> np.ndarray:
        return np.array([[0.0] + [m[k][j] for k in range(n)] + [float(end[r])] for r, m in enumerate(marks)])

    c, b, u = series(0, calls), series(1, busy), series(2, cpu)
    out = []
    for k in range(n + 1):
        seg, seg_cpu = b[:, k + 1] - b[:, k], u[:, k + 1] - u[:, k]
        out.append({"first_call": int(c[0, k]), "calls": int(c[0, k + 1] - c[0, k]),
                    "busy_seconds": seg.tolist(), "load_imbalance": _imbalance(seg),
                    "busy_cpu_seconds": seg_cpu.tolist(), "load_imbalance_cpu": _imbalance(seg_cpu)})
    return out


def format_report(report: dict) -> str:
    """The end-of-run timing table as text."""
    lines = [f"timing over {report['ranks']} rank(s), wall {report['wall_seconds']:.3f} s",
             f"  {'phase':<16}{'min [s]':>12}{'mean [s]':>12}{'max [s]':>12}{'% wall':>9}"]
    wall = report["wall_seconds"] or 1.0
    for name, v in report["phases"].items():
        lines.append(f"  {name:<16}{v['min']:>12.4f}{v['mean']:>12.4f}{v['max']:>12.4f}"
                     f"{100 * v['max'] / wall:>8.1f}%")
    farm = report["farm"]
    tasks = farm["tasks_per_rank"]
    lines.append(f"  farm: {sum(tasks)} tasks, per rank {tasks}, "
                 f"load imbalance (max/mean busy) {farm['load_imbalance']:.3f}")
    placements = farm.get("placements")
    if placements:
        first = placements[0]
        later = np.sum([p["busy_seconds"] for p in placements[1:]], axis=0)
        later_cpu = np.sum([p["busy_cpu_seconds"] for p in placements[1:]], axis=0)
        calls = sum(p["calls"] for p in placements[1:])
        lines.append(f"  instances moved {len(placements) - 1} time(s): load imbalance (max/mean busy, wall | CPU) "
                     f"{first['load_imbalance']:.3f} | {first['load_imbalance_cpu']:.3f} before the first move "
                     f"({first['calls']} steps), {_imbalance(later):.3f} | {_imbalance(later_cpu):.3f} after it "
                     f"({calls} steps)")
    return "\n".join(lines)


def write_report(report: dict, path: Path) -> None:
    """Write the report as JSON (rank 0 only calls this)."""
    Path(path).write_text(json.dumps(report, indent=2) + "\n")
