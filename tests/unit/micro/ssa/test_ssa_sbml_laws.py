"""Kinetic laws of SBML models are formulas too: their cost is bounded (issue 11).

python-libsbml is not installed here, so the AST is a stand-in with libsbml's interface
(``getType``, ``getChild``, ``getNumChildren``, ``getName``, ``getInteger``, ``getReal``)."""
from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest

from hmmpar.micro.ssa.model import NetworkError
from hmmpar.micro.ssa.sbml import _flatten_product, _power

LIB = SimpleNamespace(AST_TIMES=1, AST_REAL=2, AST_REAL_E=3, AST_RATIONAL=4, AST_INTEGER=5, AST_NAME=6,
                      AST_POWER=7, AST_FUNCTION_POWER=8, AST_PLUS=9, formulaToL3String=lambda node: "law")


class Node:
    def __init__(self, kind: int, *children: "Node", name: str = "", value: float = 0.0) -> None:
        self.kind, self.children, self.name, self.value = kind, children, name, value

    def getType(self):
        return self.kind

    def getChild(self, i):
        return self.children[i]

    def getNumChildren(self):
        return len(self.children)

    def getName(self):
        return self.name

    def getInteger(self):
        return int(self.value)

    def getReal(self):
        return float(self.value)


def name(n: str) -> Node:
    return Node(LIB.AST_NAME, name=n)


def test_a_huge_power_is_one_factor_and_costs_nothing():
    law = Node(LIB.AST_TIMES, name("k"), Node(LIB.AST_POWER, name("A"), Node(LIB.AST_INTEGER, value=10**9)))
    out: list = []
    t0 = time.process_time()
    _flatten_product(LIB, law, out, "m.xml", "reaction 'r'")
    assert time.process_time() - t0 < 0.1
    assert out == [("k", 1), ("A", 10**9)]


def test_a_deeply_nested_product_does_not_recurse():
    law = name("A")
    for _ in range(100_000):  # ((((A * 2) * 2) * 2) ...): Python's recursion limit is 1000
        law = Node(LIB.AST_TIMES, law, Node(LIB.AST_INTEGER, value=2))
    out: list = []
    _flatten_product(LIB, law, out, "m.xml", "reaction 'r'")
    assert out[0] == ("A", 1) and out[1:] == [2.0] * 100_000


def test_a_law_that_is_not_a_product_is_named():
    with pytest.raises(NetworkError, match=r"^m.xml: reaction 'r': kinetic law 'law' is not a product"):
        _flatten_product(LIB, Node(LIB.AST_PLUS, name("A"), name("B")), [], "m.xml", "reaction 'r'")


def test_parameter_powers_overflow_to_inf_not_an_exception():
    assert _power(10.0, 400) == math.inf
    assert _power(-10.0, 401) == -math.inf
    assert _power(0.5, 10**9) == 0.0
    assert _power(3.0, 4) == 81.0
