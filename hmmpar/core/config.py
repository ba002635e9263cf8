"""TOML configuration: schema, defaults, validation and ``--set`` overrides.

A config is data; the only key that runs code is ``coefficient.function`` (a user
module, see docs/config.md, "Trust"), refused by ``--no-user-code``. Its schema is a mapping ``section -> key -> Field``: the
runtime's own sections (``run``, ``farm``, ``checkpoint``, ``output``) plus those of the
application named by ``run.app``. Every problem is a :class:`ConfigError` whose one-line
message names the key (``farm.min_chunk``) or the file:

* an unknown section or key, with a "did you mean" suggestion;
* a wrong type (``true`` where a number is expected; an integer is accepted for a float),
  for every type TOML has (date-times, dates, times, tables, arrays of tables, nested arrays);
* a value out of range (integers always within int64) or not among the allowed choices;
  an empty string or list where ``min_len`` forbids it; a string with NUL or a lone surrogate;
* a missing or unreadable file, or a TOML syntax error.

Paths (fields with ``path`` set) are resolved by the rule of :mod:`hmmpar.io.inputs`
and held as absolute paths in the validated config.

The validated config is a :class:`Config`; :meth:`Config.dumps` gives its complete,
canonical TOML text, which checkpoints store so a restart knows what it continues.
"""
from __future__ import annotations

import datetime
import difflib
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigError

REQUIRED = object()

_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a table", datetime.datetime: "a date-time",
               datetime.date: "a date", datetime.time: "a time"}

#: integers a config may hold: every integer key is stored in int64 (NumPy, HDF5 attributes)
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


@dataclass(frozen=True)
class Field:
    """One config key: its type, default, allowed range and documentation.

    ``physics=False`` marks run-control keys (step count, checkpoint interval, output)
    that a restart may change; any other key must equal the checkpoint's value.
    ``path`` marks a path: ``"input"`` (a file the run reads: relative to the config
    file's directory; compared at restart by content, not by path, so ``physics=False``),
    ``"output"`` (relative to the working directory) or ``"code"`` (``module:function``
    whose module part may be a ``.py`` file, resolved like an input). ``user_code`` marks
    a key whose value makes hmmpar import and run Python code (``--no-user-code``).
    """

    type: type
    default: Any = REQUIRED
    doc: str = ""
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple | None = None
    item_type: type | None = None
    physics: bool = True
    #: strings and lists: fewest characters / entries (1: must not be empty)
    min_len: int = 0
    #: lists: most entries (None: no limit)
    max_len: int | None = None
    path: str = ""
    user_code: bool = False
    #: floats: +inf is a value (a limit such as an infinite Prandtl number); NaN never is
    allow_inf: bool = False


Schema = Mapping[str, Mapping[str, Field]]

#: The runtime's own sections, shared by every application.
RUNTIME_SCHEMA: dict[str, dict[str, Field]] = {
    "run": {
        "app": Field(str, doc="application to run (see `hmmpar apps`)"),
        "seed": Field(int, 12345, "run seed; every random stream derives from (seed, step, task_id)", min=0,
                      max=INT64_MAX),
        "output_dir": Field(str, "hmmpar-out", "directory for outputs, checkpoints and the timing report "
                            "(relative to the working directory)", physics=False, min_len=1, path="output"),
        "progress_interval": Field(float, 5.0, "seconds between progress lines", min=0.0, physics=False),
    },
    "farm": {
        "mode": Field(str, "dynamic", "task scheduling: dynamic (master-worker) or static",
                      choices=("dynamic", "static"), physics=False),
        "retry": Field(bool, False, "re-run a failed task once with a fresh random substream"),
        "min_chunk": Field(int, 1, "smallest chunk of tasks handed to a worker", min=1, physics=False),
        "task_time_limit": Field(float, 0.0, "seconds one micro task may take before the run stops with "
                                 "an error naming it (0: no limit)", min=0.0, max=1e8, physics=False),
    },
    "checkpoint": {
        "every_steps": Field(int, 0, "checkpoint every N steps (0: never)", min=0, physics=False),
        "every_seconds": Field(float, 0.0, "checkpoint every T wall seconds (0: never)", min=0.0,
                               physics=False),
        "keep": Field(int, 3, "number of complete checkpoints kept", min=1, physics=False),
        "directory": Field(str, "", "checkpoint directory (default: <output_dir>/checkpoints; "
                           "relative to the working directory)", physics=False, path="output"),
        "at_end": Field(bool, True, "write a checkpoint after the last step", physics=False),
    },
    "output": {
        "plots": Field(bool, True, "write PNG plots", physics=False),
    },
}


@dataclass
class Config:
    """A validated configuration: ``cfg["section.key"]`` or ``cfg.section("name")``."""

    data: dict[str, dict[str, Any]]
    schema: Schema
    source: str = "<string>"
    overrides: list[str] = field(default_factory=list)
    #: the input files read so far: key -> {"path", "bytes", "sha256"} (hmmpar.io.inputs)
    inputs: dict[str, dict] = field(default_factory=dict)

    def __getitem__(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self.data[section][key]

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.data[name])

    def dumps(self) -> str:
        """The complete config (defaults filled in) as canonical TOML text."""
        out = []
        for section in self.data:
            out.append(f"[{section}]")
            for key, value in self.data[section].items():
                out.append(f"{key} = {_toml_value(value)}")
            out.append("")
        return "\n".join(out)

    def physics_differences(self, other: "Config") -> list[str]:
        """Keys marked physics whose values differ between two configs of one app."""
        diffs = []
        for section, fields in self.schema.items():
            for key, spec in fields.items():
                if not spec.physics:
                    continue
                a = self.data.get(section, {}).get(key)
                b = other.data.get(section, {}).get(key)
                if a != b:
                    diffs.append(f"{section}.{key} = {_toml_value(b)} (now {_toml_value(a)})")
        return diffs


#: TOML's short escapes; every other control character (U+0000-U+001F, U+007F) is \uXXXX
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"',
                  "\\": "\\\\"}


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and every control character
    escaped, so that ``tomllib.loads`` gives back exactly ``text``.

    Raises
    ------
    ValueError
        ``text`` holds a lone surrogate (U+D800-U+DFFF), which TOML (UTF-8) cannot hold.
    """
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"lone surrogate U+{code:04X} cannot be written as TOML (UTF-8)")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    """A config value (bool, int, float, str, a list or a table of them) as TOML text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (a user function's parameters)
        return "{" + ", ".join(f"{_toml_string(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _type_name(value: Any) -> str:
    """How a value's TOML type is named in messages (every type tomllib returns)."""
    for kind in (bool, datetime.datetime, datetime.date, datetime.time):  # before int / date
        if isinstance(value, kind):
            return _TYPE_NAMES[kind]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "an array of tables"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _show(value: Any, limit: int = 60) -> str:
    """A value for an error message, whatever its type (never raises), at most ``limit`` chars."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        text = value.isoformat()
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_show(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v, limit) for v in value) + "]"
    elif isinstance(value, str):
        try:  # control characters escaped: the message stays one line
            text = _toml_string(value)
        except ValueError:
            text = ascii(value)
    else:
        text = _toml_value(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def parse_toml_file(path: str | Path) -> dict:
    """Read a TOML file; missing, unreadable (a FIFO, a directory...), too large or
    malformed files are ConfigErrors."""
    from hmmpar.io.inputs import read_file
    p = Path(path)
    if not os.path.exists(p):
        raise ConfigError(f"config file not found: {p}")
    data = read_file(p, "config", "config file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not UTF-8 text") from None
    return parse_toml_text(text, str(p))


def parse_toml_text(text: str, source: str = "<string>") -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None


def parse_override(item: str) -> tuple[str, str, Any]:
    """``section.key=value`` -> (section, key, value); the value is read as TOML, else a string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    dotted, raw = item.split("=", 1)
    dotted = dotted.strip()
    if dotted.count(".") != 1 or not all(dotted.split(".")):
        raise ConfigError(f"--set {item!r}: the key must be section.key")
    section, key = dotted.split(".")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key, value


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_value(name: str, spec: Field, value: Any) -> Any:
    """Check one value against its Field; return it (an int converted for a float key).

    Every type tomllib can return is handled (date-times, dates, times, tables, arrays
    of tables, nested arrays): anything but the schema's type is a ConfigError naming
    the key. Integers must fit in int64 (or the Field's range); floats must be finite;
    strings must be UTF-8 without NUL; lengths obey ``min_len`` / ``max_len``.
    """
    want = spec.type
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 2**1023:
            raise ConfigError(f"config key {name} must be finite, got {_show(value)}")
        value = float(value)
    ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
    ok = ok and not (want is datetime.date and isinstance(value, datetime.datetime))
    if not ok:
        hint = ("; quote it to give a string" if want is str
                and isinstance(value, (int, float, datetime.date, datetime.time, bool)) else "")
        raise ConfigError(f"config key {name} must be {_TYPE_NAMES.get(want, want.__name__)}, "
                          f"got {_type_name(value)} {_show(value)}{hint}")
    if want is float and not math.isfinite(value) and not (spec.allow_inf and value == math.inf):
        raise ConfigError(f"config key {name} must be finite, got {value}")
    if want is str:
        _check_text(name, value)
    if want in (str, list):
        what = "characters" if want is str else "entries"
        if len(value) < spec.min_len:
            raise ConfigError(f"config key {name} must not be empty" if spec.min_len == 1 else
                              f"config key {name} must have at least {spec.min_len} {what}, got {len(value)}")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise ConfigError(f"config key {name} must have at most {spec.max_len} {what}, got {len(value)}")
    if want is list:
        if spec.item_type is not None:
            item = Field(spec.item_type, min=spec.min, max=spec.max, min_exclusive=spec.min_exclusive,
                         choices=spec.choices)
            return [_check_value(f"{name}[{i}]", item, v) for i, v in enumerate(value)]
        for i, v in enumerate(value):  # untyped list: scalars only (the app checks the rest)
            if not isinstance(v, (bool, int, float, str)):
                raise ConfigError(f"config key {name}[{i}] must be a number or a string, "
                                  f"got {_type_name(v)} {_show(v)}")
            if isinstance(v, (int, float, str)) and not isinstance(v, bool):
                _check_value(f"{name}[{i}]", Field(type(v)), v)
        return value
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"config key {name} must be one of {', '.join(map(str, spec.choices))}; "
                          f"got {_show(value)}{_suggest(str(value), map(str, spec.choices))}")
    if want is int:
        lo = INT64_MIN if spec.min is None else spec.min
        hi = INT64_MAX if spec.max is None else spec.max
        if value < lo:  # min_exclusive is checked below with the message of the Field's own bound
            raise ConfigError(f"config key {name} must be >= {lo}, got {value}")
        if value > hi:
            raise ConfigError(f"config key {name} must be <= {hi}, got {value}")
    if spec.min is not None and want in (int, float):
        if value < spec.min or (spec.min_exclusive and value == spec.min):
            op = ">" if spec.min_exclusive else ">="
            raise ConfigError(f"config key {name} must be {op} {spec.min}, got {value}")
    if spec.max is not None and want in (int, float) and value > spec.max:
        raise ConfigError(f"config key {name} must be <= {spec.max}, got {value}")
    return value


def _check_text(name: str, value: str) -> None:
    """A string value must be writable as TOML (no lone surrogate, e.g. from a non-UTF-8
    command-line argument) and usable as a path or formula (no NUL)."""
    if "\0" in value:
        raise ConfigError(f"config key {name} must not contain a NUL character, got {_show(value)}")
    try:
        _toml_string(value)
    except ValueError as exc:
        raise ConfigError(f"config key {name}: {exc} (is the text UTF-8?)") from None


def validate(raw: Mapping[str, Any], schema: Schema, source: str = "<string>") -> dict:
    """Check ``raw`` against ``schema``; return every section with defaults filled in."""
    out: dict[str, dict[str, Any]] = {}
    for section, table in raw.items():
        if section not in schema:
            raise ConfigError(f"unknown config section [{section}] in {source}{_suggest(section, schema)}")
        if not isinstance(table, dict):
            raise ConfigError(f"config entry {section} in {source} must be a [section] table")
        for key in table:
            if key not in schema[section]:
                options = list(schema[section])
                hint = _suggest(key, options)
                if not hint:  # a key put in the wrong section
                    for other, fields in schema.items():
                        if key in fields:
                            hint = f"; did you mean '{other}.{key}'?"
                            break
                raise ConfigError(f"unknown config key {section}.{key} in {source}{hint}")
    for section, fields in schema.items():
        table = raw.get(section, {})
        out[section] = {}
        for key, spec in fields.items():
            name = f"{section}.{key}"
            if key in table:
                out[section][key] = _check_value(name, spec, table[key])
            elif spec.default is REQUIRED:
                raise ConfigError(f"config key {name} is required but missing in {source}")
            else:
                out[section][key] = spec.default
    return out


def load_config(path_or_text: str | Path, overrides: Iterable[str] = (), *, schema_for=None,
                is_text: bool = False, allow_user_code: bool = True) -> Config:
    """Read, override and validate a config.

    Parameters
    ----------
    path_or_text
        A TOML file path, or the TOML text itself when ``is_text``.
    overrides
        ``section.key=value`` strings applied after reading (``--set``).
    schema_for
        ``app_name -> app schema``; by default the registry in :mod:`hmmpar.apps`.
    is_text
        ``path_or_text`` is TOML text (its relative paths are relative to the working directory).
    allow_user_code
        False (``--no-user-code``): a key that runs user code, set to a non-empty value,
        is a ConfigError naming it.
    """
    if is_text:
        source, raw = "<checkpoint config>", parse_toml_text(str(path_or_text), "<checkpoint config>")
    else:
        source, raw = str(path_or_text), parse_toml_file(path_or_text)
    overrides = list(overrides)
    from_set = set()
    for item in overrides:
        section, key, value = parse_override(item)
        from_set.add(f"{section}.{key}")
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"--set {item!r}: {section} is not a section")
        table[key] = value
    app = raw.get("run", {}).get("app") if isinstance(raw.get("run"), dict) else None
    if app is None:
        raise ConfigError(f"config key run.app is required but missing in {source}")
    if not isinstance(app, str):
        raise ConfigError(f"config key run.app must be a string in {source}")
    if schema_for is None:
        from hmmpar.apps import app_schema as schema_for  # late import: apps import config
    app_schema = schema_for(app)
    schema = {**RUNTIME_SCHEMA, **app_schema}
    data = validate(raw, schema, source)
    base = None if is_text else os.path.dirname(os.path.abspath(os.fspath(path_or_text)))
    _resolve_paths(data, schema, base, from_set)
    if not allow_user_code:
        for section, fields in schema.items():
            for key, spec in fields.items():
                if spec.user_code and data[section][key]:
                    raise ConfigError(f"config key {section}.{key} = {_toml_value(data[section][key])} runs "
                                      "user code (imports a Python module); refused by --no-user-code")
    return Config(data=data, schema=schema, source=source, overrides=overrides)


def _resolve_paths(data: dict, schema: Schema, base: str | None, from_set: set[str]) -> None:
    """Make every path of the config absolute (the rule of :func:`hmmpar.io.inputs.resolve_path`):
    inputs written in the config file are relative to ``base``, outputs and everything
    given with ``--set`` to the working directory."""
    from hmmpar.io.inputs import resolve_path
    for section, fields in schema.items():
        for key, spec in fields.items():
            value = data[section][key]
            if not spec.path or not value:
                continue
            rel = None if spec.path == "output" or f"{section}.{key}" in from_set else base
            if spec.path == "code":
                module, colon, func = value.rpartition(":")
                if colon and module.endswith(".py"):
                    data[section][key] = resolve_path(module, rel) + ":" + func
            else:
                data[section][key] = resolve_path(value, rel)
