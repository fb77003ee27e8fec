"""Checks of a composed config that fail fast, naming the key, before any data is read or model built.

The typed schemas (`schemas.py`) refuse wrong types and unknown keys at compose time; this pass checks
ranges and combinations. Every message names the key and the bad value and says the fix, in one line.
It imports nothing heavy until the cheap checks have passed, so a bad config fails in about a second.
For single runs it also runs before Hydra makes the run folder (`cli.ValidateOnRunStart`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.models import mup
from patchtst_hpo.models.arch_grid import (
    Arch,
    Dims,
    arch_from_cfg,
    budget_candidates,
    count_params,
    dims_from_cfg,
)

# Keys of metrics.json a multi-objective sweep may use beside val/<metric> (its later objectives).
RESULT_KEYS = ("params", "trainable_params", "train_flops", "epochs", "steps", "wall_seconds", "fit_seconds")
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
# Logged on val but not an objective: why, and what to use instead.
NOT_OBJECTIVES = {
    "loss": "is the training loss on val, not in the evaluated results; use val/log_loss (same cross-entropy)",
    "positive_rate": "is the share of positive labels, a property of the data, not of the model",
    "threshold": "is the F1 threshold chosen on val, not a score",
    "n": "is the number of val samples",
}


def _bad(key: str, value: Any, fix: str) -> ConfigError:
    return ConfigError(f"{key}={_show(value)}: {fix}")


def _show(value: Any) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value)
    return str(value)


def _num(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, throw_on_missing=True)


def _range(
    cfg: DictConfig, key: str, lo: float | None, hi: float | None, fix: str, lo_open=False, hi_open=False
):
    v = _num(cfg, key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _bad(key, v, f"must be a finite number; {fix}")
    if (
        lo is not None
        and (v <= lo if lo_open else v < lo)
        or hi is not None
        and (v >= hi if hi_open else v > hi)
    ):
        raise _bad(key, v, fix)


def _choice(cfg: DictConfig, key: str, options: tuple[str, ...]) -> None:
    v = OmegaConf.select(cfg, key, throw_on_missing=True)
    if v not in options:
        raise _bad(key, v, f"use one of {', '.join(options)}")


def check_unknown_keys(cfg: DictConfig) -> None:
    """Keys added with `+group.key=...` to a typed group (Hydra's `+` bypasses the schema)."""
    from patchtst_hpo.messages import suggest

    for group in cfg:
        node = cfg.get(group) if OmegaConf.is_dict(cfg) else None
        schema = OmegaConf.get_type(node) if OmegaConf.is_dict(node) else None
        if not (schema and is_dataclass(schema)):
            continue
        known = set(schema.__dataclass_fields__)
        for key in node:
            if key not in known:
                hint = suggest(f"{group}.{key}", _show(node[key]))
                raise ConfigError(
                    f"{group}.{key}={_show(node[key])}: {group} has no key '{key}' (a +{group}.{key} override "
                    f"adds it and nothing reads it); {hint or 'remove it'}"
                )


def check_optimizer(cfg: DictConfig) -> None:
    o = cfg.optimizer
    lr = _num(cfg, "optimizer.lr")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not (math.isfinite(lr) and lr > 0):
        # "Invalid learning rate" is torch's wording, kept so sweep fail reasons read the same as before
        raise ConfigError(f"Invalid learning rate optimizer.lr={lr}: must be > 0, e.g. optimizer.lr=3e-4")
    _range(cfg, "optimizer.weight_decay", 0, None, "must be >= 0, e.g. optimizer.weight_decay=1e-4")
    betas = o.get("betas")
    if betas is not None and (len(betas) != 2 or not all(0 <= float(b) < 1 for b in betas)):
        raise _bad("optimizer.betas", betas, "two numbers in [0, 1), e.g. optimizer.betas=[0.9,0.95]")


def check_scheduler(cfg: DictConfig) -> None:
    if not cfg.get("scheduler") or "warmup_fraction" not in cfg.scheduler:
        return
    _range(cfg, "scheduler.warmup_fraction", 0, 1, "a fraction of the steps in [0, 1)", hi_open=True)
    _range(cfg, "scheduler.min_lr_ratio", 0, 1, "a fraction of the lr in [0, 1]")


def check_trainer(cfg: DictConfig) -> None:
    t = cfg.trainer
    if t.get("max_epochs") is None or int(t.max_epochs) < 1:
        raise _bad(
            "trainer.max_epochs", t.get("max_epochs"), "must be >= 1 (an untrained model has no metrics)"
        )
    if t.get("min_epochs") is not None and not 0 <= int(t.min_epochs) <= int(t.max_epochs):
        raise _bad("trainer.min_epochs", t.min_epochs, f"must be in [0, trainer.max_epochs={t.max_epochs}]")
    for split in ("train", "val", "test"):
        key = f"limit_{split}_batches"
        v = t.get(key)
        if v is None or (split == "test" and not cfg.get("test")):
            continue
        ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 1) or (
            isinstance(v, float) and 0 < v <= 1
        )
        if not ok:
            raise _bad(
                f"trainer.{key}", v, "a number of batches >= 1 or a fraction in (0, 1]; null = all batches"
            )
    devices = t.get("devices")
    if isinstance(devices, int) and not isinstance(devices, bool) and (devices == 0 or devices < -1):
        raise _bad("trainer.devices", devices, "a count >= 1, -1 (all), auto, or a list of device ids")
    if t.get("precision") is not None and str(t.precision) not in PRECISIONS:
        raise _bad("trainer.precision", t.precision, f"use one of {', '.join(PRECISIONS)}")
    _range(cfg, "trainer.gradient_clip_val", 0, None, "must be >= 0 (0 or null: no clipping)")
    _range(cfg, "trainer.accumulate_grad_batches", 1, None, "must be >= 1")
    if str(t.precision).startswith("16") and cfg.optimizer.get("fused") and t.gradient_clip_val:
        raise ConfigError(
            f"trainer.precision={t.precision} scales gradients, which a fused AdamW cannot "
            f"clip; use trainer.precision=bf16-mixed or optimizer.fused=false"
        )


def check_data(cfg: DictConfig) -> None:
    d = cfg.data
    for key in ("context_length", "batch_size", "eval_batch_size"):
        _range(cfg, f"data.{key}", 1, None, "must be >= 1")
    _range(cfg, "data.num_workers", 0, None, "must be >= 0")
    _choice(cfg, "data.normalize", ("zscore", "none"))
    _choice(cfg, "data.fit_on", ("train", "train_val"))
    if "train_fraction" in d and not OmegaConf.is_missing(d, "train_fraction"):
        _range(cfg, "data.train_fraction", 0, 1, "a fraction of the training windows in (0, 1]", lo_open=True)
    s = d.split
    _choice(cfg, "data.split.method", ("fractions", "dates"))
    if s.method == "fractions":
        tr, va = float(s.train), float(s.val)
        if not (0 < tr and 0 < va and tr + va < 1):
            raise ConfigError(
                f"data.split.train={tr}, data.split.val={va}: each must be > 0 and their sum < 1 (the rest is test)"
            )
    else:
        import datetime as dt

        for key in ("val_start", "test_start"):
            v = s.get(key)
            if v is None:
                raise _bad(f"data.split.{key}", v, "data.split.method=dates needs a date (YYYY-MM-DD) here")
            try:
                dt.date.fromisoformat(str(v)[:10])
            except ValueError:
                raise _bad(f"data.split.{key}", v, "not a date; write it as YYYY-MM-DD") from None
        if not str(s.val_start)[:10] < str(s.test_start)[:10]:
            raise ConfigError(
                f"data.split.val_start={s.val_start} must be before data.split.test_start={s.test_start}"
            )
    _range(cfg, "data.split.purge", 0, None, "rows dropped at each boundary: >= 0 or null")


def check_tier(cfg: DictConfig) -> None:
    from patchtst_hpo.data.features import TIERS  # imports pandas: the last cheap check

    d = cfg.data

    if d.tier not in TIERS:
        raise _bad("data.tier", d.tier, f"not a feature tier; use one of {', '.join(sorted(TIERS))}")


def check_task_and_model(cfg: DictConfig) -> None:
    t, m = cfg.task, cfg.model
    _range(cfg, "task.horizon", 1, None, "days in the label window: >= 1")
    _range(cfg, "task.threshold", -1, None, "a relative rise, e.g. 0.01 for 1%: > -1", lo_open=True)
    _choice(cfg, "task.label", ("high", "close"))
    if int(t.num_classes) not in (1, 2):
        raise _bad("task.num_classes", t.num_classes, "threshold labels are binary; use 1 (BCE) or 2")
    for key in ("dropout", "attn_dropout", "head_dropout"):
        _range(cfg, f"model.{key}", 0, 1, "a probability in [0, 1)", hi_open=True)
    _range(cfg, "model.patch_len", 1, None, "must be >= 1")
    if int(m.stride) < 1:
        raise _bad("model.stride", m.stride, "must be >= 1")
    if int(m.patch_len) > int(cfg.data.context_length):
        raise ConfigError(
            f"model.patch_len={m.patch_len} is longer than data.context_length="
            f"{cfg.data.context_length}; lower the patch or lengthen the context"
        )
    _choice(cfg, "model.loss", ("bce", "focal"))
    _choice(cfg, "model.parametrization", mup.PARAMETRIZATIONS)
    _choice(cfg, "model.depth_scaling", mup.DEPTH_SCALINGS)
    _range(cfg, "model.mup_base_width", 1, None, "the d_model at which mup equals standard: >= 1")
    _range(cfg, "model.mup_base_depth", 1, None, "the n_layers at which depth_scaling=sqrt equals none: >= 1")
    _range(cfg, "model.focal_gamma", 0, None, "must be >= 0")
    _range(cfg, "model.pos_weight", 0, None, "a weight > 0, or null for 1", lo_open=True)
    if int(t.num_classes) == 2 and (m.loss != "bce" or m.pos_weight is not None):
        key, value = ("model.loss", m.loss) if m.loss != "bce" else ("model.pos_weight", m.pos_weight)
        raise _bad(
            key,
            value,
            f"task.num_classes=2 trains with cross-entropy, which ignores it; use task.num_classes=1 for "
            f"{'focal loss' if key == 'model.loss' else 'a positive weight'} or drop the override",
        )


def check_budget(cfg: DictConfig) -> None:
    _range(cfg, "budget.target", 1, None, "a parameter count >= 1")
    _range(cfg, "budget.tolerance", 0, None, "a fraction of the target > 0, e.g. 0.25", lo_open=True)


def check_run(cfg: DictConfig) -> None:
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _bad("seed", seed, "an integer, e.g. seed=42")
    if not isinstance(cfg.get("test"), bool):
        raise _bad("test", cfg.get("test"), "true or false (evaluate the best checkpoint on the test period)")
    ckpt = cfg.get("ckpt_path")
    if ckpt is not None and not Path(str(ckpt)).is_file():
        raise _bad("ckpt_path", ckpt, "no such file; point it at a run's checkpoints/last.ckpt")


def _objective_pairs(cfg: DictConfig) -> list[tuple[str, str]]:
    metric, direction = cfg.objective.metric, cfg.objective.direction
    if not isinstance(metric, ListConfig):
        return [(str(metric), str(direction))]
    directions = list(direction) if isinstance(direction, ListConfig) else [direction] * len(metric)
    if len(directions) != len(metric):
        raise _bad("objective.direction", direction, f"give one direction per metric ({len(metric)})")
    return [(str(m), str(d)) for m, d in zip(metric, directions, strict=True)]


def metric_directions() -> dict[str, str]:
    """`metrics.DIRECTIONS`, read from the module's source: importing `metrics` loads scikit-learn/scipy
    (1-2 s), too slow for a check that should fail within a second (tests prove both agree)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("patchtst_hpo.metrics")
    if spec and spec.origin:
        for node in ast.parse(Path(spec.origin).read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(getattr(t, "id", None) == "DIRECTIONS" for t in targets):
                try:
                    return ast.literal_eval(node.value)
                except ValueError:
                    break
    from patchtst_hpo.metrics import DIRECTIONS

    return DIRECTIONS


def check_objective(cfg: DictConfig) -> None:
    """The objective is a metric the run logs on val (test is held out), with the direction that improves it."""
    pairs = _objective_pairs(cfg)
    for i, (metric, direction) in enumerate(pairs):
        if direction not in ("maximize", "minimize"):
            raise _bad("objective.direction", direction, "use maximize or minimize")
        split, _, name = metric.partition("/")
        if i and not name and metric in RESULT_KEYS:
            continue  # a later objective of a multi-objective sweep may be a result key such as params
        if split == "test":
            raise _bad(
                "objective.metric",
                metric,
                f"optimising on the test period is leakage (test is held out for the final confirmation); "
                f"use val/{name}",
            )
        if split != "val" or not name:
            raise _bad("objective.metric", metric, "use val/<name>, e.g. val/auc")
        if name in NOT_OBJECTIVES:
            raise _bad("objective.metric", metric, NOT_OBJECTIVES[name])
        directions = metric_directions()
        names = sorted(k for k in directions if k not in NOT_OBJECTIVES)
        if name not in directions:
            raise _bad(
                "objective.metric", metric, f"not a logged metric; use val/<name> with name in {names}"
            )
        if directions[name] != direction:
            raise _bad(
                "objective.direction",
                direction,
                f"{metric} is better when {'higher' if directions[name] == 'maximize' else 'lower'}; "
                f"use objective.direction={directions[name]}",
            )


def check_dataset_dates(cfg: DictConfig) -> None:
    """The raw dataset is registered, and date split boundaries lie inside its span (manifest only)."""
    from patchtst_hpo.data.manifest import Manifest
    from patchtst_hpo.errors import DataError

    d = cfg.data
    panel = None if OmegaConf.is_missing(d, "panel") else d.get("panel")
    if d.get("ohlcv") is None and panel is None:
        raise ConfigError(
            "data.ohlcv is not set: pass the name you ingested your file under, e.g. data=own "
            "data.ohlcv=SPY.OHLCV.daily (python -m patchtst_hpo.data list shows the names)"
        )
    name = d.get("ohlcv")
    if not name:
        return
    manifest = Manifest(Path(str(d.root)) / "raw" / "manifest.json")
    try:
        entry = manifest.get(name)
    except DataError as e:
        raise ConfigError(f"data.ohlcv={name}: {e}") from None
    try:
        entry = manifest.get(name, d.version)
    except (DataError, ValueError) as e:
        raise _bad("data.version", d.version, f"{e}; use latest or one of those") from None
    if d.get("vix"):
        try:
            manifest.get(d.vix)
        except DataError as e:
            raise ConfigError(f"data.vix={d.vix}: {e}; or data.vix=null for no VIX block") from None
    if d.split.method != "dates":
        return
    first, last = entry["first_date"], entry["last_date"]
    for key in ("val_start", "test_start"):
        v = str(d.split[key])[:10]
        if not first < v <= last:
            raise _bad(
                f"data.split.{key}",
                v,
                f"lies {'after the last' if v > last else 'on or before the first'} date of {name} "
                f"({first}..{last}); pick a date inside that span or use data.split.method=fractions",
            )


CHEAP_CHECKS: list[Callable[[DictConfig], None]] = [
    check_unknown_keys,
    check_run,
    check_optimizer,
    check_scheduler,
    check_trainer,
    check_budget,
    check_data,
    check_task_and_model,
    check_objective,
    check_dataset_dates,
    check_tier,
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
    names = {c.arch.name: c for c in budget_candidates(cfg)}
    if arch.name not in names:
        n = count_params(arch, dims)
        t, tol = int(cfg.budget.target), float(cfg.budget.tolerance)
        raise ConfigError(
            f"arch={arch.name} has {n:,} parameters, outside budget={cfg.budget.name} ({t:,} ± {tol:.0%}) for "
            f"these data dims; pick a candidate (python -m patchtst_hpo.candidates budget={cfg.budget.name})"
            f" or another budget"
        )
    from patchtst_hpo.devices import check_memory  # imports torch: after every cheap check

    check_memory(cfg, count_params(arch, dims))
    return arch, dims
