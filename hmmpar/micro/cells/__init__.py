"""FE-HMM cell problems (problem.py) and the coefficients they sample (coefficients.py)."""
