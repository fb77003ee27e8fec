"""The sweeper's config schema, registered in Hydra's ConfigStore so any Hydra app can select it.

`hydra/sweeper=budget_optuna` works in an app with no conf/ of ours: the plugin's defaults are a plain Optuna
sweeper (in-memory storage, default study name, TPE, no pruner). Sampler presets under
`hydra/sweeper/sampler` (tpe, random, cmaes, nsgaii, qmc, gp, grid, motpe) are hydra-optuna-sweeper's, field for
field and value for value; pruners under `hydra/sweeper/pruner` (median, percentile, hyperband,
successive_halving, threshold, none) are ours (upstream has no pruner group). This repo's
conf/hydra/sweeper/patchtst.yaml layers the project's defaults (and its own TPE, sampler/patchtst_tpe.yaml) over
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
    planner: Any = None  # dotted path of a Planner subclass (patchtst_hpo.hpo.planner); null = one study
    transfer_from: Any = None  # a finished study whose best training hyperparameters the studies reuse
    heartbeat_interval: int = 10  # s between heartbeats of a running trial (RDB and journal storages)
    grace_period: int = 30  # s without a heartbeat after which a RUNNING trial is failed and re-queued
    max_retry: int = 3  # how often a lost trial's configuration is queued again (a shape extreme: always)


@dataclass
class BudgetOptunaSweeperConf(BudgetOptunaSweeperSchema):
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}, "_self_"])


# Sampler presets: where upstream (hydra-optuna-sweeper) has the name, the fields and defaults are upstream's
# exactly (its source as of Optuna 4), so with both plugins installed neither can change the other's sampler.
# The project's tuned TPE is conf/hydra/sweeper/sampler/patchtst_tpe.yaml, a name upstream does not use.


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: Any = None
    consider_prior: Any = None  # None: Optuna's own default (these four are deprecated in Optuna 4)
    prior_weight: Any = None
    consider_magic_clip: Any = None
    consider_endpoints: Any = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    warn_independent_sampling: Any = None


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Any = None


@dataclass
class CmaEsSamplerConf:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Any = None
    x0: Any = None
    sigma0: Any = None
    independent_sampler: Any = None
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    restart_strategy: Any = None
    inc_popsize: int = 2  # upstream's value; Optuna 4.4+ ignores it (and says so)
    use_separable_cma: bool = False
    source_trials: Any = None


@dataclass
class NSGAIISamplerConf:
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Any = None
    population_size: int = 50
    mutation_prob: Any = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Any = None


@dataclass
class MOTPESamplerConf:
    """Upstream's `motpe` preset: the sampler is gone since Optuna 4; selecting it says what to use."""

    _target_: str = "hydra_plugins.patchtst_hpo_sweeper.config.motpe_removed"


def motpe_removed(*args: Any, **kwargs: Any) -> None:
    raise ValueError(
        "hydra/sweeper/sampler=motpe: the 'motpe' sampler was removed in Optuna 4.0; "
        "use hydra/sweeper/sampler=tpe (TPESampler handles several objectives)"
    )


@dataclass
class QMCSamplerConf:
    _target_: str = "optuna.samplers.QMCSampler"
    seed: Any = None
    qmc_type: str = "sobol"
    scramble: bool = False
    independent_sampler: Any = None
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class GPSamplerConf:
    _target_: str = "optuna.samplers.GPSampler"
    seed: Any = None
    independent_sampler: Any = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    constraints_func: Any = None
    warn_independent_sampling: bool = True


@dataclass
class GridSamplerConf:
    """Partial, as upstream's: the sweeper passes the grid (every value of the choice/range params)."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True


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
        "motpe": MOTPESamplerConf,
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
