"""Random number kernels for numba code of any micro family: xoshiro256** (xoshiro.py).

The per-task keys they are seeded from come from hmmpar.core.rng."""
