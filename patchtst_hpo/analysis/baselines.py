"""Simple baselines on the model's exact split and features: what the transformer must beat.

Each baseline sees the features of the anchor day (the last row of the model's input window), fitted on
the same rows the confirmation runs train on (train+val) and scored on the same test samples.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from patchtst_hpo import metrics
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.data.features import VOLATILITY_FEATURES


def _last_row(dm: WindowDataModule, split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = dm.datasets[split]
    return ds.x[ds.anchors].numpy().astype(np.float64), ds.y[ds.anchors].numpy().astype(np.float64)


def evaluate(dm: WindowDataModule, feature_names: list[str], n_boot: int, seed: int) -> dict[str, dict]:
    """Test metrics (with a bootstrap 95% CI on AUC) of majority, logistic and volatility-only logistic."""
    x_tr, y_tr = _last_row(dm, "train")
    x_va, y_va = _last_row(dm, "val")
    x_te, y_te = _last_row(dm, "test")
    vol = [i for i, n in enumerate(feature_names) if n in VOLATILITY_FEATURES]
    out = {}
    preds = {"majority": (np.full(len(y_va), y_tr.mean()), np.full(len(y_te), y_tr.mean()))}
    for name, cols in (("logistic", list(range(x_tr.shape[1]))), ("volatility_logistic", vol)):
        clf = LogisticRegression(max_iter=2000, C=1.0).fit(x_tr[:, cols], y_tr)
        preds[name] = (clf.predict_proba(x_va[:, cols])[:, 1], clf.predict_proba(x_te[:, cols])[:, 1])
    for name, (p_va, p_te) in preds.items():
        res = metrics.binary_metrics(y_te, p_te, metrics.best_f1_threshold(y_va, p_va))
        res["auc_ci"] = list(metrics.bootstrap_ci(y_te, p_te, n_boot=n_boot, seed=seed))
        out[name] = res
    out["volatility_logistic"]["features"] = [feature_names[i] for i in vol]
    return out
