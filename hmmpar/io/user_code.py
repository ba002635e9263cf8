"""User code named in a config: ``module:function`` or ``path/to/file.py:function``.

This is the one place where a config makes hmmpar run Python code (docs/config.md,
"Trust"): the module's import-time code runs on every rank. ``hmmpar run --no-user-code``
refuses such configs before anything is imported (:func:`hmmpar.core.config.load_config`).

Where user modules are found:

* ``file.py:function`` -- a Python file, relative to the config file's directory like every
  input file (:mod:`hmmpar.io.inputs`). Rank 0 reads it (a regular file, at most
  ``LIMITS["module"]`` bytes); every rank executes *those* bytes as a fresh module, so the
  source hashed into checkpoints is the source that runs.
* ``package.module:function`` -- a module installed in the environment, found on
  ``sys.path`` *without* the entries Python adds implicitly (the working directory under
  ``python -m``, the script's directory for ``drivers/*.py``): a ``.py`` file lying in the
  working directory is never imported by accident. Its source file is hashed; modules of
  Python's standard library and compiled modules are refused.

The function must be a plain Python function (or a numba ``@njit`` dispatcher of one)
defined in that module: builtins (``os:system``), classes, and functions imported from
elsewhere are refused, as is a name that is not a function.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import sysconfig
import types
from typing import Callable

from hmmpar.core.errors import ConfigError, one_line
from hmmpar.io.inputs import parse_text, read_input, sha256


def split_spec(spec: str, key: str) -> tuple[str, str]:
    """``(module or file, function)`` of ``module:function`` (ConfigError naming ``key``)."""
    module, colon, func = str(spec).rpartition(":")
    if not colon or not module or not func.isidentifier():
        raise ConfigError(f"config key {key} = {spec!r} must be 'module:function' or 'file.py:function'")
    if not module.endswith(".py") and not all(part.isidentifier() for part in module.split(".")):
        raise ConfigError(f"config key {key} = {spec!r}: {module!r} is not a module name (or a .py file)")
    return module, func


def _implicit_path_entries() -> set[str]:
    """The sys.path entries Python adds for the way it was started: '' / the working
    directory (``-c``, ``-m``, interactive) and the directory of the script run."""
    entries = {"", os.getcwd()}
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main:
        entries.add(os.path.dirname(os.path.abspath(main)))
    if sys.argv and sys.argv[0]:
        entries.add(os.path.dirname(os.path.abspath(sys.argv[0])))
    return entries


def import_installed(name: str, key: str) -> types.ModuleType:
    """Import ``name`` from sys.path without its implicit entries (ConfigError naming ``key``)."""
    if name in sys.modules:
        return sys.modules[name]
    implicit = _implicit_path_entries()
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if p not in implicit and os.path.abspath(p or ".") not in implicit]
    importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(f"config key {key}: cannot import module {name!r} ({one_line(exc)}); a module in "
                          "the working directory is not imported: write 'file.py:function' (relative to "
                          "the config file) or install the module") from None
    except Exception as exc:  # noqa: BLE001 - user code raised at import
        raise ConfigError(f"config key {key}: importing module {name!r} raised {one_line(exc)}") from None
    finally:
        sys.path[:] = saved


def _stdlib_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return [os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib") if k in paths]


def load_file_module(comm, config, key: str, path: str) -> types.ModuleType:
    """Execute the Python file ``path`` (read by rank 0, recorded in the config's ledger)
    as a new module on every rank (collective)."""
    data = read_input(comm, config, key, "module", path)
    source = parse_text(data, key, path)
    name = f"hmmpar_user_{os.path.splitext(os.path.basename(path))[0]}_{sha256(data)[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    module = types.ModuleType(name)
    module.__file__ = path
    try:
        code = compile(source, path, "exec")
        sys.modules[name] = module
        exec(code, module.__dict__)  # noqa: S102 - user code by design (documented; --no-user-code)
    except Exception as exc:  # noqa: BLE001 - user code raised
        sys.modules.pop(name, None)
        raise ConfigError(f"config key {key}: running {path} raised {one_line(exc)}") from None
    return module


def plain_function(module: types.ModuleType, func: str, spec: str, key: str) -> Callable:
    """The function ``func`` defined in ``module``: a Python function or a numba
    dispatcher of one, else a ConfigError saying what it is."""
    fn = module.__dict__.get(func)
    if fn is None:
        raise ConfigError(f"config key {key} = {spec!r}: {module.__name__} has no function {func!r}")
    import numba
    target = fn.py_func if isinstance(fn, numba.core.dispatcher.Dispatcher) else fn
    if not inspect.isfunction(target):
        what = ("a built-in function" if inspect.isbuiltin(target) else "a class" if inspect.isclass(target)
                else f"a {type(target).__name__}")
        raise ConfigError(f"config key {key} = {spec!r} is {what}, not a Python function defined in the module")
    if target.__module__ != module.__name__:
        raise ConfigError(f"config key {key} = {spec!r} is defined in module {target.__module__}, not in "
                          f"{module.__name__}; name the module that defines it")
    return fn


def load_user_function(comm, config, key: str) -> Callable:
    """The function named by config key ``key`` (collective; the module source is recorded
    in the config's ledger for restarts). Every problem is a ConfigError naming ``key``."""
    spec = config[key]
    module_name, func = split_spec(spec, key)
    if module_name.endswith(".py"):
        module = load_file_module(comm, config, key, module_name)
    else:
        module = import_installed(module_name, key)
        fn = plain_function(module, func, spec, key)
        read_input(comm, config, key, "module", _source_file(module, spec, key), share=False)
        return fn
    return plain_function(module, func, spec, key)


def _source_file(module: types.ModuleType, spec: str, key: str) -> str:
    """The ``.py`` file of an installed user module; built-in, compiled and standard-library
    modules are refused."""
    source = getattr(module, "__file__", None)
    if not source or not source.endswith(".py"):
        raise ConfigError(f"config key {key} = {spec!r}: {module.__name__} is a built-in or compiled module, "
                          "not user code")
    if any(os.path.abspath(source).startswith(d) for d in _stdlib_dirs()):
        raise ConfigError(f"config key {key} = {spec!r}: {module.__name__} is part of Python's standard "
                          "library, not user code")
    return source


def user_function(spec: str, key: str = "coefficient.function") -> Callable:
    """``module:function`` of an installed module, without a config (library use, tests):
    the same rules, nothing recorded."""
    module_name, func = split_spec(spec, key)
    if module_name.endswith(".py"):
        raise ConfigError(f"config key {key} = {spec!r}: a file needs a config (load_user_function)")
    module = import_installed(module_name, key)
    fn = plain_function(module, func, spec, key)
    _source_file(module, spec, key)
    return fn
