"""Hydra's entry point for `hydra/sweeper: budget_optuna`; the logic lives in patchtst_hpo.hpo.sweeper.

Hydra imports every module under the `hydra_plugins` namespace at start-up, so this one stays light:
Optuna and the project are imported only when the sweeper is instantiated.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper


class BudgetOptunaSweeper(Sweeper):
    def __init__(self, **kwargs: Any) -> None:
        from patchtst_hpo.hpo.sweeper import BudgetOptunaSweeperImpl

        self.impl = BudgetOptunaSweeperImpl(**kwargs)

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.impl.sweep(arguments)
