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


def run_report(tmp, out, *extra):
    return run_cli(
        [
            "-m",
            "patchtst_hpo.report",
            f"storage={storage(tmp)}",
            "study_prefix=rep",
            "top_k=1",
            "seeds=[1,2]",
            "n_boot=200",
            f"hydra.run.dir={out}",
            *extra,
        ]
    )


def test_report_files_confirmation_baselines_and_resume(two_budget_study, tmp_path):
    out = tmp_path / "report"
    check(run_report(two_budget_study, out))
    for f in (
        "summary.md",
        "scaling.png",
        "architectures.png",
        "trials.parquet",
        "trials.csv",
        "report.json",
    ):
        assert (out / f).stat().st_size > 0, f
    n_trials = sum(
        len(optuna.load_study(study_name=n, storage=storage(two_budget_study)).trials)
        for n in ("rep.tiny.h1_1pct", "rep.2M.h1_1pct")
    )
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == n_trials and set(trials["budget"]) == {"tiny", "2M"}
    runs = pd.read_parquet(out / "confirmation_runs.parquet")
    assert len(runs) == 2 * 2 and sorted(runs["seed"]) == [1, 1, 2, 2]  # S seeds x top-1 x 2 budgets
    confirmed = pd.read_parquet(out / "confirmed.parquet")
    rep = json.loads((out / "report.json").read_text())
    for b in rep["baselines"].values():  # same split: same test rows and positive rate as the model
        assert int(b["n"]) == confirmed["test_samples"].iloc[0]
        assert b["positive_rate"] == pytest.approx(confirmed["test_positive_rate"].iloc[0])
    metrics_files = sorted((out / "confirm").rglob("metrics.json"))
    assert len(metrics_files) == 4
    for m in metrics_files:
        mj = json.loads(m.read_text())
        assert mj["data"]["splits"]["test"]["samples"] == confirmed["test_samples"].iloc[0]
    summary = (out / "summary.md").read_text()
    assert "| tiny |" in summary and "| 2M |" in summary and "python -m patchtst_hpo.train" in summary
    # resumable: a re-run trains nothing that is done; a removed seed is the only one redone
    stamps = {m: m.stat().st_mtime_ns for m in metrics_files}
    removed = metrics_files[0]
    removed.unlink()
    check(run_report(two_budget_study, out))
    for m, t in stamps.items():
        assert m.exists() and (m == removed or m.stat().st_mtime_ns == t)


def test_scaling_fit_recovers_known_parameters():
    rng = np.random.default_rng(1)
    n = np.repeat([1e5, 2e6, 2e7, 2e8, 2e9], 3)
    y = 0.30 + 4.0 * n**-0.25 + rng.normal(0, 0.001, len(n))
    f = fit(n, y, n_boot=200)
    assert f.alpha == pytest.approx(0.25, rel=0.10)
    assert f.scaling_detected and f.alpha_ci[0] > 0 and "scaling detected" in f.verdict()


def test_scaling_fit_flat_data_ci_contains_zero():
    rng = np.random.default_rng(2)
    n = np.repeat([1e5, 2e6, 2e7, 2e8], 3)
    y = 0.35 + rng.normal(0, 0.01, len(n))
    f = fit(n, y, n_boot=200)
    assert f.alpha_ci[0] <= 0 <= f.alpha_ci[1]
    assert not f.scaling_detected and "no scaling detected" in f.verdict()


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
    assert r.returncode == 2 and "abc.tiny.h1_1pct" in r.stdout + r.stderr
