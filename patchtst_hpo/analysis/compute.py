"""Training compute per trial and the compute frontier (the fits across budgets are analysis/verdict.py's).

Compute comes from the run's metrics.json (`train_flops`, `samples_seen`, written by train.py). For runs that
predate those fields the report estimates it: with `arch_grid.train_flops` when the model layer provides it,
otherwise with the 6 * N * tokens approximation (forward + backward = 3 x the 2 * N FLOPs per token; it
ignores attention's context-length term), tokens = samples x patches per window, samples = steps x batch size
(at most epochs x training windows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patchtst_hpo.models import arch_grid
from patchtst_hpo.models.arch_grid import Arch, Dims


def _samples(row: pd.Series, batch_size: int) -> float:
    if pd.notna(row.get("samples_seen")):
        return float(row["samples_seen"])
    steps, epochs, windows = row.get("steps"), row.get("epochs"), row.get("train_windows")
    est = [float(steps) * batch_size] if pd.notna(steps) else []
    if pd.notna(epochs) and pd.notna(windows):
        est.append(float(epochs) * float(windows))
    return min(est) if est else float("nan")


def flops_of(row: pd.Series, dims: Dims, batch_size: int) -> tuple[float, str]:
    """(training FLOPs, source) of one trial row: recorded in metrics.json, else the model layer's count."""
    if pd.notna(row.get("train_flops")):
        return float(row["train_flops"]), "recorded"
    samples = _samples(row, batch_size)
    if not np.isfinite(samples) or pd.isna(row.get("d_model")):
        return float("nan"), "unknown"
    arch = Arch(int(row["d_model"]), int(row["n_layers"]), int(row["n_heads"]), int(row["d_ff"]))
    return float(arch_grid.train_flops(arch, dims, int(samples))), "arch_grid.train_flops"


def add_compute(trials: pd.DataFrame, dims: Dims, batch_size: int) -> pd.DataFrame:
    """The trials with `compute` (training FLOPs) and `compute_source` columns filled in."""
    out = trials.copy()
    vals = [flops_of(r, dims, batch_size) for _, r in out.iterrows()]
    out["compute"] = [v for v, _ in vals]
    out["compute_source"] = [s for _, s in vals]
    return out


def frontier(x: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Indices of the compute frontier: points with lower loss than every cheaper point (sorted by x)."""
    order = np.argsort(x, kind="stable")
    keep, best = [], np.inf
    for i in order:
        if np.isfinite(loss[i]) and np.isfinite(x[i]) and loss[i] < best:
            keep.append(int(i))
            best = loss[i]
    return np.array(keep, dtype=np.int64)


def loss_of(values: pd.Series, metric: str, direction: str) -> tuple[pd.Series, str]:
    """The objective as a loss (lower is better) and its label: 1 - metric when it is maximised."""
    name = metric.split("/")[-1]
    if direction == "maximize":
        return 1 - values.astype(float), f"1 - {name.upper() if name == 'auc' else name}"
    return values.astype(float), name
