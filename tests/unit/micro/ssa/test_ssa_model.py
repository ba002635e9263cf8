"""Reaction networks: parsing, the mass-action convention, the dependency graph, errors."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from hmmpar.core.rng import substream
from hmmpar.micro.rng.xoshiro import next_u64, seed_state, uniform, uniform_open0
from hmmpar.micro.ssa.model import NetworkError, Reaction, ReactionNetwork, parse_equation

MODELS = Path(__file__).resolve().parents[4] / "drivers" / "configs" / "models"


def small(**species):
    counts = {"A": 7, "B": 3, "C": 0, "D": 1}
    counts.update(species)
    return ReactionNetwork(counts, [
        Reaction.parse("0 -> A", 2.0, name="birth"),         # 0
        Reaction.parse("A -> B", 0.5),                       # 1
        Reaction.parse("A + B -> C", 0.1, fast=True),        # 2
        Reaction.parse("2 A -> C", 0.4),                     # 3
        Reaction.parse("C -> 0", 1.5),                       # 4
        Reaction.parse("D -> D + C", 0.25),                  # 5 catalytic: D unchanged
    ])


def test_parse_equation_forms():
    assert parse_equation("A + B -> C") == ((("A", 1), ("B", 1)), (("C", 1),))
    assert parse_equation("2 A -> A2") == ((("A", 2),), (("A2", 1),))
    assert parse_equation("2A->B") == parse_equation("2*A -> B") == parse_equation("A + A -> B")
    assert parse_equation("0 -> X") == ((), (("X", 1),))
    assert parse_equation("X -> ") == parse_equation("X -> ∅") == ((("X", 1),), ())
    assert parse_equation("DnaJ + Unfolded -> DnaJ.Unfolded") == \
        ((("DnaJ", 1), ("Unfolded", 1)), (("DnaJ.Unfolded", 1),))
    assert Reaction.parse("A + A -> 0", 1.0).equation == "2 A -> 0"
    for bad in ["A -> B -> C", "A + -> B", "A <-> B", "A B"]:
        with pytest.raises(ValueError):
            parse_equation(bad)


def test_arrays_of_a_small_network():
    net = small()
    assert net.species == ("A", "B", "C", "D")
    assert net.initial_counts.dtype == np.int64 and net.initial_counts.tolist() == [7, 3, 0, 1]
    assert net.reactants.tolist() == [[-1, -1], [0, -1], [0, 1], [0, 0], [2, -1], [3, -1]]
    assert net.reactant_order.tolist() == [0, 1, 2, 2, 1, 1]
    assert net.nu.dtype == np.int64
    assert net.nu.tolist() == [[1, 0, 0, 0], [-1, 1, 0, 0], [-1, -1, 1, 0], [-2, 0, 1, 0],
                               [0, 0, -1, 0], [0, 0, 1, 0]]
    for j in range(net.n_reactions):  # CSR form equals the dense rows
        row = np.zeros(net.n_species, np.int64)
        sl = slice(net.nu_ptr[j], net.nu_ptr[j + 1])
        row[net.nu_species[sl]] = net.nu_change[sl]
        assert row.tolist() == net.nu[j].tolist()
    assert net.fast_reactions.tolist() == [2] and net.slow_reactions.tolist() == [0, 1, 3, 4, 5]


def test_dependency_graph_by_hand():
    # reactant sets: 0 {}, 1 {A}, 2 {A,B}, 3 {A}, 4 {C}, 5 {D}
    # changes:       0 {A}, 1 {A,B}, 2 {A,B,C}, 3 {A,C}, 4 {C}, 5 {C}
    expected = {0: [0, 1, 2, 3], 1: [1, 2, 3], 2: [1, 2, 3, 4], 3: [1, 2, 3, 4], 4: [4], 5: [4, 5]}
    net = small()
    assert {j: net.dependents(j).tolist() for j in range(6)} == expected
    assert net.dep_ptr.tolist() == [0, 4, 7, 11, 15, 16, 18]


def test_propensity_convention_for_each_order():
    a = small().propensities()
    # 0 -> A: c;  A -> B: c A;  A + B -> C: c A B;  2 A -> C: c A (A - 1)/2;  C -> 0 with C = 0
    assert a.tolist() == [2.0, 0.5 * 7, 0.1 * 7 * 3, 0.4 * 7 * 6 / 2, 0.0, 0.25 * 1]
    assert small(A=1).propensities()[3] == 0.0 and small(A=0).propensities()[3] == 0.0
    assert small(A=2).propensities()[3] == 0.4
    big = small(A=5_000_000, B=5_000_000).propensities()
    assert big[2] == pytest.approx(0.1 * 2.5e13, rel=1e-15)
    assert big[3] == pytest.approx(0.4 * 5e6 * (5e6 - 1) / 2, rel=1e-15)


def test_model_files():
    hs = ReactionNetwork.from_toml(MODELS / "heat_shock.toml")
    assert (hs.n_species, hs.n_reactions) == (14, 17)
    assert hs.fast_reactions.tolist() == [0, 1, 2]
    i = hs.species_index("DnaJ.Unfolded")
    assert hs.initial_counts[i] == 5_000_000 and hs.initial_counts.dtype == np.int64
    assert hs.reactions[8].equation == "DNA.DnaJ + RNAP.s32 -> DnaJ + DNA.DnaJ + s32"
    # a catalytic reaction leaves its catalyst's count unchanged
    assert hs.nu[8, hs.species_index("DNA.DnaJ")] == 0
    fs = ReactionNetwork.from_toml(MODELS / "four_species.toml")
    assert fs.initial_counts.tolist() == [100, 0, 0, 0]
    assert fs.rates.tolist() == [1e5, 1e5, 1.0, 1.0, 1e5, 1e5]
    assert fs.fast.tolist() == [True, True, False, False, True, True]
    again = ReactionNetwork.from_dict(hs.to_dict())
    assert again.species == hs.species and np.array_equal(again.nu, hs.nu)
    assert np.array_equal(again.rates, hs.rates) and np.array_equal(again.fast, hs.fast)


def test_time_scale_levels(tmp_path):
    """``fast = true`` is level 1, ``level = 2`` ultrafast; the two-level fast set is level >= 1."""
    ts = ReactionNetwork.from_toml(MODELS / "three_scales.toml")
    assert ts.level.tolist() == [2, 2, 1, 1, 0, 0]
    assert ts.fast.tolist() == [True, True, True, True, False, False]
    assert ts.ultrafast_reactions.tolist() == [0, 1] and ts.slow_reactions.tolist() == [4, 5]
    assert ts.initial_counts.tolist() == [10, 10, 10, 0] and ts.rates.tolist() == [1e6, 1e6, 1e3, 1e3, 1.0, 1.0]
    assert "2 of them ultrafast" in repr(ts)
    again = ReactionNetwork.from_dict(ts.to_dict())
    assert np.array_equal(again.level, ts.level) and again.to_dict() == ts.to_dict()
    assert ts.to_dict()["reactions"][0]["level"] == 2 and ts.to_dict()["reactions"][2]["fast"] is True
    # the two-level models are unchanged: levels 0 and 1 only
    fs = ReactionNetwork.from_toml(MODELS / "four_species.toml")
    assert fs.level.tolist() == [1, 1, 0, 0, 1, 1]
    # Python API: level= sets fast; fast=True alone is level 1
    r = Reaction.parse("A -> B", 1.0, level=2)
    assert r.level == 2 and r.fast is True
    assert Reaction.parse("A -> B", 1.0, fast=True).level == 1 and Reaction.parse("A -> B", 1.0).level == 0
    net = ReactionNetwork.from_toml(_toml(tmp_path, """
[species]
A = 1
B = 0
[[reactions]]
equation = "A -> B"
rate = 1e6
fast = true
level = 2
[[reactions]]
equation = "B -> A"
rate = 1.0
level = 0
"""))
    assert net.level.tolist() == [2, 0]


@pytest.mark.parametrize("entry, message", [
    ('level = 3', r"reaction 'r' \(A -> B\): 'level' must be 0 \(slow\), 1 \(fast\) or 2 \(ultrafast\), got 3$"),
    ('level = true', r"reaction 'r' \(A -> B\): 'level' must be 0 .* got True$"),
    ('level = 1.0', r"'level' must be 0 .* got 1.0$"),
    ('fast = false\nlevel = 2', r"reaction 'r' \(A -> B\): fast = false contradicts level = 2"),
    ('fast = true\nlevel = 0', r"reaction 'r' \(A -> B\): fast = true contradicts level = 0"),
    ('levle = 2', r"reaction 0: unknown key 'levle' \(did you mean 'level'\?\)"),
])
def test_level_errors_name_the_reaction(tmp_path, entry, message):
    text = f'[species]\nA = 1\nB = 0\n[[reactions]]\nname = "r"\nequation = "A -> B"\nrate = 1.0\n{entry}\n'
    with pytest.raises(NetworkError, match=message) as info:
        ReactionNetwork.from_toml(_toml(tmp_path, text))
    assert "\n" not in str(info.value)
    with pytest.raises(NetworkError, match=r"^reaction 'x' \(A -> B\): fast = true contradicts level = 0"):
        ReactionNetwork({"A": 1, "B": 0}, [Reaction.parse("A -> B", 1.0, fast=True, level=0, name="x")])


def _toml(tmp_path, text):
    p = tmp_path / "m.toml"
    p.write_text(text)
    return p


def test_toml_format_and_its_errors(tmp_path):
    net = ReactionNetwork.from_toml(_toml(tmp_path, """
name = "iso"
[species]
"X.1" = 3
Y = 2.0
[[reactions]]
equation = "X.1 -> Y"
rate = 1
fast = true
name = "fwd"
"""))
    assert net.name == "iso" and net.species == ("X.1", "Y") and net.initial_counts.tolist() == [3, 2]
    assert net.reaction_indices(["fwd"]).tolist() == [0]
    with pytest.raises(NetworkError, match=r'must be quoted, e.g. "DNA.s32" = 1'):
        ReactionNetwork.from_toml(_toml(tmp_path, '[species]\nDNA.s32 = 1\n[[reactions]]\nequation="0 -> DNA"\nrate=1'))
    with pytest.raises(NetworkError, match=r"reaction 0: unknown key 'rte' \(did you mean 'rate'\?\)"):
        ReactionNetwork.from_toml(_toml(tmp_path, '[species]\nA = 1\n[[reactions]]\nequation="A -> 0"\nrte=1'))
    with pytest.raises(NetworkError, match=r"reaction 0 \(A -> 0\): needs 'rate'"):
        ReactionNetwork.from_toml(_toml(tmp_path, '[species]\nA = 1\n[[reactions]]\nequation="A -> 0"'))
    with pytest.raises(NetworkError, match="TOML syntax error"):
        ReactionNetwork.from_toml(_toml(tmp_path, '[species]\nA = 1\nA = 2'))
    with pytest.raises(NetworkError, match="cannot read the model file"):
        ReactionNetwork.from_toml(tmp_path / "missing.toml")


@pytest.mark.parametrize("species, equation, rate, message", [
    ({"A": 1}, "A + Q -> B", 1.0, r"^reaction 'r' \(A \+ Q -> B\): unknown species 'Q'$"),
    ({"A": 1, "B": 0}, "A + Bb -> 0", 1.0, r"unknown species 'Bb' \(did you mean 'B'\?\)"),
    ({"A": -1}, "A -> 0", 1.0, r"^species 'A': negative initial count -1$"),
    ({"A": 1.5}, "A -> 0", 1.0, r"^species 'A': the initial count must be an integer, got 1.5$"),
    ({"A": 1}, "A -> 0", -2.0, r"^reaction 'r' \(A -> 0\): the rate constant must be a finite number >= 0, got -2.0$"),
    ({"A": 1}, "A -> 0", float("nan"), r"^reaction 'r' \(A -> 0\): the rate constant .* got nan$"),
    ({"A": 1}, "0 -> 0", 1.0, r"^reaction 'r' \(0 -> 0\): a reaction needs reactants or products$"),
    ({"A": 1, "B": 1}, "A + 2 B -> 0", 1.0,
     r"^reaction 'r' \(A \+ 2 B -> 0\): 3 reactant molecules; only up to bimolecular"),
    ({"A": 1}, "3 A -> 0", 1.0, r"only up to bimolecular reactions \(2 reactant molecules\) are supported"),
])
def test_validation_errors_name_the_reaction_or_species(species, equation, rate, message):
    with pytest.raises(ValueError, match=message):
        ReactionNetwork(species, [Reaction.parse(equation, rate, name="r")])


def test_more_validation_errors():
    with pytest.raises(ValueError, match=r"^species 'A' is listed twice$"):
        ReactionNetwork([("A", 1), ("A", 2)], [Reaction.parse("A -> 0", 1.0)])
    # unnamed reactions are named by their index
    with pytest.raises(ValueError, match=r"^reaction 1 \(A -> Z\): unknown species 'Z'$"):
        ReactionNetwork({"A": 1}, [Reaction.parse("A -> 0", 1.0), Reaction.parse("A -> Z", 1.0)])
    with pytest.raises(ValueError, match=r"^reaction 'x' \(A -> 0\): the name is also used by reaction 0$"):
        ReactionNetwork({"A": 1}, [Reaction.parse("A -> 0", 1.0, name="x"), Reaction.parse("A -> 0", 1.0, name="x")])
    with pytest.raises(ValueError, match=r"^reaction 'bad' \(A \+ -> B\): cannot read the term ''"):
        Reaction.parse("A + -> B", 1.0, name="bad")
    with pytest.raises(ValueError, match=r"species '2x': a name starts with a letter"):
        ReactionNetwork({"2x": 1}, [Reaction.parse("0 -> A", 1.0)])
    with pytest.raises(ValueError, match=r"m.toml: reaction 0 \(A -> Q\): unknown species 'Q'"):
        ReactionNetwork.from_dict({"species": {"A": 1}, "reactions": [{"equation": "A -> Q", "rate": 1}]},
                                  source="m.toml")
    net = small()
    with pytest.raises(ValueError, match="unknown reaction name 'brith' \\(did you mean 'birth'\\?\\)"):
        net.reaction_indices(["brith"])
    with pytest.raises(ValueError, match="reaction index 9 is not in 0..5"):
        net.reaction_indices([9])
    with pytest.raises(ValueError, match=r"reaction 1 \(A -> B\) is selected twice"):
        net.reaction_indices([1, 1])


def test_sbml_import_needs_libsbml_or_reads_mass_action(tmp_path):
    if importlib.util.find_spec("libsbml") is None:
        with pytest.raises(ImportError, match="pip install python-libsbml"):
            ReactionNetwork.from_sbml(tmp_path / "x.xml")
        return
    text = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" version="1">
 <model id="dimer">
  <listOfCompartments><compartment id="cell" size="1" constant="true"/></listOfCompartments>
  <listOfSpecies>
   <species id="A" compartment="cell" initialAmount="30" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false"/>
   <species id="B" compartment="cell" initialAmount="0" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false"/>
  </listOfSpecies>
  <listOfParameters><parameter id="k1" value="0.3" constant="true"/></listOfParameters>
  <listOfReactions>
   <reaction id="dim" reversible="false" fast="true">
    <listOfReactants><speciesReference species="A" stoichiometry="2" constant="true"/></listOfReactants>
    <listOfProducts><speciesReference species="B" stoichiometry="1" constant="true"/></listOfProducts>
    <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML">
      <apply><times/><ci>k1</ci><ci>A</ci><ci>A</ci></apply></math></kineticLaw>
   </reaction>
   <reaction id="split" reversible="false" fast="false">
    <listOfReactants><speciesReference species="B" stoichiometry="1" constant="true"/></listOfReactants>
    <listOfProducts><speciesReference species="A" stoichiometry="2" constant="true"/></listOfProducts>
    <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML">
      <apply><times/><ci>k2</ci><ci>B</ci></apply></math>
     <listOfLocalParameters><localParameter id="k2" value="2.5"/></listOfLocalParameters></kineticLaw>
   </reaction>
  </listOfReactions>
 </model>
</sbml>"""
    (tmp_path / "d.xml").write_text(text)
    net = ReactionNetwork.from_sbml(tmp_path / "d.xml")
    assert net.species == ("A", "B") and net.initial_counts.tolist() == [30, 0]
    assert [r.equation for r in net.reactions] == ["2 A -> B", "B -> 2 A"]
    assert net.rates.tolist() == [0.6, 2.5] and net.fast.tolist() == [True, False]  # k A^2 read as c A (A - 1)/2 with c = 2 k
    (tmp_path / "bad.xml").write_text(text.replace("<ci>A</ci><ci>A</ci>", "<ci>A</ci><ci>B</ci>"))
    with pytest.raises(NetworkError, match=r"reaction 'dim' \(2 A -> B\): kinetic law .* is not mass action"):
        ReactionNetwork.from_sbml(tmp_path / "bad.xml")
    (tmp_path / "rev.xml").write_text(text.replace('reversible="false" fast="true"', 'reversible="true" fast="true"'))
    with pytest.raises(NetworkError, match=r"reaction 'dim' \(2 A -> B\): reversible reactions are not supported"):
        ReactionNetwork.from_sbml(tmp_path / "rev.xml")


def test_xoshiro_reference_vector_and_seeding():
    s = np.array([1, 2, 3, 4], dtype=np.uint64)  # reference C code, state {1, 2, 3, 4}
    assert [int(next_u64(s)) for _ in range(4)] == [11520, 0, 1509978240, 1215971899390074240]
    s = seed_state(np.random.SeedSequence(5))
    u = [uniform(s) for _ in range(1000)] + [uniform_open0(s) for _ in range(1000)]
    assert 0.0 <= min(u) and max(u) <= 1.0 and 0.45 < np.mean(u) < 0.55
    assert np.array_equal(seed_state(np.random.SeedSequence(5)), seed_state(np.random.SeedSequence(5)))


def test_substream_is_keyed_not_counted():
    parent = np.random.SeedSequence([1, 2, 3])
    spawned = np.random.SeedSequence([1, 2, 3]).spawn(3)
    assert substream(parent, 2).generate_state(2).tolist() == spawned[2].generate_state(2).tolist()
    assert substream(substream(parent, 2), 7).spawn_key == (2, 7)
    assert substream(parent, 1).generate_state(1) != substream(parent, 2).generate_state(1)
    assert re.fullmatch(r"\d+", str(int(seed_state(substream(parent, 0))[0])))
