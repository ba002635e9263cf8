"""Time per step of the convection micro model, and columns per second in batches.

Finite Pr (Pr = 1, Ra = 1e5, free-slip), states convecting (amplitude 0.1, 0.01 time units
first), fixed dt (1e-5 on 64 x 33, 2e-6 on 128 x 65, below the CFL limit) so that every column takes the same steps; best of 3 repeats.

    .venv/bin/python benchmarks/convection_timing.py
"""
from __future__ import annotations

import time

import numpy as np

from hmmpar.micro.convection import ConvectionModel, ConvectionParams


def per_step(nx: int, nz: int, ncol: int, steps: int = 20, scheme: str = "ars222", dt: float = 1e-5) -> float:
    m = ConvectionModel(ConvectionParams(ra=1e5, pr=1.0, aspect=2.0, nx=nx, nz=nz, dt_max=dt, scheme=scheme))
    st = m.initial_states([np.random.default_rng(i) for i in range(ncol)], amplitude=0.1)
    m.advance(st, 2 * dt)                                  # compile, build the inverses
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        d = m.advance(st, steps * dt)
        best = min(best, time.perf_counter() - t0)
        assert (d["steps"] == steps).all()
    return best / steps


def main() -> None:
    print(f"{'nx':>4} {'nz':>4} {'cols':>4} {'ms/step (batch)':>16} {'column-steps/s':>15}")
    for nx, nz in ((64, 33), (128, 65)):
        for ncol in (1, 4, 16):
            t = per_step(nx, nz, ncol, steps=20 if nx == 64 else 6, dt=1e-5 if nx == 64 else 2e-6)
            print(f"{nx:4d} {nz:4d} {ncol:4d} {1e3 * t:16.2f} {ncol / t:15.1f}", flush=True)


if __name__ == "__main__":
    main()
