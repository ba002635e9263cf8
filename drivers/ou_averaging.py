#!/usr/bin/env python3
"""Averaging demo driver: ``mpirun -n 2 python drivers/ou_averaging.py [CONFIG] [hmmpar run options]``.

Without a config it runs drivers/configs/ou_averaging.toml.
"""
import sys
from pathlib import Path

from hmmpar.cli import driver_main

if __name__ == "__main__":
    sys.exit(driver_main(Path(__file__).resolve().parent / "configs" / "ou_averaging.toml"))
