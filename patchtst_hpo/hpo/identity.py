"""What defines a study, so a resume never mixes trials scored or searched differently.

A study records, as user attributes, the metric(s) and direction(s) its trials are scored on, the search
space, the arch candidates, the data id, the data itself (the processed dataset's version and sha256, every
raw input's name, version and sha256, the feature pipeline version), the fixed overrides and the custom
search-space function. A sweep that would top it up under anything else stops before asking a trial, naming
the difference and the fix (for data: which input changed, and how to resume on the study's data).
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
    "data": "the data's contents (re-ingested or rebuilt: another version or sha256)",
    "fixed_overrides": "the plain overrides passed to every job",
    "custom_search_space": "hydra.sweeper.custom_search_space",
    "transfer_from": "hydra.sweeper.transfer_from, or the source study's best trial (it changed)",
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
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The identity of a study as JSON-ready user attributes (what `check` compares); `data` is the
    processed dataset's manifest entry (`data_record` keeps what identifies its contents)."""
    fn = custom_search_space
    out = {
        "metric": metric,
        "direction": direction,
        "search_space": {k: repr(v) for k, v in space.items()},
        "arch_candidates": list(arch_candidates),
        "data_id": data_id,
        "fixed_overrides": list(fixed_overrides),
        "custom_search_space": None if fn is None else f"{fn.__module__}.{fn.__qualname__}",
    }
    if data is not None:
        out["data"] = data_record(data)
    return out


def data_record(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies a processed dataset's contents: id, version, sha256, raw inputs, pipeline version."""
    return {
        "id": entry["id"],
        "version": entry["version"],
        "sha256": entry["sha256"],
        "inputs": [{k: i[k] for k in ("name", "version", "sha256")} for i in entry.get("inputs", [])],
        "pipeline_version": entry.get("pipeline_version"),
    }


def data_change(was: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """The first difference between two data records, in words (which input, which version/sha256)."""
    old_in = {i["name"]: i for i in was.get("inputs", [])}
    new_in = {i["name"]: i for i in now.get("inputs", [])}
    for name in sorted(old_in.keys() | new_in.keys()):
        a, b = old_in.get(name), new_in.get(name)
        if a is None or b is None:
            return f"input {name} was {'added' if a is None else 'removed'}"
        if a != b:
            return (
                f"input {name} changed from v{a['version']} sha256 {a['sha256'][:12]} to v{b['version']} "
                f"sha256 {b['sha256'][:12]}"
            )
    if was.get("pipeline_version") != now.get("pipeline_version"):
        return f"feature pipeline version {was.get('pipeline_version')} -> {now.get('pipeline_version')}"
    return (
        f"{now.get('id')} changed from v{was.get('version')} sha256 {str(was.get('sha256'))[:12]} to "
        f"v{now.get('version')} sha256 {str(now.get('sha256'))[:12]}"
    )


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
        if key == "data" and key in attrs and attrs[key] != value:
            was = attrs[key]
            raise ConfigError(
                f"study {name!r} was made on other data: {data_change(was, value)}; resuming would mix trials "
                f"scored on different data. Use a new hydra.sweeper.study_name for this data (the study's is "
                f"{was.get('id')} v{was.get('version')} from {_inputs(was)})"
            )
        if key in attrs and attrs[key] != value:
            raise ConfigError(
                f"study {name!r} was created with {key}={_short(attrs[key])}, this sweep has "
                f"{_short(value)} (changed: {KEYS[key]}); resuming would mix trials that are not comparable. "
                f"Use a new hydra.sweeper.study_name, or the study's original settings"
            )


def _inputs(record: Mapping[str, Any]) -> str:
    return ", ".join(f"{i['name']} v{i['version']}" for i in record.get("inputs", [])) or "no recorded inputs"
