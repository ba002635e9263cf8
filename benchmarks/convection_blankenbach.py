"""Blankenbach et al. (1989) case 1a on a ladder of grids: the convergence table of docs/convection.md.

Pr = inf, free-slip, Ra = 1e4, a periodic box of width 2 (the unit-aspect cell and its
mirror image), started from T = 1 - z + 0.1 cos(pi x) sin(pi z) and run until Nu and Vrms
change by less than 1e-11 (relative) over 0.05 diffusion times.

    .venv/bin/python benchmarks/convection_blankenbach.py [nx:nz ...]
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from hmmpar.micro.convection import ConvectionModel, ConvectionParams

NU_REF, VRMS_REF = 4.884409, 42.864947


def steady_case_1a(nx: int, nz: int, scheme: str = "ars222", t_max: float = 3.0):
    m = ConvectionModel(ConvectionParams(ra=1e4, pr=math.inf, aspect=2.0, nx=nx, nz=nz, scheme=scheme))
    st = m.initial_states([np.random.default_rng(0)], amplitude=0.0)
    x, z = np.meshgrid(m.x, m.z)
    st["T"][0] = m._rfft(1.0 - z + 0.1 * np.cos(np.pi * x) * np.sin(np.pi * z))
    old = None
    steps = 0
    while st["t"][0] < t_max:
        d = m.advance(st, 0.05)
        steps += int(d["steps"][0])
        new = np.array([d["nu_top"][0], d["vrms"][0]])
        if old is not None and np.all(np.abs(new - old) < 1e-11 * np.abs(new)):
            break
        old = new
    return d, steps


def main(argv: list[str]) -> None:
    grids = [tuple(int(v) for v in a.split(":")) for a in argv] or [
        (16, 17), (24, 17), (32, 17), (32, 25), (48, 25), (48, 33), (64, 33), (96, 49)]
    print(f"{'nx':>4} {'nz':>4} {'t':>6} {'steps':>6} {'Nu(top)':>12} {'rel err':>9} {'Nu(vol)':>12} "
          f"{'rel err':>9} {'Vrms':>12} {'rel err':>9} {'s/step':>8}")
    for nx, nz in grids:
        t0 = time.perf_counter()
        d, steps = steady_case_1a(nx, nz)
        el = time.perf_counter() - t0
        nu, nuv, v = d["nu_top"][0], d["nu_volume"][0], d["vrms"][0]
        print(f"{nx:4d} {nz:4d} {d['t'][0]:6.2f} {steps:6d} {nu:12.7f} {nu / NU_REF - 1:9.1e} {nuv:12.7f} "
              f"{nuv / NU_REF - 1:9.1e} {v:12.7f} {v / VRMS_REF - 1:9.1e} {el / steps:8.1e}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
