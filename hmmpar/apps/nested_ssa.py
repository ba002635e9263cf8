r"""Ensembles of chemical-kinetics trajectories by the Nested SSA or the exact SSA (app ``ssa``).

The Nested SSA (E, Liu & Vanden-Eijnden, J. Chem. Phys. 123 (2005) 194107;
:mod:`hmmpar.micro.ssa.nested`) averages the slow propensities over inner SSAs of the
fast reactions and takes outer SSA steps of the slow reactions at those rates; the
direct SSA (Gillespie, J. Comput. Phys. 22 (1976) 403) is the exact reference, run
through the same application (``ensemble.method``). ``nested.levels = 3`` nests the
method twice for models with ultrafast (``level = 2``), fast and slow reactions: the
``ultrafast_*`` keys are N₂, T_f₂, T₀₂ and λ₂ of the innermost replicas (docs/ssa.md,
"Three time scales").

Steps are *sample windows*: step k advances every trajectory from the sample time t_k
to t_{k+1} (t_0 = 0) and records its state. A trajectory is a farm task whose row holds
its state; its random streams are keyed by (run seed, window, trajectory) and, inside
the window, by the outer step and replica (:mod:`hmmpar.micro.ssa.streams`), so the
ensemble is bitwise the same on any number of ranks, under any schedule, and after a
restart at any window boundary. Checkpoints hold every trajectory's state and its
samples so far, in trajectory order.

Outputs (:mod:`hmmpar.io.ssa_output`): ``ssa.h5`` (trajectories at the sample times,
mean and variance series, final histograms of the selected observables), ``ssa.png``
and ``summary.json`` (events, final means and variances with standard errors, timing).
"""
from __future__ import annotations

import difflib
import json
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from hmmpar.apps.base import Application
from hmmpar.apps.ssa_replicas import ReplicaRounds
from hmmpar.core.checkpoint import Block, CheckpointReader
from hmmpar.core.config import RUNTIME_SCHEMA, Field
from hmmpar.core.errors import CheckpointError, ConfigError
from hmmpar.core.farm import Farm, TaskContext
from hmmpar.core.rng import task_seeds
from hmmpar.io import ssa_output
from hmmpar.io.inputs import parse_text, read_input
from hmmpar.micro.ssa.direct import STALL_EVENTS, persistent_rate
from hmmpar.micro.ssa.model import FAST, SLOW, ULTRAFAST, NetworkError, ReactionNetwork, parse_equation
from hmmpar.micro.ssa.nested import (COUNTERS, THREE_LEVEL_STEP, TWO_LEVEL_STEP, NestedParameters, UnboundedFastError,
                                     WindowRunner, plan_step, time_scale, time_scale_between)

METHODS = ("nested", "direct")
#: most replicas N (or N2) per outer (middle) step: 2^31, far beyond any useful tolerance
MAX_REPLICAS = 2 ** 31

#: [nested] keys of the third level (``levels = 3``) and their defaults
ULTRAFAST_KEYS = {"ultrafast_replicas": 0, "ultrafast_averaging_time": 0.0, "ultrafast_burn_in": 0.0,
                  "ultrafast_tolerance": 0.0}


def resolve_model_path(config) -> Path:
    """``model.file`` (absolute in the validated config: relative to the config file's
    directory as written, or to the working directory with ``--set``)."""
    return Path(config["model.file"])


def load_model(config, comm) -> tuple[ReactionNetwork, str]:
    """Read the model on rank 0 (:mod:`hmmpar.io.inputs`: a regular file of bounded size,
    its content recorded for restarts) and broadcast it; (network, sha256 of the file).
    Collective; problems are ConfigErrors naming model.file and the file."""
    path = resolve_model_path(config)
    data = read_input(comm, config, "model.file", "model")
    text = parse_text(data, "model.file", path)
    import tomllib
    try:
        network = ReactionNetwork.from_dict(tomllib.loads(text), source=str(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config key model.file: {path}: TOML syntax error: {exc}") from None
    except NetworkError as exc:
        raise ConfigError(f"config key model.file: {exc}") from None
    return network, config.inputs["model.file"]["sha256"]


def observable_weights(network: ReactionNetwork, expression: str) -> np.ndarray:
    """The weights w of an observable w·x: a species name or a sum such as ``"S3 + S4"``
    or ``"2 A + B"`` (ValueError naming an unknown species)."""
    try:
        terms, _ = parse_equation(f"{expression} -> 0")
    except ValueError as exc:
        raise ValueError(f"cannot read {expression!r}: {exc}") from None
    if not terms:
        raise ValueError(f"{expression!r} names no species")
    w = np.zeros(network.n_species, dtype=np.int64)
    for name, coefficient in terms:
        if name not in network.species:
            close = difflib.get_close_matches(name, network.species, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown species {name!r}{hint}")
        w[network.species_index(name)] += coefficient
    return w


def sample_times(config) -> np.ndarray:
    """t_1 < ... < t_K of the config (t_0 = 0 is added by the app)."""
    explicit = list(config["ensemble.sample_times"])
    if explicit:
        t = np.array(explicit, dtype=np.float64)
        if t[0] <= 0 or np.any(np.diff(t) <= 0):
            raise ConfigError("config key ensemble.sample_times must be strictly increasing and > 0, "
                              f"got {explicit}")
        return t
    k = config["ensemble.samples"]
    return config["ensemble.t_end"] * np.arange(1, k + 1) / k


class NestedSSA(Application):
    """Nested SSA (or direct SSA) ensembles of a reaction network; trajectories are farm tasks."""

    name = "ssa"
    schema = {
        "model": {
            "file": Field(str, doc="reaction network (TOML, docs/ssa.md), relative to the config file",
                          physics=False, path="input"),
        },
        "ensemble": {
            "method": Field(str, "nested", "nested (Nested SSA) or direct (exact SSA, the reference)",
                            choices=METHODS),
            "trajectories": Field(int, 100, "number of independent trajectories", min=1),
            "t_end": Field(float, 1.0, "final time", min=0.0, min_exclusive=True),
            "samples": Field(int, 20, "sample times t_end k / samples, k = 1..samples (one step each; at most "
                             "10^7: each is a macro step with its farm call)", min=1, max=10**7),
            "sample_times": Field(list, [], "explicit sample times (increasing, > 0); replace t_end and "
                                  "samples", item_type=float),
            "engine": Field(str, "direct", "SSA engine: direct (Gillespie) or sorting (sorting direct)",
                            choices=("direct", "sorting")),
            "max_events": Field(int, 0, "events allowed per trajectory and step (0: no limit)", min=0),
            "parallel": Field(str, "auto", "farm tasks: trajectories (one per trajectory and window), "
                              "replicas (the inner replicas of every outer step; for fewer trajectories "
                              "than ranks), auto (replicas when trajectories < ranks and N > 1); the "
                              "results are bitwise the same", choices=("auto", "trajectories", "replicas"),
                              physics=False),
        },
        "nested": {
            "tolerance": Field(float, 0.1, "lambda: N = ceil(1/lambda), T_f = eps(x)/lambda where "
                               "replicas / averaging_time are 0", min=0.0),
            "replicas": Field(int, 0, "N inner replicas per outer step (0: from the tolerance)", min=0),
            "averaging_time": Field(float, 0.0, "T_f (0: eps(x)/tolerance, every outer step)", min=0.0),
            "burn_in": Field(float, 0.0, "T_0, inner time discarded before averaging", min=0.0),
            "partition": Field(str, "model", "fast reactions: model (the model's fast flags) or auto "
                               "(potential propensity >= partition_ratio * largest, every outer step)",
                               choices=("model", "auto")),
            "partition_ratio": Field(float, 1e-3, "theta of the automatic partition (with levels = 3 "
                                     "applied twice: to all reactions, then to those it left slow)", min=0.0,
                                     min_exclusive=True, max=1.0),
            "levels": Field(int, 2, "time scales: 2 (fast/slow) or 3 (ultrafast/fast/slow: the Nested SSA "
                            "nested twice; replicas, averaging_time, burn_in then apply to the middle level)",
                            choices=(2, 3)),
            "ultrafast_replicas": Field(int, 0, "levels = 3: N2 inner replicas of the ultrafast reactions per "
                                        "middle step (0: ceil(1/lambda2))", min=0),
            "ultrafast_averaging_time": Field(float, 0.0, "levels = 3: T_f2 (0: eps2(z)/lambda2, every middle "
                                              "step)", min=0.0),
            "ultrafast_burn_in": Field(float, 0.0, "levels = 3: T_02, inner time discarded before averaging",
                                       min=0.0),
            "ultrafast_tolerance": Field(float, 0.0, "levels = 3: lambda2 of N2 and T_f2 (0: nested.tolerance)",
                                         min=0.0),
            "reuse_averages": Field(bool, True, "levels = 2: reuse the averaged slow rates while slow jumps "
                                    "leave every species of the fast reactions unchanged (docs/ssa.md)"),
        },
        "output": {  # the runtime's output keys (plots) and the observables
            **RUNTIME_SCHEMA["output"],
            "species": Field(list, [], "observables for statistics, histograms and plots: species "
                             "names or sums such as \"S3 + S4\" (default: every species)",
                             item_type=str, physics=False),
        },
    }

    def __init__(self, config, comm, timers) -> None:
        super().__init__(config, comm, timers)
        self.network, self.model_digest = load_model(config, comm)
        net = self.network
        self.method = config["ensemble.method"]
        self.times = np.concatenate(([0.0], sample_times(config)))
        self.n_traj = config["ensemble.trajectories"]
        nested = config.section("nested")
        if self.method == "nested" and (nested["replicas"] == 0 or nested["averaging_time"] == 0) \
                and nested["tolerance"] == 0:
            which = "replicas" if nested["replicas"] == 0 else "averaging_time"
            raise ConfigError(f"config key nested.tolerance must be > 0 when nested.{which} is 0 "
                              f"(derived from the tolerance); set one of them")
        levels = nested["levels"]
        if levels == 2:
            for key, default in ULTRAFAST_KEYS.items():
                if nested[key] != default:
                    raise ConfigError(f"config key nested.{key} applies only with nested.levels = 3 "
                                      f"(levels is 2)")
        lambda2 = nested["ultrafast_tolerance"] or nested["tolerance"]
        if self.method == "nested" and levels == 3 and lambda2 == 0 and \
                (nested["ultrafast_replicas"] == 0 or nested["ultrafast_averaging_time"] == 0):
            which = "ultrafast_replicas" if nested["ultrafast_replicas"] == 0 else "ultrafast_averaging_time"
            raise ConfigError(f"config key nested.ultrafast_tolerance must be > 0 when nested.{which} is 0 "
                              f"and nested.tolerance is 0 (derived from the tolerance); set one of them")
        self.params = NestedParameters(
            replicas=nested["replicas"], averaging_time=nested["averaging_time"], burn_in=nested["burn_in"],
            tolerance=nested["tolerance"] if nested["tolerance"] > 0 else 1.0,
            partition=nested["partition"], partition_ratio=nested["partition_ratio"],
            engine=config["ensemble.engine"], max_events=config["ensemble.max_events"], levels=levels,
            ultrafast_replicas=nested["ultrafast_replicas"],
            ultrafast_averaging_time=nested["ultrafast_averaging_time"],
            ultrafast_burn_in=nested["ultrafast_burn_in"],
            ultrafast_tolerance=lambda2 if lambda2 > 0 else 1.0, reuse_averages=nested["reuse_averages"])
        if self.method == "nested":  # N and N2 size arrays in the kernels (and farm rounds)
            for n_used, key, source in ((self.params.n_replicas, "replicas", "tolerance"),
                                        (self.params.n_ultrafast_replicas if levels == 3 else 1,
                                         "ultrafast_replicas", "ultrafast_tolerance")):
                if n_used > MAX_REPLICAS:
                    which = key if nested[key] else f"{source} (N = ceil(1/lambda))"
                    raise ConfigError(f"config key nested.{which} gives {n_used} replicas per step, above "
                                      f"{MAX_REPLICAS}")
        if self.method == "nested" and nested["partition"] == "model" and not net.fast.any():
            raise ConfigError(f"config key nested.partition = \"model\" but {resolve_model_path(config)} marks "
                              "no reaction fast (add fast = true, or use partition = \"auto\")")
        if self.method == "nested" and levels == 3 and nested["partition"] == "model":
            for lvl, what, how in ((ULTRAFAST, "ultrafast", "level = 2"), (FAST, "fast at level 1", "fast = true")):
                if not (net.level == lvl).any():
                    raise ConfigError(f"config key nested.levels = 3 but {resolve_model_path(config)} marks no "
                                      f"reaction {what} (add {how}, use levels = 2, or partition = \"auto\")")
        try:
            self.runner = WindowRunner(net, self.method, self.params)
        except UnboundedFastError as exc:
            raise ConfigError(f"config key nested.partition = \"model\": {resolve_model_path(config)}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"config section [nested]: {exc}") from None
        parallel = config["ensemble.parallel"]
        self.replica_mode = self.method == "nested" and (
            parallel == "replicas" or (parallel == "auto" and self.n_traj < comm.size and self.params.n_replicas > 1))
        self.rounds = None
        if self.replica_mode:  # collective: every rank takes the same decision
            self.rounds = ReplicaRounds(self.runner, Farm(comm, mode=config["farm.mode"],
                                                          min_chunk=config["farm.min_chunk"]))
        names = list(config["output.species"]) or list(net.species)
        self.observables: dict[str, np.ndarray] = {}
        for name in names:
            try:
                self.observables[" ".join(name.split())] = observable_weights(net, name)
            except ValueError as exc:
                raise ConfigError(f"config key output.species: {exc}") from None
        ns = net.n_species
        self.task_dtype = np.dtype([("task_id", "i8"), ("cost", "f8"), ("x", "i8", (ns,))])
        self.result_dtype = np.dtype([("x", "i8", (ns,)), ("counters", "i8", (len(COUNTERS),)),
                                      ("cpu", "f8")])
        self.state_dtype = np.dtype([("x", "i8", (ns,)), ("counters", "i8", (len(COUNTERS),)),
                                     ("cpu", "f8")])
        p, r = comm.size, comm.rank
        self.lo, self.hi = self.n_traj * r // p, self.n_traj * (r + 1) // p
        self._check_time_resolution(config)
        # the per-trajectory arrays are made by initialize / load_checkpoint, after the runner
        # has compared memory_estimate() with the node's memory
        self.state = self.samples = self.cost = None
        self.step = 0

    def _allocate(self) -> None:
        n_local, k1, ns = self.hi - self.lo, self.times.size, self.network.n_species
        try:
            self.state = np.zeros(n_local, dtype=self.state_dtype)
            self.samples = np.zeros((n_local, k1, ns), dtype=np.int64)
            self.cost = np.ones(n_local)
        except MemoryError:  # this rank only: the abort path (exit 2) keeps the others from waiting
            self.state = self.samples = self.cost = None
            raise ConfigError(f"config key ensemble.trajectories = {self.n_traj}: this rank cannot allocate its "
                              f"{n_local} trajectories x {k1} samples x {ns} species (memory estimate "
                              f"{self.memory_estimate() / 2**30:.3g} GiB)", collective=False) from None

    def _check_time_resolution(self, config) -> None:
        """Refuse, before any micro work, a run whose SSA clock cannot reach its end: reactions
        whose reactants no reaction consumes keep at least their initial propensity, so over
        a span T they need at least a_min T events; beyond :data:`~hmmpar.micro.ssa.direct.STALL_EVENTS`
        the time step is below the float64 resolution of t and the kernels would stop with
        ``STALLED`` after that many events (hours to days). Checked for the direct method
        over t_end, and with the model partition for the slow reactions over t_end and the
        fast ones over a fixed burn_in + averaging_time."""
        net, p = self.network, self.params
        spans = []
        if self.method == "direct":
            spans.append((np.ones(net.n_reactions, dtype=bool), float(self.times[-1]), "ensemble.t_end"))
        elif p.partition == "model":
            slow = net.level == SLOW if p.levels == 3 else ~net.fast
            spans.append((slow, float(self.times[-1]), "ensemble.t_end"))
            if p.averaging_time > 0:
                fast = net.level == FAST if p.levels == 3 else net.fast
                spans.append((fast, p.burn_in + p.averaging_time, "nested.averaging_time"))
        for among, span, key in spans:
            floor, which = persistent_rate(net, among)
            if floor * span > STALL_EVENTS:
                names = ", ".join(net.reactions[j].label(j) for j in which[:3]) + (", ..." if len(which) > 3 else "")
                raise ConfigError(
                    f"config key {key}: {resolve_model_path(config)}: no reaction consumes the reactants of "
                    f"{names}, so their total propensity stays >= {floor:.3g} and a span of {span:g} needs more than "
                    f"{floor * span:.3g} SSA events, beyond the float64 resolution of the time (2^42 = 4.4e12 "
                    "events); shorten the span or lower the rates")

    memory_keys = ("ensemble.trajectories", "ensemble.samples", "the species of model.file", "nested.replicas")

    def memory_estimate(self) -> int:
        """Bytes this rank allocates at its peak, from the config alone (nothing is allocated).

        Per trajectory of this rank: its state row, its samples (t_0..t_K) x species, its cost;
        a copy of both for a checkpoint; its task and result rows (twice each: the farm's
        buffers). In replica mode, per trajectory the round's bookkeeping (levels, factors,
        N replica end states) and its N replica task and result rows. Per call of the window
        kernel: N replica end states and integrals (and N2 of each with three levels). Rank 0
        gathers every trajectory's samples and state for the outputs (the parts and their
        concatenation), and computes each observable (int64 and float64 moments) over them.
        """
        net, p = self.network, self.params
        ns, m, k1 = net.n_species, net.n_reactions, self.times.size
        n_local, n_all = self.hi - self.lo, self.n_traj
        per_traj = self.state_dtype.itemsize + k1 * ns * 8 + 8
        total = 2 * n_local * per_traj
        total += 2 * n_local * (self.task_dtype.itemsize + self.result_dtype.itemsize)
        n_rep = p.n_replicas if self.method == "nested" else 0
        n_rep2 = p.n_ultrafast_replicas if self.method == "nested" and p.levels == 3 else 0
        total += (n_rep + n_rep2) * (ns + m) * 8 * 2
        if self.replica_mode:
            from hmmpar.apps.ssa_replicas import replica_dtypes
            task, result = replica_dtypes(ns, m)
            rows = 2 * n_rep * (task.itemsize + result.itemsize)
            total += n_local * (n_rep * ns * 8 + m * 27 + ns + 16 * 8 + rows)
        if self.comm.rank == 0:
            total += 2 * n_all * (k1 * ns * 8 + self.state_dtype.itemsize)
            total += n_all * k1 * 8 * (len(self.observables) + 3)
        return int(total)

    # ------------------------------------------------------------------ the run
    @property
    def n_steps(self) -> int:
        return self.times.size - 1

    @property
    def sim_time(self) -> float:
        return float(self.times[self.step])

    def initialize(self) -> None:
        self._allocate()
        self.state["x"] = self.network.initial_counts
        self.samples[:, 0] = self.network.initial_counts
        self.step = 0

    def tasks(self, step: int) -> np.ndarray:
        if self.replica_mode:  # the window runs in absorb, in rounds of replica tasks
            return np.empty(0, dtype=self.task_dtype)
        rows = np.empty(self.hi - self.lo, dtype=self.task_dtype)
        rows["task_id"] = np.arange(self.lo, self.hi)
        rows["cost"] = self.cost  # seconds of the last window: longest first (schedule only)
        rows["x"] = self.state["x"]
        return rows

    def solve(self, rows: np.ndarray, ctx: TaskContext) -> np.ndarray:
        """Advance each row's trajectory over window ``ctx.step`` with its own key."""
        out = np.empty(rows.shape[0], dtype=self.result_dtype)
        keys = ctx.seeds(rows["task_id"])
        t0, t1 = float(self.times[ctx.step]), float(self.times[ctx.step + 1])
        for i in range(rows.shape[0]):
            x = rows["x"][i].copy()
            c0 = time.process_time()
            out["counters"][i] = self.runner.advance(x, t0, t1, int(keys[i]))
            out["cpu"][i] = time.process_time() - c0
            out["x"][i] = x
        return out

    def absorb(self, step: int, results: np.ndarray) -> None:
        if self.replica_mode:
            results = self._replica_window(step)
        self.state["x"] = results["x"]
        self.state["counters"] += results["counters"]
        self.state["cpu"] += results["cpu"]
        self.cost = np.maximum(results["cpu"], 1e-9)
        self.samples[:, step + 1] = results["x"]
        self.step = step + 1

    def _replica_window(self, step: int) -> np.ndarray:
        """Window ``step`` with the replicas as farm tasks (collective); results as ``solve``'s."""
        ids = np.arange(self.lo, self.hi)
        seed = self.config["run.seed"]
        keys = task_seeds(seed, step, ids)
        x = self.state["x"].copy()
        busy0 = self.rounds.farm.stats.busy
        with self.timers.phase("replica_rounds"):
            counters = self.rounds.advance(x, ids, keys, float(self.times[step]), float(self.times[step + 1]),
                                           step, seed)
        out = np.zeros(ids.size, dtype=self.result_dtype)
        out["x"], out["counters"] = x, counters
        # CPU cannot be told apart per trajectory here: this rank's replica time, shared out
        out["cpu"] = (self.rounds.farm.stats.busy - busy0) / max(ids.size, 1)
        return out

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_data(self) -> dict:
        return {"tasks": {"state": Block(self.state.copy(), self.lo, self.n_traj),
                          "samples": Block(self.samples.copy(), self.lo, self.n_traj)},
                "attrs": {"step": self.step, "model_sha256": self.model_digest,
                          "species": json.dumps(list(self.network.species))}}

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        if reader.rows("tasks", "state") != self.n_traj:
            raise CheckpointError(f"checkpoint {reader.path} holds {reader.rows('tasks', 'state')} "
                                  f"trajectories, config ensemble.trajectories = {self.n_traj}")
        self._allocate()
        state = reader.read_block("tasks", "state", self.lo, self.hi)
        samples = reader.read_block("tasks", "samples", self.lo, self.hi)
        if state.dtype != self.state_dtype or samples.shape[1:] != self.samples.shape[1:]:
            raise CheckpointError(f"checkpoint {reader.path}: trajectory data do not match this model "
                                  "and sample times")
        self.state[:], self.samples[:] = state, samples
        self.cost = np.maximum(self.state["cpu"], 1e-9)
        self.step = int(reader.attrs["step"])

    # ------------------------------------------------------------------ outputs
    def _gather(self, local: np.ndarray) -> np.ndarray | None:
        parts = self.comm.gather(np.ascontiguousarray(local), root=0)
        return np.concatenate(parts) if self.comm.rank == 0 else None

    def parameters(self) -> dict:
        """The method's parameters as they apply (summary and HDF5 attributes)."""
        if self.method == "direct":
            return {"engine": self.params.engine}
        p, net = self.params, self.network
        if p.levels == 3:
            return self._parameters_three_levels()
        level = np.empty(net.n_reactions, dtype=np.int64)  # the partition the first step uses
        plan_step(2, net.initial_counts, net.level, p.partition == "auto", float(p.partition_ratio),
                  float(p.averaging_time), float(p.tolerance), net.reactants, net.rates, net.nu, level)
        fast = level >= FAST
        out = {"replicas": p.n_replicas, "burn_in": p.burn_in, "partition": p.partition,
               "engine": p.engine, "reuse_averages": p.reuse_averages}
        if p.partition == "auto":
            out["partition_ratio"] = p.partition_ratio
        if p.averaging_time > 0:
            out["averaging_time"] = p.averaging_time
        else:
            out["averaging_time"] = "eps(x)/tolerance"
            out["tolerance"] = p.tolerance
            eps0 = time_scale(net.initial_counts, fast, net.reactants, net.rates, net.nu)
            out["eps_initial"], out["averaging_time_initial"] = eps0, eps0 / p.tolerance  # for orientation
        return out

    def _parameters_three_levels(self) -> dict:
        p, net = self.params, self.network
        x0 = net.initial_counts
        level = np.empty(net.n_reactions, dtype=np.int64)
        kind, t_f0 = plan_step(3, x0, net.level, p.partition == "auto", float(p.partition_ratio),
                               float(p.averaging_time), float(p.tolerance), net.reactants, net.rates, net.nu, level)
        out = {"levels": 3, "replicas": p.n_replicas, "burn_in": p.burn_in,
               "ultrafast_replicas": p.n_ultrafast_replicas, "ultrafast_burn_in": p.ultrafast_burn_in,
               "partition": p.partition, "engine": p.engine,
               "levels_initial": [int(v) for v in level],  # 2 ultrafast, 1 fast, 0 slow at t = 0
               "step_initial": {THREE_LEVEL_STEP: "three-level", TWO_LEVEL_STEP: "two-level"}.get(int(kind), "exact")}
        if p.partition == "auto":
            out["partition_ratio"] = p.partition_ratio
        ultra = level == ULTRAFAST
        eps1 = time_scale_between(x0, level == FAST, level == SLOW, net.reactants, net.rates, net.nu) \
            if kind == THREE_LEVEL_STEP else 0.0
        eps2 = time_scale_between(x0, ultra, ~ultra, net.reactants, net.rates, net.nu) if ultra.any() else 0.0
        if p.averaging_time > 0:
            out["averaging_time"] = p.averaging_time
        else:
            out["averaging_time"] = "eps1(x)/tolerance"
            out["tolerance"] = p.tolerance
            out["eps1_initial"], out["averaging_time_initial"] = eps1, t_f0
        if p.ultrafast_averaging_time > 0:
            out["ultrafast_averaging_time"] = p.ultrafast_averaging_time
        else:
            out["ultrafast_averaging_time"] = "eps2(z)/ultrafast_tolerance"
            out["ultrafast_tolerance"] = p.ultrafast_lambda
            out["eps2_initial"] = eps2
            out["ultrafast_averaging_time_initial"] = eps2 / p.ultrafast_lambda
        return out

    def finalize(self, outdir: Path) -> dict | None:
        if self.rounds is not None:  # the replica rounds' farm time counts as micro time
            self.timers.add("micro", self.rounds.farm.stats.busy)
        rounds = self.comm.allreduce(self.rounds.rounds if self.rounds is not None else 0, op=MPI.MAX)
        samples = self._gather(self.samples)
        state = self._gather(self.state)
        if self.comm.rank != 0:
            return None
        net = self.network
        observables = {name: samples @ w for name, w in self.observables.items()}
        counters = state["counters"].sum(axis=0)
        n = self.n_traj
        params = self.parameters()
        attrs = {"app": self.name, "method": self.method, "model": net.name,
                 "model_file": str(resolve_model_path(self.config)), "trajectories": n,
                 "seed": self.config["run.seed"], "parameters": json.dumps(params)}
        ssa_output.write_h5(outdir / "ssa.h5", self.times, net.species, samples, observables, attrs)
        cpu = float(state["cpu"].sum())
        summary = {
            "app": self.name, "method": self.method, "model": net.name, "trajectories": n,
            "parallel": "replicas" if self.replica_mode else "trajectories",
            "windows": self.n_steps, "t_end": float(self.times[-1]), "parameters": params,
            "events": {"inner": int(counters[0]), "outer": int(counters[1]),
                       "per_trajectory": float(counters[:2].sum()) / n},
            "outer_steps": int(counters[2]), "partition_changes": int(counters[3]),
            "continuations": int(counters[4]), "reused_averages": int(counters[5]),
            "final": ssa_output.final_statistics(observables),
            "cpu_seconds": {"micro_total": cpu, "per_trajectory": cpu / n},
        }
        if self.replica_mode:
            summary["replica_rounds"] = rounds
        if self.method == "direct":
            summary["events"] = {"direct": int(counters[1]), "per_trajectory": float(counters[1]) / n}
            for key in ("outer_steps", "partition_changes", "continuations", "reused_averages"):
                summary.pop(key)
        if self.config["output.plots"]:
            title = f"{net.name or 'model'}: {self.method} SSA, {n} trajectories"
            ssa_output.plot(outdir / "ssa.png", self.times, observables, title)
        return summary
