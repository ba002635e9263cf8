"""The LAMMPS engine under MPI: one LAMMPS instance per rank on COMM_SELF, reused, and a
box's result independent of the rank that runs it.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi/test_lammps_mpi.py``
(N = 1, 2, 3). Every rank runs the same two boxes (two seeds) and then a box of its own;
the first two must be bitwise equal on all ranks (LAMMPS on ``COMM_SELF`` is deterministic
and does not talk to the other ranks), and each rank must have created exactly one
instance. Verdicts are gathered and broadcast from rank 0, so every rank passes or fails
together.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

pytest.importorskip("lammps", reason="python3-lammps is not installed (make setup installs it)")

from hmmpar.micro.md import lammps_engine as le  # noqa: E402
from hmmpar.micro.md.potentials import make_potential  # noqa: E402

comm = MPI.COMM_WORLD


@pytest.mark.mpi
def test_one_instance_per_rank_and_rank_independent_results():
    le.close_instance()
    created = le.instance_stats()["created"]
    le.check_available()
    pot = make_potential("lj", cutoff=2.5, shift=True)
    rho, e = 0.5, 0.6

    def box(seed):
        r = le.constrained_box_lammps(rho, np.zeros(3), rho * e, pot, 108, np.random.default_rng(seed),
                                      t_equilibrate=0.25, t_sample=0.5, sample_every=5)
        return np.concatenate([r.momentum_flux.ravel(), r.energy_flux, [r.pressure, r.potential_energy]])

    shared = np.stack([box(1), box(2)])
    own = box(100 + comm.rank)
    instances = le.instance_stats()["created"] - created
    le.close_instance()
    everything = comm.gather((shared, own, instances), root=0)
    verdict = None
    if comm.rank == 0:
        problems = [f"rank {r}: {n} instances" for r, (_, _, n) in enumerate(everything) if n != 1]
        problems += [f"rank {r}: shared boxes differ from rank 0" for r, (s, _, _) in enumerate(everything)
                     if not np.array_equal(s, everything[0][0])]
        problems += [f"rank {r}: non-finite own box" for r, (_, o, _) in enumerate(everything)
                     if not np.all(np.isfinite(o))]
        verdict = "; ".join(problems)
    verdict = comm.bcast(verdict, root=0)
    assert not verdict, verdict
