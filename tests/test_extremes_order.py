"""Shape extremes that do not block a study: queued once, cheapest first, taken after the sampler's start-up
trials and one model-guided trial, and every one still evaluated within n_trials."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
from omegaconf import OmegaConf

from patchtst_hpo.hpo.budget_planner import BudgetPlanner, cheapest_first
from patchtst_hpo.models.arch_grid import budget_candidates, extremes
from tests.helpers import check, run_cli, sqlite_storage, sweep_args


def test_the_48_layer_extreme_of_2m_runs_last(cfg_factory):
    cfg = cfg_factory("budget=2M")
    ordered = [c.arch.name for c in cheapest_first(extremes(budget_candidates(cfg)), cfg)]
    assert ordered[-1] == "d64_l48_h2_f128" and len(ordered) == 3  # first before issue 19


@pytest.mark.parametrize(
    ("startup", "n_trials", "n_extremes", "after"),
    [
        (8, 20, 3, 9),  # the 8 random start-up trials and one guided trial, then the extremes
        (8, 10, 3, 7),  # fewer trials: the extremes still fit in n_trials
        (8, 3, 3, 0),  # no room for anything else: extremes only
        (None, 20, 3, 0),  # a sampler without start-up trials (random, grid, qmc): extremes first
        (8, 20, 0, 0),  # nothing to queue (arch fixed)
    ],
)
def test_when_the_extremes_are_taken(startup, n_trials, n_extremes, after):
    sampler = {"n_startup_trials": startup} if startup is not None else {}
    planner = BudgetPlanner.__new__(BudgetPlanner)
    planner.ctx = SimpleNamespace(
        config=OmegaConf.create({"hydra": {"sweeper": {"sampler": sampler, "n_trials": n_trials}}})
    )
    assert planner._extremes_after(n_extremes) == after


@pytest.mark.slow  # a 5-trial sweep; test_sweeper's grid test checks the order in the default suite
def test_tiny_study_yields_a_guided_trial_before_its_extremes(tmp_path, data_dir):
    """tiny, TPE with 2 start-up trials, n_trials=5: trials 0-1 random, 2 model-guided, 3-4 the extremes
    (fewer layers first). Before: the extremes were trials 0-1, and at 2M the slowest (48 layers) was trial 0."""
    url = sqlite_storage(tmp_path)
    r = run_cli(
        sweep_args(
            tmp_path / "sweep",
            data_dir,
            url,
            "budget=tiny",
            "hydra.sweeper.n_trials=5",
            "hydra.sweeper.sampler.n_startup_trials=2",
            "hydra/sweeper/pruner=none",
        )
    )
    check(r)
    study = optuna.load_study(study_name="s.tiny.h1_1pct", storage=url)
    ts = sorted(study.get_trials(), key=lambda t: t.datetime_start)  # in the order they ran
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in ts) and len(ts) == 5
    # the extremes were queued (numbered) when the study was created, and run after three others
    assert [t.user_attrs.get("enqueued") for t in ts] == [None, None, None, "extreme", "extreme"]
    assert sorted(t.number for t in ts[3:]) == [0, 1]
    assert [t.params["arch"] for t in ts[3:]] == ["d64_l2_h2_f128", "d64_l3_h2_f128"]
    # model-guided = started once n_startup_trials trials had finished (Optuna's count for TPE)
    finished_before = [sum(u.datetime_complete <= t.datetime_start for u in ts) for t in ts]
    assert finished_before[2] >= 2  # trial 3rd in line was guided by the model of the first two
    assert ts[2].datetime_complete <= ts[3].datetime_start  # and finished before any extreme started


@pytest.fixture
def keep_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_time_limited_trial_completes_and_says_so(cfg_factory, data_dir, tmp_path, keep_threads):
    """trainer.max_time ends training (here after 1 s of 50 epochs); the best epoch is evaluated as usual."""
    import json
    import math

    from patchtst_hpo.train import train

    cfg = cfg_factory(
        "budget=tiny",
        "trainer.max_epochs=50",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.max_time=00:00:00:01",
        "callbacks.early_stopping=null",
        "trainer.threads=1",
        f"paths.data_dir={data_dir}",
        f"paths.output_dir={tmp_path}",
    )
    res = train(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["time_limited"] is True and res["epochs"] < 50 and math.isfinite(res["objective"])
    untimed = train(
        cfg_factory(
            "budget=tiny",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            f"paths.data_dir={data_dir}",
            f"paths.output_dir={tmp_path / 'u'}",
            "trainer.threads=1",
        )
    )
    assert untimed["time_limited"] is False
