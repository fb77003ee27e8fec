"""Statistics (metrics.py) and analysis helpers on synthetic data with known answers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from patchtst_hpo import metrics
from patchtst_hpo.analysis import compute, confirm, uncertainty
from patchtst_hpo.analysis.groups import Group, search_warnings
from patchtst_hpo.models.arch_grid import Arch, Dims, train_flops


def _scores(n, signal, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    return y, y * signal + rng.normal(0, 1, n)


def test_auc_matches_sklearn_with_ties():
    y, p = _scores(400, 0.5, 0)
    p = np.round(p, 1)  # many ties
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert np.isnan(metrics.auc(np.ones(5), np.arange(5.0)))


def test_block_draws_keep_runs_of_consecutive_dates():
    w = uncertainty.Bootstrap.for_rows(100, 10, 200, 0).date_weights
    assert (w.sum(axis=1) == 100).all()
    # a block of 10 consecutive dates: a drawn date's neighbours are drawn too far more often than by chance
    drawn = w > 0
    together = (drawn[:, :-1] & drawn[:, 1:]).mean() / drawn.mean()
    assert together > 0.8


def test_block_bootstrap_widens_ci_for_overlapping_labels():
    """Labels of horizon-10 windows are a moving max of daily events: neighbours share them."""
    rng = np.random.default_rng(1)
    n, h = 1500, 10
    event = rng.random(n + h) < 0.05
    y = np.array([event[t + 1 : t + 1 + h].any() for t in range(n)], dtype=float)
    p = y * 0.6 + np.convolve(rng.normal(0, 1, n + h), np.ones(h) / h, "valid")[:n]
    one = uncertainty.Bootstrap.for_rows(n, 1, 300, 0).auc(y, p)
    blocks = uncertainty.Bootstrap.for_rows(n, metrics.block_length(h), 300, 0).auc(y, p)
    assert (blocks.hi - blocks.lo) > 1.3 * (one.hi - one.lo)


def test_seed_mean_ci_and_paired_difference():
    y, p_good = _scores(800, 1.5, 2)
    _, p_bad = _scores(800, 0.0, 3)
    stack = np.stack([p_good, p_good + 0.01])
    bs = uncertainty.Bootstrap.for_rows(800, 5, 200, 0)
    a = bs.auc(y, stack)
    assert a.lo < metrics.auc(y, p_good) < a.hi and a.seeds == 2
    g = bs.auc(y, p_good)
    same = uncertainty.difference(g, g)
    assert (same.point, same.lo, same.hi) == (0.0, 0.0, 0.0)
    d = uncertainty.difference(a, bs.auc(y, p_bad))
    assert d.lo > 0 and metrics.verdict(d.lo, d.hi) == "beats"
    assert metrics.verdict(-0.05, -0.01) == "loses to" and metrics.verdict(-0.01, 0.02) == "ties"
    assert metrics.verdict(0.01, 0.02, higher_is_better=False) == "loses to"


def test_paired_ci_is_narrower_than_separate_cis():
    """Two correlated models: their separate CIs overlap, the paired difference still resolves the gap."""
    rng = np.random.default_rng(4)
    y = (rng.random(1000) < 0.3).astype(float)
    common = y * 0.8 + rng.normal(0, 1, 1000)
    bs = uncertainty.Bootstrap.for_rows(1000, 1, 300, 0)
    a, b = bs.auc(y, common + 0.25 * y), bs.auc(y, common)
    d = uncertainty.difference(a, b)
    assert a.lo < b.hi  # separate CIs overlap ...
    assert d.lo > 0  # ... the paired one does not include 0


def test_reliability_warnings_small_and_unbalanced():
    y = np.r_[np.zeros(4), np.ones(46)]
    w = metrics.reliability_warnings(y, "test", min_samples=200, min_per_class=30)
    assert len(w) == 2 and "50 samples" in w[0] and "46 positives and 4 negatives" in w[1]
    big = (np.arange(1000) % 3 == 0).astype(float)
    assert metrics.reliability_warnings(big, "val", 200, 30) == []


def test_refit_epochs_survives_missing_best_epoch():
    assert confirm.refit_epochs(pd.Series({"best_epoch": np.nan, "epochs": 4.0})) == 4
    assert confirm.refit_epochs(pd.Series({"best_epoch": None, "epochs": np.nan})) == 1
    assert confirm.refit_epochs(pd.Series({"best_epoch": 2.0, "epochs": 5})) == 2


def test_confirm_overlay_keeps_the_study_experiment():
    assert confirm.with_confirm_overlay(["budget=tiny"]) == ["budget=tiny", "experiment=confirm"]
    assert confirm.with_confirm_overlay(["experiment=quick", "a=1"]) == ["a=1", "experiment=[quick,confirm]"]


def test_confirm_overlay_composes(cfg_factory):
    cfg = cfg_factory(*confirm.with_confirm_overlay(["experiment=quick"]))
    assert cfg.data.fit_on == "train_val" and cfg.callbacks.early_stopping is None and cfg.test
    assert cfg.budget.name == "tiny" and cfg.reliability.min_per_class > 0


def test_compute_frontier_keeps_the_cheapest_best_points():
    rng = np.random.default_rng(5)
    c = np.geomspace(1e12, 1e16, 12)
    loss = 0.2 + 3.0 * c**-0.1 + rng.normal(0, 1e-4, len(c))
    worse = loss + rng.uniform(0.01, 0.05, len(c))  # dominated trials at the same compute
    pts = pd.DataFrame({"compute": np.r_[c, c], "loss": np.r_[loss, worse]})
    idx = compute.frontier(pts["compute"].to_numpy(), pts["loss"].to_numpy())
    assert sorted(idx) == list(range(12))  # exactly the clean points


def test_flops_recorded_then_model_count():
    dims = Dims(num_features=25, context_length=60, patch_len=8, stride=8, num_classes=1)
    row = pd.Series({"train_flops": 1e12, "params": 10})
    assert compute.flops_of(row, dims, 128) == (1e12, "recorded")
    row = pd.Series(
        {
            "params": 1000,
            "steps": 10,
            "epochs": 1,
            "train_windows": 500,
            "d_model": 64,
            "n_layers": 2,
            "n_heads": 2,
            "d_ff": 128,
        }
    )
    flops, source = compute.flops_of(row, dims, batch_size=128)
    samples = min(10 * 128, 500)
    arch = Arch(64, 2, 2, 128)
    assert source == "arch_grid.train_flops" and flops == train_flops(arch, dims, samples)


def test_search_warnings_when_only_extremes_ran():
    trials = pd.DataFrame(
        {
            "study": ["s.tiny"] * 3 + ["s.2M"] * 5,
            "state": ["COMPLETE"] * 3 + ["COMPLETE"] * 5,
            "enqueued": ["extreme"] * 3 + ["extreme"] * 3 + [None] * 2,
        }
    )
    g = Group("h1", "d", ["s.tiny", "s.2M"], {}, trials)
    w = search_warnings(g)
    assert len(w) == 1 and w[0].startswith("s.tiny: 3 finished trials <= 3 enqueued")


def test_walk_forward_fold_starts_from_boundaries_and_folds():
    from omegaconf import OmegaConf

    from patchtst_hpo.analysis import walkforward

    dates = pd.bdate_range("2000-01-03", periods=6000)  # to 2022-12
    wf = OmegaConf.create(
        {
            "folds": 0,
            "boundaries": ["1990-01-01", "2008-01-01", "2020-01-01", "2022-01-01", "2030-01-01"],
            "val_rows": 250,
            "test_rows": 250,
            "min_train_rows": 750,
            "min_test_rows": 100,
        }
    )
    starts, notes = walkforward.fold_starts(dates, wf, purge=0)
    assert [dates[s].year for s in starts] == [2008, 2020, 2022]
    assert len(notes) == 2 and "1990-01-01" in notes[0] and "2030-01-01" in notes[1]
    wf.boundaries, wf.folds = [], 3
    starts, _ = walkforward.fold_starts(dates, wf, purge=0)
    assert starts == [6000 - 750, 6000 - 500, 6000 - 250]
    over = walkforward._fold_overrides(dates, starts[0], ctx=60, purge=0, val_rows=250)
    test_start = pd.Timestamp(over[2].split("=")[1])
    assert dates.get_loc(test_start) == starts[0] - 59  # first test anchor (ctx-1 rows of history) = start


def test_training_run_warnings_use_the_configured_thresholds(cfg_factory, caplog):
    from patchtst_hpo import run_record

    cfg = cfg_factory("reliability.min_samples=100", "reliability.min_per_class=5")
    y = np.r_[np.zeros(4), np.ones(46)]
    big = (np.arange(1000) % 2).astype(float)
    with caplog.at_level("WARNING"):
        w = run_record.reliability_warnings(cfg, {"val": (big, big), "test": (y, y)})
    assert len(w) == 2 and all(x.startswith("test:") for x in w)
    assert "4 negatives" in caplog.text


def test_compute_and_data_scaling_figures_are_drawn(tmp_path):
    """The compute figure draws the verdict's curves only: none when the verdict has no fit."""
    from patchtst_hpo.analysis import plots
    from patchtst_hpo.analysis.verdict import Scaling, Verdict

    rng = np.random.default_rng(6)
    rows = [
        {"budget": b, "params": n * (1 + 0.05 * k), "train_fraction": f, "train_windows": int(3000 * f)}
        for b, n in (("tiny", 1e5), ("2M", 2e6), ("20M", 2e7))
        for f in (0.25, 1.0)
        for k in range(2)
    ]
    pts = pd.DataFrame(rows)
    pts["compute"] = 6 * pts["params"] * pts["train_windows"] * 7
    pts["loss"] = (
        0.3 + pts["params"] ** -0.2 + 0.5 * pts["train_windows"] ** -0.5 + rng.normal(0, 1e-3, len(pts))
    )
    idx = compute.frontier(pts["compute"].to_numpy(), pts["loss"].to_numpy())
    v = Verdict("h", Scaling("none", "no scaling (cannot tell): ..."))
    plots.compute_figure(tmp_path / "c.png", pts, None, v, "1 - AUC", idx)
    plots.data_scaling_figure(tmp_path / "d.png", pts, "1 - AUC")
    assert (tmp_path / "c.png").stat().st_size > 10_000 and (tmp_path / "d.png").stat().st_size > 10_000
