"""A study records what defines it; resuming under another metric, space, data or overrides is refused."""

import optuna
import optuna.distributions as od
import pytest

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo import identity


def ident(**changes):
    base = dict(
        metric="val/auc",
        direction="maximize",
        space={"optimizer.lr": od.FloatDistribution(1e-4, 1e-3, log=True)},
        arch_candidates=["a", "b"],
        data_id="sample-abc",
        fixed_overrides=["budget=tiny"],
        custom_search_space=None,
    )
    return identity.of_study(**{**base, **changes})


def study_with(attrs, direction="maximize"):
    study = optuna.create_study(direction=direction)
    for k, v in attrs.items():
        study.set_user_attr(k, v)
    return study


def test_same_identity_resumes():
    identity.check(study_with(ident()), ident())
    identity.check(study_with({}), ident())  # an older study without the attributes is not compared


@pytest.mark.parametrize(
    "change, key",
    [
        ({"metric": "val/log_loss"}, "metric"),  # same direction, other metric: the case the issue found
        ({"space": {"optimizer.lr": od.FloatDistribution(1e-5, 1e-3, log=True)}}, "search_space"),
        ({"arch_candidates": ["a"]}, "arch_candidates"),
        ({"data_id": "other"}, "data_id"),
        ({"fixed_overrides": ["budget=tiny", "trainer.max_epochs=9"]}, "fixed_overrides"),
    ],
)
def test_other_identity_is_refused_with_the_fix(change, key):
    with pytest.raises(ConfigError, match=rf"created with {key}=.*new hydra.sweeper.study_name"):
        identity.check(study_with(ident()), ident(**change))


def test_other_direction_is_refused_even_without_attributes():
    with pytest.raises(ConfigError, match="direction"):
        identity.check(study_with({}, direction="minimize"), ident())
    with pytest.raises(ConfigError, match="direction"):
        identity.check(study_with({}), ident(direction=["maximize", "minimize"]))


def _entry(sha="a" * 64, raw_sha="b" * 64, version=1, raw_version=1, pipeline=3):
    """A processed manifest entry as data/processed.py writes it (only what identifies its contents)."""
    return {
        "id": "SPX.OHLCV.daily.a25",
        "version": version,
        "sha256": sha,
        "inputs": [{"name": "SPX.OHLCV.daily", "version": raw_version, "sha256": raw_sha}],
        "pipeline_version": pipeline,
        "rows": 1000,  # not part of the identity
    }


def test_same_data_resumes_and_the_record_is_what_identifies_it():
    identity.check(study_with(ident(data=_entry())), ident(data=_entry()))
    rec = ident(data=_entry())["data"]
    assert set(rec) == {"id", "version", "sha256", "inputs", "pipeline_version"}


@pytest.mark.parametrize(
    "change, said",
    [
        (
            {"raw_sha": "c" * 64, "raw_version": 2, "version": 2},
            "input SPX.OHLCV.daily changed from v1 sha256 bbbbbbbbbbbb to v2 sha256 cccccccccccc",
        ),
        ({"pipeline": 4, "version": 2}, "feature pipeline version 3 -> 4"),
        (
            {"sha": "d" * 64},
            "SPX.OHLCV.daily.a25 changed from v1 sha256 aaaaaaaaaaaa to v1 sha256 dddddddddddd",
        ),
    ],
)
def test_changed_data_is_refused_naming_the_change_and_the_fix(change, said):
    with pytest.raises(ConfigError) as e:
        identity.check(study_with(ident(data=_entry())), ident(data=_entry(**change)))
    msg = str(e.value)
    assert said in msg and "new hydra.sweeper.study_name" in msg
    assert "the study's is SPX.OHLCV.daily.a25 v1 from SPX.OHLCV.daily v1" in msg
    assert "\n" not in msg


def test_resume_on_reingested_data_is_refused_in_one_line(tmp_path, data_dir):
    """A real sweep records the data; re-ingesting the series (a new raw version) makes the resume stop."""
    import shutil

    import pandas as pd

    from patchtst_hpo.data import ingest
    from tests.helpers import run_cli, sqlite_storage, sweep_args

    root = tmp_path / "data"
    shutil.copytree(data_dir / "raw", root / "raw")
    args = sweep_args(
        tmp_path / "sweep", root, sqlite_storage(tmp_path), "budget=tiny", "hydra.sweeper.n_trials=0"
    )
    first = run_cli(args)
    assert first.returncode == 0, first.stderr[-2000:]
    study = optuna.load_study(study_name="s.tiny.h1_1pct", storage=sqlite_storage(tmp_path))
    assert study.user_attrs["data"]["inputs"][0]["version"] == 1
    assert study.user_attrs["sampler"]["n_startup_trials"] >= 1
    raw = pd.read_parquet(root / "raw" / "SPX.OHLCV.daily" / "v1.parquet")
    raw.iloc[:-5].to_csv(tmp_path / "spx.csv", index=False)
    ingest.ingest(tmp_path / "spx.csv", "SPX.OHLCV.daily", root)
    again = run_cli(args)
    assert again.returncode == 2
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: study 's.tiny.h1_1pct' was made on other data: input SPX.OHLCV.daily changed "
    )
    assert "from v1 sha256" in last and "to v2 sha256" in last and "new hydra.sweeper.study_name" in last
