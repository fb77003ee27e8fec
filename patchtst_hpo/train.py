"""`python -m patchtst_hpo.train [overrides]`: train, validate and test one PatchTST; `-m` sweeps.

`train(cfg) -> dict` does the work (importable, testable); `main(cfg) -> float` returns the objective to
Hydra's sweeper. The composed config is checked before any data is read or model built.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from patchtst_hpo import config as _config  # noqa: F401  (registers the arch group and resolvers)
from patchtst_hpo import metrics
from patchtst_hpo.atomic import write_json
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.errors import PatchTSTHPOError
from patchtst_hpo.models import arch_grid
from patchtst_hpo.models.arch_grid import Arch, Dims, count_params
from patchtst_hpo.models.lit_module import LitPatchTST
from patchtst_hpo.models.patchtst import PatchTSTConfig
from patchtst_hpo.validation import validate

log = logging.getLogger(__name__)
# Library noise that says nothing about the run (our LightningModule moves its own batches on purpose).
warnings.filterwarnings("ignore", message="You have overridden `transfer_batch_to_device`")
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)")


def model_config(cfg: DictConfig, arch: Arch, dims: Dims) -> PatchTSTConfig:
    m = cfg.model
    return arch_grid.model_config(
        arch,
        dims,
        dropout=float(m.dropout),
        attn_dropout=float(m.attn_dropout),
        head_dropout=float(m.head_dropout),
    )


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    if cfg.trial.storage is not None:
        from patchtst_hpo.hpo.pruning import PruningCallback

        callbacks.append(
            PruningCallback(cfg.trial.storage, cfg.trial.study, int(cfg.trial.number), cfg.objective.metric)
        )
    return callbacks


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit one model; evaluate its best checkpoint on val (and test); write metrics.json; return the results."""
    t0 = time.perf_counter()
    arch, dims = validate(cfg)
    out_dir = Path(cfg.paths.output_dir)
    log.info("output dir: %s", out_dir)
    log.info("config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = WindowDataModule(cfg.data, cfg.task, int(cfg.seed))
    dm.setup()
    mcfg = model_config(cfg, arch, dims)
    lit = LitPatchTST(
        mcfg,
        instantiate(cfg.optimizer),
        instantiate(cfg.scheduler) if cfg.scheduler else None,
        loss=cfg.model.loss,
        pos_weight=cfg.model.pos_weight,
        focal_gamma=float(cfg.model.focal_gamma),
    )
    params = sum(p.numel() for p in lit.model.parameters())
    assert params == count_params(arch, dims), "arch_grid formula drifted from model"
    loggers = [instantiate(lg) for lg in cfg.logger.values() if lg is not None] if cfg.logger else False
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers)
    t_fit = time.perf_counter()
    trainer.fit(lit, datamodule=dm, ckpt_path=cfg.ckpt_path)
    fit_seconds = time.perf_counter() - t_fit  # the training loop alone (set-up is wall - fit)
    ckpt = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
    trainer.validate(lit, datamodule=dm, ckpt_path=ckpt, verbose=False)
    if cfg.test:
        trainer.test(lit, datamodule=dm, ckpt_path=ckpt, verbose=False)
    split, _, name = cfg.objective.metric.partition("/")
    objective = float(lit.results[split][name])
    result = {
        "objective": objective,
        "objective_metric": cfg.objective.metric,
        "val": lit.results.get("val", {}),
        "test": lit.results.get("test", {}),
        "params": params,
        "trainable_params": sum(p.numel() for p in lit.model.parameters() if p.requires_grad),
        "budget": cfg.budget.name,
        "arch": cfg.arch.name,
        "task": cfg.task.name,
        "seed": int(cfg.seed),
        "data": dm.info,
        "epochs": int(trainer.current_epoch),
        "steps": int(trainer.global_step),
        "world_size": int(trainer.world_size),
        "best_epoch": _best_epoch(ckpt),
        "best_checkpoint": ckpt,
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "fit_seconds": round(fit_seconds, 2),
        "output_dir": str(out_dir),
        "warnings": _reliability(cfg, lit.predictions),
    }
    if trainer.is_global_zero:  # under DDP every rank evaluates the same full val/test sets
        write_json(out_dir / "metrics.json", result)
        for split_name, (y, p) in lit.predictions.items():
            np.savez_compressed(out_dir / f"predictions_{split_name}.npz", y=y, p=p)
    log.info(
        "%s = %.4f | val auc %.4f | test auc %.4f | %d params | %d epochs | %.1fs",
        cfg.objective.metric,
        objective,
        result["val"].get("auc", math.nan),
        result["test"].get("auc", math.nan),
        params,
        result["epochs"],
        result["wall_seconds"],
    )
    return result


def _reliability(cfg: DictConfig, predictions: dict) -> list[str]:
    """Warnings (also logged) for evaluation splits too small or unbalanced to trust (metrics.json `warnings`)."""
    r = cfg.reliability
    out = [
        w
        for split, (y, _) in predictions.items()
        for w in metrics.reliability_warnings(y, split, int(r.min_samples), int(r.min_per_class))
    ]
    for w in out:
        log.warning("%s", w)
    return out


def _best_epoch(ckpt: str | None) -> int | None:
    if not ckpt:
        return None
    return int(torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)["epoch"]) + 1


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    try:
        return train(cfg)["objective"]
    except (PatchTSTHPOError, OmegaConfBaseException) as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweeper records the reason on the trial
        log.error("%s: %s", type(e).__name__, " ".join(str(e).split()))
        sys.exit(2)


if __name__ == "__main__":
    main()
