"""A column's trajectory is bitwise the same alone or in any batch, in any order, and after a
round trip of its state through the structured dtype; blow-ups name the column and the time."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.micro.convection import ConvectionBlowUp, ConvectionModel, ConvectionParams


def _bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


@pytest.mark.parametrize("pr, walls, bottom", [(1.0, "no-slip", "temperature"), (math.inf, "free-slip", "flux")])
def test_column_alone_equals_column_in_a_batch(pr, walls, bottom):
    # three columns with different perturbations and bottom values: they take different steps
    m = ConvectionModel(ConvectionParams(ra=2e4, pr=pr, aspect=2.0, nx=16, nz=19, walls=walls, bottom=bottom))
    rngs = [np.random.default_rng(s) for s in (11, 12, 13)]
    batch = m.initial_states(rngs, amplitude=0.2, bottom=[1.0, 1.3, 0.8])
    alone = batch[1:2].copy()
    reversed_ = batch[::-1].copy()
    fT = np.outer([0.0, 0.5, -0.2], np.sin(np.pi * m.z))
    fU = np.outer([0.0, 3.0, 1.0], np.ones(m.nz)) if math.isfinite(pr) else None
    for _ in range(3):
        db = m.advance(batch, 0.01, forcing_T=fT, forcing_U=fU)
        da = m.advance(alone, 0.01, forcing_T=fT[1:2], forcing_U=None if fU is None else fU[1:2])
        dr = m.advance(reversed_, 0.01, forcing_T=fT[::-1], forcing_U=None if fU is None else fU[::-1])
        assert _bytes(batch[1:2]) == _bytes(alone) == _bytes(reversed_[1:2])
        assert _bytes(db[1:2]) == _bytes(da) == _bytes(dr[1:2])
    assert len(set(db["steps"])) > 1 or len(set(db["dt"])) > 1, "the columns should step differently"
    assert db["vrms"][1] > 1.0, "convection has started (the test exercises the nonlinear terms)"


def test_state_round_trip_through_the_dtype_continues_bitwise():
    m = ConvectionModel(ConvectionParams(ra=2e4, pr=7.0, aspect=2.0, nx=16, nz=19))
    states = m.initial_states([np.random.default_rng(5), np.random.default_rng(6)], amplitude=0.3)
    m.advance(states, 0.02)
    raw = states.tobytes()
    copied = np.frombuffer(raw, dtype=m.state_dtype).copy()          # e.g. a checkpoint or an MPI message
    other = ConvectionModel(ConvectionParams(ra=2e4, pr=7.0, aspect=2.0, nx=16, nz=19))   # e.g. another rank
    d1 = m.advance(states, 0.02)
    d2 = other.advance(copied, 0.02)
    assert _bytes(states) == _bytes(copied)
    assert _bytes(d1) == _bytes(d2)
    assert m.state_dtype.hasobject is False


def test_nan_in_one_column_names_the_column_and_the_time():
    m = ConvectionModel(ConvectionParams(ra=1e4, pr=1.0, aspect=2.0, nx=16, nz=17))
    states = m.initial_states([np.random.default_rng(s) for s in range(4)])
    m.advance(states, 0.01)
    states["T"][2, 5, 3] = np.nan
    with pytest.raises(ConvectionBlowUp) as err:
        m.advance(states, 0.01)
    assert err.value.column == 2 and err.value.time == pytest.approx(0.01, abs=1e-15)
    assert str(err.value) == "convection column 2 blew up at t = 0.01 (NaN in T)"
    assert err.value.collective is False


def test_inf_in_vorticity_and_a_blow_up_during_the_call():
    m = ConvectionModel(ConvectionParams(ra=1e4, pr=1.0, aspect=2.0, nx=16, nz=17))
    states = m.initial_states([np.random.default_rng(s) for s in range(3)])
    states["omega"][1, 4, 2] = np.inf
    with pytest.raises(ConvectionBlowUp, match=r"^convection column 1 blew up at t = 0 \(Inf in omega\)$"):
        m.advance(states, 0.01)
    # a time step far beyond the explicit stability limit: the column blows up (NaN/Inf or a
    # collapsing step) and the error is raised during the call, at a time after its start
    m = ConvectionModel(ConvectionParams(ra=1e6, pr=1.0, aspect=2.0, nx=16, nz=36, dt_max=0.05, cfl=1.0))
    states = m.initial_states([np.random.default_rng(0)], amplitude=0.5)
    with pytest.raises(ConvectionBlowUp) as err:
        m.advance(states, 50.0)
    assert err.value.column == 0 and 0 < err.value.time < 50.0
    assert str(err.value).startswith("convection column 0 blew up at t = ")



def test_a_batch_of_boxes_with_their_own_steps_keeps_its_inverses(monkeypatch):
    """Eight convecting boxes of different vigour, each advanced by the same coupling step
    1e-3, take 1e-3 / n with their own n (4 to 7 here): the default cache keeps the
    inverses of all of them, where an LRU of 4 rebuilt them at most stages. The cache
    changes no bit of the trajectory."""
    from hmmpar.micro.convection import operators
    real = operators.folded_inverse
    built = []
    monkeypatch.setattr(operators, "folded_inverse", lambda *a, **k: built.append(1) or real(*a, **k))
    out = {}
    for size in (None, 4):
        m = ConvectionModel(ConvectionParams(ra=1e5, pr=1.0, aspect=1.0, nx=16, nz=25, walls="no-slip"))
        if size:
            m.ops.cache_size = size
        states = m.initial_states([np.random.default_rng(s) for s in range(8)], amplitude=0.3,
                                  bottom=np.linspace(0.6, 1.4, 8))
        for _ in range(30):                      # spin-up into convection
            m.advance(states, 1e-3)
        built.clear()
        steps = set()
        for _ in range(20):
            steps.update(m.advance(states, 1e-3)["steps"].tolist())
        out[size] = (len(built), _bytes(states))
    assert len(steps) > 4, steps                  # more distinct steps than an LRU of 4 holds
    assert out[4][0] > 100 and out[None][0] < 0.05 * out[4][0], (out[None][0], out[4][0])
    assert out[None][1] == out[4][1]
