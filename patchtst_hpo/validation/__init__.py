"""Checks of a composed config that fail fast, naming the key, before any data is read or model built.

The typed schemas (`schemas.py`) refuse wrong types and unknown keys at compose time; this pass checks
ranges and combinations. Every message names the key and the bad value and says the fix, in one line.
It imports nothing heavy until the cheap checks have passed, so a bad config fails in about a second.
For single runs it also runs before Hydra makes the run folder (`cli.ValidateOnRunStart`).

One module per concern: `run` (unknown `+` keys, seed, test, checkpoint), `training` (optimizer, scheduler,
Trainer), `data` (windows, splits, tier, dataset dates), `model` (task, model, budget, arch in budget),
`objective`, `processes` (devices this machine lacks, CPU-impossible precision/strategy; imports torch, so
it runs after the cheap ones); `values` has the helpers (`bad`, `in_range`, `one_of`). A new check: a `check_<what>(cfg)`
in the module of its concern, added to `CHEAP_CHECKS` below (in order: cheapest and most common first).
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.models.arch_grid import Arch, Dims, arch_from_cfg, count_params, dims_from_cfg
from patchtst_hpo.validation import data, model, objective, processes, run, training

CHEAP_CHECKS: list[Callable[[DictConfig], None]] = [
    run.check_unknown_keys,
    run.check_template_keys,
    run.check_run,
    run.check_loggers,
    training.check_optimizer,
    training.check_scheduler,
    training.check_trainer,
    training.check_callbacks,
    model.check_budget,
    data.check_data,
    model.check_task_and_model,
    objective.check_objective,
    data.check_dataset_dates,
    data.check_tier,  # imports pandas: the last cheap check
]


def validate(cfg: DictConfig) -> tuple[Arch, Dims]:
    """Fail fast, naming the config key, on what would otherwise fail (or mislead) minutes later.

    Returns the run's architecture and data dims, computed once for the caller.
    """
    if cfg.arch.name == "auto" or OmegaConf.is_missing(cfg.arch, "d_model"):
        raise ConfigError("arch is not set: pick one with arch=NAME (see python -m patchtst_hpo.candidates)")
    for check in CHEAP_CHECKS:
        check(cfg)
    arch = arch_from_cfg(cfg)
    dims = dims_from_cfg(cfg)
    model.check_arch_in_budget(cfg, arch, dims)
    processes.check_processes(cfg)  # imports torch: after every cheap check
    from patchtst_hpo.devices import check_memory

    check_memory(cfg, count_params(arch, dims))
    return arch, dims
