"""Hydra's entry point for `hydra/sweeper: budget_optuna`; the logic lives in patchtst_hpo.hpo.sweeper.

Hydra imports every module under the `hydra_plugins` namespace at start-up (setup.py lists the namespace, so an
editable install is scanned too), so this one stays light:
Optuna and the project are imported only when the sweeper is instantiated. Importing `config` registers the
sweeper's schema, sampler and pruner presets in the ConfigStore, so any Hydra app can select them.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper

from hydra_plugins.patchtst_hpo_sweeper import config as _config  # noqa: F401  (ConfigStore registration)


class BudgetOptunaSweeper(Sweeper):
    def __init__(self, **kwargs: Any) -> None:
        from patchtst_hpo.hpo.sweeper import BudgetOptunaSweeperImpl

        self.impl = BudgetOptunaSweeperImpl(**kwargs)

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        self.impl.sweep(arguments)
