#!/usr/bin/env python
"""Events per second of the SSA engines (:mod:`hmmpar.micro.ssa.direct`), side by side.

This is a measurement, not a test: it always exits 0. Run it alone on a quiet machine::

    python benchmarks/ssa_engines.py            # ~15 s after numba's first compilation
    python benchmarks/ssa_engines.py --repeats 3

Cases (one trajectory each, from the model file's initial counts, seed key (2024, case)):

``four_species``
    ``drivers/configs/models/four_species.toml`` (x = (100, 0, 0, 0)) to t = 0.1,
    about 1e6 events, almost all fast.
``heat_shock``
    ``drivers/configs/models/heat_shock.toml`` to t = 0.5 (about 1.5e6 events).
``heat_shock_reversed``
    The same reactions listed in reverse order, so the fast ones are last: the direct
    method's linear search then runs through all 17 propensities for most events, which
    is what the sorting direct method repairs.
``heat_shock_fast_only``
    Only the 3 fast reactions active and the 14 slow propensities integrated, as the
    inner SSA of the Nested SSA runs.

For each case and engine the best and the median of ``--repeats`` runs are reported as
events per CPU second of this process (``time.process_time``, so other jobs on the machine
slow a run less than its wall time; the machine's load is still recorded as
``other_cores``: CPU seconds of all other processes per wall second, from /proc/stat);
``sorting_over_direct`` is the ratio of the best rates. The engines are interleaved
(one run of each per repeat). For the cases
with all reactions active, a minimal next reaction method (Gibson & Bruck, J. Phys. Chem.
A 104 (2000) 1876: indexed binary heap of putative times, one random number per event,
times of dependent reactions rescaled by a_old/a_new, the exponentials by the same
ziggurat as the engines) is measured as ``nrm_prototype``: the evidence for choosing the
sorting direct method as the second engine. It is not a library engine (no samples,
subsets or integrals).

``rng``: numba loops doing only the random-number work of an event, ns per event:
``kernel`` is what the engines draw now (one ziggurat exponential and one uniform, state
in local variables), ``log_array_state`` what they drew before (two uniforms and one
``-log(u)``, state advanced in the uint64[4] array), and the pieces (a ziggurat
exponential, ``-log(u)``, a uniform with the state local or in the array).
Output: ``benchmarks/results/ssa_engines.json`` and a table.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

from hmmpar.core.rng import substream
from hmmpar.micro.rng.xoshiro import (exponential, exponential_local, seed_state, step, to_uniform, uniform,
                                      uniform_open0)
from hmmpar.micro.ssa.direct import RESUM_INTERVAL, simulate
from hmmpar.micro.ssa.model import ReactionNetwork, propensity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_usage import own_cpu, system_busy  # noqa: E402

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "drivers" / "configs" / "models"
ENGINES = ("direct", "sorting")


@numba.njit(cache=True)
def _rng_kernel(n, rng):
    """What an event of the engines draws: a ziggurat exponential and a uniform, local state."""
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    acc = 0.0
    for _ in range(n):
        e, s0, s1, s2, s3 = exponential_local(s0, s1, s2, s3)
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        acc += e + to_uniform(r)
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3
    return acc


@numba.njit(cache=True)
def _rng_log_array(n, rng):
    """What an event drew before: -log of a uniform and a second uniform, array state."""
    acc = 0.0
    for _ in range(n):
        acc += -math.log(uniform_open0(rng)) + uniform(rng)
    return acc


@numba.njit(cache=True)
def _exp_local(n, rng):
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    acc = 0.0
    for _ in range(n):
        e, s0, s1, s2, s3 = exponential_local(s0, s1, s2, s3)
        acc += e
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3
    return acc


@numba.njit(cache=True)
def _log_array(n, rng):
    acc = 0.0
    for _ in range(n):
        acc -= math.log(uniform_open0(rng))
    return acc


@numba.njit(cache=True)
def _uniform_local(n, rng):
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    acc = 0.0
    for _ in range(n):
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        acc += to_uniform(r)
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3
    return acc


@numba.njit(cache=True)
def _uniform_array(n, rng):
    acc = 0.0
    for _ in range(n):
        acc += uniform(rng)
    return acc


RNG_LOOPS = {"kernel": _rng_kernel, "log_array_state": _rng_log_array, "exponential_ziggurat_local": _exp_local,
             "minus_log_uniform_array": _log_array, "uniform_local": _uniform_local, "uniform_array": _uniform_array}


def rng_ns(n: int = 5_000_000, repeats: int = 5) -> dict:
    """CPU ns per iteration of each loop of :data:`RNG_LOOPS`, best of ``repeats`` (interleaved)."""
    rng = seed_state(np.random.SeedSequence(0))
    best = dict.fromkeys(RNG_LOOPS, math.inf)
    for f in RNG_LOOPS.values():
        f(10, rng)
    for _ in range(repeats):
        for name, f in RNG_LOOPS.items():
            c = time.process_time()
            f(n, rng)
            best[name] = min(best[name], time.process_time() - c)
    return {k: v / n * 1e9 for k, v in best.items()}


@numba.njit(cache=True)
def _heap_fix(heap, pos, tau, i):
    n = heap.shape[0]
    while i > 0:  # up
        p = (i - 1) >> 1
        if tau[heap[i]] >= tau[heap[p]]:
            break
        heap[i], heap[p] = heap[p], heap[i]
        pos[heap[i]], pos[heap[p]] = i, p
        i = p
    while True:  # down
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and tau[heap[c + 1]] < tau[heap[c]]:
            c += 1
        if tau[heap[c]] >= tau[heap[i]]:
            break
        heap[i], heap[c] = heap[c], heap[i]
        pos[heap[i]], pos[heap[c]] = i, c
        i = c


@numba.njit(cache=True)
def _nrm_prototype(x, t_end, reactants, rates, nu_ptr, nu_species, nu_change, dep_ptr, dep_idx, rng):
    m = rates.shape[0]
    a = np.empty(m)
    tau = np.empty(m)
    for k in range(m):
        a[k] = propensity(k, x, reactants, rates)
        tau[k] = exponential(rng) / a[k] if a[k] > 0 else math.inf
    heap = np.argsort(tau)
    pos = np.empty(m, np.int64)
    for i in range(m):
        pos[heap[i]] = i
    n_ev = 0
    while True:
        j = heap[0]
        t = tau[j]
        if t > t_end:
            return n_ev
        for p in range(nu_ptr[j], nu_ptr[j + 1]):
            x[nu_species[p]] += nu_change[p]
        for p in range(dep_ptr[j], dep_ptr[j + 1]):
            k = dep_idx[p]
            new = propensity(k, x, reactants, rates)
            if new <= 0.0:
                tau[k] = math.inf
            elif k == j or a[k] <= 0.0:
                tau[k] = t + exponential(rng) / new
            else:
                tau[k] = t + (a[k] / new) * (tau[k] - t)
            a[k] = new
            _heap_fix(heap, pos, tau, pos[k])
        n_ev += 1


def nrm_run(case: dict, key) -> tuple[float, int]:
    """One run of the NRM prototype: (CPU seconds, events)."""
    net = case["network"]
    x = net.initial_counts.copy()
    rng = seed_state(substream(np.random.SeedSequence(key), 0))
    c = time.process_time()
    events = _nrm_prototype(x, case["t_end"], net.reactants, net.rates, net.nu_ptr, net.nu_species,
                            net.nu_change, net.dep_ptr, net.dep_idx, rng)
    return time.process_time() - c, events


def cases() -> dict[str, dict]:
    fs = ReactionNetwork.from_toml(MODELS / "four_species.toml")
    hs = ReactionNetwork.from_toml(MODELS / "heat_shock.toml")
    hs_rev = ReactionNetwork(dict(zip(hs.species, hs.initial_counts.tolist())), hs.reactions[::-1],
                             name="heat_shock_reversed")
    return {
        "four_species": dict(network=fs, t_end=0.1),
        "heat_shock": dict(network=hs, t_end=0.5),
        "heat_shock_reversed": dict(network=hs_rev, t_end=0.5),
        "heat_shock_fast_only": dict(network=hs, t_end=0.5, active=hs.fast_reactions,
                                     integrate=hs.slow_reactions),
    }


def engine_run(case: dict, method: str, key, t_end: float | None = None) -> tuple[float, int]:
    """One trajectory of an engine: (CPU seconds, events)."""
    kw = {k: v for k, v in case.items() if k in ("active", "integrate")}
    c = time.process_time()
    r = simulate(case["network"], case["t_end"] if t_end is None else t_end, seed_key=key, method=method, **kw)
    return time.process_time() - c, r.n_events


def summary(runs: list[tuple[float, int]]) -> dict:
    rates = [n / dt for dt, n in runs]
    return {"events": runs[-1][1], "best_events_per_cpu_s": max(rates),
            "median_events_per_cpu_s": statistics.median(rates), "ns_per_event": 1e9 / max(rates)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    args = ap.parse_args()
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
              "numba": numba.__version__, "numpy": np.__version__, "repeats": args.repeats,
              "resum_interval": RESUM_INTERVAL, "timing": "CPU time of this process (time.process_time)",
              "cases": {}}
    busy0, own0, wall0 = system_busy(), own_cpu(), time.perf_counter()
    report["rng_ns_per_event"] = rng = rng_ns()
    print("random numbers per event (CPU ns): " + ", ".join(f"{k} {v:.2f}" for k, v in rng.items()))
    print(f"{'case':24s} {'events':>9s} " + " ".join(f"{m + ' Mev/cpu-s':>18s}" for m in ENGINES)
          + "  sorting/direct  nrm_prototype Mev/cpu-s")
    for i, (name, case) in enumerate(cases().items()):
        key = (2024, i)
        for m in ENGINES:  # compile / warm up
            engine_run(case, m, key, case["t_end"] * 1e-3)
        runs = {m: [] for m in ENGINES}
        if "active" not in case:
            runs["nrm_prototype"] = []
            nrm_run(dict(case, t_end=case["t_end"] * 1e-3), key)
        for _ in range(args.repeats):  # interleaved
            for m in runs:
                runs[m].append(nrm_run(case, key) if m == "nrm_prototype" else engine_run(case, m, key))
        res = {m: summary(v) for m, v in runs.items()}
        res["sorting_over_direct"] = (res["sorting"]["best_events_per_cpu_s"]
                                      / res["direct"]["best_events_per_cpu_s"])
        nrm = f"{res['nrm_prototype']['best_events_per_cpu_s'] / 1e6:.1f}" if "nrm_prototype" in res else ""
        res["t_end"] = case["t_end"]
        report["cases"][name] = res
        print(f"{name:24s} {res['direct']['events']:9d} "
              + " ".join(f"{res[m]['best_events_per_cpu_s'] / 1e6:18.1f}" for m in ENGINES)
              + f"  {res['sorting_over_direct']:14.2f}  {nrm:>23s}")
    wall = time.perf_counter() - wall0
    report["other_cores"] = max(0.0, (system_busy() - busy0 - (own_cpu() - own0)) / wall)
    print(f"other processes used {report['other_cores']:.2f} cores on average (of {os.cpu_count()})")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ssa_engines.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out / 'ssa_engines.json'}")


if __name__ == "__main__":
    main()
