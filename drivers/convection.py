#!/usr/bin/env python3
"""Convection driver: ``mpirun -n 2 python drivers/convection.py [CONFIG] [hmmpar run options]``.

Without a config it runs drivers/configs/convection.toml: Blankenbach et al.'s case 1a
(Ra = 1e4, infinite Prandtl number, free-slip walls), run to its steady state; summary.json
holds the Nusselt numbers and Vrms against the published values. One box is one micro
instance, so a second rank only waits: this is the micro model of superparametrization
run alone.
"""
import sys
from pathlib import Path

from hmmpar.cli import driver_main

if __name__ == "__main__":
    sys.exit(driver_main(Path(__file__).resolve().parent / "configs" / "convection.toml"))
