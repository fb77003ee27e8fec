"""What the sweeper runs: one `StudyPlan` per study, made by the planner named in `hydra.sweeper.planner`.

The generic `Planner` keeps hydra-optuna-sweeper's meaning (one study from the command line and `params`, a
comma list is a categorical); an app picks another in its config (this project:
`patchtst_hpo.hpo.budget_planner.BudgetPlanner`). The planner comes from the user's config, never from a
storage, and must be a subclass of `Planner`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from hydra.utils import get_object
from omegaconf import DictConfig

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo import identity, search_space


@dataclass(frozen=True)
class SweepContext:
    """What a planner may know of the sweep (the sweeper's settings, and how to compose a job's config)."""

    prefix: str | None  # hydra.sweeper.study_name
    metric: Any
    direction: Any
    directions: list[str]
    custom_search_space: Callable | None
    public_url: str  # the storage URL without password ("in-memory" when storage is null)
    shared_storage: bool  # False for the in-memory storage: jobs cannot reach it
    config: DictConfig  # the master config
    compose: Callable[[Sequence[str]], DictConfig]  # overrides -> a job's composed config
    transfer_from: str | None = None  # hydra.sweeper.transfer_from (planners with supports_transfer)


@dataclass
class StudyPlan:
    """One study: its name, what every job gets, what is searched, what runs first, what defines it."""

    name: str | None  # None: Optuna picks a name
    overrides: list[str]  # fixed overrides of every job
    space: dict[str, optuna.distributions.BaseDistribution]  # searched in the study
    cfg: DictConfig  # the composed config of the study (custom_search_space gets it)
    identity: dict[str, Any]  # identity.of_study(...): a resume under anything else is refused
    values: dict[str, Any] = field(default_factory=dict)  # the grid cell (summary row, `grid` attribute)
    enqueue: list[dict[str, Any]] = field(default_factory=list)  # params of the first trials, in order
    enqueue_as: str = "first"  # their `enqueued` user attribute (the budget planner's: "extreme")
    enqueue_after: int = 0  # queue them once the study has this many other trials (0: when it is created)
    user_attrs: dict[str, Any] = field(default_factory=dict)  # more description of the study
    out_dir: str = ""  # subfolder of the sweep dir for its jobs and optimization_results.yaml


class Planner:
    """hydra-optuna-sweeper's plan: one study named `study_name`, searching the plan's space."""

    grid_as_studies = False  # a command-line comma list is a categorical, as upstream
    supports_transfer = False  # hydra.sweeper.transfer_from: the budget planner's (hpo/transfer.py)

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx

    def studies(self, plan: search_space.SweepPlan) -> list[StudyPlan]:
        ctx = self.ctx
        return [
            StudyPlan(
                name=ctx.prefix,
                overrides=list(plan.fixed),
                space=dict(plan.space),
                cfg=ctx.config,
                identity=self.identity(plan.space, plan.fixed),
            )
        ]

    def identity(self, space: dict, overrides: list[str], **planned: Any) -> dict[str, Any]:
        """The study identity from the sweep's settings plus the planner's part (arch candidates, data id,
        the data's manifest entry)."""
        ctx = self.ctx
        return identity.of_study(
            metric=ctx.metric,
            direction=ctx.direction,
            space=space,
            arch_candidates=planned.get("arch_candidates", []),
            data_id=planned.get("data_id"),
            fixed_overrides=overrides,
            custom_search_space=ctx.custom_search_space,
            data=planned.get("data"),
        )

    def trial_overrides(self, study: StudyPlan, trial: optuna.trial.Trial, chosen: dict) -> list[str]:
        """Overrides a job gets beyond the study's and its drawn params (may set trial user attributes)."""
        return []

    def best_fields(self, study: StudyPlan, best: optuna.trial.FrozenTrial) -> tuple[dict, dict]:
        """Extra fields of (optimization_results.yaml, the summary row) for a study's best trial."""
        return {}, {}


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def load(path: Any) -> type[Planner]:
    """The planner class named by `hydra.sweeper.planner` (null: the generic one); ConfigError otherwise."""
    if path is None:
        return Planner
    text = str(path)
    fix = "use a dotted path of a Planner subclass, e.g. patchtst_hpo.hpo.budget_planner.BudgetPlanner"
    if not _DOTTED.fullmatch(text):
        raise ConfigError(f"hydra.sweeper.planner={text!r}: {fix}")
    try:
        cls = get_object(text)
    except Exception as e:
        why = " ".join(str(e).split())
        raise ConfigError(f"hydra.sweeper.planner={text!r} cannot be imported ({why}); {fix}") from e
    if not (isinstance(cls, type) and issubclass(cls, Planner)):
        raise ConfigError(f"hydra.sweeper.planner={text!r} is not a Planner subclass; {fix}")
    return cls
