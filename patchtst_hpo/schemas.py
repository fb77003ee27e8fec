"""Typed schemas of the config groups users edit, so Hydra refuses unknown keys and wrong types at compose.

Each schema is stored in Hydra's ConfigStore as `schemas/<group>` and named by the group's YAML files in
their defaults list (`- /schemas/model@_here_`), so the YAML files still hold every default: fields here are
`MISSING` unless they mirror a library's own default (the Lightning Trainer and AdamW take many arguments our
YAML leaves unset; those fields copy the library's defaults, and tests/test_bad_inputs.py proves they still
match the installed library). Ranges and combinations are checked later, in `validation/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# OmegaConf reads the annotations at runtime: `Optional[int]`, not `int | None` (Python 3.11 strings).
# ruff: noqa: UP007, UP045


@dataclass
class SplitSchema:
    method: str = MISSING
    train: float = MISSING
    val: float = MISSING
    val_start: Optional[str] = MISSING
    test_start: Optional[str] = MISSING
    purge: Optional[int] = MISSING


@dataclass
class DataSchema:
    name: str = MISSING
    root: str = MISSING
    ohlcv: Optional[str] = MISSING
    panel: Optional[str] = MISSING  # conf/data/panel.yaml (panel helper)
    vix: Optional[str] = MISSING
    version: Any = MISSING  # latest | an integer
    tier: str = MISSING
    num_features: int = MISSING
    context_length: int = MISSING
    split: SplitSchema = field(default_factory=SplitSchema)
    fit_on: str = MISSING
    shuffle_labels: bool = MISSING
    train_fraction: float = MISSING
    normalize: str = MISSING
    normalize_by: str = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    num_workers: int = MISSING


@dataclass
class TaskSchema:
    name: str = MISSING
    horizon: int = MISSING
    threshold: float = MISSING
    label: str = MISSING
    num_classes: int = MISSING


@dataclass
class BudgetSchema:
    name: str = MISSING
    target: int = MISSING
    tolerance: float = MISSING
    gpu_batch_size: Optional[int] = MISSING  # data.batch_size under trainer=gpu


@dataclass
class ArchSchema:
    """Not attached (the arch group is generated from the grid); used to suggest `arch.<key>` for typos."""

    name: str = MISSING
    d_model: int = MISSING
    n_layers: int = MISSING
    n_heads: int = MISSING
    d_ff: int = MISSING


@dataclass
class ModelSchema:
    patch_len: int = MISSING
    stride: int = MISSING
    dropout: float = MISSING
    attn_dropout: float = MISSING
    head_dropout: float = MISSING
    revin: bool = MISSING
    revin_affine: bool = MISSING
    loss: str = MISSING
    pos_weight: Optional[float] = MISSING
    focal_gamma: float = MISSING
    parametrization: str = MISSING  # standard | mup (models/mup.py)
    mup_base_width: int = MISSING
    depth_scaling: str = MISSING  # none | sqrt
    mup_base_depth: int = MISSING


@dataclass
class AdamWSchema:
    """torch.optim.AdamW's arguments; the ones our YAML leaves out keep torch's defaults."""

    _target_: str = MISSING
    _partial_: bool = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    betas: list[float] = MISSING
    fused: Optional[bool] = MISSING
    eps: float = 1e-08
    amsgrad: bool = False
    maximize: bool = False
    foreach: Optional[bool] = None
    capturable: bool = False
    differentiable: bool = False


@dataclass
class WarmupCosineSchema:
    _target_: str = MISSING
    _partial_: bool = MISSING
    warmup_fraction: float = MISSING
    min_lr_ratio: float = MISSING


# Keys of the trainer group that configure our app around Lightning's Trainer, not the Trainer itself
# (train.py takes them out before building the Trainer).
APP_TRAINER_KEYS = ("compile", "data_on_device", "rank_grace_seconds", "threads")


@dataclass
class TrainerSchema:
    """Every argument of lightning's Trainer, so a typo is refused; unset ones keep Lightning's defaults."""

    _target_: str = MISSING
    compile: bool = MISSING  # APP_TRAINER_KEYS
    data_on_device: bool = MISSING
    rank_grace_seconds: float = MISSING
    threads: Any = MISSING  # auto | an int >= 1 | null (torch's default): patchtst_hpo/threads.py
    accelerator: Any = "auto"
    strategy: Any = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    precision: Any = None
    logger: Any = None
    callbacks: Any = None
    fast_dev_run: Any = False
    max_epochs: Optional[int] = None
    min_epochs: Optional[int] = None
    max_steps: int = -1
    min_steps: Optional[int] = None
    max_time: Any = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    limit_predict_batches: Any = None
    overfit_batches: Any = 0.0
    val_check_interval: Any = None
    check_val_every_n_epoch: Optional[int] = 1
    num_sanity_val_steps: Optional[int] = None
    log_every_n_steps: Optional[int] = None
    enable_checkpointing: Optional[bool] = None
    enable_progress_bar: Optional[bool] = None
    enable_model_summary: Optional[bool] = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: Optional[float] = None
    gradient_clip_algorithm: Optional[str] = None
    deterministic: Any = None
    benchmark: Optional[bool] = None
    inference_mode: bool = True
    use_distributed_sampler: bool = True
    profiler: Any = None
    detect_anomaly: bool = False
    barebones: bool = False
    plugins: Any = None
    sync_batchnorm: bool = False
    reload_dataloaders_every_n_epochs: int = 0
    default_root_dir: Optional[str] = None
    enable_autolog_hparams: bool = True
    model_registry: Optional[str] = None


@dataclass
class ObjectiveSchema:
    metric: Any = MISSING  # val/<name>; a list for multi-objective sweeps
    direction: Any = MISSING  # maximize | minimize (a list alongside a list of metrics)


SCHEMAS: dict[str, type] = {
    "data": DataSchema,
    "task": TaskSchema,
    "budget": BudgetSchema,
    "model": ModelSchema,
    "optimizer": AdamWSchema,
    "scheduler": WarmupCosineSchema,
    "trainer": TrainerSchema,
    "objective": ObjectiveSchema,
}


def keys_of(schema: type) -> list[str]:
    return [f.name for f in fields(schema)]


def register() -> None:
    """Store every schema as `schemas/<group>` (idempotent)."""
    cs = ConfigStore.instance()
    for group, schema in SCHEMAS.items():
        cs.store(group="schemas", name=group, node=schema)
