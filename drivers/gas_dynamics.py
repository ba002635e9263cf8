#!/usr/bin/env python3
"""Gas dynamics driver: ``mpirun -n 2 python drivers/gas_dynamics.py [CONFIG] [hmmpar run options]``.

Without a config it runs drivers/configs/gas_dynamics.toml (Sod's shock tube, 1D);
drivers/configs/gas_dynamics_2d.toml is a 2D four-quadrant Riemann problem.
"""
import sys
from pathlib import Path

from hmmpar.cli import driver_main

if __name__ == "__main__":
    sys.exit(driver_main(Path(__file__).resolve().parent / "configs" / "gas_dynamics.toml"))
