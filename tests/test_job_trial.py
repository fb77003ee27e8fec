"""A job's pruning (hpo/job_trial.py) decides as Optuna's own pruner does on the same study, on SQLite and
journal storages, for every allowlisted pruner, both directions, with NaN/inf, missing steps and every state."""

from __future__ import annotations

import math
import random

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from patchtst_hpo.bench import studies
from patchtst_hpo.hpo import pruners
from patchtst_hpo.hpo.job_trial import JobTrial, shared_storage, step_only

SPECS = [
    {"name": "MedianPruner", "kwargs": {}},
    {"name": "MedianPruner", "kwargs": {"n_startup_trials": 3, "n_warmup_steps": 2, "interval_steps": 2}},
    {"name": "PercentilePruner", "kwargs": {"percentile": 25.0, "n_min_trials": 4}},
    {"name": "PercentilePruner", "kwargs": {"percentile": 75.0, "n_startup_trials": 0}},
    {"name": "ThresholdPruner", "kwargs": {"lower": 0.55, "upper": 0.95}},
    {"name": "NopPruner", "kwargs": {}},
    {
        "name": "PatientPruner",
        "kwargs": {"wrapped_pruner": {"name": "MedianPruner", "kwargs": {}}, "patience": 1},
    },
    {"name": "SuccessiveHalvingPruner", "kwargs": {"min_resource": 1, "reduction_factor": 2}},
    {"name": "HyperbandPruner", "kwargs": {"min_resource": 1, "max_resource": 8, "reduction_factor": 2}},
]
CURVES = {  # the job's own curves: doing well, doing badly, a NaN in the middle, a missing step
    "good": [0.7, 0.75, 0.8, 0.82, 0.85, 0.86, 0.87, 0.9],
    "bad": [0.5, 0.52, 0.5, 0.51, 0.53, 0.5, 0.52, 0.5],
    "nan": [0.6, math.nan, 0.7, 0.71, 0.6, 0.8, 0.8, 0.8],
    "gap": {0: 0.65, 2: 0.66, 3: 0.6, 6: 0.7},
}


def _trials(seed: int) -> list:
    """COMPLETE trials of 8 steps (some shorter, some with NaN/inf), PRUNED, FAIL and a RUNNING one."""
    rng = random.Random(seed)
    out = []
    for i in range(24):
        n = 8 if i % 5 else rng.randint(2, 7)
        iv = {s: 0.5 + 0.4 * rng.random() for s in range(n)}
        if i % 7 == 3:
            iv[1] = math.nan
        if i % 11 == 4:
            iv[2] = math.inf
        state = (TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)[i % 4]
        value = iv[n - 1] if state == TrialState.COMPLETE and math.isfinite(iv[n - 1]) else None
        if state == TrialState.COMPLETE and value is None:
            value = 0.5
        out.append(create_trial(state=state, value=value, intermediate_values=iv))
    return out


@pytest.fixture
def url_for(kind, tmp_path):
    def make(name: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        return f"journal:{tmp_path / name}.log"

    return make


def _twin(url: str, name: str, spec: dict) -> optuna.Study:
    """Optuna's own path on a twin storage: `Trial.should_prune()` of a study loaded as Optuna loads it."""
    study = optuna.load_study(study_name=name, storage=shared_storage(url))
    study.pruner = pruners.build(spec, "test")
    return study


@pytest.mark.parametrize(
    ("kind", "direction"),
    [
        ("journal", "maximize"),
        ("journal", "minimize"),
        ("sqlite", "maximize"),  # SQLite commits are slow on a shared disk: the step-only pruners and SH
        pytest.param("sqlite", "minimize", marks=pytest.mark.slow),
    ],
)
def test_decisions_equal_optunas_own(url_for, kind, direction):
    """Ours on one storage, Optuna's `Trial.should_prune` on an identical twin (successive halving and
    Hyperband write rung attributes as they decide, so each side needs its own copy; same study name, as
    Hyperband's brackets hash it)."""
    decisions = {}
    for k, spec in enumerate(SPECS):
        if kind == "sqlite" and direction == "maximize" and spec["name"] in ("HyperbandPruner", "NopPruner"):
            continue  # the same code path as successive halving / nothing to compare (journal has them)
        urls = url_for(f"a{k}{direction}"), url_for(f"b{k}{direction}")
        for url in urls:
            studies.build(url, "s", _trials(k), {"pruner": spec}, direction)
            optuna.load_study(study_name="s", storage=shared_storage(url)).ask().report(
                0.8, 0
            )  # another job's
        for label, curve in CURVES.items():
            twin = _twin(urls[1], "s", spec)
            theirs_trial = twin.ask()
            number = optuna.load_study(study_name="s", storage=shared_storage(urls[0])).ask().number
            assert number == theirs_trial.number
            job = JobTrial(urls[0], "s", number)
            steps = curve.items() if isinstance(curve, dict) else enumerate(curve)
            for step, v in steps:
                job.report(v, step)
                theirs_trial.report(v, step)
                ours, theirs = bool(job.should_prune()), bool(theirs_trial.should_prune())
                assert ours == theirs, (spec, direction, label, step)
                decisions.setdefault(spec["name"], set()).add(ours)
    for name in ("MedianPruner", "PercentilePruner", "ThresholdPruner", "SuccessiveHalvingPruner"):
        assert decisions[name] == {True, False}, name  # each prunes some curves and keeps others


def test_step_only_pruners_never_read_the_whole_study(tmp_path, monkeypatch):
    """Median on SQLite: the decision reads one step's values, never `get_all_trials` (what made it O(N))."""
    url = f"sqlite:///{tmp_path / 'o.db'}"
    studies.build(url, "s", studies.finished_trials(50, 8), {"pruner": SPECS[0]})
    number = optuna.load_study(study_name="s", storage=url).ask().number
    job = JobTrial(url, "s", number)
    assert step_only(SPECS[0]) and not step_only(SPECS[7])

    def refuse(*a, **k):
        raise AssertionError("the job read every trial of the study")

    monkeypatch.setattr(type(job.storage), "get_all_trials", refuse)
    pruned = []
    for step in range(8):
        job.report(0.3, step)  # worse than every finished trial
        pruned.append(job.should_prune())
    assert pruned[-1] is True
