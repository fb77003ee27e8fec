"""What a run is made of, built from its composed config: the model config, callbacks, Trainer and the
LightningModule (created directly on the Trainer's device). train.py and the bench's "our path" use these."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import TYPE_CHECKING

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.models import arch_grid
from patchtst_hpo.models.arch_grid import Arch, Dims
from patchtst_hpo.schemas import APP_TRAINER_KEYS

if TYPE_CHECKING:  # torch and Lightning are imported where they are used: config errors must stay fast
    import lightning as L

    from patchtst_hpo.models.lit_module import LitPatchTST
    from patchtst_hpo.models.patchtst import PatchTSTConfig

log = logging.getLogger(__name__)


def model_config(cfg: DictConfig, arch: Arch, dims: Dims) -> PatchTSTConfig:
    m = cfg.model
    return arch_grid.model_config(
        arch,
        dims,
        dropout=float(m.dropout),
        attn_dropout=float(m.attn_dropout),
        head_dropout=float(m.head_dropout),
        parametrization=str(m.parametrization),
        mup_base_width=int(m.mup_base_width),
        depth_scaling=str(m.depth_scaling),
        mup_base_depth=int(m.mup_base_depth),
    )


def build_callbacks(cfg: DictConfig, has_logger: bool) -> list[L.Callback]:
    """The configured callbacks (null entries dropped) plus the trial's pruning callback in a sweep.

    A LearningRateMonitor needs a logger: with `logger=none` it is dropped (and said so) instead of crashing.
    """
    from lightning.pytorch.callbacks import LearningRateMonitor

    callbacks = []
    for name, c in cfg.callbacks.items():
        if c is None:
            continue
        cb = instantiate(c)
        if isinstance(cb, LearningRateMonitor) and not has_logger:
            log.info("callbacks.%s dropped: a LearningRateMonitor needs a logger (logger=none)", name)
            continue
        callbacks.append(cb)
    if cfg.trial.storage is not None:
        from patchtst_hpo.hpo.pruning import PruningCallback

        callbacks.append(
            PruningCallback(cfg.trial.storage, cfg.trial.study, int(cfg.trial.number), cfg.objective.metric)
        )
    return callbacks


def build_trainer(cfg: DictConfig) -> L.Trainer:
    loggers = [instantiate(lg) for lg in cfg.logger.values() if lg is not None] if cfg.logger else []
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    for key in APP_TRAINER_KEYS:
        kwargs.pop(key)  # KeyError names a missing key: every trainer config must set it
    from lightning.pytorch.callbacks import ProgressBar

    callbacks = build_callbacks(cfg, bool(loggers))
    # no progress callback (callbacks.progress=null): nothing, rather than Lightning's own bar
    kwargs.setdefault("enable_progress_bar", any(isinstance(c, ProgressBar) for c in callbacks))
    return instantiate(kwargs, callbacks=callbacks, logger=loggers or False)


def build_model(cfg: DictConfig, arch: Arch, dims: Dims, trainer: L.Trainer) -> LitPatchTST:
    """The LightningModule, created directly on the trainer's device (and dtype, for *-true precisions).

    `trainer.init_module()` puts construction under the strategy's root device, so a 2B model is never
    built on the CPU first and copied. FSDP materialises and shards in its own set-up instead.
    With `trainer.compile=true` the PatchTST module is compiled in place (state_dict keys unchanged).
    """
    from lightning.pytorch.strategies import Strategy
    from lightning.pytorch.utilities.model_helpers import is_overridden

    sharded = is_overridden("model_sharded_context", trainer.strategy, parent=Strategy)
    with nullcontext() if sharded else trainer.init_module():
        lit = new_lit_module(cfg, arch, dims)
    if cfg.trainer.compile:
        lit.model.compile()
    return lit


def new_lit_module(cfg: DictConfig, arch: Arch, dims: Dims) -> LitPatchTST:
    """LitPatchTST for the composed config; its tensors land on the current default device."""
    from patchtst_hpo.models.lit_module import LitPatchTST

    return LitPatchTST(
        model_config(cfg, arch, dims),
        instantiate(cfg.optimizer),
        instantiate(cfg.scheduler) if cfg.scheduler else None,
        loss=cfg.model.loss,
        pos_weight=cfg.model.pos_weight,
        focal_gamma=float(cfg.model.focal_gamma),
    )
