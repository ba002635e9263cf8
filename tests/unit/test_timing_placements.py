"""The timing report's per-placement load imbalance: busy time between the marks an
instance pool sets when it moves instances (hmmpar.core.timing)."""
from __future__ import annotations

import pytest
from mpi4py import MPI

from hmmpar.core.timing import FarmStats, Timers, format_report, gather_report


def test_each_placement_gets_the_busy_time_between_marks():
    stats = FarmStats()
    stats.calls, stats.busy, stats.busy_cpu = 20, 3.0, 2.0
    stats.mark()
    stats.calls, stats.busy, stats.busy_cpu = 25, 4.5, 2.5
    report = gather_report(MPI.COMM_SELF, Timers(), stats, wall=5.0)
    placements = report["farm"]["placements"]
    assert [p["first_call"] for p in placements] == [0, 20]
    assert [p["calls"] for p in placements] == [20, 5]
    assert placements[0]["busy_seconds"] == [3.0] and placements[1]["busy_seconds"] == [pytest.approx(1.5)]
    assert placements[1]["busy_cpu_seconds"] == [pytest.approx(0.5)]
    assert all(p["load_imbalance"] == 1.0 and p["load_imbalance_cpu"] == 1.0 for p in placements)  # one rank
    assert "instances moved 1 time(s)" in format_report(report)


def test_no_marks_no_placements():
    stats = FarmStats()
    stats.calls, stats.busy = 3, 1.0
    report = gather_report(MPI.COMM_SELF, Timers(), stats, wall=1.0)
    assert "placements" not in report["farm"] and "instances moved" not in format_report(report)
