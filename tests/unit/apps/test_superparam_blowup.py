"""A box that goes bad names its column and the time, never a silent NaN (issue 13, bad input)."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.apps.superparam import Superparam
from hmmpar.core.config import load_config
from hmmpar.core.errors import ConfigError, HmmparError
from hmmpar.core.timing import Timers

SMALL = ["micro.nx=16", "micro.nz=19", "model.ra=2e4", "macro.t_end=0.001", "output.plots=false"]


def app(tmp_path, *overrides: str) -> Superparam:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[run]\napp = "superparam"\noutput_dir = "{tmp_path / "out"}"\n')
    return Superparam(load_config(cfg, [*SMALL, *overrides]), MPI.COMM_SELF, Timers())


def test_nan_in_one_box_names_the_column_and_the_time(tmp_path):
    a = app(tmp_path)
    a.initialize()
    a.advance(0)  # one clean step: t = 2e-4
    ids = a.pool.ids
    row = int(np.nonzero(ids == 5)[0][0])
    a.pool.states["T"][row, 3, 2] = np.nan
    with pytest.raises(HmmparError, match=r"column 5 blew up at t = 0\.0002 \(NaN in T\)$"):
        a.advance(1)


def test_a_box_that_cannot_resolve_its_boundary_layer_is_refused_before_any_work(tmp_path):
    # Ra = 1e6: delta = 1/(2 Nu_est) = 0.0185; 19 Chebyshev levels put 1 point inside it
    with pytest.raises(ConfigError, match=r"^micro\.nz: 19 points do not resolve the thermal boundary layer "
                                          r"at Ra = 1e\+06 .*use nz >= \d+$"):
        app(tmp_path, "model.ra=1e6")
