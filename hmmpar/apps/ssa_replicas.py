"""Replicas as farm tasks: the Nested SSA of few trajectories on many ranks.

When an ensemble has fewer trajectories than ranks, one farm task per trajectory leaves
ranks idle. In this mode the N inner replicas of every outer step are the farm tasks
instead: each window is a sequence of *rounds*; in a round every trajectory still in the
window plans its outer step (partition, T_f) on its owner rank, its N replicas run as
tasks anywhere (:func:`hmmpar.micro.ssa.nested.replica_run`, stream (key, n, r)), and
the owner combines them (:func:`~hmmpar.micro.ssa.nested.replica_average`, replica
order) and takes the outer step (:func:`~hmmpar.micro.ssa.nested.outer_step`). These are
the same compiled functions, with the same arguments and the same summation order, as
in :func:`~hmmpar.micro.ssa.nested.nested_window_kernel`, so both modes give bitwise the
same trajectories. A round costs one farm call (collective), so the mode pays when an
outer step's replicas cost much more than the farm's per-call overhead.

With three levels (``nested.levels = 3``) a three-level outer step's tasks are its N middle
replicas (:func:`~hmmpar.micro.ssa.nested.middle_replica`, each a whole Nested SSA of the
fast reactions over the ultrafast ones, key ``sub_key(key, n, r)``), combined by the same
:func:`~hmmpar.micro.ssa.nested.replica_average` and followed by
:func:`~hmmpar.micro.ssa.nested.outer_step_levels` on the owner; steps that collapse to
two levels or to an exact step are handled as above.

With ``nested.reuse_averages`` a two-level step whose ã can be reused
(:func:`~hmmpar.micro.ssa.nested.reused_rates`, the same decision and the same stored
factors as in the window kernel) submits no tasks in that round.
"""
from __future__ import annotations

import numpy as np
from mpi4py import MPI

from hmmpar.core.errors import TaskError
from hmmpar.core.farm import Farm, TaskContext
from hmmpar.micro.ssa.model import FAST, SLOW
from hmmpar.micro.ssa.nested import (COUNTERS, MAX_EVENTS, OK, THREE_LEVEL_STEP, TWO_LEVEL_STEP, WindowError,
                                     WindowRunner, exact_rates, fast_species, jump_keeps_fast_state,
                                     middle_replica, outer_step, outer_step_levels, plan_step,
                                     remember_fast_factors, replica_average, replica_run, reused_rates,
                                     status_error)
from hmmpar.micro.ssa.streams import OUTER_STREAM, seed_stream


def replica_dtypes(n_species: int, n_reactions: int) -> tuple[np.dtype, np.dtype]:
    """Task and result rows of one replica."""
    task = np.dtype([("task_id", "i8"), ("x", "i8", (n_species,)), ("key", "u8"), ("n", "i8"), ("r", "i8"),
                     ("t_f", "f8"), ("limit", "i8"), ("kind", "i8"), ("level", "i8", (n_reactions,))])
    result = np.dtype([("end", "i8", (n_species,)), ("integrals", "f8", (n_reactions,)), ("events", "i8"),
                       ("continuations", "i8")])
    return task, result


class ReplicaRounds:
    """Advances this rank's trajectories through a window with replicas as farm tasks.

    Parameters
    ----------
    runner
        The trajectory mode's runner (network, parameters, engine, event limit).
    farm
        The farm for the rounds (collective over its communicator).
    """

    def __init__(self, runner: WindowRunner, farm: Farm) -> None:
        self.runner = runner
        self.farm = farm
        net = runner.network
        self.task_dtype, self.result_dtype = replica_dtypes(net.n_species, net.n_reactions)
        self.rounds = 0

    def solve(self, rows: np.ndarray, ctx: TaskContext) -> np.ndarray:
        """Run the replicas of the rows (pure: streams from the rows' keys)."""
        runner, net, p = self.runner, self.runner.network, self.runner.params
        out = np.zeros(rows.shape[0], dtype=self.result_dtype)
        for i in range(rows.shape[0]):
            level = np.ascontiguousarray(rows["level"][i])
            slow_idx = np.flatnonzero(level == SLOW)
            integrals = np.empty(slow_idx.size)
            end = np.empty(net.n_species, dtype=np.int64)
            key, n, r = np.uint64(rows["key"][i]), int(rows["n"][i]), int(rows["r"][i])
            if rows["kind"][i] == THREE_LEVEL_STEP:
                stats = np.zeros(3, dtype=np.int64)
                status = middle_replica(np.ascontiguousarray(rows["x"][i]), key, n, r, float(p.burn_in), float(rows["t_f"][i]), level,
                                        int(p.n_ultrafast_replicas), float(p.ultrafast_burn_in),
                                        float(p.ultrafast_averaging_time), float(p.ultrafast_lambda), net.reactants,
                                        net.rates, net.nu, net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr,
                                        net.dep_idx, runner.sorting, int(rows["limit"][i]), end, integrals, stats)
                ne, cont = int(stats[0] + stats[1]), int(stats[2])
            else:
                status, ne = replica_run(rows["x"][i], key, n, r, float(p.burn_in), float(rows["t_f"][i]),
                                         np.flatnonzero(level >= FAST), slow_idx, net.reactants, net.rates,
                                         net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx,
                                         runner.sorting, int(rows["limit"][i]), end, integrals)
                cont = 0
            if status != OK:
                raise WindowError(status_error(status, net, 0.0, runner.max_events))
            out["end"][i] = end
            out["integrals"][i, slow_idx] = integrals
            out["events"][i] = ne
            out["continuations"][i] = cont
        return out

    def advance(self, x: np.ndarray, ids: np.ndarray, keys: np.ndarray, t_start: float, t_stop: float,
                step: int, seed: int) -> np.ndarray:
        """Advance the states ``x`` (rows of this rank's trajectories ``ids``, in place) over
        [t_start, t_stop]; return their counters (len(ids), 5). Collective."""
        runner, net, p = self.runner, self.runner.network, self.runner.params
        m, ns, n_rep = net.n_reactions, net.n_species, p.n_replicas
        k = ids.size
        counters = np.zeros((k, len(COUNTERS)), dtype=np.int64)
        t = np.full(k, float(t_start))
        n = np.zeros(k, dtype=np.int64)
        spent = np.zeros(k, dtype=np.int64)
        active = np.ones(k, dtype=bool)
        outer = np.empty((k, 4), dtype=np.uint64)
        for i in range(k):
            seed_stream(np.uint64(keys[i]), np.uint64(0), OUTER_STREAM, outer[i])
        previous = np.zeros((k, m), dtype=np.int64)
        level = np.zeros((k, m), dtype=np.int64)
        kind = np.zeros(k, dtype=np.int64)
        t_f = np.zeros(k)
        # reuse of ã (two levels), per trajectory as in window_loop
        reuse = runner.levels == 2 and bool(p.reuse_averages)
        ends = np.zeros((k, n_rep, ns), dtype=np.int64)
        involved = np.zeros((k, ns), dtype=bool)
        factor = np.zeros((k, m))
        known = np.zeros((k, m), dtype=bool)
        reusable = np.zeros(k, dtype=bool)
        reused = np.zeros(k, dtype=bool)
        rates_avg = [np.empty(0)] * k
        error = None
        while True:
            rows = []
            for i in np.flatnonzero(active):
                kind[i], t_f[i] = plan_step(runner.levels, x[i], net.level, runner.auto, float(p.partition_ratio),
                                            float(p.averaging_time), float(p.tolerance), net.reactants, net.rates,
                                            net.nu, level[i])
                if n[i] > 0 and runner.auto and not np.array_equal(level[i], previous[i]):
                    counters[i, 3] += 1
                    reusable[i] = False
                previous[i] = level[i]
                counters[i, 2] += 1
                slow_idx = np.flatnonzero(level[i] == SLOW)
                rates_avg[i] = np.empty(slow_idx.size)
                reused[i] = bool(kind[i] == TWO_LEVEL_STEP and reusable[i]
                                 and reused_rates(x[i], slow_idx, involved[i], net.reactants, net.rates, factor[i],
                                                  known[i], rates_avg[i]))
                if reused[i]:
                    counters[i, 5] += 1
                elif kind[i] in (TWO_LEVEL_STEP, THREE_LEVEL_STEP):
                    block = np.zeros(n_rep, dtype=self.task_dtype)
                    block["task_id"] = ids[i] * n_rep + np.arange(n_rep)
                    block["x"], block["key"], block["n"] = x[i], keys[i], n[i]
                    block["r"], block["t_f"], block["kind"] = np.arange(n_rep), t_f[i], kind[i]
                    block["level"] = level[i]
                    block["limit"] = runner.max_events - spent[i]
                    rows.append(block)
            counts = np.array([active.sum(), sum(len(b) for b in rows)], dtype=np.int64)
            self.farm.comm.Allreduce(MPI.IN_PLACE, counts, op=MPI.SUM)
            n_active, n_tasks = int(counts[0]), int(counts[1])
            if n_active == 0:
                break
            if n_tasks:
                tasks = np.concatenate(rows) if rows else np.zeros(0, dtype=self.task_dtype)
                results = self.farm.map(self.solve, tasks, self.result_dtype, step=step, seed=seed)
                self.rounds += 1
            else:  # every trajectory reused its averages or takes an exact step: no farm call
                results = np.zeros(0, dtype=self.result_dtype)
            done = 0
            for i in np.flatnonzero(active):
                fast_idx, slow_idx = np.flatnonzero(level[i] >= FAST), np.flatnonzero(level[i] == SLOW)
                if reused[i]:
                    pass  # rates_avg[i] and ends[i] carried over
                elif kind[i] in (TWO_LEVEL_STEP, THREE_LEVEL_STEP):
                    block = results[done:done + n_rep]
                    done += n_rep
                    replica_average(np.ascontiguousarray(block["integrals"][:, slow_idx]), t_f[i], rates_avg[i])
                    ends[i] = block["end"]
                    if reuse and kind[i] == TWO_LEVEL_STEP:
                        fast_species(level[i], net.reactants, net.nu_ptr, net.nu_species, net.nu_change, involved[i])
                        remember_fast_factors(x[i], slow_idx, rates_avg[i], involved[i], net.reactants, net.rates,
                                              factor[i], known[i])
                    ne = int(block["events"].sum())
                    counters[i, 0] += ne
                    counters[i, 4] += int(block["continuations"].sum())
                    spent[i] += ne
                    if spent[i] >= runner.max_events:
                        error = error or f"trajectory {ids[i]}: {status_error(MAX_EVENTS, net, t[i], runner.max_events)}"
                        active[i] = False
                        continue
                else:
                    exact_rates(x[i], slow_idx, net.reactants, net.rates, rates_avg[i])
                if kind[i] == THREE_LEVEL_STEP:
                    stats = np.zeros(3, dtype=np.int64)
                    status, t_next, fired = outer_step_levels(
                        x[i], t[i], float(t_stop), rates_avg[i], slow_idx, ends[i], t_f[i], np.uint64(keys[i]),
                        int(n[i]),
                        outer[i], level[i], int(p.n_ultrafast_replicas), float(p.ultrafast_burn_in),
                        float(p.ultrafast_averaging_time), float(p.ultrafast_lambda), net.reactants, net.rates,
                        net.nu, net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx, runner.sorting,
                        runner.max_events - spent[i], stats)
                    counters[i, 0] += stats[0] + stats[1]
                    counters[i, 4] += stats[2]
                    spent[i] += stats[0] + stats[1]
                else:
                    status, t_next, j, ne = outer_step(
                        x[i], t[i], float(t_stop), rates_avg[i], slow_idx, fast_idx, ends[i], t_f[i],
                        np.uint64(keys[i]), int(n[i]), outer[i], net.reactants, net.rates, net.nu_ptr, net.nu_species,
                        net.nu_change, net.dep_ptr, net.dep_idx, runner.sorting, runner.max_events - spent[i])
                    fired = j >= 0
                    reusable[i] = bool(reuse and fired and kind[i] == TWO_LEVEL_STEP
                                       and jump_keeps_fast_state(j, involved[i], ends[i], net.nu_ptr, net.nu_species,
                                                                 net.nu_change))
                    if ne > 0:
                        counters[i, 4] += 1
                        counters[i, 0] += ne
                        spent[i] += ne
                if status != OK:
                    error = error or f"trajectory {ids[i]}: {status_error(status, net, t_next, runner.max_events)}"
                    active[i] = False
                    continue
                if not fired:
                    active[i] = False
                    continue
                t[i], n[i] = t_next, n[i] + 1
                counters[i, 1] += 1
                spent[i] += 1
                if spent[i] >= runner.max_events:
                    error = error or f"trajectory {ids[i]}: {status_error(MAX_EVENTS, net, t[i], runner.max_events)}"
                    active[i] = False
        errors = [e for e in self.farm.comm.allgather(error) if e]
        if errors:
            raise TaskError(f"nested SSA (replica mode, step {step}): {errors[0]}")
        return counters
