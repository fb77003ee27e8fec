"""hydra.sweeper.planner: a dotted path of a Planner subclass from the user's config; anything else is refused."""

import pytest

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo import planner
from patchtst_hpo.hpo.budget_planner import BudgetPlanner


def test_null_is_the_generic_planner_and_the_project_names_its_own():
    assert planner.load(None) is planner.Planner
    assert planner.load("patchtst_hpo.hpo.budget_planner.BudgetPlanner") is BudgetPlanner
    assert not planner.Planner.grid_as_studies and BudgetPlanner.grid_as_studies


@pytest.mark.parametrize(
    "path, why",
    [
        ("os.system('true')", "dotted path"),  # not a path: nothing is evaluated
        ("BudgetPlanner", "dotted path"),
        ("patchtst_hpo.hpo.nowhere.Planner", "cannot be imported"),
        ("collections.OrderedDict", "not a Planner subclass"),
        ("patchtst_hpo.hpo.planner.load", "not a Planner subclass"),
    ],
)
def test_anything_else_is_a_config_error_with_the_fix(path, why):
    with pytest.raises(ConfigError, match=rf"hydra.sweeper.planner=.*{why}.*BudgetPlanner"):
        planner.load(path)


def test_the_project_sweeper_selects_the_budget_planner_and_the_bare_plugin_none():
    from hydra import compose, initialize_config_dir

    import hydra_plugins.patchtst_hpo_sweeper.config  # noqa: F401  (what Hydra's plugin scan imports)
    from patchtst_hpo.paths import REPO_DIR

    with initialize_config_dir(config_dir=str(REPO_DIR / "conf"), version_base="1.3"):
        project = compose("train", return_hydra_config=True)
        bare = compose("train", ["hydra/sweeper=budget_optuna"], return_hydra_config=True)
    assert project.hydra.sweeper.planner == "patchtst_hpo.hpo.budget_planner.BudgetPlanner"
    assert bare.hydra.sweeper.planner is None
