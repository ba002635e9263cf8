#!/usr/bin/env python3
"""FE-HMM elliptic driver: ``mpirun -n 2 python drivers/elliptic.py [CONFIG] [hmmpar run options]``.

Without a config it runs drivers/configs/elliptic.toml.
"""
import sys
from pathlib import Path

from hmmpar.cli import main

DEFAULT = Path(__file__).resolve().parent / "configs" / "elliptic.toml"

if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        args = [str(DEFAULT)] + args
    sys.exit(main(["run"] + args))
