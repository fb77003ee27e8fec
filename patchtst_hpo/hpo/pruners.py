"""Pruners as data: `{"name": <allowlisted Optuna pruner>, "kwargs": {plain values}}` (no Lightning import).

The sweeper stores the pruner on each study in this form and every job rebuilds it from there. Anyone who can
write the storage could otherwise make every worker instantiate an arbitrary `_target_`, so the job side
builds only the classes below, with keyword arguments that are plain numbers, strings, booleans or null
(PatientPruner's `wrapped_pruner` is itself such a spec, checked the same way).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import optuna

from patchtst_hpo.errors import ConfigError

ALLOWED = (
    "MedianPruner",
    "PercentilePruner",
    "HyperbandPruner",
    "SuccessiveHalvingPruner",
    "ThresholdPruner",
    "NopPruner",
    "PatientPruner",
    "WilcoxonPruner",
)
PLAIN = (int, float, bool, str, type(None))


def spec_from_config(cfg: Mapping[str, Any] | None) -> dict:
    """The storable spec of the user's `hydra.sweeper.pruner` (`_target_: optuna.pruners.X` + kwargs)."""
    if cfg is None:
        return {"name": "NopPruner", "kwargs": {}}
    kwargs = {k: v for k, v in cfg.items() if not (k.startswith("_") and k.endswith("_"))}
    target = str(cfg.get("_target_", ""))
    module, _, name = target.rpartition(".")
    if module not in ("optuna.pruners", "") or name not in ALLOWED:
        raise ConfigError(
            f"hydra.sweeper.pruner._target_={target!r} is not one of the pruners a job may build: "
            f"{', '.join('optuna.pruners.' + n for n in ALLOWED)}"
        )
    if isinstance(kwargs.get("wrapped_pruner"), Mapping):
        kwargs["wrapped_pruner"] = spec_from_config(kwargs["wrapped_pruner"])
    spec = {"name": name, "kwargs": kwargs}
    build(spec, "hydra.sweeper.pruner")  # fail now, not in every job
    return spec


def build(spec: Any, where: str) -> optuna.pruners.BasePruner:
    """An Optuna pruner from a stored spec; `ConfigError` naming `where` for anything not allowlisted."""
    if not isinstance(spec, Mapping) or set(spec) != {"name", "kwargs"}:
        raise ConfigError(
            f"{where} is {spec!r}: a pruner must be stored as {{'name': <Optuna pruner>, 'kwargs': {{...}}}}; "
            f"nothing read from a storage is instantiated. Re-create the study with this version "
            f"(a new hydra.sweeper.study_name)"
        )
    name, kwargs = spec["name"], spec["kwargs"]
    if name not in ALLOWED or not hasattr(optuna.pruners, str(name)):
        raise ConfigError(f"{where}: pruner {name!r} is not allowed; allowed: {', '.join(ALLOWED)}")
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{where}: pruner kwargs must be a mapping, got {kwargs!r}")
    cls = getattr(optuna.pruners, name)
    accepted = inspect.signature(cls).parameters
    built: dict[str, Any] = {}
    for k, v in kwargs.items():
        if k not in accepted:
            raise ConfigError(f"{where}: {name} has no argument {k!r} (it takes {', '.join(accepted)})")
        if name == "PatientPruner" and k == "wrapped_pruner" and v is not None:
            built[k] = build(v, f"{where}.kwargs.wrapped_pruner")
        elif isinstance(v, PLAIN):
            built[k] = v
        else:
            raise ConfigError(
                f"{where}: {name}({k}=...) must be a plain number, string, bool or null, not {v!r}"
            )
    try:
        return cls(**built)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {name}({built}) is invalid: {e}") from e
