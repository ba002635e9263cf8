"""The couplers' farmed coarse time-stepper over MPI: stochastic ensembles (direct and Nested
SSA replicas as farm tasks) give bitwise the same restricted values on any number of ranks.

Run with ``mpirun -n N python -m pytest --with-mpi tests/mpi`` (N = 1, 2, 3): every rank
computes the reference on a one-rank farm of its own and compares it with the run on the
whole communicator.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core.farm import Farm
from hmmpar.couplers.farmed import FarmedStepper
from hmmpar.couplers.nested_ssa_stepper import NestedSSAEnsembleStepper
from hmmpar.couplers.ssa_stepper import SSAEnsembleStepper, projective_fit_step
from hmmpar.micro.ssa.model import Reaction, ReactionNetwork
from hmmpar.micro.ssa.nested import NestedParameters

comm = MPI.COMM_WORLD
MODELS = Path(__file__).resolve().parents[2] / "drivers" / "configs" / "models"


def steppers():
    bd = ReactionNetwork({"A": 0}, [Reaction.parse("0 -> A", 200.0), Reaction.parse("A -> 0", 1.0)])
    four = ReactionNetwork.from_toml(MODELS / "four_species.toml")
    return {"direct": (lambda: SSAEnsembleStepper(bd, 37, 0.01, seed=3), np.array([[0.0], [120.0]])),
            "nested": (lambda: NestedSSAEnsembleStepper(four, [["S1", "S2"], ["S3", "S4"]], 11, 0.05,
                                                         NestedParameters(tolerance=0.2), seed=3),
                       np.array([[100.0, 0.0], [40.0, 60.0]]))}


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["direct", "nested"])
def test_farmed_ensemble_is_bitwise_the_one_rank_run(name):
    make, U0 = steppers()[name]
    here = FarmedStepper(make(), Farm(comm), seed=11)
    alone = FarmedStepper(make(), Farm(MPI.COMM_SELF), seed=11)
    U_here, U_alone = U0.copy(), U0.copy()
    for n in range(3):  # three outer steps: lifting and farm-call counters advance alike
        U_here = projective_fit_step(here, U_here, 0.0, 4, 6.0, 3)
        U_alone = projective_fit_step(alone, U_alone, 0.0, 4, 6.0, 3)
    assert U_here.tobytes() == U_alone.tobytes()
    assert here.unit_steps == alone.unit_steps == 3 * 5 * U0.shape[0] * here.stepper.R
    assert np.all(np.isfinite(U_here)) and not np.array_equal(U_here, U0)


@pytest.mark.mpi
def test_convection_columns_with_lifting_memory_are_bitwise_the_serial_run():
    """Convection columns above onset (Ra = 2 Ra_c) lifting with memory: the farm hands the
    gathered evolved columns to every rank's stepper (FarmedStepper.window_values ->
    remember), so projective Euler over the whole communicator is bitwise the serial
    projective_euler of ConvectionStepper, and the memory is the same on every rank."""
    import math

    from hmmpar.couplers import projective_euler
    from hmmpar.couplers.convection_stepper import ConvectionStepper
    from hmmpar.micro.convection import RA_C_FREE_SLIP, ConvectionParams
    p = ConvectionParams(ra=2 * RA_C_FREE_SLIP, aspect=2 * math.sqrt(2), nx=16, nz=17, dt_max=0.0025)

    def make():
        return ConvectionStepper(p, 0.01, seed=3, amplitude=1e-2)
    z = make().model.z
    U0 = (1 - z)[None, :] + np.array([0.1, -0.05, 0.0, 0.02])[:, None] * np.sin(np.pi * z)[None, :]
    here = FarmedStepper(make(), Farm(comm), seed=11)
    serial = make()
    U_here = projective_euler(here, U0, 0.0, 3, 2, 5.0).U
    U_serial = projective_euler(serial, U0, 0.0, 3, 2, 5.0).U
    assert U_here.tobytes() == U_serial.tobytes()
    assert here.stepper.memory_state().tobytes() == serial.memory_state().tobytes()
    assert comm.allgather(U_here.tobytes()) == [U_here.tobytes()] * comm.size
    assert here.unit_steps == 3 * 3 * U0.shape[0]
    assert np.abs(U_here[-1] - U0).max() > 1e-3
