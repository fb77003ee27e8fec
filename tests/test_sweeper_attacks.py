"""The storage is data, not code: a poisoned study can make nothing be instantiated or run (issue 10 item 5)."""

from __future__ import annotations

import optuna
import pytest

from patchtst_hpo.analysis import confirm
from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo import pruners
from patchtst_hpo.trust import stored_overrides
from tests.helpers import FAST, run_cli, sqlite_storage


def poisoned_study(tmp_path, pruner) -> str:
    url = sqlite_storage(tmp_path)
    study = optuna.create_study(study_name="evil", storage=url)
    study.set_user_attr("pruner", pruner)
    study.ask()
    return url


def test_job_refuses_a_pruner_target_and_runs_nothing(tmp_path, data_dir):
    marker = tmp_path / "pwned"
    url = poisoned_study(tmp_path, {"_target_": "os.system", "command": f"touch {marker}"})
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            *FAST,
            "budget=tiny",
            f"paths.data_dir={data_dir}",
            f"paths.output_dir={tmp_path / 'run'}",
            f"trial.storage={url}",
            "trial.study=evil",
            "trial.number=0",
        ]
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2, out[-2000:]
    assert "study 'evil' user attribute 'pruner'" in out and "nothing read from a storage" in out
    assert not marker.exists() and not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"name": "os.system", "kwargs": {}}, "not allowed"),
        ({"name": "builtins.exec", "kwargs": {"source": "1"}}, "not allowed"),
        ({"name": "MedianPruner", "kwargs": {"n_startup_trials": {"_target_": "os.system"}}}, "plain"),
        ({"name": "MedianPruner", "kwargs": {"evil": 1}}, "no argument"),
        (
            {"name": "PatientPruner", "kwargs": {"wrapped_pruner": {"_target_": "os.system"}, "patience": 1}},
            "stored as",
        ),
        ({"_target_": "optuna.pruners.MedianPruner"}, "stored as"),
    ],
)
def test_pruner_specs_outside_the_allowlist_are_refused(spec, words):
    with pytest.raises(ConfigError, match=words):
        pruners.build(spec, "study 'evil' user attribute 'pruner'")


def test_allowlisted_pruners_rebuild():
    p = pruners.build({"name": "ThresholdPruner", "kwargs": {"lower": 0.5, "n_warmup_steps": 1}}, "x")
    assert isinstance(p, optuna.pruners.ThresholdPruner)
    spec = pruners.spec_from_config(
        {
            "_target_": "optuna.pruners.PatientPruner",
            "patience": 2,
            "wrapped_pruner": {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 3},
        }
    )
    assert spec["kwargs"]["wrapped_pruner"] == {"name": "MedianPruner", "kwargs": {"n_startup_trials": 3}}
    assert isinstance(pruners.build(spec, "x"), optuna.pruners.PatientPruner)
    with pytest.raises(ConfigError, match="not one of the pruners"):
        pruners.spec_from_config({"_target_": "mypkg.MyPruner"})


@pytest.mark.parametrize(
    "override",
    [
        "+callbacks.x._target_=builtins.exec",
        "++callbacks.x._target_=builtins.exec",
        "callbacks.early_stopping._target_=builtins.exec",
        "+callbacks.x={_target_: builtins.exec, source: 'import os'}",
        "model._partial_=true",
        "optimizer._args_=[1]",
        "data.ohlcv=${oc.env:HOME}",
        "data.ohlcv='${oc.env:HOME}'",
        "hydra.job.chdir=true",
        "hydra/launcher=joblib",
        "budget=tiny,2M",
        "optimizer.lr=interval(0,1)",
        "not an override ((",
    ],
)
def test_stored_overrides_that_the_sweeper_never_writes_are_refused(override):
    with pytest.raises(ConfigError, match="study 'evil'"):
        stored_overrides(["budget=tiny", override], "study 'evil'")


def test_sweeper_overrides_pass():
    ok = [
        "budget=tiny",
        "task=h1_1pct",
        "+data.foo=1",
        "~callbacks.early_stopping",
        "data.batch_size=64",
        "data.name='a b'",
    ]
    assert stored_overrides(ok, "s") == ok


def test_report_path_refuses_poisoned_fixed_overrides_and_params():
    with pytest.raises(ConfigError, match="instantiate key"):
        confirm.trial_overrides(["budget=tiny", "+callbacks.x._target_=builtins.exec"], {}, "study 'evil'")
    with pytest.raises(ConfigError, match="instantiate key"):  # trial params come from the storage too
        confirm.trial_overrides(["budget=tiny"], {"+callbacks.x._target_": "builtins.exec"}, "study 'evil'")
    assert confirm.trial_overrides(["budget=tiny"], {"arch": "d64_l2_h4_f256"}) == [
        "budget=tiny",
        "arch=d64_l2_h4_f256",
    ]
