"""Simple baselines on the model's exact split and features: what the transformer must beat.

Each baseline sees the features of the anchor day (the last row of the model's input window), fitted on
the same rows the confirmation runs train on (train+val) and scored on the same test samples. Its val
predictions, from which thresholds are chosen, come from a second fit on the training rows only (the
study's split), so a threshold is never chosen on rows its model trained on. Gradient-boosted
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
from patchtst_hpo.analysis.uncertainty import Bootstrap, Estimate
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.data.features import VOLATILITY_FEATURES


@dataclass
class BaselineResult:
    """Per baseline: test metrics (with CI), its test-AUC estimate for paired comparisons, its out-of-sample
    val probabilities (train-only fit) and its test probabilities (train+val fit)."""

    metrics: dict[str, dict] = field(default_factory=dict)
    auc: dict[str, Estimate] = field(default_factory=dict)
    p_val: dict[str, np.ndarray] = field(default_factory=dict)
    p_test: dict[str, np.ndarray] = field(default_factory=dict)
    y_val: np.ndarray | None = None
    y_test: np.ndarray | None = None


def _last_row(dm: WindowDataModule, split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = dm.datasets[split]
    return ds.x[ds.anchors].numpy().astype(np.float64), ds.y[ds.anchors].numpy().astype(np.float64)


def _fit_predict(bcfg: DictConfig, names: list[str], x, y, xs: list, seed: int) -> dict[str, list]:
    """Each baseline fitted on (x, y); its probabilities on each array of `xs`."""
    vol = [i for i, n in enumerate(names) if n in VOLATILITY_FEATURES]
    out = {"majority": [np.full(len(a), y.mean()) for a in xs]}
    for name, cols in (("logistic", list(range(x.shape[1]))), ("volatility_logistic", vol)):
        clf = LogisticRegression(max_iter=2000, C=float(bcfg.logistic_C)).fit(x[:, cols], y)
        out[name] = [clf.predict_proba(a[:, cols])[:, 1] for a in xs]
    gbdt = HistGradientBoostingClassifier(
        **OmegaConf.to_container(bcfg.gbdt, resolve=True), random_state=seed
    ).fit(x, y)
    out["gbdt"] = [gbdt.predict_proba(a)[:, 1] for a in xs]
    return out


def evaluate(
    dm: WindowDataModule,
    dm_train: WindowDataModule | None,
    feature_names: list[str],
    bcfg: DictConfig,
    boot: Bootstrap,
    seed: int,
) -> BaselineResult:
    """Majority, logistic, volatility-only logistic and gradient-boosted trees; test intervals from `boot`.

    `dm` is the confirmation split (train = train+val); `dm_train` the study's (train only), whose val rows
    give the out-of-sample predictions thresholds are chosen on (None: no val predictions, threshold 0.5).
    """
    x_tr, y_tr = _last_row(dm, "train")
    x_te, y_te = _last_row(dm, "test")
    test = _fit_predict(bcfg, feature_names, x_tr, y_tr, [x_te], seed)
    val, y_va = {}, None
    if dm_train is not None:
        x_t0, y_t0 = _last_row(dm_train, "train")
        x_va, y_va = _last_row(dm_train, "val")
        val = _fit_predict(bcfg, feature_names, x_t0, y_t0, [x_va], seed)
    res = BaselineResult(y_val=y_va, y_test=y_te)
    for name in test:
        p_va, p_te = val[name][0] if val else None, test[name][0]
        thr = metrics.best_f1_threshold(y_va, p_va) if val else 0.5
        m = metrics.binary_metrics(y_te, p_te, thr)
        a, ll = boot.auc(y_te, p_te), boot.mean(metrics.row_log_loss(y_te, p_te))
        m["auc_ci"], m["log_loss_ci"], m["auc_mde"] = [a.lo, a.hi], [ll.lo, ll.hi], a.mde
        res.metrics[name], res.auc[name], res.p_val[name], res.p_test[name] = m, a, p_va, p_te
    vol = [n for n in feature_names if n in VOLATILITY_FEATURES]
    res.metrics["volatility_logistic"]["features"] = vol
    return res
