"""The sweeper's config schema, registered in Hydra's ConfigStore so any Hydra app can select it.

`hydra/sweeper=budget_optuna` works in an app with no conf/ of ours: the plugin's defaults are a plain Optuna
sweeper (in-memory storage, default study name, TPE, no pruner). Sampler presets under
`hydra/sweeper/sampler` (tpe, random, cmaes, nsgaii, qmc, gp, grid) and pruners under `hydra/sweeper/pruner`
(median, percentile, hyperband, successive_halving, threshold, none) use hydra-optuna-sweeper 1.4's
vocabulary. This repo's conf/hydra/sweeper/patchtst.yaml layers the project's defaults over
`budget_optuna_schema` (a YAML may not share a name with a ConfigStore entry of its group: Hydra would
match them as schema and data). Kept free of heavy imports: Hydra imports it at every start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

PROVIDER = "patchtst_hpo_sweeper"


@dataclass
class BudgetOptunaSweeperSchema:
    """Every key the sweeper takes (docs/hpo.md has the meanings and the migration table)."""

    _target_: str = "hydra_plugins.patchtst_hpo_sweeper.budget_optuna.BudgetOptunaSweeper"
    _recursive_: bool = False  # the sweeper builds sampler and pruner per study (seeded)
    sampler: Any = MISSING
    pruner: Any = None  # null = no pruning
    direction: Any = "minimize"  # or a list: multi-objective (the task returns a sequence)
    metric: Any = None  # name(s) of what the task returns, recorded on the study
    storage: Any = None  # null = in-memory (no resume); sqlite:///..., postgresql://..., journal:<path>
    study_name: Any = None  # null = Optuna's default name; numbers are fine (str())
    n_trials: int = 20  # finished (COMPLETE + PRUNED) trials per study, in total
    n_jobs: int = 2  # trials launched together (one launcher batch)
    seed: Any = None  # used when sampler.seed is not set
    max_failure_rate: float = 0.0  # abort when FAIL > rate x n_trials; >= 1.0 never aborts
    params: Any = None  # {key: override grammar}
    custom_search_space: Any = None  # dotted path of fn(cfg, trial) that suggests more params
    heartbeat_interval: int = 10  # s between heartbeats of a running trial (RDB and journal storages)
    grace_period: int = 30  # s without a heartbeat after which a RUNNING trial is failed and re-queued
    max_retry: int = 3  # how often a lost trial's configuration is queued again (a shape extreme: always)


@dataclass
class BudgetOptunaSweeperConf(BudgetOptunaSweeperSchema):
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}, "_self_"])


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: Any = None
    n_startup_trials: int = 8  # random trials (after enqueued ones) before TPE models the space
    n_ei_candidates: int = 24
    multivariate: bool = True  # models parameters jointly (upstream: false)
    constant_liar: bool = True  # parallel trials do not all sample the same point (upstream: false)


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Any = None


@dataclass
class CmaEsSamplerConf:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Any = None
    sigma0: Any = None
    n_startup_trials: int = 1
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    use_separable_cma: bool = False
    # upstream's restart_strategy / inc_popsize are gone: deprecated and ignored since Optuna 4.4


@dataclass
class NSGAIISamplerConf:
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Any = None
    population_size: int = 50
    mutation_prob: Any = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5


@dataclass
class QMCSamplerConf:
    _target_: str = "optuna.samplers.QMCSampler"
    seed: Any = None
    qmc_type: str = "sobol"
    scramble: bool = False
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class GPSamplerConf:
    _target_: str = "optuna.samplers.GPSampler"
    seed: Any = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    warn_independent_sampling: bool = True


@dataclass
class GridSamplerConf:
    """The grid is built by the sweeper from the discrete search space (choice/range params)."""

    _target_: str = "optuna.samplers.GridSampler"
    seed: Any = None


@dataclass
class MedianPrunerConf:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 4  # complete trials before any pruning
    n_warmup_steps: int = 2  # steps (epochs here) before a trial can be pruned
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class PercentilePrunerConf:
    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 2
    max_resource: Any = "auto"
    reduction_factor: int = 3


@dataclass
class SuccessiveHalvingPrunerConf:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0


@dataclass
class ThresholdPrunerConf:
    _target_: str = "optuna.pruners.ThresholdPruner"
    lower: Any = None
    upper: Any = None
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass
class NopPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="hydra/sweeper", name="budget_optuna", node=BudgetOptunaSweeperConf, provider=PROVIDER)
    cs.store(
        group="hydra/sweeper", name="budget_optuna_schema", node=BudgetOptunaSweeperSchema, provider=PROVIDER
    )
    samplers = {
        "tpe": TPESamplerConf,
        "random": RandomSamplerConf,
        "cmaes": CmaEsSamplerConf,
        "nsgaii": NSGAIISamplerConf,
        "qmc": QMCSamplerConf,
        "gp": GPSamplerConf,
        "grid": GridSamplerConf,
    }
    for name, node in samplers.items():
        cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider=PROVIDER)
    pruners = {
        "median": MedianPrunerConf,
        "percentile": PercentilePrunerConf,
        "hyperband": HyperbandPrunerConf,
        "successive_halving": SuccessiveHalvingPrunerConf,
        "threshold": ThresholdPrunerConf,
        "none": NopPrunerConf,
    }
    for name, node in pruners.items():
        cs.store(group="hydra/sweeper/pruner", name=name, node=node, provider=PROVIDER)


register()
