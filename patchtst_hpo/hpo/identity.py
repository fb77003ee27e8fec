"""What defines a study, so a resume never mixes trials scored or searched differently.

A study records, as user attributes, the metric(s) and direction(s) its trials are scored on, the search
space, the arch candidates, the data id, the fixed overrides and the custom search-space function. A sweep
that would top it up under anything else stops before asking a trial, naming the difference and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna

from patchtst_hpo.errors import ConfigError

# attribute -> what the user changes to get a different value (for the message)
KEYS = {
    "metric": "objective.metric / hydra.sweeper.metric",
    "direction": "objective.direction / hydra.sweeper.direction",
    "search_space": "the search params (conf/search, hydra.sweeper.params, the command line)",
    "arch_candidates": "the budget, data dims or grid (Optuna cannot change a categorical's choices)",
    "data_id": "the data (data.ohlcv or data.panel, data.tier, data.vix)",
    "fixed_overrides": "the plain overrides passed to every job",
    "custom_search_space": "hydra.sweeper.custom_search_space",
}


def of_study(
    *,
    metric: Any,
    direction: Any,
    space: Mapping[str, optuna.distributions.BaseDistribution],
    arch_candidates: list[str],
    data_id: str | None,
    fixed_overrides: list[str],
    custom_search_space: Callable | None,
) -> dict[str, Any]:
    """The identity of a study as JSON-ready user attributes (what `check` compares)."""
    fn = custom_search_space
    return {
        "metric": metric,
        "direction": direction,
        "search_space": {k: repr(v) for k, v in space.items()},
        "arch_candidates": list(arch_candidates),
        "data_id": data_id,
        "fixed_overrides": list(fixed_overrides),
        "custom_search_space": None if fn is None else f"{fn.__module__}.{fn.__qualname__}",
    }


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 300 else text[:300] + "..."


def check(study: optuna.Study, identity: Mapping[str, Any]) -> None:
    """ConfigError if `study` was created under another identity (attributes it lacks are not compared)."""
    name = study.study_name
    directions = [d.name.lower() for d in study.directions]
    wanted = identity["direction"] if isinstance(identity["direction"], list) else [identity["direction"]]
    if directions != wanted:
        raise ConfigError(
            f"study {name!r} optimises {directions}, this sweep {wanted}; a study cannot change its "
            f"direction(s): use a new hydra.sweeper.study_name"
        )
    attrs = study.user_attrs
    for key, value in identity.items():
        if key in attrs and attrs[key] != value:
            raise ConfigError(
                f"study {name!r} was created with {key}={_short(attrs[key])}, this sweep has "
                f"{_short(value)} (changed: {KEYS[key]}); resuming would mix trials that are not comparable. "
                f"Use a new hydra.sweeper.study_name, or the study's original settings"
            )
