#!/usr/bin/env python3
"""Superparametrization driver: ``mpirun -n 2 python drivers/superparam.py [CONFIG] [hmmpar run options]``.

Without a config it runs drivers/configs/superparam.toml: a coarse 2D Boussinesq model of
8 columns heated from below, warm in the middle and cool at the sides, with a convection
box under every column (persistent micro instances). ``--set coupling.superparam=false``
runs the coarse model alone.
"""
import sys
from pathlib import Path

from hmmpar.cli import driver_main

if __name__ == "__main__":
    sys.exit(driver_main(Path(__file__).resolve().parent / "configs" / "superparam.toml"))
