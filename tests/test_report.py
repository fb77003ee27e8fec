import json

import numpy as np
import optuna
import pandas as pd
import pytest

from patchtst_hpo.analysis.scaling import fit
from tests.helpers import FAST, check, run_cli
from tests.helpers import sqlite_storage as storage


@pytest.fixture(scope="module")
def two_budget_study(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("study")
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "-m",
            "budget=tiny,2M",
            *FAST,
            f"paths.data_dir={data_dir}",
            "hydra.sweeper.n_trials=2",
            f"hydra.sweep.dir={tmp / 'sweep'}",
            f"hydra.sweeper.storage={storage(tmp)}",
            "hydra.sweeper.study_name=rep",
        ]
    )
    check(r)
    return tmp


def run_report(tmp, out, data_dir, *extra):
    return run_cli(
        [
            "-m",
            "patchtst_hpo.report",
            f"storage={storage(tmp)}",
            f"paths.data_dir={data_dir}",
            "study_prefix=rep",
            "top_k=1",
            "seeds=[1,2]",
            "n_boot=200",
            f"hydra.run.dir={out}",
            *extra,
        ]
    )


def test_report_files_confirmation_baselines_and_resume(two_budget_study, tmp_path, data_dir):
    out = tmp_path / "report"
    check(run_report(two_budget_study, out, data_dir))
    for f in (
        "summary.md",
        "scaling.png",
        "compute.png",
        "equity.png",
        "architectures.png",
        "trials.parquet",
        "trials.csv",
        "economics.csv",
        "report.json",
    ):
        assert (out / f).stat().st_size > 0, f
    n_trials = sum(
        len(optuna.load_study(study_name=n, storage=storage(two_budget_study)).trials)
        for n in ("rep.tiny.h1_1pct", "rep.2M.h1_1pct")
    )
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == n_trials and set(trials["budget"]) == {"tiny", "2M"}
    done = trials[trials["state"] == "COMPLETE"]
    assert (done["train_windows"] > 0).all() and (done["train_fraction"] == 1.0).all()
    runs = pd.read_parquet(out / "confirmation_runs.parquet")
    assert len(runs) == 2 * 2 and sorted(runs["seed"]) == [1, 1, 2, 2]  # S seeds x top-1 x 2 budgets
    confirmed = pd.read_parquet(out / "confirmed.parquet")
    assert (confirmed["compute"] > 0).all()
    rep = json.loads((out / "report.json").read_text())
    (group,) = rep["groups"].values()
    assert set(group["baselines"]) == {"majority", "logistic", "volatility_logistic", "gbdt"}
    for b in group["baselines"].values():  # same split: same test rows and positive rate as the model
        assert int(b["n"]) == confirmed["test_samples"].iloc[0]
        assert b["positive_rate"] == pytest.approx(confirmed["test_positive_rate"].iloc[0])
        assert b["auc_ci"][0] <= b["auc"] <= b["auc_ci"][1] or b["auc"] == 0.5
    # paired comparisons: each winner vs the best baseline, and 2M vs tiny
    pairs = {(c["a"], c["b"].split()[0]) for c in group["comparisons"]}
    assert pairs == {("PatchTST tiny", "baseline"), ("PatchTST 2M", "baseline"), ("PatchTST 2M", "PatchTST")}
    for c in group["comparisons"]:
        assert c["lo"] <= c["diff"] <= c["hi"] and c["verdict"] in ("beats", "ties", "loses to")
    # n_trials=2 runs only enqueued extremes: the report says no search happened
    assert any("no search happened" in w for w in group["warnings"])
    econ = pd.read_csv(out / "economics.csv")
    assert {"buy_and_hold", "PatchTST tiny", "PatchTST 2M", "baseline logistic", "baseline gbdt"} <= set(
        econ["strategy"]
    )
    assert econ.loc[econ["strategy"] == "buy_and_hold", "exposure"].iloc[0] == 1.0
    metrics_files = sorted((out / "confirm").rglob("metrics.json"))
    assert len(metrics_files) == 4
    for m in metrics_files:
        mj = json.loads(m.read_text())
        assert mj["data"]["splits"]["test"]["samples"] == confirmed["test_samples"].iloc[0]
        assert isinstance(mj["warnings"], list)
    summary = (out / "summary.md").read_text()
    assert "| tiny |" in summary and "| 2M |" in summary and "python -m patchtst_hpo.train" in summary
    assert "experiment=confirm" in summary and "| gbdt |" in summary and "Sharpe" in summary
    verdict = group["verdict"]
    assert any(w in verdict for w in ("**beats**", "**ties**", "**loses to**")) and "Scaling" in verdict
    assert verdict in summary
    _sections_agree_with_the_verdict(group, summary, trials_after=pd.read_parquet(out / "trials.parquet"))
    prov = rep["provenance"]
    assert set(prov["libraries"]) >= {"torch", "lightning", "optuna", "scikit-learn", "numpy", "pandas"}
    assert "commit" in prov["code"] or "version" in prov["code"]
    assert json.loads(metrics_files[0].read_text())["provenance"]["libraries"]["torch"]
    assert "Code: " in summary
    # resumable: a re-run trains nothing that is done; a removed seed is the only one redone
    stamps = {m: m.stat().st_mtime_ns for m in metrics_files}
    removed = metrics_files[0]
    removed.unlink()
    check(run_report(two_budget_study, out, data_dir))
    for m, t in stamps.items():
        assert m.exists() and (m == removed or m.stat().st_mtime_ns == t)


def _sections_agree_with_the_verdict(group: dict, summary: str, trials_after: pd.DataFrame) -> None:
    """Every section and figure title states the verdict's scaling reading and nothing else."""
    v = group["verdict_detail"]
    sc = v["scaling"]
    assert sc["status"] != "detected" or "scaling detected" in sc["sentence"]
    if sc["status"] != "detected":  # no section may claim what the verdict does not
        assert "scaling detected" not in summary and not sc["draw_curve"]
    assert "not enough budgets for a fit" in sc["sentence"]  # two budgets, three free parameters
    assert sc["sentence"] in summary and sc["sentence"] in group["verdict"]
    for stem in ("scaling", "compute"):
        assert sc["sentence"] in group["figure_titles"][stem]
    assert set(trials_after["scaling_verdict"]) == {sc["status"]}
    kinds = {s["study"]: s["kind"] for s in v["studies"]}
    assert dict(zip(trials_after["study"], trials_after["study_kind"], strict=True)) == kinds
    for s in v["studies"]:
        assert s["sentence"] in summary
    assert "decile long-short left out: the test period has 1 symbol(s)" in summary  # absent, and why
    for c in v["comparisons"]:
        assert c["sentence"] in summary
        assert c["verdict"] != "ties" or (
            "point estimate" in c["sentence"] and "not resolvable" in c["sentence"]
        )


def test_scaling_fit_recovers_known_parameters():
    rng = np.random.default_rng(1)
    n = np.array([1e5, 2e6, 2e7, 2e8, 2e9])
    y = 0.30 + 4.0 * n**-0.25
    f = fit(n, y, y[None, :] + rng.normal(0, 0.001, (200, len(n))))
    assert f.alpha == pytest.approx(0.25, rel=0.10) and f.alpha_ci[0] > 0 and not f.at_bound


def test_scaling_fit_flat_data_ci_contains_zero():
    rng = np.random.default_rng(2)
    n = np.array([1e5, 2e6, 2e7, 2e8])
    f = fit(n, np.full(4, 0.35), 0.35 + rng.normal(0, 0.01, (200, 4)))
    assert f.alpha_ci[0] <= 0 <= f.alpha_ci[1] and f.flat


def test_report_on_only_failed_trials_explains(tmp_path):
    study = optuna.create_study(
        study_name="bad.tiny.h1_1pct", storage=storage(tmp_path), direction="maximize"
    )
    study.set_user_attr("budget", "tiny")
    for _ in range(3):
        t = study.ask()
        t.set_user_attr("fail_reason", "DataError: data/raw/x.parquet is missing")
        study.tell(t, state=optuna.trial.TrialState.FAIL)
    out = tmp_path / "report"
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.report",
            f"storage={storage(tmp_path)}",
            "study_prefix=bad",
            f"hydra.run.dir={out}",
        ]
    )
    check(r)
    text = (out / "summary.md").read_text()
    assert "none completed" in text and "FAIL: 3" in text and "x.parquet is missing" in text


def test_report_unknown_prefix_names_the_studies(tmp_path):
    optuna.create_study(study_name="abc.tiny.h1_1pct", storage=storage(tmp_path))
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.report",
            f"storage={storage(tmp_path)}",
            "study_prefix=zzz",
            f"hydra.run.dir={tmp_path / 'r'}",
        ]
    )
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]  # one line on stderr naming what is there
    assert last.startswith("error: ") and "abc.tiny.h1_1pct" in last


def _fake_study(store: str, name: str, task: str, data_dir, values: list[float]) -> None:
    """A finished study as the sweeper leaves it, without run folders (the report then skips compute)."""
    dist = optuna.distributions.CategoricalDistribution(["d64_l3_h2_f128"])
    study = optuna.create_study(study_name=name, storage=store, direction="maximize")
    attrs = {
        "budget": "tiny",
        "task": task,
        "data_id": "SPX.OHLCV.daily.a25",
        "metric": "val/auc",
        "direction": "maximize",
        "fixed_overrides": [f"task={task}", "budget=tiny", f"paths.data_dir={data_dir}"],
    }
    for k, v in attrs.items():
        study.set_user_attr(k, v)
    for v in values:
        study.add_trial(
            optuna.trial.create_trial(
                params={"arch": "d64_l3_h2_f128"},
                distributions={"arch": dist},
                value=v,
                user_attrs={"params": 118017},
            )
        )


def test_report_groups_tasks_separately(tmp_path, data_dir):
    """task=h1_1pct,h5_1pct: one group each, own baselines (own positive rate), block length = horizon."""
    store = storage(tmp_path)
    _fake_study(store, "two.tiny.h1_1pct", "h1_1pct", data_dir, [0.6, 0.62])
    _fake_study(store, "two.tiny.h5_1pct", "h5_1pct", data_dir, [0.55])
    out = tmp_path / "r"
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.report",
            f"storage={store}",
            f"paths.data_dir={data_dir}",
            "study_prefix=two",
            "confirm=false",
            "n_boot=50",
            f"hydra.run.dir={out}",
        ]
    )
    check(r)
    groups = json.loads((out / "report.json").read_text())["groups"]
    assert sorted(g["task"] for g in groups.values()) == ["h1_1pct", "h5_1pct"]
    by_task = {g["task"]: g for g in groups.values()}
    assert by_task["h1_1pct"]["block_length"] == 1 and by_task["h5_1pct"]["block_length"] == 5
    rates = {t: g["baselines"]["logistic"]["positive_rate"] for t, g in by_task.items()}
    assert rates["h5_1pct"] > rates["h1_1pct"]  # a 5-day high clears +1% more often: not pooled
    for key in groups:  # one figure set per group
        assert (out / f"compute_{key}.png").exists()
    summary = (out / "summary.md").read_text()
    assert "## h1_1pct on" in summary and "## h5_1pct on" in summary


@pytest.mark.slow
def test_report_walk_forward_folds(two_budget_study, tmp_path, data_dir):
    out = tmp_path / "wf"
    check(
        run_report(
            two_budget_study,
            out,
            data_dir,
            "walk_forward.folds=2",
            "walk_forward.test_rows=300",
            "walk_forward.seeds=[1]",
        )
    )
    wf = pd.read_csv(out / "walk_forward.csv")
    assert list(wf["fold"]) == ["fold 0", "fold 1", "pooled"]
    assert wf["n"].iloc[2] == wf["n"].iloc[0] + wf["n"].iloc[1]
    assert wf["last"].iloc[0] < wf["first"].iloc[1]  # folds do not overlap, in time order
    assert "Walk-forward" in (out / "summary.md").read_text()
