"""`python -m patchtst_hpo.train [overrides]`: train, validate and test one PatchTST; `-m` sweeps.

`train(cfg) -> dict` does the work (importable, testable); `main(cfg) -> float` returns the objective to
Hydra's sweeper. The composed config is checked before any data is read or model built.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from patchtst_hpo import build, cli, run_record, threads
from patchtst_hpo import config as _config  # noqa: F401  (registers the arch group, schemas and resolvers)
from patchtst_hpo.atomic import write_json, write_text
from patchtst_hpo.errors import PatchTSTHPOError, RunFailed
from patchtst_hpo.models.arch_grid import count_params, train_flops
from patchtst_hpo.paths import CONF_DIR
from patchtst_hpo.validation import validate

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit one model; evaluate its best checkpoint on val (and test); write metrics.json; return the results."""
    t0 = time.perf_counter()
    arch, dims = validate(cfg)
    # before torch is imported in a fresh process: OpenMP/MKL read their thread counts once (threads.py)
    thread_use = threads.apply(cfg, HydraConfig.get() if HydraConfig.initialized() else None)
    from patchtst_hpo import ranks  # imports torch (devices.py): not for --help or a refused config

    if ranks.needs_ranks(cfg):  # W > 1 processes: started and watched here, rank 0's result comes back
        return ranks.run_ranks(cfg)
    import lightning as L  # seconds to import: only once the config is known to be good

    from patchtst_hpo.data.datamodule import WindowDataModule
    from patchtst_hpo.devices import data_to_device
    from patchtst_hpo.progress import quiet_lightning

    quiet_lightning()
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "resolved_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))  # not the console
    log.info("output dir: %s (resolved config: resolved_config.yaml)", out_dir)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = WindowDataModule(cfg.data, cfg.task, int(cfg.seed))
    dm.setup()
    trainer = build.build_trainer(cfg)
    lit = build.build_model(cfg, arch, dims, trainer)
    params = sum(p.numel() for p in lit.model.parameters())
    assert params == count_params(arch, dims), "arch_grid formula drifted from model"
    if cfg.trainer.data_on_device and int(cfg.data.num_workers) == 0:  # loader workers cannot touch CUDA
        data_to_device(dm.datasets, trainer.strategy.root_device)
    t_fit = time.perf_counter()
    trainer.fit(lit, datamodule=dm, ckpt_path=cfg.ckpt_path)
    fit_seconds = time.perf_counter() - t_fit  # the training loop alone (set-up is wall - fit)
    ckpt, best_epoch = _evaluate(cfg, trainer, lit, dm)
    timing = {"t0": t0, "fit_seconds": fit_seconds}
    result = _result(cfg, arch, dims, trainer, lit, dm, params, ckpt, best_epoch, **timing) | thread_use
    if trainer.is_global_zero:  # under DDP every rank evaluates the same full val/test sets
        _write_outputs(trainer, lit, out_dir, result)
    log.info(_summary(cfg, result))
    return result


def _evaluate(cfg: DictConfig, trainer, lit, dm) -> tuple[str | None, int | None]:
    """The best checkpoint on val (and test): (its path, its epoch)."""
    ckpt = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
    best_epoch = run_record.best_epoch(ckpt)
    # The best checkpoint is reloaded only when it is not the last epoch: otherwise the weights in memory are
    # the same, and reading them back costs seconds at 2B (6.4 GB) twice (validate, test).
    evaluate = ckpt if best_epoch is not None and best_epoch != int(trainer.current_epoch) else None
    trainer.validate(lit, datamodule=dm, ckpt_path=evaluate, verbose=False)
    if cfg.test:
        trainer.test(lit, datamodule=dm, ckpt_path=evaluate, verbose=False)
    return ckpt, best_epoch


def _result(
    cfg: DictConfig,
    arch,
    dims,
    trainer,
    lit,
    dm,
    params: int,
    ckpt,
    best_epoch,
    *,
    t0: float,
    fit_seconds: float,
) -> dict[str, Any]:
    """What a finished run reports (metrics.json): the objective, metrics, sizes, accounting, timings."""
    from patchtst_hpo import ranks
    from patchtst_hpo.devices import need_bytes, peak_bytes

    out_dir = Path(cfg.paths.output_dir)
    samples_seen = lit.samples_seen * int(trainer.world_size)  # DDP shards are padded to equal sizes
    split, _, name = cfg.objective.metric.partition("/")
    objective = float(lit.results[split][name])
    by_rank = ranks.gather(objective)  # every rank evaluated the same full val set: the same value
    return {
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
        # per process: the estimate the memory check used (devices.py) and the measured peak (CUDA only)
        "device_bytes": {"estimated": need_bytes(cfg), "peak": peak_bytes()},
        "objective_by_rank": by_rank,
        "best_epoch": best_epoch,
        "best_checkpoint": ckpt,
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "fit_seconds": round(fit_seconds, 2),
        # process start (interpreter launch) to the first training step: imports, Hydra, data, model, set-up
        "startup_seconds": run_record.since_process_start(lit.train_started_at),
        "compiled": bool(cfg.trainer.compile),
        "samples_seen": samples_seen,
        "tokens_seen": samples_seen * dims.num_patches,
        "train_flops": train_flops(arch, dims, samples_seen),
        "checkpoint_bytes": run_record.checkpoint_bytes(trainer),
        "time_limited": run_record.time_limited(trainer),
        "output_dir": str(out_dir),
        "warnings": run_record.reliability_warnings(cfg, lit.predictions),
        "provenance": run_record.provenance(),
    }


def _write_outputs(trainer, lit, out_dir: Path, result: dict[str, Any]) -> None:
    """metrics.json, the trial's accounting (through the pruning callback) and the predictions (rank 0)."""
    write_json(out_dir / "metrics.json", result)
    for cb in trainer.callbacks:
        if hasattr(cb, "record"):  # the sweep trial's pruning callback: accounting onto the trial
            cb.record(result)
    for split_name, (y, p) in lit.predictions.items():
        np.savez_compressed(out_dir / f"predictions_{split_name}.npz", y=y, p=p)


def _summary(cfg: DictConfig, result: dict[str, Any]) -> str:
    """The run's last line; test metrics only when the run tested (sweep trials do not: test=false)."""
    parts = [
        f"{cfg.objective.metric} = {result['objective']:.4f}",
        f"val auc {result['val'].get('auc', math.nan):.4f}",
    ]
    if cfg.test:
        parts.append(f"test auc {result['test'].get('auc', math.nan):.4f}")
    parts += [f"{result['params']} params", f"{result['epochs']} epochs", f"{result['wall_seconds']:.1f}s"]
    return " | ".join(parts)


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
        from patchtst_hpo import ranks  # imports torch (devices.py): after --help and config checks

        result = _train_as_rank(cfg) if ranks.is_rank() else train(cfg)
    except (PatchTSTHPOError, OmegaConfBaseException) as e:
        if multirun:
            raise  # the sweeper records the reason on the trial
        log.error("%s: %s", type(e).__name__, cli.one_line(e))  # for train.log; stderr gets the line below
        cli.report(e)
        sys.exit(EXIT_FAILED if isinstance(e, RunFailed) else cli.EXIT_USAGE)  # a dead rank: no usage error
    objective = result["objective"]
    if not math.isfinite(objective) and not multirun:  # sweeps record it as a FAIL with this value
        print(f"error: {_diverged(cfg, result)}", file=sys.stderr, flush=True)
        sys.exit(EXIT_DIVERGED)
    return objective if metrics is None else [_value(result, m) for m in metrics]


EXIT_DIVERGED = 3  # a run that finished but whose objective is NaN/inf
EXIT_FAILED = 1  # a multi-process run whose rank failed or died (ranks.py)


def _train_as_rank(cfg: DictConfig) -> dict[str, Any]:
    """One rank of a multi-process run (patchtst_hpo/ranks.py): any failure is written down for the job."""
    try:
        return train(cfg)
    except Exception as e:  # noqa: BLE001  (TrialPruned, a collective with a dead peer, ...: all recorded)
        from patchtst_hpo import ranks

        code = ranks.record_end(e)
        log.error("%s: %s", type(e).__name__, cli.one_line(e))
        print(f"error: {cli.one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(code)


def run() -> None:
    """`python -m patchtst_hpo.train` and `patchtst-train`: one-line errors, then Hydra."""
    cli.install()
    main()


if __name__ == "__main__":
    run()
