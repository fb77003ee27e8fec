"""A study's top-k trials confirmed over seeds (train+val refit, held-out test) and its rank-1 Winner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from patchtst_hpo import metrics
from patchtst_hpo.analysis import confirm
from patchtst_hpo.analysis.uncertainty import Bootstrap, Estimate


@dataclass
class Winner:
    """A budget's rank-1 trial after confirmation: seed stacks of its test probabilities, its test-AUC
    estimate, and the val predictions of the study's own trial (fit on train only: out of sample)."""

    budget: str
    params: int
    p_test: np.ndarray  # [seeds, test rows]
    val_objective: float
    auc: Estimate
    y_val_oos: np.ndarray | None = None
    p_val_oos: np.ndarray | None = None


def seed_summary(runs: list[dict], boot: Bootstrap) -> tuple[dict, Estimate]:
    """The confirmed row's numbers (hierarchical bootstrap over seeds and test dates) and its AUC estimate."""
    y, ps = runs[0]["y_test"], np.stack([run["p_test"] for run in runs])
    aucs = np.array([run["test"]["auc"] for run in runs], dtype=float)
    a, ll = boot.auc(y, ps), boot.mean(metrics.row_log_loss(y, np.atleast_2d(ps)))
    row = {
        "auc_mean": aucs.mean(),
        "auc_ci_lo": a.lo,
        "auc_ci_hi": a.hi,
        "auc_seed_min": aucs.min(),
        "auc_seed_max": aucs.max(),
        "log_loss_mean": ll.point,
        "log_loss_ci_lo": ll.lo,
        "log_loss_ci_hi": ll.hi,
        "test_samples": int(runs[0]["test"]["n"]),
        "test_positive_rate": runs[0]["test"]["positive_rate"],
    }
    return row, a


def _oos_val(run_dir) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The HPO trial's own val predictions (trained on train only), when its run folder still has them."""
    f = Path(str(run_dir)) / "predictions_val.npz" if run_dir is not None and pd.notna(run_dir) else None
    if f is None or not f.exists():
        return None, None
    z = np.load(f)
    return z["y"], z["p"]


def _seed_rows(name: str, t: pd.Series, rank: int, runs: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "study": name,
                "budget": t["budget"],
                "rank": rank,
                "params": int(t["params"]),
                "seed": run["seed"],
                "auc": run["test"]["auc"],
                "log_loss": run["test"]["log_loss"],
                "run_dir": run["output_dir"],
            }
            for run in runs
        ]
    )


def _row(name: str, t: pd.Series, rank: int) -> dict:
    return {
        "study": name,
        "budget": t["budget"],
        "rank": rank,
        "trial": int(t["number"]),
        "arch": t["arch"],
        "params": int(t["params"]),
        "val_objective": float(t["value"]),
        "compute": t.get("compute", np.nan),
    }


def confirm_study(
    cfg, name: str, attrs: dict, ok: pd.DataFrame, storage, out: Path, r
) -> tuple[list, Winner | None]:
    """Top-k trials of one study: confirmation runs, seed rows, intervals; returns the rank-1 Winner (or None)."""
    top = ok.sort_values("value", ascending=attrs.get("direction") == "minimize").head(int(cfg.top_k))
    study = optuna.load_study(study_name=name, storage=storage)
    rows, winner = [], None
    for rank, (_, t) in enumerate(top.iterrows(), start=1):
        row = _row(name, t, rank)
        rows.append(row)
        if not cfg.confirm:
            continue
        params = study.trials[int(t["number"])].params
        overrides = confirm.stored(cfg, attrs, params, f"study {name!r} trial {int(t['number'])}")
        d = out / "confirm" / name / str(int(t["number"]))
        cmd = confirm.run(overrides, list(cfg.seeds), confirm.refit_epochs(t), d, list(cfg.confirm_overrides))
        r.commands.append((name, rank, cmd))
        runs = confirm.load(d, list(cfg.seeds))
        if not np.array_equal(runs[0]["y_test"], r.baseline.y_test):
            raise RuntimeError(f"{name}: confirmation test rows differ from the baselines' test rows")
        summary, auc = seed_summary(runs, r.boot)
        row.update(summary)
        for run in runs:
            r.warnings += [f"{name} rank {rank} seed {run['seed']}: {w}" for w in run.get("warnings", [])]
        r.seeds = pd.concat([r.seeds, _seed_rows(name, t, rank, runs)], ignore_index=True)
        if rank == 1:
            y_oos, p_oos = _oos_val(t.get("run_dir"))
            p_test = np.stack([run["p_test"] for run in runs])
            winner = Winner(str(t["budget"]), int(t["params"]), p_test, float(t["value"]), auc, y_oos, p_oos)
    return rows, winner
