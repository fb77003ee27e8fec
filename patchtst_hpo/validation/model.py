"""Checks of the task, the model and the budget, and that the architecture fits the budget."""

from __future__ import annotations

from omegaconf import DictConfig

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.models import mup
from patchtst_hpo.models.arch_grid import Arch, Dims, budget_candidates, count_params
from patchtst_hpo.validation.values import bad, in_range, one_of


def check_task_and_model(cfg: DictConfig) -> None:
    t, m = cfg.task, cfg.model
    in_range(cfg, "task.horizon", 1, None, "days in the label window: >= 1")
    in_range(cfg, "task.threshold", -1, None, "a relative rise, e.g. 0.01 for 1%: > -1", lo_open=True)
    one_of(cfg, "task.label", ("high", "close"))
    if int(t.num_classes) not in (1, 2):
        raise bad("task.num_classes", t.num_classes, "threshold labels are binary; use 1 (BCE) or 2")
    for key in ("dropout", "attn_dropout", "head_dropout"):
        in_range(cfg, f"model.{key}", 0, 1, "a probability in [0, 1)", hi_open=True)
    in_range(cfg, "model.patch_len", 1, None, "must be >= 1")
    if int(m.stride) < 1:
        raise bad("model.stride", m.stride, "must be >= 1")
    if int(m.patch_len) > int(cfg.data.context_length):
        raise ConfigError(
            f"model.patch_len={m.patch_len} is longer than data.context_length="
            f"{cfg.data.context_length}; lower the patch or lengthen the context"
        )
    one_of(cfg, "model.loss", ("bce", "focal"))
    one_of(cfg, "model.parametrization", mup.PARAMETRIZATIONS)
    one_of(cfg, "model.depth_scaling", mup.DEPTH_SCALINGS)
    in_range(cfg, "model.mup_base_width", 1, None, "the d_model at which mup equals standard: >= 1")
    in_range(
        cfg, "model.mup_base_depth", 1, None, "the n_layers at which depth_scaling=sqrt equals none: >= 1"
    )
    in_range(cfg, "model.focal_gamma", 0, None, "must be >= 0")
    in_range(cfg, "model.pos_weight", 0, None, "a weight > 0, or null for 1", lo_open=True)
    if int(t.num_classes) == 2 and (m.loss != "bce" or m.pos_weight is not None):
        key, value = ("model.loss", m.loss) if m.loss != "bce" else ("model.pos_weight", m.pos_weight)
        raise bad(
            key,
            value,
            f"task.num_classes=2 trains with cross-entropy, which ignores it; use task.num_classes=1 for "
            f"{'focal loss' if key == 'model.loss' else 'a positive weight'} or drop the override",
        )


def check_budget(cfg: DictConfig) -> None:
    in_range(cfg, "budget.target", 1, None, "a parameter count >= 1")
    in_range(cfg, "budget.tolerance", 0, None, "a fraction of the target > 0, e.g. 0.25", lo_open=True)


def check_arch_in_budget(cfg: DictConfig, arch: Arch, dims: Dims) -> None:
    """The run's architecture is a candidate of its budget for these data dims."""
    names = {c.arch.name: c for c in budget_candidates(cfg)}
    if arch.name not in names:
        n = count_params(arch, dims)
        t, tol = int(cfg.budget.target), float(cfg.budget.tolerance)
        raise ConfigError(
            f"arch={arch.name} has {n:,} parameters, outside budget={cfg.budget.name} ({t:,} ± {tol:.0%}) for "
            f"these data dims; pick a candidate (python -m patchtst_hpo.candidates budget={cfg.budget.name})"
            f" or another budget"
        )
