"""Training hyperparameters taken from a finished smaller study (`hydra.sweeper.transfer_from`), so a big budget's
study searches only the architecture (µP makes the lr carry over across widths: docs/decisions/0004).

The source study's best trial gives every param but `arch`; they come from a storage, so they pass the same
check as every stored override (`patchtst_hpo/trust.py`) before they become overrides of the new studies. The source
and the new study must share the parametrisation (`model.parametrization`, `model.mup_base_width`, ...), which
every budget-planner study records (`PARAMETRIZATION_KEYS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo import trust
from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo.search_space import override
from patchtst_hpo.hpo.storage import open_storage

KEY = "hydra.sweeper.transfer_from"
PARAMETRIZATION_KEYS = ("parametrization", "mup_base_width", "depth_scaling", "mup_base_depth")


def parametrization(cfg: DictConfig) -> dict[str, Any]:
    """The model's parametrisation settings of a composed config (a study's `parametrization` attribute)."""
    m = cfg.model
    return {k: OmegaConf.select(m, k) for k in PARAMETRIZATION_KEYS}


@dataclass(frozen=True)
class Transfer:
    """The source study's best trial: its number, value and the params that become fixed overrides."""

    study: str
    trial: int
    value: float
    params: dict[str, Any]
    parametrization: dict[str, Any] | None  # None: the source predates the attribute

    def overrides(self, skip: set[str]) -> list[str]:
        """The transferred params as overrides, except keys in `skip` (the user fixed them)."""
        return [override(k, v) for k, v in sorted(self.params.items()) if k not in skip]

    def provenance(self) -> dict[str, Any]:
        """The `transfer_from` user attribute of a study (and its identity): where its hyperparameters came from."""
        return {"study": self.study, "trial": self.trial, "value": self.value, "params": dict(self.params)}

    def check_parametrization(self, cfg: DictConfig, study: str) -> None:
        """ConfigError unless the new study trains under the source's parametrisation (when it is recorded)."""
        mine = parametrization(cfg)
        if self.parametrization is not None and self.parametrization != mine:
            diff = {
                k: (self.parametrization.get(k), v)
                for k, v in mine.items()
                if self.parametrization.get(k) != v
            }
            raise ConfigError(
                f"{KEY}={self.study}: it was searched under {diff} (source, this study {study}); hyperparameters "
                f"transfer only under the same parametrisation: set model.<key> to the source's value"
            )


def load(storage_url: str | None, name: str, n_objectives: int) -> Transfer:
    """The best trial of study `name` in the sweep's storage; ConfigError naming the fix when there is none."""
    if storage_url is None:
        raise ConfigError(
            f"{KEY}={name}: the storage is in-memory (null), so no earlier study exists; set "
            f"hydra.sweeper.storage to the storage of the source study"
        )
    if n_objectives != 1:
        raise ConfigError(f"{KEY}={name}: a multi-objective sweep has no single best trial to transfer from")
    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
        raise ConfigError(
            f"{KEY}={name}: no such study in the storage; studies there: {names[:20]}"
        ) from None
    if len(study.directions) != 1:
        raise ConfigError(f"{KEY}={name}: the source is multi-objective; use a single-objective study")
    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError(
            f"{KEY}={name}: the source study has no completed trial yet; finish it first"
        ) from None
    params = {k: v for k, v in best.params.items() if k != "arch"}
    trust.stored_overrides([override(k, v) for k, v in params.items()], f"study {name!r} ({KEY})")
    if not params:
        raise ConfigError(f"{KEY}={name}: its best trial searched nothing but the arch; nothing to transfer")
    recorded = study.user_attrs.get("parametrization")
    return Transfer(
        name, best.number, float(best.value), params, recorded if isinstance(recorded, dict) else None
    )
