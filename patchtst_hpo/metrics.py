"""Binary classification metrics on predicted probabilities, with bootstrap confidence intervals.

Plain numpy + scikit-learn so the training loop, the report and the baselines compute the same numbers.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

EPS = 1e-7
# Metric names the objective may use (logged as val/<name> and test/<name>), with the better direction.
DIRECTIONS = {
    "auc": "maximize",
    "log_loss": "minimize",
    "brier": "minimize",
    "accuracy": "maximize",
    "precision": "maximize",
    "recall": "maximize",
    "f1": "maximize",
    "pred_std": "maximize",
    "loss": "minimize",
    "positive_rate": "maximize",
}


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present or predictions diverged (never a fake result)."""
    if not 0 < y.sum() < len(y) or not np.isfinite(p).all():
        return float("nan")
    return float(roc_auc_score(y, p))


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability threshold that maximises F1 (chosen on val, then applied unchanged to test)."""
    if y.sum() == 0 or not np.isfinite(p).all():
        return 0.5
    cands = np.unique(np.quantile(p, np.linspace(0.0, 1.0, 101)))
    f1s = [at_threshold(y, p, t)["f1"] for t in cands]
    return float(cands[int(np.argmax(f1s))])


def at_threshold(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    tp = float((pred & (y == 1)).sum())
    fp = float((pred & (y == 0)).sum())
    fn = float((~pred & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((pred == (y == 1)).mean()), "precision": precision, "recall": recall, "f1": f1}


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """All reported metrics of probabilities `p` against 0/1 labels `y`."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if not np.isfinite(p).all():
        return {k: float("nan") for k in DIRECTIONS if k != "loss"} | {
            "threshold": float(threshold),
            "n": float(len(y)),
        }
    p = np.clip(p, EPS, 1 - EPS)
    return {
        "auc": auc(y, p),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "brier": float(np.mean((p - y) ** 2)),
        **at_threshold(y, p, threshold),
        "threshold": float(threshold),
        "pred_std": float(p.std()),
        "positive_rate": float(y.mean()),
        "n": float(len(y)),
    }


def bootstrap_ci(
    y: np.ndarray, p: np.ndarray, fn=auc, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of `fn(y, p)` over resampled rows (rows with one class are skipped)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        v = fn(y[i], p[i])
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
