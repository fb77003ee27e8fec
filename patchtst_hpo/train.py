"""`python -m patchtst_hpo.train [overrides]`: train, validate and test one PatchTST; `-m` sweeps.

`train(cfg) -> dict` does the work (importable, testable); `main(cfg) -> float` returns the objective to
Hydra's sweeper. The composed config is checked before any data is read or model built.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from patchtst_hpo import cli
from patchtst_hpo import config as _config  # noqa: F401  (registers the arch group, schemas and resolvers)
from patchtst_hpo.atomic import write_json
from patchtst_hpo.errors import PatchTSTHPOError
from patchtst_hpo.models import arch_grid
from patchtst_hpo.models.arch_grid import Arch, Dims, count_params, train_flops
from patchtst_hpo.paths import CONF_DIR
from patchtst_hpo.schemas import APP_TRAINER_KEYS
from patchtst_hpo.validation import validate

if TYPE_CHECKING:  # torch and lightning take seconds to import: train() imports them after validate()
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
    return instantiate(kwargs, callbacks=build_callbacks(cfg, bool(loggers)), logger=loggers or False)


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


def checkpoint_bytes(trainer: L.Trainer) -> int:
    """Bytes the run's checkpoint folder holds at the end (what a sweep trial leaves on disk)."""
    cb = trainer.checkpoint_callback
    d = Path(cb.dirpath) if cb is not None and cb.dirpath else None
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) if d and d.is_dir() else 0


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit one model; evaluate its best checkpoint on val (and test); write metrics.json; return the results."""
    t0 = time.perf_counter()
    arch, dims = validate(cfg)
    import lightning as L  # noqa: F811  (seconds to import: only once the config is known to be good)

    from patchtst_hpo.data.datamodule import WindowDataModule
    from patchtst_hpo.devices import data_to_device

    out_dir = Path(cfg.paths.output_dir)
    log.info("output dir: %s", out_dir)
    log.info("config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = WindowDataModule(cfg.data, cfg.task, int(cfg.seed))
    dm.setup()
    trainer = build_trainer(cfg)
    lit = build_model(cfg, arch, dims, trainer)
    params = sum(p.numel() for p in lit.model.parameters())
    assert params == count_params(arch, dims), "arch_grid formula drifted from model"
    if cfg.trainer.data_on_device and int(cfg.data.num_workers) == 0:  # loader workers cannot touch CUDA
        data_to_device(dm.datasets, trainer.strategy.root_device)
    t_fit = time.perf_counter()
    trainer.fit(lit, datamodule=dm, ckpt_path=cfg.ckpt_path)
    fit_seconds = time.perf_counter() - t_fit  # the training loop alone (set-up is wall - fit)
    samples_seen = lit.samples_seen * int(trainer.world_size)  # DDP shards are padded to equal sizes
    ckpt = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
    best_epoch = _best_epoch(ckpt)
    # The best checkpoint is reloaded only when it is not the last epoch: otherwise the weights in memory are
    # the same, and reading them back costs seconds at 2B (6.4 GB) twice (validate, test).
    evaluate = ckpt if best_epoch is not None and best_epoch != int(trainer.current_epoch) else None
    trainer.validate(lit, datamodule=dm, ckpt_path=evaluate, verbose=False)
    if cfg.test:
        trainer.test(lit, datamodule=dm, ckpt_path=evaluate, verbose=False)
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
        "best_epoch": best_epoch,
        "best_checkpoint": ckpt,
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "fit_seconds": round(fit_seconds, 2),
        # process start (interpreter launch) to the first training step: imports, Hydra, data, model, set-up
        "startup_seconds": _since_process_start(lit.train_started_at),
        "compiled": bool(cfg.trainer.compile),
        "samples_seen": samples_seen,
        "tokens_seen": samples_seen * dims.num_patches,
        "train_flops": train_flops(arch, dims, samples_seen),
        "checkpoint_bytes": checkpoint_bytes(trainer),
        "output_dir": str(out_dir),
        "warnings": _reliability(cfg, lit.predictions),
    }
    if trainer.is_global_zero:  # under DDP every rank evaluates the same full val/test sets
        write_json(out_dir / "metrics.json", result)
        for cb in trainer.callbacks:
            if hasattr(cb, "record"):  # the sweep trial's pruning callback: accounting onto the trial
                cb.record(result)
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


def _since_process_start(t: float | None) -> float | None:
    """Seconds from this process's start to wall-clock time `t` (Linux /proc, 1 s resolution; else None).

    In a sweep every trial runs in the sweep's process, so there it is the time since the sweep started.
    """
    if t is None:
        return None
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return round(t - (boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")), 2)


def _reliability(cfg: DictConfig, predictions: dict) -> list[str]:
    """Warnings (also logged) for evaluation splits too small or unbalanced to trust (metrics.json `warnings`)."""
    from patchtst_hpo import metrics  # scikit-learn: imported only once a run has predictions

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
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)["epoch"]) + 1


def objectives(cfg: DictConfig) -> tuple[DictConfig, list[str] | None]:
    """Multi-objective sweeps set `objective.metric` (and `.direction`) to lists, e.g. [val/auc, params]:
    training monitors the first; the task returns one value per metric (`split/name` or a result key)."""
    if not OmegaConf.is_list(cfg.objective.metric):
        return cfg, None
    metrics = [str(m) for m in cfg.objective.metric]
    directions = cfg.objective.direction
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.objective.metric = metrics[0]
        cfg.objective.direction = directions[0] if OmegaConf.is_list(directions) else directions
    return cfg, metrics


def _value(result: dict[str, Any], metric: str) -> float:
    split, _, name = metric.partition("/")
    return float(result[split][name] if name else result[metric])


def _diverged(cfg: DictConfig, result: dict[str, Any]) -> str:
    """Mark metrics.json of a run whose objective is NaN/inf; returns the one-line reason."""
    reason = (
        f"{cfg.objective.metric} is {result['objective']}: training diverged (or predicted one class); "
        f"lower optimizer.lr (now {cfg.optimizer.lr}) or check the data"
    )
    path = Path(result["output_dir"]) / "metrics.json"
    if path.exists():  # written by rank 0 (under DDP every rank has the same result)
        write_json(path, {**result, "status": "diverged", "reason": reason})
    return reason


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | list[float]:
    """The objective for the sweeper (one value per metric in multi-objective sweeps).

    A single run exits 2 on a config/data error and 3 when it diverged.
    """
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        cfg, metrics = objectives(cfg)
        result = train(cfg)
    except (PatchTSTHPOError, OmegaConfBaseException) as e:
        if multirun:
            raise  # the sweeper records the reason on the trial
        log.error("%s: %s", type(e).__name__, cli.one_line(e))  # for train.log; stderr gets the line below
        cli.report(e)
        sys.exit(cli.EXIT_USAGE)
    objective = result["objective"]
    if not math.isfinite(objective) and not multirun:  # sweeps record it as a FAIL with this value
        print(f"error: {_diverged(cfg, result)}", file=sys.stderr, flush=True)
        sys.exit(EXIT_DIVERGED)
    return objective if metrics is None else [_value(result, m) for m in metrics]


EXIT_DIVERGED = 3  # a run that finished but whose objective is NaN/inf

if __name__ == "__main__":
    cli.install()
    main()
