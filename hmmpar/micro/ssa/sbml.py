"""SBML import for :class:`~hmmpar.micro.ssa.model.ReactionNetwork` (optional: python-libsbml).

Only the simple, unambiguous case is read: a model whose species are counted in molecules
and whose every reaction is irreversible with a mass-action kinetic law written as a
product of numbers, constant parameters (local or global) and exactly its reactant
species (``k * A * B``, ``k * A * A`` or ``k * A^2``, ``k``). The SBML ``fast``
attribute (Level 3 Version 1) becomes the reaction's ``fast`` flag. The law is read as the
propensity in molecule counts, so

* ``k * A`` and ``k * A * B`` give c = k;
* ``k * A * A`` (two of a kind) gives c = 2 k, because the propensity convention is
  c x_A (x_A - 1) / 2, which is k x_A^2 up to the -x_A term of the discrete count.

Anything else -- reversible reactions, modifiers, compartment volumes in the law,
functions, rules, events, non-integer initial amounts -- is an error naming the reaction
or species, rather than a silent guess.
"""
from __future__ import annotations

import math
from pathlib import Path

from .model import NetworkError, Reaction, ReactionNetwork


def _libsbml():
    try:
        import libsbml
    except ImportError:
        raise ImportError("ReactionNetwork.from_sbml needs python-libsbml: "
                          "pip install python-libsbml (the 'sbml' extra of hmmpar)") from None
    return libsbml


def network_from_sbml(path: str | Path) -> ReactionNetwork:
    """Read an SBML file into a :class:`ReactionNetwork` (see the module docstring for what is supported)."""
    libsbml = _libsbml()
    from hmmpar.io.inputs import InputError, read_file
    path = Path(path)
    try:  # a regular file of bounded size (hmmpar.io.inputs), parsed from memory
        data = read_file(path, "model", "SBML file")
    except InputError as e:
        raise NetworkError(f"{path}: cannot read the SBML file ({e.reason})") from None
    doc = libsbml.readSBMLFromString(data.decode("utf-8", errors="replace"))
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        if err.getSeverity() >= libsbml.LIBSBML_SEV_ERROR:
            message = " ".join(err.getMessage().split())
            raise NetworkError(f"{path}: SBML error at line {err.getLine()}: {message}")
    model = doc.getModel()
    if model is None:
        raise NetworkError(f"{path}: the SBML document has no model")
    for what, n in (("rules", model.getNumRules()), ("events", model.getNumEvents()),
                    ("function definitions", model.getNumFunctionDefinitions())):
        if n:
            raise NetworkError(f"{path}: SBML {what} are not supported")

    species = []
    for s in model.getListOfSpecies():
        sid = s.getId()
        if s.getBoundaryCondition() or s.getConstant():
            raise NetworkError(f"{path}: species {sid!r}: boundary/constant species are not supported")
        if s.isSetInitialAmount():
            amount = s.getInitialAmount()
        elif s.isSetInitialConcentration():
            comp = model.getCompartment(s.getCompartment())
            if comp is None or not comp.isSetSize():
                raise NetworkError(f"{path}: species {sid!r}: a concentration without a compartment size")
            amount = s.getInitialConcentration() * comp.getSize()
        else:
            raise NetworkError(f"{path}: species {sid!r}: no initial amount")
        if not math.isfinite(amount) or abs(amount - round(amount)) > 1e-9 * max(1.0, abs(amount)):
            raise NetworkError(f"{path}: species {sid!r}: initial amount {amount} is not a molecule count")
        species.append((sid, int(round(amount))))

    reactions = []
    for j, r in enumerate(model.getListOfReactions()):
        rid = r.getId() or None
        reactants = _side(path, rid, r.getListOfReactants())
        products = _side(path, rid, r.getListOfProducts())
        label = Reaction(reactants, products, 0.0, name=rid).label(j)
        if r.getReversible():
            raise NetworkError(f"{path}: {label}: reversible reactions are not supported; split it in two")
        if r.getNumModifiers():
            raise NetworkError(f"{path}: {label}: modifiers are not supported (mass action only)")
        c = _mass_action_constant(libsbml, path, label, model, r, reactants)
        fast = bool(r.getFast()) if r.isSetFast() else False
        reactions.append(Reaction(reactants, products, c, fast=fast, name=rid))
    try:
        return ReactionNetwork(species, reactions, name=model.getId() or path.stem)
    except NetworkError as e:
        raise NetworkError(f"{path}: {e}") from None


def _side(path, rid, refs) -> tuple[tuple[str, int], ...]:
    out: dict[str, int] = {}
    for sr in refs:
        k = sr.getStoichiometry()
        if not math.isfinite(k):  # SBML L3 leaves it unset to mean 1
            k = 1.0
        if k <= 0 or not float(k).is_integer():
            raise NetworkError(f"{path}: reaction {rid!r}: stoichiometry {k} of {sr.getSpecies()!r} "
                               "is not a positive integer")
        out[sr.getSpecies()] = out.get(sr.getSpecies(), 0) + int(k)
    return tuple(out.items())


def _mass_action_constant(libsbml, path, label, model, reaction, reactants) -> float:
    law = reaction.getKineticLaw()
    if law is None or law.getMath() is None:
        raise NetworkError(f"{path}: {label}: no kinetic law")
    factors: list = []
    _flatten_product(libsbml, law.getMath(), factors, path, label)
    c = 1.0
    found: dict[str, int] = {}
    species_ids = {s.getId() for s in model.getListOfSpecies()}
    for f in factors:
        if isinstance(f, float):
            c *= f
            continue
        f, power = f
        if f in species_ids:
            found[f] = found.get(f, 0) + power
        else:
            p = law.getParameter(f) if law.getParameter(f) is not None else model.getParameter(f)
            if p is None and hasattr(law, "getLocalParameter"):
                p = law.getLocalParameter(f)
            if p is None or not p.isSetValue():
                what = "compartment" if model.getCompartment(f) is not None else "name"
                raise NetworkError(f"{path}: {label}: kinetic law uses {what} {f!r}, "
                                   "not a constant parameter or a reactant (mass action only)")
            c *= _power(float(p.getValue()), power)
    if found != dict(reactants):
        raise NetworkError(f"{path}: {label}: kinetic law {libsbml.formulaToL3String(law.getMath())!r} "
                           "is not mass action in its reactants")
    if len(reactants) == 1 and reactants[0][1] == 2:
        c *= 2.0  # k A^2 -> c A (A - 1) / 2
    return c


def _power(value: float, n: int) -> float:
    """``value ** n`` in floating point for any integer ``n >= 1``: inf where it overflows
    (a rate the network's checks then refuse), never Python's OverflowError."""
    try:
        return value ** n
    except OverflowError:
        return math.copysign(math.inf, value if n % 2 else 1.0)


def _flatten_product(libsbml, node, out: list, path, label) -> None:
    """Append the factors of the product ``node`` to ``out``: numbers as floats, names as
    ``(name, power)``. Iterative, so a deeply nested product cannot exhaust the stack, and
    ``A^n`` is one entry whatever ``n`` (a power of 10^9 is not 10^9 list entries)."""
    stack = [node]
    while stack:
        node = stack.pop()
        t = node.getType()
        if t == libsbml.AST_TIMES:
            stack.extend(node.getChild(i) for i in reversed(range(node.getNumChildren())))
        elif t in (libsbml.AST_REAL, libsbml.AST_REAL_E, libsbml.AST_RATIONAL):
            out.append(float(node.getReal()))
        elif t == libsbml.AST_INTEGER:
            out.append(float(node.getInteger()))
        elif t == libsbml.AST_NAME:
            out.append((node.getName(), 1))
        elif (t in (libsbml.AST_POWER, libsbml.AST_FUNCTION_POWER) and node.getChild(0).getType() == libsbml.AST_NAME
              and node.getChild(1).getType() == libsbml.AST_INTEGER and node.getChild(1).getInteger() > 0):
            out.append((node.getChild(0).getName(), int(node.getChild(1).getInteger())))
        else:
            raise NetworkError(f"{path}: {label}: kinetic law {libsbml.formulaToL3String(node)!r} is not a "
                               "product of constants and species (mass action only)")
