"""Trials queued in a storage (Optuna's fixed params: the shape extremes, a retry, or anyone who can write the
storage) are data: their values must lie in the study's search space and be plain (patchtst_hpo/trust.py)."""

from __future__ import annotations

from typing import Any

import optuna

from patchtst_hpo import trust
from patchtst_hpo.hpo import search_space


def suggest(trial: optuna.trial.Trial, name: str, dist: optuna.distributions.BaseDistribution) -> Any:
    """`search_space.suggest`, plus: a value queued in the storage (Optuna's fixed params) must lie in `dist`,
    the user's own search space (Optuna itself only warns about one outside the range)."""
    try:
        v = search_space.suggest(trial, name, dist)
    except (ValueError, TypeError) as e:  # a queued categorical value that is not a choice
        raise trust.UntrustedError(f"queued {name}: {e}") from e
    inside = (
        v in dist.choices
        if isinstance(dist, optuna.distributions.CategoricalDistribution)
        else isinstance(v, int | float) and dist.low <= v <= dist.high
    )
    if not inside:
        raise trust.UntrustedError(f"queued {name}={trust.shown(v)}: outside the search space {dist!r}")
    return v
