"""The applications: one module per HMM method, registered here by name (``run.app``)."""
from __future__ import annotations

from importlib import import_module

from hmmpar.core.errors import ConfigError

#: run.app name -> "module:Class"
APPS = {
    "convection": "hmmpar.apps.convection:Convection",
    "couplers": "hmmpar.apps.couplers:Couplers",
    "elliptic": "hmmpar.apps.elliptic:Elliptic",
    "gas_dynamics": "hmmpar.apps.gas_dynamics:GasDynamics",
    "ou_averaging": "hmmpar.apps.ou_averaging:OUAveraging",
    "ssa": "hmmpar.apps.nested_ssa:NestedSSA",
    "superparam": "hmmpar.apps.superparam:Superparam",
}


def app_class(name: str):
    """The application class registered under ``name`` (ConfigError if unknown)."""
    if name not in APPS:
        import difflib
        close = difflib.get_close_matches(name, list(APPS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(sorted(APPS))})"
        raise ConfigError(f"config key run.app: unknown application '{name}'{hint}")
    module, cls = APPS[name].split(":")
    return getattr(import_module(module), cls)


def app_schema(name: str) -> dict:
    """The config sections of application ``name``."""
    return app_class(name).schema
