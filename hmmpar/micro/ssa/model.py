"""Reaction networks for the stochastic simulation algorithm: model, file formats, arrays.

A network has species S_1..S_N with integer copy numbers x_i and reactions
R_j = (a_j(x), nu_j): when R_j fires, x -> x + nu_j. Propensities follow stochastic mass
action (Gillespie, J. Comput. Phys. 22 (1976) 403; J. Phys. Chem. 81 (1977) 2340) with the
rate constant c_j of the reaction:

==========================  ==========================
reactants                   propensity a_j(x)
==========================  ==========================
none (``0 -> X``)           c
one ``A``                   c x_A
two distinct ``A + B``      c x_A x_B
two of a kind ``2 A``       c x_A (x_A - 1) / 2
==========================  ==========================

Reactions with three or more reactant molecules are rejected. Models come from TOML
(:meth:`ReactionNetwork.from_toml`), a dict (:meth:`ReactionNetwork.from_dict`), SBML
(:meth:`ReactionNetwork.from_sbml`, needs python-libsbml) or Python::

    ReactionNetwork({"A": 100, "B": 0},
                    [Reaction.parse("A -> B", 1.0, fast=True), Reaction.parse("B -> A", 2.0)])

Every problem is a one-line :class:`NetworkError` (a ``ValueError``) naming the reaction
(by name or index, with its equation) or the species at fault.

**Time-scale levels** (for the Nested SSA, :mod:`hmmpar.micro.ssa.nested`): every reaction
has a level, 0 slow (the default), 1 fast, 2 ultrafast. ``fast = true`` is level 1;
``level = 2`` marks an ultrafast reaction (``level = 1`` and ``level = 0`` are accepted
too). A reaction that gives both must make them agree: ``fast = true`` with ``level`` 1 or
2, ``fast = false`` with level 0. The two-level method treats levels 1 and 2 alike as fast
(:attr:`ReactionNetwork.fast` is ``level >= 1``); the three-level one averages level 2
inside level 1 inside level 0.
"""
from __future__ import annotations

import difflib
import math
import numbers
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numba
import numpy as np

from ...core.errors import ConfigError

#: A species name: a letter or underscore, then letters, digits, ``_`` or ``.``.
SPECIES_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_TERM = re.compile(r"(?:(\d+)\s*\*?\s*)?([A-Za-z_][A-Za-z0-9_.]*)")
_EMPTY_SIDES = {"", "0", "∅"}
_REACTION_KEYS = ("equation", "rate", "fast", "level", "name")
#: time-scale levels of a reaction (see the module docstring)
SLOW, FAST, ULTRAFAST = 0, 1, 2
LEVEL_NAMES = ("slow", "fast", "ultrafast")
_MAX_COUNT = 2 ** 62
#: the largest rate constant: with counts below 2^63 no propensity (<= c 2^126 = 8.5e287),
#: sum of up to 2^32 propensities, or integral over a time span up to 2^32 can overflow float64
MAX_RATE = 1e250


class NetworkError(ConfigError, ValueError):
    """An invalid reaction network; a one-line message naming the reaction or species."""


def _parse_side(text: str) -> tuple[tuple[str, int], ...]:
    """``"A + 2 B"`` -> ``(("A", 1), ("B", 2))``; repeated species are merged."""
    text = text.strip()
    if text in _EMPTY_SIDES:
        return ()
    merged: dict[str, int] = {}
    for term in text.split("+"):
        m = _TERM.fullmatch(term.strip())
        if m is None:
            raise ValueError(f"cannot read the term {term.strip()!r} (write '2 A' or 'A', "
                             "names start with a letter and may contain letters, digits, '_' and '.')")
        coef = int(m.group(1)) if m.group(1) else 1
        if coef <= 0:
            raise ValueError(f"coefficient of {m.group(2)!r} must be positive")
        if coef > _MAX_COUNT:
            raise ValueError(f"coefficient {m.group(1)} of {m.group(2)!r} is above 2^62")
        merged[m.group(2)] = merged.get(m.group(2), 0) + coef
    return tuple(merged.items())


def parse_equation(equation: str) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
    """Split ``"A + B -> C"`` into reactants and products, each ``((species, coefficient), ...)``.

    An empty side is written ``0``, ``∅`` or nothing. Raises ``ValueError`` (without the
    reaction's label; the caller adds it).
    """
    if "<->" in equation or "<=>" in equation:
        raise ValueError("reversible arrows are not supported; write two reactions")
    parts = equation.split("->")
    if len(parts) != 2:
        raise ValueError("an equation needs exactly one '->'")
    return _parse_side(parts[0]), _parse_side(parts[1])


def _side_text(side: Sequence[tuple[str, int]]) -> str:
    if not side:
        return "0"
    return " + ".join(name if k == 1 else f"{k} {name}" for name, k in side)


@dataclass(frozen=True)
class Reaction:
    """One reaction: reactants and products as ``((species, coefficient), ...)``.

    Parameters
    ----------
    reactants, products
        Stoichiometric coefficients by species name (each species at most once per side).
    rate
        The mass-action rate constant c (see the module docstring for the convention).
    fast
        Marks a fast reaction, for multiscale methods (Nested SSA): level 1 unless
        ``level`` says 2.
    name
        Optional; errors and results name the reaction by it.
    level
        Time-scale level: 0 slow, 1 fast, 2 ultrafast. ``None`` (the default) means 1 if
        ``fast`` else 0; a level >= 1 with the default ``fast = False`` sets ``fast``.
        ``fast = True`` with ``level = 0`` is an error (raised by the network).
    """

    reactants: tuple[tuple[str, int], ...]
    products: tuple[tuple[str, int], ...]
    rate: float
    fast: bool = False
    name: str | None = None
    level: int | None = None

    def __post_init__(self) -> None:
        flag = isinstance(self.fast, (bool, np.bool_)) and bool(self.fast)
        if self.level is None:
            object.__setattr__(self, "level", FAST if flag else SLOW)
        elif not flag and self.fast is False and _is_level(self.level) and self.level >= FAST:
            object.__setattr__(self, "fast", True)

    @classmethod
    def parse(cls, equation: str, rate: float, *, fast: bool = False, name: str | None = None,
              level: int | None = None) -> "Reaction":
        """A reaction from its equation text, e.g. ``Reaction.parse("2 A -> B", 0.5)``."""
        try:
            reactants, products = parse_equation(equation)
        except ValueError as e:
            who = f"reaction {name!r}" if name else "reaction"
            raise NetworkError(f"{who} ({equation}): {e}") from None
        return cls(reactants, products, rate, fast, name, level)

    @property
    def equation(self) -> str:
        """Canonical text, e.g. ``"A + 2 B -> C"`` (``0`` for an empty side)."""
        return f"{_side_text(self.reactants)} -> {_side_text(self.products)}"

    @property
    def order(self) -> int:
        """Number of reactant molecules (0, 1 or 2 in a valid network)."""
        return sum(k for _, k in self.reactants)

    def label(self, index: int) -> str:
        """How errors name it: ``reaction 'bind' (A + B -> C)`` or ``reaction 3 (A + B -> C)``."""
        who = repr(self.name) if self.name else str(index)
        return f"reaction {who} ({self.equation})"


class ReactionNetwork:
    """Species with initial copy numbers and mass-action reactions, validated.

    Parameters
    ----------
    species
        Initial counts by name, as a mapping or as ``(name, count)`` pairs (in order).
    reactions
        The reactions, in order; index ``j`` below is the position in this list.
    name
        Optional model name.

    Attributes
    ----------
    species : tuple of str
    initial_counts : ndarray of int64, shape (n_species,)
    reactions : tuple of Reaction
    rates : ndarray of float64, shape (n_reactions,)
    level : ndarray of int64, shape (n_reactions,)
        Time-scale level of each reaction: 0 slow, 1 fast, 2 ultrafast.
    fast : ndarray of bool, shape (n_reactions,)
        ``level >= 1``: the fast set of the two-level Nested SSA.
    reactants : ndarray of int64, shape (n_reactions, 2)
        Reactant species indices, ``-1`` for none; ``2 A`` is ``(A, A)``. Together with
        :attr:`reactant_order` this is the whole propensity table.
    reactant_order : ndarray of int64, shape (n_reactions,)
    nu : ndarray of int64, shape (n_reactions, n_species)
        Net stoichiometry: firing reaction j adds ``nu[j]`` to the state.
    nu_ptr, nu_species, nu_change : ndarray of int64
        ``nu`` in CSR form (the non-zeros of each row), what the engines use.
    dep_ptr, dep_idx : ndarray of int64
        The dependency graph in CSR form: after reaction j fires, the propensities of
        ``dep_idx[dep_ptr[j]:dep_ptr[j+1]]`` (ascending) may have changed -- reaction j
        itself and every k that has a reactant whose count ``nu[j]`` changes
        (Gibson & Bruck, J. Phys. Chem. A 104 (2000) 1876).
    """

    def __init__(self, species: Mapping[str, int] | Iterable[tuple[str, int]],
                 reactions: Iterable[Reaction], name: str = "") -> None:
        self.name = name
        pairs = list(species.items()) if isinstance(species, Mapping) else [tuple(p) for p in species]
        names: list[str] = []
        counts: list[int] = []
        for pair in pairs:
            if len(pair) != 2:
                raise NetworkError(f"species entries are (name, count) pairs, got {pair!r}")
            sname, count = pair
            if not isinstance(sname, str) or not SPECIES_NAME.fullmatch(sname):
                raise NetworkError(f"species {sname!r}: a name starts with a letter or '_' and may "
                                   "contain letters, digits, '_' and '.'")
            if sname in names:
                raise NetworkError(f"species {sname!r} is listed twice")
            names.append(sname)
            counts.append(_count(sname, count))
        if not names:
            raise NetworkError("the network has no species")
        self.species: tuple[str, ...] = tuple(names)
        self._species_index = {s: i for i, s in enumerate(names)}
        self.initial_counts = _readonly(np.array(counts, dtype=np.int64))

        self.reactions: tuple[Reaction, ...] = tuple(reactions)
        if not self.reactions:
            raise NetworkError("the network has no reactions")
        seen_names: dict[str, int] = {}
        for j, r in enumerate(self.reactions):
            self._check_reaction(j, r)
            if r.name:
                if r.name in seen_names:
                    raise NetworkError(f"{r.label(j)}: the name is also used by reaction {seen_names[r.name]}")
                seen_names[r.name] = j
        self._reaction_index = seen_names
        self._build_arrays()

    # -- validation -------------------------------------------------------------------

    def _check_reaction(self, j: int, r: Reaction) -> None:
        label = r.label(j)
        if not r.reactants and not r.products:
            raise NetworkError(f"{label}: a reaction needs reactants or products")
        for side in (r.reactants, r.products):
            seen = set()
            for sname, k in side:
                if sname not in self._species_index:
                    hint = difflib.get_close_matches(sname, self.species, n=1)
                    more = f" (did you mean {hint[0]!r}?)" if hint else ""
                    raise NetworkError(f"{label}: unknown species {sname!r}{more}")
                if sname in seen:
                    raise NetworkError(f"{label}: species {sname!r} appears twice on one side")
                if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 < k <= _MAX_COUNT:
                    raise NetworkError(f"{label}: coefficient of {sname!r} must be an integer in 1..2^62, got {k!r}")
                seen.add(sname)
        if r.order > 2:
            raise NetworkError(f"{label}: {r.order} reactant molecules; only up to bimolecular "
                               "reactions (2 reactant molecules) are supported")
        c = r.rate
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not _finite(c) or c < 0:
            raise NetworkError(f"{label}: the rate constant must be a finite number >= 0, got {c!r}")
        if c > MAX_RATE:
            raise NetworkError(f"{label}: the rate constant {c!r} is above {MAX_RATE:g} (propensities of int64 "
                               "counts could overflow float64)")
        if not isinstance(r.fast, (bool, np.bool_)):
            raise NetworkError(f"{label}: 'fast' must be true or false, got {r.fast!r}")
        if not _is_level(r.level):
            raise NetworkError(f"{label}: 'level' must be 0 (slow), 1 (fast) or 2 (ultrafast), got {r.level!r}")
        if bool(r.fast) != (r.level >= FAST):
            raise NetworkError(f"{label}: fast = {str(bool(r.fast)).lower()} contradicts level = {r.level} "
                               "(fast = true is level 1 or 2, level 0 is slow); give one of them")

    # -- arrays for the engines ---------------------------------------------------------

    def _build_arrays(self) -> None:
        m, n = len(self.reactions), len(self.species)
        idx = self._species_index
        reactants = np.full((m, 2), -1, dtype=np.int64)
        nu = np.zeros((m, n), dtype=np.int64)
        for j, r in enumerate(self.reactions):
            molecules = [idx[s] for s, k in r.reactants for _ in range(k)]
            reactants[j, :len(molecules)] = molecules
            for s, k in r.reactants:
                nu[j, idx[s]] -= k
            for s, k in r.products:
                nu[j, idx[s]] += k
        self.rates = _readonly(np.array([float(r.rate) for r in self.reactions], dtype=np.float64))
        self.level = _readonly(np.array([int(r.level) for r in self.reactions], dtype=np.int64))
        self.fast = _readonly(self.level >= FAST)
        self.reactants = _readonly(reactants)
        self.reactant_order = _readonly((reactants >= 0).sum(axis=1).astype(np.int64))
        self.nu = _readonly(nu)
        rows, cols = np.nonzero(nu)
        self.nu_ptr = _readonly(np.searchsorted(rows, np.arange(m + 1)).astype(np.int64))
        self.nu_species = _readonly(cols.astype(np.int64))
        self.nu_change = _readonly(nu[rows, cols].astype(np.int64))
        # k depends on species i if i is one of its reactants
        uses = np.zeros((m, n), dtype=bool)
        for j in range(m):
            for s in reactants[j]:
                if s >= 0:
                    uses[j, s] = True
        affects = ((nu != 0).astype(np.int64) @ uses.T.astype(np.int64)) > 0  # [j, k]
        affects |= np.eye(m, dtype=bool)
        rows, cols = np.nonzero(affects)
        self.dep_ptr = _readonly(np.searchsorted(rows, np.arange(m + 1)).astype(np.int64))
        self.dep_idx = _readonly(cols.astype(np.int64))

    @property
    def n_species(self) -> int:
        return len(self.species)

    @property
    def n_reactions(self) -> int:
        return len(self.reactions)

    @property
    def fast_reactions(self) -> np.ndarray:
        """Indices of the reactions marked ``fast``."""
        return np.flatnonzero(self.fast)

    @property
    def slow_reactions(self) -> np.ndarray:
        """Indices of the reactions not marked ``fast``."""
        return np.flatnonzero(~self.fast)

    @property
    def ultrafast_reactions(self) -> np.ndarray:
        """Indices of the level-2 (ultrafast) reactions."""
        return np.flatnonzero(self.level == ULTRAFAST)

    def dependents(self, j: int) -> np.ndarray:
        """Reactions whose propensity may change when reaction ``j`` fires (ascending)."""
        return self.dep_idx[self.dep_ptr[j]:self.dep_ptr[j + 1]]

    def species_index(self, name: str) -> int:
        try:
            return self._species_index[name]
        except KeyError:
            raise NetworkError(f"unknown species {name!r}") from None

    def reaction_indices(self, which: Iterable[int | str] | np.ndarray | None) -> np.ndarray:
        """Reaction indices from indices, names, or a boolean mask; ``None`` means all.

        Returned in the order given (a mask gives ascending order); duplicates are errors.
        """
        m = self.n_reactions
        if which is None:
            return np.arange(m, dtype=np.int64)
        arr = np.asarray(which) if isinstance(which, np.ndarray) else None
        if arr is not None and arr.dtype == bool:
            if arr.shape != (m,):
                raise NetworkError(f"a reaction mask needs {m} entries, got shape {arr.shape}")
            return np.flatnonzero(arr).astype(np.int64)
        out = []
        for w in (arr.tolist() if arr is not None else which):
            if isinstance(w, str):
                if w not in self._reaction_index:
                    hint = difflib.get_close_matches(w, list(self._reaction_index), n=1)
                    more = f" (did you mean {hint[0]!r}?)" if hint else ""
                    raise NetworkError(f"unknown reaction name {w!r}{more}")
                w = self._reaction_index[w]
            elif isinstance(w, bool) or not isinstance(w, numbers.Integral) or not 0 <= w < m:
                raise NetworkError(f"reaction index {w!r} is not in 0..{m - 1}")
            if int(w) in out:
                raise NetworkError(f"{self.reactions[int(w)].label(int(w))} is selected twice")
            out.append(int(w))
        return np.array(out, dtype=np.int64)

    def propensities(self, x: np.ndarray | None = None) -> np.ndarray:
        """All propensities a_j(x) (float64), by the engines' own kernel; x defaults to the initial counts."""
        x = self.initial_counts if x is None else np.ascontiguousarray(x, dtype=np.int64)
        if x.shape != (self.n_species,):
            raise NetworkError(f"a state needs {self.n_species} counts, got shape {x.shape}")
        return all_propensities(x, self.reactants, self.rates)

    # -- formats ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "model") -> "ReactionNetwork":
        """A network from the TOML structure (see :meth:`from_toml`)."""
        for key in d:
            if key not in ("name", "description", "species", "reactions"):
                raise NetworkError(f"{source}: unknown key {key!r}{_suggest(key, ('name', 'description', 'species', 'reactions'))}")
        species = d.get("species")
        if not isinstance(species, Mapping):
            raise NetworkError(f"{source}: needs a [species] table of initial counts")
        for sname, value in species.items():
            if isinstance(value, Mapping):
                raise NetworkError(f"{source}: species {sname!r} is a table; a name with dots must be "
                                   f"quoted, e.g. \"{sname}.{next(iter(value), '')}\" = 1")
        reactions = d.get("reactions")
        if not isinstance(reactions, list):
            raise NetworkError(f"{source}: needs [[reactions]] entries with 'equation' and 'rate'")
        parsed = []
        for j, entry in enumerate(reactions):
            if not isinstance(entry, Mapping):
                raise NetworkError(f"{source}: reaction {j} must be a table with 'equation' and 'rate'")
            for key in entry:
                if key not in _REACTION_KEYS:
                    raise NetworkError(f"{source}: reaction {j}: unknown key {key!r}{_suggest(key, _REACTION_KEYS)}")
            name = entry.get("name")
            if name is not None and not isinstance(name, str):
                raise NetworkError(f"{source}: reaction {j}: 'name' must be a string")
            equation = entry.get("equation")
            who = f"reaction {name!r}" if name else f"reaction {j}"
            if not isinstance(equation, str):
                raise NetworkError(f"{source}: {who}: needs 'equation', e.g. equation = \"A + B -> C\"")
            if "rate" not in entry:
                raise NetworkError(f"{source}: {who} ({equation}): needs 'rate'")
            try:
                reactants, products = parse_equation(equation)
            except ValueError as e:
                raise NetworkError(f"{source}: {who} ({equation}): {e}") from None
            level = entry.get("level")
            if "fast" in entry and entry["fast"] is False and _is_level(level) and level >= FAST:
                raise NetworkError(f"{source}: {who} ({equation}): fast = false contradicts level = {level} "
                                   "(fast = true is level 1 or 2, level 0 is slow); give one of them")
            parsed.append(Reaction(reactants, products, entry["rate"], entry.get("fast", False), name, level))
        try:
            return cls(species, parsed, name=str(d.get("name", "")))
        except NetworkError as e:
            raise NetworkError(f"{source}: {e}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> "ReactionNetwork":
        """Read a model file.

        Format::

            name = "isomerization"
            [species]               # initial copy numbers, in this order
            A = 100
            "DNA.s32" = 1           # names with dots are quoted keys
            [[reactions]]
            equation = "A -> B"     # "0 -> A", "A + B -> C", "2 A -> B", "A -> 0"
            rate = 1.0              # mass-action constant c
            fast = true             # optional, default false (level 1 of the Nested SSA)
            level = 2               # optional instead of fast: 0 slow, 1 fast, 2 ultrafast
            name = "forward"        # optional
        """
        from hmmpar.io.inputs import InputError, read_file
        path = Path(path)
        try:
            text = read_file(path, "model", "model file").decode("utf-8")
            d = tomllib.loads(text)
        except InputError as e:
            raise NetworkError(f"{path}: cannot read the model file ({e.reason})") from None
        except UnicodeDecodeError:
            raise NetworkError(f"{path}: cannot read the model file (not UTF-8 text)") from None
        except tomllib.TOMLDecodeError as e:
            raise NetworkError(f"{path}: TOML syntax error: {e}") from None
        return cls.from_dict(d, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The :meth:`from_dict` structure of this network."""
        reactions = []
        for r in self.reactions:
            e: dict[str, Any] = {"equation": r.equation, "rate": float(r.rate)}
            if r.level == ULTRAFAST:
                e["level"] = ULTRAFAST
            elif r.fast:
                e["fast"] = True
            if r.name:
                e["name"] = r.name
            reactions.append(e)
        return {"name": self.name, "species": dict(zip(self.species, self.initial_counts.tolist())),
                "reactions": reactions}

    @classmethod
    def from_sbml(cls, path: str | Path) -> "ReactionNetwork":
        """Import an SBML model (needs the optional ``python-libsbml``); see :mod:`.sbml`."""
        from .sbml import network_from_sbml
        return network_from_sbml(path)

    def __repr__(self) -> str:
        ultra = int((self.level == ULTRAFAST).sum())
        return (f"ReactionNetwork({self.name!r}, {self.n_species} species, {self.n_reactions} reactions, "
                f"{int(self.fast.sum())} fast" + (f", {ultra} of them ultrafast)" if ultra else ")"))


def _count(sname: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NetworkError(f"species {sname!r}: the initial count must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif _finite(value) and float(value).is_integer():
        v = int(value)
    else:
        raise NetworkError(f"species {sname!r}: the initial count must be an integer, got {value!r}")
    if v < 0:
        raise NetworkError(f"species {sname!r}: negative initial count {v}")
    if v > _MAX_COUNT:
        raise NetworkError(f"species {sname!r}: initial count {v} is above 2^62")
    return v


def _finite(value: numbers.Real) -> bool:
    """math.isfinite without the OverflowError of an integer beyond float64."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_level(value: Any) -> bool:
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral)
            and SLOW <= value <= ULTRAFAST)


def _suggest(key: str, choices: Sequence[str]) -> str:
    hint = difflib.get_close_matches(key, choices, n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@numba.njit(cache=True)
def propensity(k: int, x: np.ndarray, reactants: np.ndarray, rates: np.ndarray) -> float:
    """Mass-action propensity of reaction ``k`` in state ``x`` (the module's convention)."""
    r0 = reactants[k, 0]
    if r0 < 0:
        return rates[k]
    r1 = reactants[k, 1]
    if r1 < 0:
        return rates[k] * float(x[r0])
    if r1 == r0:
        n = x[r0]
        if n < 2:
            return 0.0
        return rates[k] * (float(n) * float(n - 1) * 0.5)
    return rates[k] * (float(x[r0]) * float(x[r1]))


@numba.njit(cache=True)
def all_propensities(x: np.ndarray, reactants: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Every reaction's propensity in state ``x``."""
    out = np.empty(rates.shape[0])
    for k in range(rates.shape[0]):
        out[k] = propensity(k, x, reactants, rates)
    return out
