"""One (task, data) group of studies -> its numbers and its Verdict: confirmation, baselines, paired
comparisons, scaling over budgets, compute, economics, walk-forward and the shuffled control. `report.py`
calls `run` per group and writes the files; every sentence comes from `GroupResult.verdict`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from patchtst_hpo import metrics
from patchtst_hpo.analysis import (
    baselines,
    compute,
    confirm,
    control,
    group_verdict,
    plots,
    strategies,
    uncertainty,
    walkforward,
    winners,
)
from patchtst_hpo.analysis.groups import Group, search_warnings
from patchtst_hpo.analysis.verdict import Verdict
from patchtst_hpo.data import features
from patchtst_hpo.models.arch_grid import dims_from_cfg

log = logging.getLogger(__name__)


@dataclass
class GroupResult:
    group: Group
    top: pd.DataFrame
    seeds: pd.DataFrame
    baseline: baselines.BaselineResult
    horizon: int
    block: int
    boot: uncertainty.Bootstrap
    commands: list = field(default_factory=list)
    loss_label: str = ""
    sharpe: pd.DataFrame | None = None
    walk_forward: pd.DataFrame | None = None
    control: dict | None = None
    warnings: list[str] = field(default_factory=list)
    absent: dict[str, str] = field(default_factory=dict)  # section -> why it is not in the report
    figures: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # figure -> its title (the verdict's words)
    verdict: Verdict | None = None
    tag: str = ""  # figure-name suffix when the report has several groups

    def figure(self, out: Path, stem: str) -> Path:
        """Where figure `stem` of this group goes; its name is recorded for summary.md."""
        self.figures[stem] = f"{stem}_{self.tag}.png" if self.tag else f"{stem}.png"
        return out / self.figures[stem]

    @property
    def base(self) -> dict:
        return self.baseline.metrics


def _setup(cfg: DictConfig, g: Group, tag: str) -> tuple[GroupResult, DictConfig, object]:
    """The group's data (confirmation split and the study's split), its one bootstrap, the baselines."""
    fixed = confirm.stored(cfg, g.first, {}, f"study {g.studies[0]!r}")
    tcfg, dm = confirm.datamodule(fixed)
    _, dm_train = confirm.datamodule(fixed, refit=False)
    horizon = int(tcfg.task.horizon)
    block = metrics.block_length(horizon, int(cfg.bootstrap.min_block))
    codes = uncertainty.date_codes(dm.anchor_frame("test")["date"].to_numpy())
    boot = uncertainty.Bootstrap(codes, block, int(cfg.n_boot), int(cfg.seed))
    names = features.feature_names(tcfg.data.tier, with_vix=bool(tcfg.data.vix))
    base = baselines.evaluate(dm, dm_train, names, cfg.baselines, boot, int(cfg.seed))
    r = GroupResult(g, pd.DataFrame(), pd.DataFrame(), base, horizon, block, boot, tag=tag)
    rel = cfg.reliability
    r.warnings += search_warnings(g)
    r.warnings += metrics.reliability_warnings(
        base.y_test, "test", int(rel.min_samples), int(rel.min_per_class)
    )
    n_warn = g.trials["warnings"].notna().sum()
    if n_warn:
        r.warnings.append(f"{n_warn} HPO trials carry evaluation warnings (see trials.csv `warnings`)")
    return r, tcfg, dm


def _confirm_all(cfg, r: GroupResult, trials: pd.DataFrame, storage, out: Path) -> list:
    g, rows, ws = r.group, [], []
    done = trials[trials["state"] == "COMPLETE"]
    for name in g.studies:
        ok = done[done["study"] == name]
        if ok.empty:
            log.warning("%s: no complete trial; left out", name)
            r.absent[f"study {name}"] = f"{name} has no complete trial, so it has no winner"
            continue
        study_rows, w = winners.confirm_study(cfg, name, g.attrs[name], ok, storage, out, r)
        rows += study_rows
        ws += [w] if w is not None else []
    r.top = pd.DataFrame(rows)
    return ws


def run(cfg: DictConfig, g: Group, storage, out: Path, tag: str = "") -> GroupResult:
    """Everything the report says about one (task, data) group."""
    r, tcfg, dm = _setup(cfg, g, tag)
    trials = compute.add_compute(g.trials, dims_from_cfg(tcfg), int(tcfg.data.batch_size))
    ws = _confirm_all(cfg, r, trials, storage, out)
    if ws:
        strategies.run(cfg, dm, ws, r.baseline, out, r)
        if cfg.shuffled_control.enabled:
            control.run(cfg, r, out, storage)
        if walkforward.enabled(cfg.walk_forward):
            best = group_verdict.best_on_val(ws, str(g.first.get("direction", "maximize")))
            r.walk_forward = walkforward.run(cfg, g, r, best.budget, storage, out)
    else:
        r.absent["economics"] = "economics left out: no confirmed transformer"
    if not cfg.shuffled_control.enabled:
        r.absent["shuffled control"] = "shuffled-label control left out: shuffled_control.enabled is false"
    if not walkforward.enabled(cfg.walk_forward):
        r.absent["walk-forward"] = "walk-forward left out: walk_forward.folds is 0 and no boundaries are set"
    r.verdict = group_verdict.build(r, ws)
    _figures(cfg, r, trials, out)
    for w in r.warnings:
        log.warning("%s: %s", g.key, w)
    return r


def _figures(cfg, r: GroupResult, trials: pd.DataFrame, out: Path) -> None:
    """The scaling and compute figures; their titles and fit curves are the verdict's."""
    g = r.group
    done = trials[trials["state"] == "COMPLETE"].copy().reset_index(drop=True)
    metric, direction = str(g.first.get("metric", "objective")), str(g.first.get("direction", "maximize"))
    done["loss"], r.loss_label = compute.loss_of(done["value"], metric, direction)
    win = None
    if len(r.top) and "auc_mean" in r.top:
        win = r.top[r.top["rank"] == 1].assign(test_loss=lambda d: 1 - d["auc_mean"])
        ws = r.seeds[r.seeds["rank"] == 1]
        path = r.figure(out, "scaling")
        r.titles["scaling"] = plots.scaling_figure(path, win, ws, r.base, r.verdict.scaling, r.block)
    c = done[np.isfinite(done["compute"].astype(float))]
    idx = (
        c.index[compute.frontier(c["compute"].to_numpy(float), c["loss"].to_numpy(float))].to_numpy()
        if len(c)
        else np.array([], int)
    )
    label = f"val {r.loss_label}; stars: test 1 - AUC"
    r.titles["compute"] = plots.compute_figure(r.figure(out, "compute"), done, win, r.verdict, label, idx)
    if done["train_fraction"].nunique() > 1:
        plots.data_scaling_figure(r.figure(out, "data_scaling"), done, r.loss_label)
