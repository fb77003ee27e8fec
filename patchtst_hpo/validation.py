"""Checks of a composed config that fail fast, naming the key, before any data is read or model built."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.devices import check_memory
from patchtst_hpo.errors import ConfigError
from patchtst_hpo.metrics import DIRECTIONS
from patchtst_hpo.models.arch_grid import (
    Arch,
    Dims,
    arch_from_cfg,
    budget_candidates,
    count_params,
    dims_from_cfg,
)


def validate(cfg: DictConfig) -> tuple[Arch, Dims]:
    """Fail fast, naming the config key, on what would otherwise fail (or mislead) minutes later.

    Returns the run's architecture and data dims, computed once for the caller.
    """
    if cfg.arch.name == "auto" or OmegaConf.is_missing(cfg.arch, "d_model"):
        raise ConfigError("arch is not set: pick one with arch=NAME (see python -m patchtst_hpo.candidates)")
    arch = arch_from_cfg(cfg)
    dims = dims_from_cfg(cfg)
    if dims.patch_len > dims.context_length:
        raise ConfigError(
            f"model.patch_len={dims.patch_len} is longer than data.context_length="
            f"{dims.context_length}; lower the patch or lengthen the context"
        )
    if dims.stride < 1:
        raise ConfigError(f"model.stride={dims.stride}: must be >= 1")
    if dims.num_classes not in (1, 2):
        raise ConfigError(
            f"task.num_classes={dims.num_classes}: threshold labels are binary; use 1 (BCE) or 2"
        )
    names = {c.arch.name: c for c in budget_candidates(cfg)}
    if arch.name not in names:
        n = count_params(arch, dims)
        t, tol = int(cfg.budget.target), float(cfg.budget.tolerance)
        raise ConfigError(
            f"arch={arch.name} has {n:,} parameters, outside budget={cfg.budget.name} ({t:,} ± {tol:.0%}) for "
            f"these data dims; pick a candidate (python -m patchtst_hpo.candidates budget={cfg.budget.name})"
            f" or another budget"
        )
    if (
        str(cfg.trainer.precision).startswith("16")
        and cfg.optimizer.get("fused")
        and cfg.trainer.gradient_clip_val
    ):
        raise ConfigError(
            f"trainer.precision={cfg.trainer.precision} scales gradients, which a fused AdamW cannot "
            f"clip; use trainer.precision=bf16-mixed or optimizer.fused=false"
        )
    split, _, name = str(cfg.objective.metric).partition("/")
    if split not in ("val", "test") or name not in DIRECTIONS:
        raise ConfigError(
            f"objective.metric={cfg.objective.metric!r} is not a logged metric; use val/<name> "
            f"with name in {sorted(DIRECTIONS)}"
        )
    check_memory(cfg, count_params(arch, dims))
    if cfg.objective.direction not in ("maximize", "minimize"):
        raise ConfigError(f"objective.direction={cfg.objective.direction!r}: use maximize or minimize")
    return arch, dims
