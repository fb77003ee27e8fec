"""Walk-forward confirmation: refit the best winner (and the baselines) on an expanding window, K times.

Fold k trains on everything before its val block (train+val, as every confirmation run) and is scored on its
own test block [T_k, T_k+1): the first test anchor of each block is T_k, so the pooled test rows tile the
walk-forward period without overlap. Folds come from `walk_forward.boundaries` (first test date of each
fold; boundaries outside the data, or with too little history, are skipped and said so) or from
`walk_forward.folds` equal blocks of `test_rows` at the end of the data (`splits.walk_forward`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from omegaconf import DictConfig

from patchtst_hpo import metrics
from patchtst_hpo.analysis import baselines, confirm, uncertainty
from patchtst_hpo.data import features, splits
from patchtst_hpo.errors import ConfigError

log = logging.getLogger(__name__)
SPLIT_KEYS = ("data.split.method=", "data.split.val_start=", "data.split.test_start=")


def enabled(wf: DictConfig) -> bool:
    return int(wf.folds) > 0 or bool(wf.boundaries)


def fold_starts(dates: pd.DatetimeIndex, wf: DictConfig, purge: int) -> tuple[list[int], list[str]]:
    """Row of the first test anchor of each fold (sorted) and notes on boundaries that were skipped."""
    n, notes = len(dates), []
    min_first = int(wf.min_train_rows) + int(wf.val_rows) + 2 * purge
    if wf.boundaries:
        starts = []
        for b in wf.boundaries:
            i = int(dates.searchsorted(pd.Timestamp(str(b))))
            if i < min_first or i >= n - int(wf.min_test_rows):
                notes.append(
                    f"walk-forward boundary {b} skipped: outside the data or too little history/test"
                )
            else:
                starts.append(i)
        return sorted(set(starts)), notes
    segs = splits.walk_forward(
        n, int(wf.folds), int(wf.val_rows), int(wf.test_rows), int(wf.min_train_rows), purge
    )
    return [fold[2].start for fold in segs], notes


def _fold_overrides(dates: pd.DatetimeIndex, start: int, ctx: int, purge: int, val_rows: int) -> list[str]:
    """Split dates that put the fold's first test anchor at row `start` (the DataModule purges and needs
    ctx-1 rows of history inside the test segment)."""
    test_row = start - purge - ctx + 1
    val_row = test_row - purge - val_rows
    if val_row <= 0:
        raise ConfigError(
            f"walk_forward: fold starting {dates[start].date()} leaves no training rows; move it later"
        )
    return [
        "data.split.method=dates",
        f"data.split.val_start={dates[val_row].date()}",
        f"data.split.test_start={dates[test_row].date()}",
    ]


def run(cfg: DictConfig, g, r, budget: str, storage, out: Path) -> pd.DataFrame:
    """Per-fold and pooled test AUC (seed mean) of the budget's winner and the baselines; paired difference."""
    wf = cfg.walk_forward
    win = r.top[(r.top["budget"] == budget) & (r.top["rank"] == 1)].iloc[0]
    study = optuna.load_study(study_name=win["study"], storage=storage)
    source = f"study {win['study']!r}"
    fixed = confirm.stored(cfg, g.attrs[win["study"]], {}, source, drop=SPLIT_KEYS)
    tcfg, dm = confirm.datamodule(fixed)
    dates = dm.calendar()
    ctx = int(tcfg.data.context_length)
    purge = 0 if tcfg.data.split.get("purge") is None else int(tcfg.data.split.purge)
    starts, notes = fold_starts(dates, wf, purge)
    r.warnings += notes
    trial_row = g.trials[(g.trials["study"] == win["study"]) & (g.trials["number"] == win["trial"])].iloc[0]
    names = features.feature_names(tcfg.data.tier, with_vix=bool(tcfg.data.vix))
    rows, pooled = [], {"y": [], "model": [], "logistic": [], "gbdt": [], "dates": []}
    for k, start in enumerate(starts):
        split_o = _fold_overrides(dates, start, ctx, purge, int(wf.val_rows))
        end = dates[starts[k + 1]] if k + 1 < len(starts) else None
        _, fdm = confirm.datamodule([*fixed, *split_o])
        frame = fdm.anchor_frame("test")
        keep = (frame["date"] >= dates[start]).to_numpy() & (
            (frame["date"] < end).to_numpy() if end is not None else True
        )
        fold_boot = uncertainty.Bootstrap.for_rows(len(frame), 1, 1, int(cfg.seed))  # test preds only
        base = baselines.evaluate(fdm, None, names, cfg.baselines, fold_boot, int(cfg.seed))
        params = study.trials[int(win["trial"])].params
        overrides = [*confirm.stored(cfg, g.attrs[win["study"]], params, source, drop=SPLIT_KEYS), *split_o]
        d = out / "walk_forward" / g.key / f"fold{k}"
        confirm.run(
            overrides, list(wf.seeds), confirm.refit_epochs(trial_row), d, list(cfg.confirm_overrides)
        )
        runs = confirm.load(d, list(wf.seeds))
        y, p = runs[0]["y_test"][keep], np.stack([x["p_test"] for x in runs]).mean(0)[keep]
        pl, pg = base.p_test["logistic"][keep], base.p_test["gbdt"][keep]
        rows.append(_fold_row(f"fold {k}", frame["date"].to_numpy()[keep], y, p, pl, pg, r.block, cfg))
        r.warnings += [f"walk-forward {w}" for w in rows[-1]["warnings"].split(" | ") if w]
        for key, v in (("y", y), ("model", p), ("logistic", pl), ("gbdt", pg)):
            pooled[key].append(v)
        pooled["dates"].append(frame["date"].to_numpy()[keep])
    if rows:
        cat = {k: np.concatenate(v) for k, v in pooled.items()}
        rows.append(
            _fold_row(
                "pooled", cat["dates"], cat["y"], cat["model"], cat["logistic"], cat["gbdt"], r.block, cfg
            )
        )
    return pd.DataFrame(rows)


def _fold_row(name, dates, y, p, pl, pg, block: int, cfg) -> dict:
    """One fold's (or the pooled) test AUC and its paired difference to the better baseline, intervals from
    the report's hierarchical bootstrap over the fold's test dates (blocks of `block` dates)."""
    boot = uncertainty.Bootstrap(uncertainty.date_codes(dates), block, int(cfg.n_boot), int(cfg.seed))
    best = "gbdt" if metrics.auc(y, pg) > metrics.auc(y, pl) else "logistic"
    a = boot.auc(y, p)
    d = uncertainty.difference(a, boot.auc(y, pg if best == "gbdt" else pl))
    lo, hi = a.lo, a.hi
    rel = cfg.reliability
    return {
        "fold": name,
        "first": str(pd.Timestamp(min(dates)).date()),
        "last": str(pd.Timestamp(max(dates)).date()),
        "n": len(y),
        "positive_rate": float(np.mean(y)),
        "auc": metrics.auc(y, p),
        "auc_ci_lo": lo,
        "auc_ci_hi": hi,
        "logistic_auc": metrics.auc(y, pl),
        "gbdt_auc": metrics.auc(y, pg),
        "vs": best,
        "diff": d.point,
        "diff_lo": d.lo,
        "diff_hi": d.hi,
        "diff_mde": d.mde,
        "verdict": metrics.verdict(d.lo, d.hi),
        "warnings": " | ".join(
            metrics.reliability_warnings(y, name, int(rel.min_samples), int(rel.min_per_class))
        ),
    }
