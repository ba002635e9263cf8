"""Stochastic simulation of reaction networks: the network model (model.py) and its SBML import
(sbml.py), the exact direct-method engines (direct.py), the Nested SSA (nested.py) and its
keyed random streams (streams.py)."""
