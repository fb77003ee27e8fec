"""The budget_optuna sweeper, run for real: subprocess sweeps on the tiny budget with a few batches each."""

import json

import optuna
import pytest
import yaml

from patchtst_hpo.hpo.budget_planner import cheapest_first
from patchtst_hpo.models.arch_grid import budget_candidates, extremes
from patchtst_hpo.paths import REPO_DIR
from tests.helpers import FAST, check, run_cli, sqlite_storage

State = optuna.trial.TrialState


def sweep_args(tmp_path, data_dir, *extra, name="s"):
    return [
        "-m",
        "patchtst_hpo.train",
        "-m",
        *FAST,
        f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"hydra.sweeper.storage={storage(tmp_path)}",
        f"hydra.sweeper.study_name={name}",
        *extra,
    ]


storage = sqlite_storage


def trials(tmp_path, study):
    return optuna.load_study(study_name=study, storage=storage(tmp_path)).get_trials()


def test_one_study_per_budget_with_grid_archs(tmp_path, data_dir, cfg_factory):
    r = run_cli(sweep_args(tmp_path, data_dir, "budget=tiny,2M", "hydra.sweeper.n_trials=3"))
    check(r)
    names = set(optuna.get_all_study_names(storage(tmp_path)))
    assert names == {"s.tiny.h1_1pct", "s.2M.h1_1pct"}
    for budget in ("tiny", "2M"):
        cands = budget_candidates(cfg_factory(f"budget={budget}"))
        study = optuna.load_study(study_name=f"s.{budget}.h1_1pct", storage=storage(tmp_path))
        ts = study.get_trials()
        assert sum(t.state == State.COMPLETE for t in ts) == 3 and len(ts) == 3
        assert study.user_attrs["arch_candidates"] == [c.arch.name for c in cands]
        assert study.user_attrs["grid"] == {"budget": budget} and study.user_attrs["data_id"]
        ran = [t.params["arch"] for t in sorted(ts, key=lambda t: t.datetime_start)]
        ext = [c.arch.name for c in cheapest_first(extremes(cands), cfg_factory(f"budget={budget}"))]
        # every shape extreme runs, cheapest first, after as many start-up trials as n_trials leaves room for
        assert ran[-len(ext) :] == ext and len(ext) <= 3
        for t in ts:
            assert t.params["arch"] in study.user_attrs["arch_candidates"]
            run_dir = tmp_path / "sweep" / f"s.{budget}.h1_1pct" / str(t.number)
            assert t.user_attrs["run_dir"] == str(run_dir)
            job_cfg = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
            assert job_cfg["arch"]["name"] == t.params["arch"] and job_cfg["budget"]["name"] == budget
            assert job_cfg["test"] is False  # trials never see the test period
        res = yaml.safe_load(
            (tmp_path / "sweep" / f"s.{budget}.h1_1pct" / "optimization_results.yaml").read_text()
        )
        assert res["best_value"] == study.best_value and res["arch"] == study.best_params["arch"]
    table = (tmp_path / "sweep" / "summary.csv").read_text()
    assert "s.tiny.h1_1pct" in table and "s.2M.h1_1pct" in table and "s.2M.h1_1pct" in r.stdout


def test_raise_and_nan_become_fail_and_sweep_completes(tmp_path, data_dir):
    study = optuna.create_study(study_name="s.tiny.h1_1pct", storage=storage(tmp_path), direction="maximize")
    for lr in (-1.0, 1e30, 1e30, 3e-4, 3e-4):  # AdamW raises on a negative lr; 1e30 diverges to NaN
        study.enqueue_trial({"optimizer.lr": lr})
    r = run_cli(
        sweep_args(
            tmp_path,
            data_dir,
            "budget=tiny",
            "search=none",
            "optimizer.lr=choice(-1.0,1e30,0.0003)",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.max_failure_rate=2.0",
        )
    )
    check(r)
    ts = sorted(trials(tmp_path, "s.tiny.h1_1pct"), key=lambda t: t.number)
    assert [t.state for t in ts] == [State.FAIL, State.FAIL, State.FAIL, State.COMPLETE, State.COMPLETE]
    assert "Invalid learning rate" in ts[0].user_attrs["fail_reason"]
    # two NaNs in a row do not stop the sweep: only repeated *errors* mean a broken set-up
    assert ts[1].user_attrs["fail_reason"] == ts[2].user_attrs["fail_reason"] == "objective is nan"


JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]


@pytest.mark.parametrize("launcher", [[], JOBLIB], ids=["basic", "joblib"])
def test_always_prune_pruner_yields_pruned(tmp_path, data_dir, launcher):
    r = run_cli(
        sweep_args(
            tmp_path,
            data_dir,
            "budget=tiny",
            *launcher,
            "hydra/sweeper/pruner=threshold",
            "hydra.sweeper.pruner.lower=1.1",
            "hydra.sweeper.n_trials=2",
        )
    )
    check(r)
    ts = trials(tmp_path, "s.tiny.h1_1pct")
    # reported by the job (in-process, or a joblib worker process) through the storage, pruned there,
    # and told as PRUNED by the sweeper
    assert [t.state for t in ts] == [State.PRUNED, State.PRUNED]
    assert all(0 in t.intermediate_values for t in ts)
    if launcher:
        assert "Joblib.Parallel(n_jobs=2" in r.stdout + r.stderr


def test_missing_data_file_aborts_first_batch(tmp_path, data_dir):
    import shutil

    broken = tmp_path / "data"
    shutil.copytree(data_dir / "raw", broken / "raw")
    missing = broken / "raw" / "SPX.OHLCV.daily" / "v1.parquet"
    missing.unlink()
    r = run_cli(
        sweep_args(tmp_path, broken, "budget=tiny", "hydra.sweeper.n_trials=5", "hydra.sweeper.n_jobs=2")
    )
    assert r.returncode != 0
    assert str(missing) in r.stderr and "failed the same way" in r.stderr
    # only the first batch ran (the shape extremes wait in the queue until after the start-up trials)
    started = [t for t in trials(tmp_path, "s.tiny.h1_1pct") if t.state != State.WAITING]
    assert len(started) == 2


def test_a_trial_that_trained_to_the_end_is_never_pruned(tmp_path, data_dir):
    # issue 10's repro: the post-fit trainer.validate() used to report a second step (= epochs) and the
    # threshold pruner, past its warm-up, pruned a trial that had finished training
    r = run_cli(
        sweep_args(
            tmp_path,
            data_dir,
            "budget=tiny",
            "trainer.max_epochs=1",
            "hydra.sweeper.n_trials=2",
            "hydra/sweeper/pruner=threshold",
            "hydra.sweeper.pruner.lower=0.99",
            "hydra.sweeper.pruner.n_warmup_steps=1",
        )
    )
    check(r)
    ts = trials(tmp_path, "s.tiny.h1_1pct")
    assert [t.state for t in ts] == [State.COMPLETE, State.COMPLETE]
    for t in ts:
        assert list(t.intermediate_values) == [0]  # one report per training epoch, none after fit
        assert (tmp_path / "sweep" / "s.tiny.h1_1pct" / str(t.number) / "metrics.json").exists()
    study = optuna.load_study(study_name="s.tiny.h1_1pct", storage=storage(tmp_path))
    assert study.user_attrs["pruner"] == {
        "name": "ThresholdPruner",
        "kwargs": {"lower": 0.99, "upper": None, "n_warmup_steps": 1, "interval_steps": 1},
    }


def test_experiment_can_pick_another_sweeper(tmp_path):
    from hydra import compose, initialize_config_dir

    import hydra_plugins.patchtst_hpo_sweeper.config  # noqa: F401  (what Hydra's plugin scan imports)

    exp = tmp_path / "conf" / "experiment"
    exp.mkdir(parents=True)
    (exp / "plain_grid.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /hydra/sweeper: basic\n"
    )
    search = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    with initialize_config_dir(config_dir=str(REPO_DIR / "conf"), version_base="1.3"):
        default = compose("train", [search], return_hydra_config=True)
        picked = compose("train", [search, "experiment=plain_grid"], return_hydra_config=True)
    assert default.hydra.sweeper._target_.endswith("BudgetOptunaSweeper")
    assert default.hydra.sweeper.study_name == "patchtst"
    assert picked.hydra.sweeper._target_.endswith("BasicSweeper")


@pytest.mark.slow
@pytest.mark.slow
def test_multi_objective_auc_vs_size_front_across_budgets(tmp_path, data_dir):
    r = run_cli(
        sweep_args(
            tmp_path,
            data_dir,
            "budget=tiny,2M",
            "search=none",
            "trainer.max_epochs=1",
            "objective.metric=[val/auc,params]",
            "objective.direction=[maximize,minimize]",
            "hydra/sweeper/pruner=none",
            "hydra.sweeper.n_trials=2",
        )
    )
    check(r)
    front = yaml.safe_load((tmp_path / "sweep" / "pareto_front.yaml").read_text())
    assert front["direction"] == ["maximize", "minimize"] and front["solutions"]
    for name in ("s.tiny.h1_1pct", "s.2M.h1_1pct"):
        study = optuna.load_study(study_name=name, storage=storage(tmp_path))
        assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
        done = [t for t in study.trials if t.state != State.WAITING]  # unasked extremes stay queued
        assert len(done) == 2
        for t in done:
            assert t.state == State.COMPLETE and t.values[1] == t.user_attrs["params"]
            metrics = json.loads((tmp_path / "sweep" / name / str(t.number) / "metrics.json").read_text())
            assert (
                t.values[0] == pytest.approx(metrics["val"]["auc"])
                and metrics["objective_metric"] == "val/auc"
            )
    # the cross-budget front: no solution dominates another (auc up, size down)
    pts = [(s["values"][0], -s["values"][1]) for s in front["solutions"]]
    assert not any(a != b and a[0] >= b[0] and a[1] >= b[1] for a in pts for b in pts)
