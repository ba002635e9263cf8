"""The coarse Boussinesq model (hmmpar.macro.boussinesq) on N ranks equals its run on one rank
bitwise (``poisson = "redundant"``), also across a checkpoint reloaded on another rank count.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi/test_boussinesq_mpi.py``
(N = 1, 2, 3): the reference runs on rank 0 alone (``COMM_SELF``), the run under test on
all ranks. Verdicts are broadcast from rank 0, so every rank passes or fails together.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core.errors import ConfigError
from hmmpar.macro.boussinesq import BoussinesqParams, CoarseBoussinesq

comm = MPI.COMM_WORLD

CASES = {
    "temperature_free_slip": dict(ra=1e5, pr=0.7, lx=4.0, nx=18, nz=8),
    "flux_no_slip_source": dict(ra=5e4, pr=2.0, lx=3.0, nx=13, nz=6, bottom="flux", walls="no-slip",
                                source=lambda x, z: 0.5 * np.sin(np.pi * z)),
}


def coupled_steps(m: CoarseBoussinesq, n: int) -> list[float]:
    """``n`` split steps with a stand-in coupler: relax each column towards T = 1 - z and
    damp the column velocity (a tendency computed from the column profiles, as the
    superparametrization coupler does). Returns the diagnostics of every step."""
    diag = []
    for _ in range(n):
        dt = m.stable_dt()
        m.provisional(dt)
        t, u = m.column_T(), m.column_u()
        m.add_tendency(-dt * 2.0 * (t - (1.0 - m.z_centres)), -dt * 0.5 * u)
        diag += [dt, m.heat_content(), m.boundary_heat_flux()]
    return diag


def same_on_all_ranks(verdict: bool) -> bool:
    return bool(comm.bcast(verdict, root=0))


def all_state(m: CoarseBoussinesq) -> dict:
    """Every rank's :meth:`state_local`, concatenated in column order, on every rank."""
    parts = comm.allgather(m.state_local())
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("columns", "u", "w", "T", "p")}
    out.update(time=parts[0]["time"], steps=parts[0]["steps"])
    return out


def identical(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in ("T", "u", "w", "p"))


@pytest.mark.mpi
@pytest.mark.parametrize("case", sorted(CASES))
def test_bitwise_on_any_rank_count_and_after_a_restart(case):
    params = BoussinesqParams(**CASES[case])
    n1, n2 = 40, 30
    ref = None
    if comm.rank == 0:  # uninterrupted reference on one rank
        r = CoarseBoussinesq(MPI.COMM_SELF, params)
        r.initialize(np.random.default_rng(11), amplitude=0.05)
        diag1 = coupled_steps(r, n1)
        mid = r.natural_fields()
        half = r.state_local()
        diag2 = coupled_steps(r, n2)
        ref = (diag1, mid, half, diag2, r.natural_fields())
        r.destroy()
    # the same on all ranks
    m = CoarseBoussinesq(comm, params)
    m.initialize(np.random.default_rng(11), amplitude=0.05)
    diag1 = coupled_steps(m, n1)
    mid = m.natural_fields()
    saved = all_state(m)
    diag2 = coupled_steps(m, n2)
    end = m.natural_fields()
    # the diagnostics are the same on every rank
    assert same_on_all_ranks(all(d == diag1 + diag2 for d in comm.allgather(diag1 + diag2)))
    # restart on all ranks from the one-rank reference's half-way state
    half = comm.bcast(ref[2] if comm.rank == 0 else None, root=0)
    m.load_state_local(half)
    coupled_steps(m, n2)
    restarted = m.natural_fields()
    m.destroy()
    # restart on one rank from the all-rank run's half-way state
    cross = None
    if comm.rank == 0:
        r = CoarseBoussinesq(MPI.COMM_SELF, params)
        r.load_state_local(saved)
        coupled_steps(r, n2)
        cross = r.natural_fields()
        r.destroy()
    verdict = None
    if comm.rank == 0:
        diag1_r, mid_r, _, diag2_r, end_r = ref
        verdict = (diag1 == diag1_r and diag2 == diag2_r and identical(mid, mid_r) and identical(end, end_r)
                   and identical(restarted, end_r) and identical(cross, end_r)
                   and np.abs(end_r["u"]).max() > 1.0)  # a flow, not a trivial state
    assert same_on_all_ranks(verdict)


@pytest.mark.mpi
def test_distributed_poisson_agrees_to_the_tolerance():
    """``poisson = "distributed"`` (CG + GAMG) gives a velocity divergence-free to
    rtol ||D u*||_2 and the redundant solver's trajectory to the tolerance level."""
    base = dict(ra=1e5, pr=0.7, lx=4.0, nx=18, nz=8, ksp_rtol=1e-11)
    out = {}
    for mode in ("redundant", "distributed"):
        m = CoarseBoussinesq(comm, BoussinesqParams(poisson=mode, **base))
        m.initialize(np.random.default_rng(4), amplitude=0.05)
        coupled_steps(m, 30)
        s = all_state(m)
        dstar = np.concatenate(comm.allgather(m.divergence_columns()))
        m.destroy()
        out[mode] = (s, dstar)
    a, b = out["redundant"][0], out["distributed"][0]
    scale = np.abs(a["u"]).max()
    assert scale > 1.0
    assert np.abs(a["u"] - b["u"]).max() < 1e-6 * scale
    assert np.abs(a["T"] - b["T"]).max() < 1e-8


@pytest.mark.mpi
def test_too_few_columns_is_a_config_error_on_every_rank():
    if comm.size == 1:
        pytest.skip("needs 2 or more ranks")
    with pytest.raises(ConfigError, match=r"macro\.nx"):
        CoarseBoussinesq(comm, BoussinesqParams(nx=2 * comm.size - 1))
    comm.Barrier()  # every rank got here: nobody hangs in PETSc
