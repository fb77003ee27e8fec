"""Binary classification metrics shared by the training loop, the report and the baselines.

The report's intervals are analysis/uncertainty.py's (one hierarchical bootstrap); this module keeps the
metrics themselves, the block length, the percentile interval and the beats/ties/loses-to rule.

Plain numpy + scikit-learn so the training loop, the report and the baselines compute the same numbers.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from patchtst_hpo.metric_names import DIRECTIONS

EPS = 1e-7


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present or predictions diverged (never a fake result)."""
    y = np.asarray(y)
    n_pos = float(y.sum())
    if not 0 < n_pos < len(y) or not np.isfinite(p).all():
        return float("nan")
    # Mann-Whitney form (average ranks for ties) = sklearn's roc_auc_score, without its per-call checks:
    # the bootstraps call this thousands of times.
    ranks = rankdata(p)
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities clipped to [EPS, 1 - EPS]."""
    y, p = np.asarray(y, dtype=np.float64), np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-row binary cross-entropy (clipped as `log_loss`); `p` may be [rows] or [seeds, rows]."""
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return -(y * np.log(q) + (1 - y) * np.log(1 - q))


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
        "log_loss": log_loss(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        **at_threshold(y, p, threshold),
        "threshold": float(threshold),
        "pred_std": float(p.std()),
        "positive_rate": float(y.mean()),
        "n": float(len(y)),
    }


def block_length(horizon: int, minimum: int = 1) -> int:
    """Bootstrap block length for labels of horizon H: windows within H rows share label days, so blocks of
    at least H consecutive rows keep that dependence inside a block (H=1: plain row bootstrap)."""
    return max(int(horizon), int(minimum), 1)


def quantile_ci(vals: list[float], level: float) -> tuple[float, float]:
    """The central `level` interval of bootstrap statistics (NaNs when there are none)."""
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def verdict(lo: float, hi: float, higher_is_better: bool = True) -> str:
    """'beats' / 'ties' / 'loses to' from a CI of (model - reference)."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 <= hi:
        return "ties"
    better = lo > 0 if higher_is_better else hi < 0
    return "beats" if better else "loses to"


def reliability_warnings(y_true: np.ndarray, split: str, min_samples: int, min_per_class: int) -> list[str]:
    """Why an AUC on this split should not be trusted (empty list: it can be).

    An AUC from 50 samples with 4 negatives moves by 0.1 when one prediction flips; thresholds come from
    conf/reliability/.
    """
    y = np.asarray(y_true, dtype=np.float64)
    y = y[np.isfinite(y)]
    n, pos = len(y), int((y == 1).sum())
    neg = n - pos
    out = []
    if n < min_samples:
        out.append(f"{split}: only {n} samples (< {min_samples}); its metrics are too noisy to trust")
    if min(pos, neg) < min_per_class:
        out.append(
            f"{split}: {pos} positives and {neg} negatives (< {min_per_class} in a class); "
            f"its AUC is too unbalanced to trust"
        )
    return out
