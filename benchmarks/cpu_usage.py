"""CPU accounting shared by the benchmarks: our own CPU time and the whole machine's."""
from __future__ import annotations

import os


def system_busy() -> float:
    """CPU-seconds the whole machine has been busy (all cores, all processes), /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU-seconds (user + system) this process has used."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
