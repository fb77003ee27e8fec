"""hydra.sweeper.transfer_from (hpo/transfer.py): a study takes its training hyperparameters from a finished
study's best trial and searches only the architecture; where they came from is recorded and reported."""

from __future__ import annotations

import optuna
import pytest
import yaml

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo import transfer
from patchtst_hpo.hpo.search_space import override
from patchtst_hpo.hpo.storage import open_storage
from tests.helpers import check, run_cli, sqlite_storage

SPACE = [
    "optimizer.lr=tag(log, interval(1e-4, 1e-2))",
    "optimizer.weight_decay=tag(log, interval(1e-5, 1e-3))",
]
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "callbacks.progress.refresh_seconds=0",
    "logger=none",
    "callbacks.lr_monitor=null",
]


def sweep(tmp_path, data_dir, storage, name, *extra):
    return run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "-m",
            *FAST,
            "budget=tiny",
            "search=none",
            f"paths.data_dir={data_dir}",
            f"hydra.sweep.dir={tmp_path / name}",
            f"hydra.sweeper.storage={storage}",
            f"hydra.sweeper.study_name={name}",
            *extra,
        ]
    )


def test_transfer_fixes_the_source_best_and_searches_the_arch_only(tmp_path, data_dir):
    storage = sqlite_storage(tmp_path)
    check(sweep(tmp_path, data_dir, storage, "src", *SPACE, "hydra.sweeper.n_trials=2"))
    src = optuna.load_study(study_name="src.tiny.h1_1pct", storage=storage)
    best = src.best_trial
    want = {k: v for k, v in best.params.items() if k != "arch"}
    assert set(want) == {"optimizer.lr", "optimizer.weight_decay"}

    r = sweep(
        tmp_path,
        data_dir,
        storage,
        "dst",
        *SPACE,
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.transfer_from=src.tiny.h1_1pct",
    )
    check(r)
    dst = optuna.load_study(study_name="dst.tiny.h1_1pct", storage=storage)
    assert dst.user_attrs["transfer_from"] == {
        "study": "src.tiny.h1_1pct",
        "trial": best.number,
        "value": best.value,
        "params": want,
    }
    assert "optimizer.lr" not in dst.user_attrs["search_space"]  # searched no more
    ran = dst.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    assert ran
    for t in ran:  # every job trained with the source's values
        assert set(t.params) == {"arch"}
        job = yaml.safe_load(
            (tmp_path / "dst" / "dst.tiny.h1_1pct" / str(t.number) / ".hydra" / "overrides.yaml").read_text()
        )
        assert {override(k, v) for k, v in want.items()} <= set(job), job

    # the report's study sentence says where the hyperparameters came from
    from patchtst_hpo.analysis.aggregate import trials_table
    from patchtst_hpo.analysis.study_size import summary

    table = trials_table(open_storage(storage), ["src.tiny.h1_1pct", "dst.tiny.h1_1pct"])
    assert (
        f"hyperparameters came from src.tiny.h1_1pct trial {best.number}"
        in summary(table, "dst.tiny.h1_1pct")["sentence"]
    )
    assert "came from" not in summary(table, "src.tiny.h1_1pct")["sentence"]

    # a resume after the source found a new best is refused (the studies would not be comparable)
    src.add_trial(
        optuna.trial.create_trial(params=best.params, distributions=best.distributions, value=best.value + 1)
    )
    r = sweep(
        tmp_path,
        data_dir,
        storage,
        "dst",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.transfer_from=src.tiny.h1_1pct",
    )
    assert r.returncode == 2 and "transfer_from" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_an_unknown_source_is_one_line_exit_2(tmp_path, data_dir):
    storage = sqlite_storage(tmp_path)
    r = sweep(tmp_path, data_dir, storage, "dst", "hydra.sweeper.transfer_from=nope.tiny.h1_1pct")
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "hydra.sweeper.transfer_from=nope.tiny.h1_1pct: no such study" in err[0], err


def _source(storage: str, params: dict, attrs: dict | None = None) -> None:
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    for k, v in (attrs or {}).items():
        study.set_user_attr(k, v)
    dists = {k: optuna.distributions.CategoricalDistribution([v]) for k, v in params.items()}
    study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=0.6))


def test_stored_params_are_data_checked_before_they_become_overrides(tmp_path):
    storage = sqlite_storage(tmp_path)
    _source(storage, {"arch": "d64_l2_h4_f256", "+callbacks.x._target_": "builtins.exec"})
    with pytest.raises(ConfigError, match="instantiate key"):
        transfer.load(storage, "s", 1)


def test_source_without_a_completed_trial_or_in_memory_or_multi_objective(tmp_path):
    storage = sqlite_storage(tmp_path)
    optuna.create_study(study_name="empty", storage=storage)
    with pytest.raises(ConfigError, match="no completed trial"):
        transfer.load(storage, "empty", 1)
    with pytest.raises(ConfigError, match="in-memory"):
        transfer.load(None, "empty", 1)
    with pytest.raises(ConfigError, match="multi-objective"):
        transfer.load(storage, "empty", 2)


def test_the_parametrisation_must_match(tmp_path, cfg_factory):
    storage = sqlite_storage(tmp_path)
    src_cfg = cfg_factory("budget=tiny", "model.parametrization=mup")
    _source(storage, {"optimizer.lr": 1e-3}, {"parametrization": transfer.parametrization(src_cfg)})
    t = transfer.load(storage, "s", 1)
    t.check_parametrization(src_cfg, "dst")
    with pytest.raises(ConfigError, match="same parametrisation.*model"):
        t.check_parametrization(cfg_factory("budget=tiny"), "dst")
