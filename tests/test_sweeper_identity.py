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
