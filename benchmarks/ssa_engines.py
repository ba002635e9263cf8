#!/usr/bin/env python
"""Events per second of the SSA engines (:mod:`hmmpar.micro.ssa`), side by side.

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
events per second; ``sorting_over_direct`` is the ratio of the best rates. For the cases
with all reactions active, a minimal next reaction method (Gibson & Bruck, J. Phys. Chem.
A 104 (2000) 1876: indexed binary heap of putative times, one random number per event,
times of dependent reactions rescaled by a_old/a_new) is measured as ``nrm_prototype``:
the evidence for choosing the sorting direct method as the second engine. It is not a
library engine (no samples, subsets or integrals). The
``rng_floor`` line is a numba loop doing only what every event must do for the random
numbers (two uniforms and one log): the share of an event that no search or update
strategy can remove. Output: ``benchmarks/results/ssa_engines.json`` and a table.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numba
import numpy as np

from hmmpar.core.rng import substream
from hmmpar.micro.ssa import RESUM_INTERVAL, simulate
from hmmpar.micro.ssa_model import ReactionNetwork, propensity
from hmmpar.micro.xoshiro import seed_state, uniform, uniform_open0

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "drivers" / "configs" / "models"
ENGINES = ("direct", "sorting")


@numba.njit(cache=True)
def _rng_floor(n, rng):
    acc = 0.0
    for _ in range(n):
        acc += -math.log(uniform_open0(rng)) + uniform(rng)
    return acc


def rng_floor_ns(n: int = 5_000_000, repeats: int = 5) -> float:
    rng = seed_state(np.random.SeedSequence(0))
    _rng_floor(10, rng)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        _rng_floor(n, rng)
        best = min(best, time.perf_counter() - t)
    return best / n * 1e9


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
        tau[k] = -math.log(uniform_open0(rng)) / a[k] if a[k] > 0 else math.inf
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
                tau[k] = t - math.log(uniform_open0(rng)) / new
            else:
                tau[k] = t + (a[k] / new) * (tau[k] - t)
            a[k] = new
            _heap_fix(heap, pos, tau, pos[k])
        n_ev += 1


def measure_nrm(case: dict, key, repeats: int) -> dict:
    net = case["network"]

    def once(t_end):
        x = net.initial_counts.copy()
        rng = seed_state(substream(np.random.SeedSequence(key), 0))
        return _nrm_prototype(x, t_end, net.reactants, net.rates, net.nu_ptr, net.nu_species,
                              net.nu_change, net.dep_ptr, net.dep_idx, rng)

    once(case["t_end"] * 1e-3)
    rates, events = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        events = once(case["t_end"])
        rates.append(events / (time.perf_counter() - t))
    return {"events": events, "best_events_per_s": max(rates), "median_events_per_s": statistics.median(rates),
            "ns_per_event": 1e9 / max(rates)}


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


def measure(case: dict, method: str, key, repeats: int) -> dict:
    kw = {k: v for k, v in case.items() if k in ("active", "integrate")}
    simulate(case["network"], case["t_end"] * 1e-3, seed_key=key, method=method, **kw)  # compile/warm
    rates, events = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        r = simulate(case["network"], case["t_end"], seed_key=key, method=method, **kw)
        dt = time.perf_counter() - t
        events = r.n_events
        rates.append(events / dt)
    return {"events": events, "best_events_per_s": max(rates), "median_events_per_s": statistics.median(rates),
            "ns_per_event": 1e9 / max(rates)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    args = ap.parse_args()
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
              "numba": numba.__version__, "numpy": np.__version__, "repeats": args.repeats,
              "resum_interval": RESUM_INTERVAL, "rng_floor_ns_per_event": rng_floor_ns(), "cases": {}}
    print(f"rng floor (2 uniforms + 1 log): {report['rng_floor_ns_per_event']:.1f} ns/event")
    print(f"{'case':24s} {'events':>9s} " + " ".join(f"{m + ' Mev/s':>14s}" for m in ENGINES)
          + "  sorting/direct  nrm_prototype Mev/s")
    for i, (name, case) in enumerate(cases().items()):
        res = {m: measure(case, m, (2024, i), args.repeats) for m in ENGINES}
        res["sorting_over_direct"] = res["sorting"]["best_events_per_s"] / res["direct"]["best_events_per_s"]
        nrm = ""
        if "active" not in case:
            res["nrm_prototype"] = measure_nrm(case, (2024, i), args.repeats)
            nrm = f"{res['nrm_prototype']['best_events_per_s'] / 1e6:.1f}"
        res["t_end"] = case["t_end"]
        report["cases"][name] = res
        print(f"{name:24s} {res['direct']['events']:9d} "
              + " ".join(f"{res[m]['best_events_per_s'] / 1e6:14.1f}" for m in ENGINES)
              + f"  {res['sorting_over_direct']:14.2f}  {nrm:>19s}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ssa_engines.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out / 'ssa_engines.json'}")


if __name__ == "__main__":
    main()
