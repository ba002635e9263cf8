"""Bad input to the coarse Boussinesq model: one-line ConfigErrors naming the key."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.core.errors import ConfigError
from hmmpar.macro.boussinesq import BoussinesqParams, CoarseBoussinesq
from hmmpar.macro.boussinesq.params import check_params

CASES = [
    (dict(ra=0.0), "macro.ra"),
    (dict(ra=-1e4), "macro.ra"),
    (dict(ra=float("nan")), "macro.ra"),
    (dict(pr=0.0), "macro.pr"),
    (dict(pr=float("inf")), "macro.pr"),
    (dict(lx=-2.0), "macro.lx"),
    (dict(nx=1), "macro.nx"),
    (dict(nx=8.5), "macro.nx"),
    (dict(nz=1), "macro.nz"),
    (dict(bottom="heat"), "macro.bottom"),
    (dict(walls="slippery"), "macro.walls"),
    (dict(poisson="magic"), "macro.poisson"),
    (dict(cfl=1.5), "macro.cfl"),
    (dict(cfl=0.0), "macro.cfl"),
    (dict(ksp_rtol=1.0), "macro.ksp_rtol"),
    (dict(nx=8, bottom_profile=np.ones(7)), "macro.bottom_profile"),
    (dict(bottom_profile=lambda x: x / 0.0), "macro.bottom_profile"),
    (dict(bottom_profile=lambda x: 1 / "a"), "macro.bottom_profile"),
    (dict(bottom_amplitude="big"), "macro.bottom_amplitude"),
]


@pytest.mark.parametrize("kw, key", CASES, ids=[f"{k}-{i}" for i, (_, k) in enumerate(CASES)])
def test_bad_parameter_is_a_one_line_config_error(kw, key):
    with pytest.raises(ConfigError) as err, np.errstate(all="ignore"):
        CoarseBoussinesq(MPI.COMM_SELF, BoussinesqParams(**kw))
    msg = str(err.value)
    assert key in msg and "\n" not in msg, msg


def test_too_few_columns_for_the_ranks():
    """Every rank needs 2 columns (the stencil width): 5 columns cannot go on 3 ranks."""
    with pytest.raises(ConfigError, match=r"macro\.nx = 5 is too small for 3 ranks.*macro\.nx >= 6"):
        check_params(BoussinesqParams(nx=5), 3)
    check_params(BoussinesqParams(nx=6), 3)


def test_non_finite_source_names_its_key():
    with pytest.raises(ConfigError, match="macro.source"):
        CoarseBoussinesq(MPI.COMM_SELF, BoussinesqParams(source=float("nan")))
