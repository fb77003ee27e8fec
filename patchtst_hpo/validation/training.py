"""Checks of how a run trains: optimizer, scheduler, Lightning Trainer."""

from __future__ import annotations

import math

from omegaconf import DictConfig

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.validation.values import bad, in_range, num

# Lightning's precision values (its Trainer's `precision` Literal).
PRECISIONS = (
    "32-true",
    "bf16-mixed",
    "16-mixed",
    "bf16-true",
    "16-true",
    "64-true",
    "32",
    "16",
    "bf16",
    "64",
    "transformer-engine",
    "transformer-engine-float16",
)


def check_optimizer(cfg: DictConfig) -> None:
    o = cfg.optimizer
    lr = num(cfg, "optimizer.lr")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not (math.isfinite(lr) and lr > 0):
        # "Invalid learning rate" is torch's wording, kept so sweep fail reasons read the same as before
        raise ConfigError(f"Invalid learning rate optimizer.lr={lr}: must be > 0, e.g. optimizer.lr=3e-4")
    in_range(cfg, "optimizer.weight_decay", 0, None, "must be >= 0, e.g. optimizer.weight_decay=1e-4")
    betas = o.get("betas")
    if betas is not None and (len(betas) != 2 or not all(0 <= float(b) < 1 for b in betas)):
        raise bad("optimizer.betas", betas, "two numbers in [0, 1), e.g. optimizer.betas=[0.9,0.95]")


def check_scheduler(cfg: DictConfig) -> None:
    if not cfg.get("scheduler") or "warmup_fraction" not in cfg.scheduler:
        return
    in_range(cfg, "scheduler.warmup_fraction", 0, 1, "a fraction of the steps in [0, 1)", hi_open=True)
    in_range(cfg, "scheduler.min_lr_ratio", 0, 1, "a fraction of the lr in [0, 1]")


def check_trainer(cfg: DictConfig) -> None:
    t = cfg.trainer
    if t.get("max_epochs") is None or int(t.max_epochs) < 1:
        raise bad(
            "trainer.max_epochs", t.get("max_epochs"), "must be >= 1 (an untrained model has no metrics)"
        )
    if t.get("min_epochs") is not None and not 0 <= int(t.min_epochs) <= int(t.max_epochs):
        raise bad("trainer.min_epochs", t.min_epochs, f"must be in [0, trainer.max_epochs={t.max_epochs}]")
    for split in ("train", "val", "test"):
        key = f"limit_{split}_batches"
        v = t.get(key)
        if v is None or (split == "test" and not cfg.get("test")):
            continue
        ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 1) or (
            isinstance(v, float) and 0 < v <= 1
        )
        if not ok:
            raise bad(
                f"trainer.{key}", v, "a number of batches >= 1 or a fraction in (0, 1]; null = all batches"
            )
    devices = t.get("devices")
    if isinstance(devices, int) and not isinstance(devices, bool) and (devices == 0 or devices < -1):
        raise bad("trainer.devices", devices, "a count >= 1, -1 (all), auto, or a list of device ids")
    if t.get("precision") is not None and str(t.precision) not in PRECISIONS:
        raise bad("trainer.precision", t.precision, f"use one of {', '.join(PRECISIONS)}")
    in_range(cfg, "trainer.gradient_clip_val", 0, None, "must be >= 0 (0 or null: no clipping)")
    if t.get("gradient_clip_algorithm") not in (None, "norm", "value"):
        raise bad(
            "trainer.gradient_clip_algorithm", t.gradient_clip_algorithm, "use norm, value or null (norm)"
        )
    in_range(cfg, "trainer.rank_grace_seconds", 0, None, "seconds >= 0 the other ranks get after one fails")
    in_range(cfg, "trainer.accumulate_grad_batches", 1, None, "must be >= 1")
    if str(t.precision).startswith("16") and cfg.optimizer.get("fused") and t.gradient_clip_val:
        raise ConfigError(
            f"trainer.precision={t.precision} scales gradients, which a fused AdamW cannot "
            f"clip; use trainer.precision=bf16-mixed or optimizer.fused=false"
        )


def check_callbacks(cfg: DictConfig) -> None:
    """Early stopping's patience and min_delta (when the callback is on)."""
    if cfg.get("callbacks") is None or cfg.callbacks.get("early_stopping") is None:
        return
    in_range(cfg, "callbacks.early_stopping.patience", 0, None, "must be >= 0 (epochs without improvement)")
    in_range(cfg, "callbacks.early_stopping.min_delta", 0, None, "must be >= 0")
