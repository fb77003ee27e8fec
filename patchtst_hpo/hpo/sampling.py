"""The sampler of a study: the configured one, seeded per (seed, study, first trial), with the grid it needs.

Seeded from (seed, study, number of the first trial this process asks): trial numbers are unique in the
storage, so sweepers started together draw differently, a resumed run does not replay the first run's
draws, and a fresh single sweeper (first number 0) is reproducible.
"""

from __future__ import annotations

import logging
import math
import zlib
from typing import Any

import optuna
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.hpo import search_space

log = logging.getLogger(__name__)


def seed_of(sampler_cfg: DictConfig | None, seed: Any) -> int | None:
    """`sampler.seed` when set, else `hydra.sweeper.seed` (None: unseeded)."""
    sampler_seed = sampler_cfg.get("seed") if sampler_cfg is not None else None
    s = sampler_seed if sampler_seed is not None else seed
    return None if s is None else int(s)


def grid(sampler_cfg: DictConfig, space: dict) -> dict[str, list] | None:
    """The whole discrete search space when the sampler is Optuna's GridSampler (which needs it), else None."""
    target = (OmegaConf.select(sampler_cfg, "_target_") or "").rpartition(".")[2]
    if target != "GridSampler":
        return None
    return {k: search_space.grid_choices(k, d) for k, d in space.items()}


def target(n_trials: int, grid_space: dict[str, list] | None, study_name: str | None) -> int:
    """Finished trials wanted in a study: n_trials, or the whole grid if the grid sampler's is smaller."""
    if grid_space is None:
        return n_trials
    size = math.prod(len(v) for v in grid_space.values())
    if size < n_trials:
        log.info("%s: the grid has %d points; n_trials %d -> %d", study_name, size, n_trials, size)
    return min(n_trials, size)


def build(
    sampler_cfg: DictConfig,
    seed: int | None,
    study_name: str,
    first_number: int,
    grid_space: dict[str, list] | None,
) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded from (seed, study, first trial number) when a seed is set."""
    derived = None if seed is None else zlib.crc32(f"{seed}/{study_name}/{first_number}".encode())
    cfg = OmegaConf.to_container(sampler_cfg, resolve=True)
    cfg.pop("_partial_", None)  # upstream's grid preset is partial; here the sweeper passes the grid
    kwargs: dict[str, Any] = {"seed": derived}
    if cfg.get("_target_") == "optuna.samplers.GridSampler":
        kwargs["search_space"] = grid_space
    return instantiate(cfg, **kwargs)


def describe(sampler_cfg: DictConfig | None) -> dict[str, Any]:
    """The sampler as data on the study: its class and how many finished trials it samples at random first
    (None: it has no start-up phase). The report counts random start-up and model-guided trials from it."""
    target = str(OmegaConf.select(sampler_cfg, "_target_") or "") if sampler_cfg is not None else ""
    startup = OmegaConf.select(sampler_cfg, "n_startup_trials") if sampler_cfg is not None else None
    return {"name": target.rpartition(".")[2], "n_startup_trials": None if startup is None else int(startup)}
