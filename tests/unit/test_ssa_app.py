"""The ``ssa`` application's configuration: every bad input is a ConfigError naming its key."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.apps.nested_ssa import NestedSSA, observable_weights, sample_times
from hmmpar.core.config import load_config
from hmmpar.core.errors import ConfigError
from hmmpar.core.timing import Timers

MODELS = Path(__file__).resolve().parents[2] / "drivers" / "configs" / "models"


def app(tmp_path, text: str, *overrides: str) -> NestedSSA:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\napp = "ssa"\n' + text)
    return NestedSSA(load_config(cfg, overrides), MPI.COMM_SELF, Timers())


HS = f'[model]\nfile = "{MODELS / "heat_shock.toml"}"\n'

CASES = {
    "missing_model": ("[ensemble]\ntrajectories = 3\n", "config key model.file is required"),
    "bad_model_path": ('[model]\nfile = "nope.toml"\n', "config key model.file: cannot read"),
    "negative_replicas": (HS + "[nested]\nreplicas = -1\n", "config key nested.replicas must be >= 0, got -1"),
    "negative_averaging_time": (HS + "[nested]\naveraging_time = -1e-3\n",
                                "config key nested.averaging_time must be >= 0.0"),
    "no_tolerance": (HS + "[nested]\ntolerance = 0.0\nreplicas = 4\n",
                     "config key nested.tolerance must be > 0 when nested.averaging_time is 0"),
    "unknown_species": (HS + '[output]\nspecies = ["s32", "sigma32"]\n',
                        "config key output.species: unknown species 'sigma32'"),
    "bad_observable": (HS + '[output]\nspecies = ["s32 +"]\n', "config key output.species: cannot read 's32 +'"),
    "bad_sample_times": (HS + "[ensemble]\nsample_times = [1.0, 0.5]\n",
                         "config key ensemble.sample_times must be strictly increasing"),
    "bad_method": (HS + '[ensemble]\nmethod = "nestd"\n', "ensemble.method must be one of nested, direct"),
    "zero_trajectories": (HS + "[ensemble]\ntrajectories = 0\n", "config key ensemble.trajectories must be >= 1"),
    "bad_ratio": (HS + "[nested]\npartition_ratio = 2.0\n", "config key nested.partition_ratio must be <= 1.0"),
    "unknown_key": (HS + "[nested]\nreplica = 3\n", "unknown config key nested.replica"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_names_the_key(tmp_path, case):
    text, message = CASES[case]
    with pytest.raises(ConfigError) as info:
        app(tmp_path, text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_model_file_is_named_with_its_problem(tmp_path):
    model = tmp_path / "m.toml"
    model.write_text('[species]\nA = 1\n[[reactions]]\nequation = "A -> Q"\nrate = 1.0\nfast = true\n')
    with pytest.raises(ConfigError, match=r"config key model.file: .*m.toml: reaction 0 \(A -> Q\): unknown species 'Q'"):
        app(tmp_path, '[model]\nfile = "m.toml"\n')  # relative to the config file
    model.write_text('[species]\nA = 1\n[[reactions]]\nequation = "A -> 0"\nrate = 1.0\n')
    with pytest.raises(ConfigError, match="marks no reaction fast"):
        app(tmp_path, '[model]\nfile = "m.toml"\n')
    app(tmp_path, '[model]\nfile = "m.toml"\n[ensemble]\nmethod = "direct"\n')  # fine for the direct SSA


def test_sample_times_and_observables(tmp_path):
    a = app(tmp_path, HS + '[ensemble]\nt_end = 2.0\nsamples = 4\n[output]\nspecies = ["s32 + RNAP.s32", "2 DnaJ"]\n')
    assert a.times.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0] and a.n_steps == 4
    assert list(a.observables) == ["s32 + RNAP.s32", "2 DnaJ"]
    net = a.network
    w = a.observables["s32 + RNAP.s32"]
    assert w[net.species_index("s32")] == 1 and w[net.species_index("RNAP.s32")] == 1 and w.sum() == 2
    assert observable_weights(net, "2 DnaJ")[net.species_index("DnaJ")] == 2
    b = app(tmp_path, HS + "[ensemble]\nsample_times = [0.1, 0.3, 1.0]\n")
    assert b.times.tolist() == [0.0, 0.1, 0.3, 1.0]
    assert list(b.observables) == list(net.species)  # default: every species
    cfg = load_config(tmp_path / "c.toml")
    assert np.array_equal(sample_times(cfg), [0.1, 0.3, 1.0])
