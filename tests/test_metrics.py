"""patchtst_hpo.metrics against scikit-learn's reference implementations, on seeded synthetic predictions."""

import numpy as np
import pytest
from sklearn import metrics as skm

from patchtst_hpo import metrics
from patchtst_hpo.analysis import uncertainty


def _data(n: int, positive_rate: float, signal: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_rate).astype(np.float64)
    p = 1 / (1 + np.exp(-(signal * (y - 0.5) + rng.normal(size=n))))
    return y, p


CASES = [(500, 0.5, 1.0, 0), (300, 0.1, 2.0, 1), (1000, 0.8, 0.0, 2), (60, 0.3, 4.0, 3)]


@pytest.mark.parametrize(("n", "rate", "signal", "seed"), CASES)
def test_probability_metrics_match_sklearn(n, rate, signal, seed):
    y, p = _data(n, rate, signal, seed)
    m = metrics.binary_metrics(y, p, threshold=0.5)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p), rel=1e-9)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p), rel=1e-9)
    assert m["positive_rate"] == pytest.approx(y.mean()) and m["n"] == n


@pytest.mark.parametrize(("n", "rate", "signal", "seed"), CASES)
@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.7])
def test_thresholded_metrics_match_sklearn(n, rate, signal, seed, threshold):
    y, p = _data(n, rate, signal, seed)
    pred = (p >= threshold).astype(int)
    m = metrics.at_threshold(y, p, threshold)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))


@pytest.mark.parametrize(("n", "rate", "signal", "seed"), CASES)
def test_best_f1_threshold_beats_every_quantile(n, rate, signal, seed):
    y, p = _data(n, rate, signal, seed)
    t = metrics.best_f1_threshold(y, p)
    best = skm.f1_score(y, p >= t)
    assert all(best >= skm.f1_score(y, p >= q) - 1e-12 for q in np.quantile(p, np.linspace(0, 1, 101)))


@pytest.mark.parametrize(
    ("y", "p"),
    [
        (np.zeros(10), np.linspace(0, 1, 10)),  # one class: AUC undefined
        (np.ones(10), np.linspace(0, 1, 10)),
        (np.array([0, 1, 0, 1.0]), np.array([0.1, np.nan, 0.3, 0.4])),  # diverged predictions
    ],
)
def test_auc_is_nan_never_fake(y, p):
    assert np.isnan(metrics.auc(y, p))


def test_non_finite_predictions_give_nan_metrics_not_errors():
    m = metrics.binary_metrics(np.array([0, 1, 0, 1.0]), np.array([0.2, np.inf, 0.1, 0.9]), 0.5)
    assert np.isnan(m["auc"]) and np.isnan(m["log_loss"]) and m["threshold"] == 0.5 and m["n"] == 4


def test_probabilities_are_clipped_so_log_loss_stays_finite():
    m = metrics.binary_metrics(np.array([0, 1.0]), np.array([1.0, 0.0]), 0.5)
    assert m["log_loss"] == pytest.approx(-np.log(metrics.EPS), rel=1e-6)


@pytest.mark.parametrize("n", [150, 400])
def test_bootstrap_ci_brackets_the_estimate_and_narrows_with_n(n):
    y, p = _data(n, 0.4, 1.5, seed=7)
    e = uncertainty.Bootstrap.for_rows(n, 1, 150, 0).auc(y, p)
    assert e.lo < metrics.auc(y, p) == e.point < e.hi
    again = uncertainty.Bootstrap.for_rows(n, 1, 150, 0).auc(y, p)
    assert (e.lo, e.hi) == (again.lo, again.hi)  # seeded: reproducible
    y4, p4 = _data(4 * n, 0.4, 1.5, seed=7)
    e4 = uncertainty.Bootstrap.for_rows(4 * n, 1, 150, 0).auc(y4, p4)
    assert e4.hi - e4.lo < e.hi - e.lo


def test_bootstrap_ci_of_a_row_mean_brackets_brier():
    y, p = _data(400, 0.5, 1.0, seed=3)
    e = uncertainty.Bootstrap.for_rows(400, 1, 200, 0).mean((p - y) ** 2)
    assert e.lo < skm.brier_score_loss(y, p) < e.hi < 1


def test_bootstrap_ci_of_one_class_is_nan():
    e = uncertainty.Bootstrap.for_rows(20, 1, 20, 0).auc(np.zeros(20), np.linspace(0, 1, 20))
    assert np.isnan(e.point) and np.isnan(e.lo) and np.isnan(e.hi)


def test_row_log_loss_averages_to_log_loss():
    y, p = _data(300, 0.4, 1.0, seed=5)
    assert metrics.row_log_loss(y, p).mean() == pytest.approx(metrics.log_loss(y, p), rel=1e-12)
