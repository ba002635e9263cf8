#!/usr/bin/env python3
"""Nested SSA driver: ``mpirun -n 2 python drivers/ssa.py [CONFIG] [hmmpar run options]``.

Without a config it runs drivers/configs/ssa_heat_shock.toml; the four-species example
is drivers/configs/ssa_four_species.toml. ``--set ensemble.method=\\"direct\\"`` runs the
exact SSA reference through the same application.
"""
import sys
from pathlib import Path

from hmmpar.cli import driver_main

if __name__ == "__main__":
    sys.exit(driver_main(Path(__file__).resolve().parent / "configs" / "ssa_heat_shock.toml"))
