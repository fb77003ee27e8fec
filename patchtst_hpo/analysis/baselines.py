"""Simple baselines on the model's exact split and features: what the transformer must beat.

Each baseline sees the features of the anchor day (the last row of the model's input window), fitted on
the same rows the confirmation runs train on (train+val) and scored on the same test samples. Gradient-boosted
trees (scikit-learn's HistGradientBoostingClassifier) stand for "a strong non-linear model without sequence
structure"; their settings live in conf/report.yaml `baselines`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from omegaconf import DictConfig, OmegaConf
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from patchtst_hpo import metrics
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.data.features import VOLATILITY_FEATURES


@dataclass
class BaselineResult:
    """Per baseline: test metrics (with CI) and its val/test probabilities, for paired comparisons."""

    metrics: dict[str, dict] = field(default_factory=dict)
    p_val: dict[str, np.ndarray] = field(default_factory=dict)
    p_test: dict[str, np.ndarray] = field(default_factory=dict)
    y_val: np.ndarray | None = None
    y_test: np.ndarray | None = None


def _last_row(dm: WindowDataModule, split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = dm.datasets[split]
    return ds.x[ds.anchors].numpy().astype(np.float64), ds.y[ds.anchors].numpy().astype(np.float64)


def evaluate(
    dm: WindowDataModule, feature_names: list[str], bcfg: DictConfig, n_boot: int, seed: int, block: int
) -> BaselineResult:
    """Majority, logistic, volatility-only logistic and gradient-boosted trees; test CIs use `block`."""
    x_tr, y_tr = _last_row(dm, "train")
    x_va, y_va = _last_row(dm, "val")
    x_te, y_te = _last_row(dm, "test")
    vol = [i for i, n in enumerate(feature_names) if n in VOLATILITY_FEATURES]
    res = BaselineResult(y_val=y_va, y_test=y_te)
    preds = {"majority": (np.full(len(y_va), y_tr.mean()), np.full(len(y_te), y_tr.mean()))}
    every = list(range(x_tr.shape[1]))
    for name, cols in (("logistic", every), ("volatility_logistic", vol)):
        clf = LogisticRegression(max_iter=2000, C=float(bcfg.logistic_C)).fit(x_tr[:, cols], y_tr)
        preds[name] = (clf.predict_proba(x_va[:, cols])[:, 1], clf.predict_proba(x_te[:, cols])[:, 1])
    gbdt = HistGradientBoostingClassifier(
        **OmegaConf.to_container(bcfg.gbdt, resolve=True), random_state=seed
    ).fit(x_tr, y_tr)
    preds["gbdt"] = (gbdt.predict_proba(x_va)[:, 1], gbdt.predict_proba(x_te)[:, 1])
    for name, (p_va, p_te) in preds.items():
        m = metrics.binary_metrics(y_te, p_te, metrics.best_f1_threshold(y_va, p_va))
        m["auc_ci"] = list(metrics.bootstrap_ci(y_te, p_te, n_boot=n_boot, seed=seed, block=block))
        m["log_loss_ci"] = list(
            metrics.bootstrap_ci(y_te, p_te, metrics.log_loss, n_boot=n_boot, seed=seed, block=block)
        )
        res.metrics[name], res.p_val[name], res.p_test[name] = m, p_va, p_te
    res.metrics["volatility_logistic"]["features"] = [feature_names[i] for i in vol]
    return res
