"""User coefficient functions (``coefficient.function = "tensor_coefficients:NAME"``) for
the tests of the coefficient value checks; numba-jittable ``f(x, y)`` of 1D arrays."""
import numpy as np


def shear_not_pd(x, y):
    """Positive diagonal, but the symmetric part [[1, 2], [2, 1]] has eigenvalues -1 and 3."""
    return np.array([[1.0, 0.0], [4.0, 1.0]])


def skew_pd(x, y):
    """Not symmetric, but the symmetric part is 2 I: positive definite (accepted)."""
    return np.array([[2.0, 5.0], [-5.0, 2.0]]) * (1.0 + 0.0 * y[0])
