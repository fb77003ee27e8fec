"""The transfer section's budget ladder: the ka* budgets searched (a) from scratch, every training
hyperparameter and the architecture, and (b) with `hydra.sweeper.transfer_from` the smallest budget's study,
architecture only, with a third of the trials or fewer. Each study's best trial is retrained once with the
test period on (same config and seed), so its test AUC has a bootstrap CI over test-date blocks.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo import metrics
from patchtst_hpo.config import compose
from patchtst_hpo.hpo.search_space import override
from patchtst_hpo.models import arch_grid

log = logging.getLogger(__name__)
TASK = "up1_close"  # conf/experiment/known_answer.yaml's task name (in every study's name)
QUIET = ["logger=none", "callbacks.lr_monitor=null", "callbacks.progress.refresh_seconds=0"]


def _common(root: Path, lc: DictConfig, storage: str) -> list[str]:
    return [
        "experiment=known_answer",
        f"paths.data_dir={root}",
        f"model.parametrization={lc.parametrization}",
        f"model.mup_base_width={lc.base_width}",
        f"trainer.max_epochs={lc.max_epochs}",
        f"seed={lc.seed}",
        f"hydra.sweeper.storage={storage}",
        *QUIET,
    ]


def _finished(storage: str, names: list[str], n_trials: int) -> bool:
    """Whether every named study exists with `n_trials` finished trials (then its sweep is not run again)."""
    try:
        studies = [optuna.load_study(study_name=n, storage=storage) for n in names]
    except KeyError:
        return False
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return all(sum(t.state in done for t in s.trials) >= n_trials for s in studies)


def _sweep(args: list[str], log_file: Path) -> None:
    """One `python -m patchtst_hpo.train -m` (its output in `log_file`); raises on a non-zero exit."""
    with open(log_file, "w") as f:
        r = subprocess.run([sys.executable, "-m", "patchtst_hpo.train", "-m", *args], stdout=f, stderr=f)
    if r.returncode:
        raise RuntimeError(f"sweep failed (exit {r.returncode}); see {log_file}")


def _flops(t: optuna.trial.FrozenTrial, per_epoch: dict[str, int]) -> tuple[float, bool]:
    """(training FLOPs of a trial, whether recorded): recorded by the run, else epochs reported x one epoch's."""
    if t.user_attrs.get("train_flops") is not None:
        return float(t.user_attrs["train_flops"]), True
    return float(len(t.intermediate_values) * per_epoch[t.params["arch"]]), False


def _job(root: Path, lc: DictConfig, study: optuna.Study, params: dict) -> list[str]:
    """A study's job overrides rebuilt from the ladder's settings (not from the stored text, which older code
    wrote): common keys, the budget, the transferred params (transfer studies) and `params`."""
    moved = (study.user_attrs.get("transfer_from") or {}).get("params", {})
    return [
        *(o for o in _common(root, lc, "none") if not o.startswith("hydra.")),
        f"budget={study.user_attrs['budget']}",
        *(override(k, v) for k, v in {**moved, **params}.items()),
    ]


def _confirm(root: Path, lc: DictConfig, study: optuna.Study, out: Path) -> dict:
    """Retrain the best trial (same config and seed) with the test period on: its test AUC with a 95% interval
    from the report's bootstrap over test-date blocks (analysis/uncertainty.py)."""
    from patchtst_hpo.analysis import uncertainty
    from patchtst_hpo.data.datamodule import WindowDataModule
    from patchtst_hpo.train import train

    best = study.best_trial
    cfg = compose("train", [*_job(root, lc, study, best.params), "test=true", f"paths.output_dir={out}"])
    res = train(cfg)
    pred = np.load(out / "predictions_test.npz")
    dm = WindowDataModule(cfg.data, cfg.task, int(cfg.seed))
    dm.setup()
    codes = uncertainty.date_codes(dm.anchor_frame("test")["date"])
    est = uncertainty.Bootstrap(codes, metrics.block_length(int(cfg.task.horizon)), 1000, 0).auc(
        pred["y"], pred["p"]
    )
    return {
        "trial": best.number,
        "val_auc": best.value,
        "arch": best.params["arch"],
        "test_auc": res["test"]["auc"],
        "test_auc_ci": [est.lo, est.hi],
        "params": {k: v for k, v in best.params.items() if k != "arch"},
    }


def _train_windows(cfg: DictConfig) -> int:
    """Training windows of one epoch under the composed config."""
    from patchtst_hpo.data.datamodule import WindowDataModule

    dm = WindowDataModule(cfg.data, cfg.task, int(cfg.seed))
    dm.setup()
    return len(dm.datasets["train"])


def _summary(root: Path, lc: DictConfig, study: optuna.Study, out: Path) -> dict:
    """Trials, pruned, search FLOPs (recorded, else estimated for pruned trials) and the confirmation."""
    cfg = compose("train", [*_job(root, lc, study, {}), "arch=d4_l1_h1_f8"])
    n_train, dims = _train_windows(cfg), arch_grid.dims_from_cfg(cfg)
    per_epoch = {
        a: arch_grid.train_flops(arch_grid.Arch.from_name(a), dims, n_train)
        for a in study.user_attrs.get("arch_params", {})
    }
    done = [
        t
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    flops = [_flops(t, per_epoch) for t in done]
    return {
        "study": study.study_name,
        "budget": study.user_attrs.get("budget"),
        "trials": len(done),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in done),
        "search_flops": sum(f for f, _ in flops),
        "flops_estimated_trials": sum(not rec for _, rec in flops),
        "transfer_from": study.user_attrs.get("transfer_from"),
        **_confirm(root, lc, study, out / study.study_name),
    }


def scratch_sweep(root: Path, out: Path, lc: DictConfig) -> str:
    """Studies `scratch.<budget>.<task>` of every budget: training hyperparameters and the arch searched.
    Returns the storage URL (a re-run with the same settings tops up, so finished studies cost nothing)."""
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / 'optuna.db'}"
    args = [
        *_common(root, lc, storage),
        *(f"{k}={v}" for k, v in lc.search.items()),
        f"budget={','.join(lc.budgets)}",
        "hydra.sweeper.study_name=scratch",
        f"hydra.sweeper.n_trials={lc.n_trials}",
        f"hydra.sweep.dir={out / 'scratch'}",
    ]
    if not _finished(storage, [f"scratch.{b}.{TASK}" for b in lc.budgets], int(lc.n_trials)):
        _sweep(args, out / "scratch.log")
    return storage


def transfer_sweep(root: Path, out: Path, lc: DictConfig, storage: str) -> str:
    """Studies `transfer.<budget>.<task>` of all budgets but the smallest: the arch only, the training
    hyperparameters taken from the smallest budget's scratch study. Returns the source study's name."""
    source = f"scratch.{lc.budgets[0]}.{TASK}"
    args = [
        *_common(root, lc, storage),
        "search=none",
        f"budget={','.join(lc.budgets[1:])}",
        "hydra.sweeper.study_name=transfer",
        f"hydra.sweeper.n_trials={lc.transfer_trials}",
        f"hydra.sweeper.transfer_from={source}",
        f"hydra.sweep.dir={out / 'transfer'}",
    ]
    if not _finished(storage, [f"transfer.{b}.{TASK}" for b in lc.budgets[1:]], int(lc.transfer_trials)):
        _sweep(args, out / "transfer.log")
    return source


def ladder(root: Path, out: Path, lc: DictConfig) -> dict:
    """Both sweeps, then per study: trials, search FLOPs and the best trial's test AUC with its CI."""
    storage = scratch_sweep(root, out, lc)
    source = transfer_sweep(root, out, lc, storage)
    rows = []
    for prefix, budgets in (("scratch", lc.budgets), ("transfer", lc.budgets[1:])):
        for b in budgets:
            study = optuna.load_study(study_name=f"{prefix}.{b}.{TASK}", storage=storage)
            rows.append({"mode": prefix, **_summary(root, lc, study, out / "confirm")})
            log.info("ladder %s", rows[-1])
    config = OmegaConf.to_container(lc, resolve=True)
    return {"config": config, "source": source, "rows": rows}


def _e(x: float) -> str:
    return f"{x:.2e}"


def ladder_markdown(res: dict) -> list[str]:
    lines = [
        "",
        f"Budget ladder ({res['config']['parametrization']}, base width {res['config']['base_width']}): from scratch "
        f"the search is {', '.join(f'{k} {v}' for k, v in res['config']['search'].items())} plus the arch; with transfer "
        f"only the arch, training hyperparameters from `{res['source']}`'s best trial. Test AUC of each study's best "
        "trial retrained with the test period on, 95% bootstrap CI over test-date blocks.",
        "",
        "| budget | mode | trials (pruned) | search FLOPs | best arch | val AUC | test AUC [95% CI] |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    order = res["config"]["budgets"]
    for r in sorted(res["rows"], key=lambda r: (order.index(r["budget"]), r["mode"])):
        est = f" ({r['flops_estimated_trials']} est.)" if r["flops_estimated_trials"] else ""
        lines.append(
            f"| {r['budget']} | {r['mode']} | {r['trials']} ({r['pruned']}) | {_e(r['search_flops'])}{est} | "
            f"`{r['arch']}` | {r['val_auc']:.3f} | {r['test_auc']:.3f} [{r['test_auc_ci'][0]:.3f}, "
            f"{r['test_auc_ci'][1]:.3f}] |"
        )
    return lines
