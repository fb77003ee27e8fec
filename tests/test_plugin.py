"""Hydra finds the sweeper by scanning the `hydra_plugins` namespace package: from the repo and installed."""

import subprocess
import sys

import pytest

from patchtst_hpo.paths import REPO_DIR
from tests.helpers import FAST, check, run_cli, sqlite_storage

DISCOVER = (
    "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper; "
    "import hydra_plugins.patchtst_hpo_sweeper.budget_optuna as m; "
    "names = [c.__module__ + '.' + c.__name__ for c in Plugins.instance().discover(Sweeper)]; "
    "print(m.__file__); print(names)"
)
NAME = "hydra_plugins.patchtst_hpo_sweeper.budget_optuna.BudgetOptunaSweeper"


def test_no_init_in_namespace_package():
    assert not (REPO_DIR / "hydra_plugins" / "__init__.py").exists()


def test_discovered_from_the_repo():
    r = run_cli(["-c", DISCOVER])
    assert r.returncode == 0, r.stderr
    assert NAME in r.stdout and str(REPO_DIR / "hydra_plugins") in r.stdout


def test_discovered_from_an_installed_wheel(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO_DIR),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "hydra_plugins" / "patchtst_hpo_sweeper" / "budget_optuna.py").exists()
    assert not (target / "hydra_plugins" / "__init__.py").exists()
    r = run_cli(["-c", DISCOVER], cwd=tmp_path, env={"PYTHONPATH": str(target)})
    assert r.returncode == 0, r.stderr
    assert NAME in r.stdout and str(target) in r.stdout.splitlines()[0]


def test_presets_are_in_the_config_store_and_build():
    import optuna
    from hydra.core.config_store import ConfigStore
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    import hydra_plugins.patchtst_hpo_sweeper.config  # noqa: F401  (registration, as Hydra's plugin scan does)
    from patchtst_hpo.hpo import pruners

    repo = ConfigStore.instance().repo["hydra"]["sweeper"]
    assert {"budget_optuna.yaml", "budget_optuna_schema.yaml"} <= set(repo)
    assert "optuna.yaml" not in repo  # no alias that could clash with an installed hydra-optuna-sweeper
    samplers = {k.removesuffix(".yaml"): v.node for k, v in repo["sampler"].items()}
    assert set(samplers) == {"tpe", "random", "cmaes", "nsgaii", "qmc", "gp", "grid", "motpe"}
    for name, node in samplers.items():
        if name == "motpe":  # upstream's name for a sampler Optuna 4 removed: selecting it says what to use
            with pytest.raises(
                InstantiationException, match="removed in Optuna 4.0; use hydra/sweeper/sampler=tpe"
            ):
                instantiate(node)
            continue
        built = instantiate(node, seed=1)
        if name == "grid":  # partial, as upstream's: the sweeper passes the grid
            built = built(search_space={"x": [1, 2]})
        assert isinstance(built, optuna.samplers.BaseSampler), name
    for name, entry in repo["pruner"].items():
        cfg = {**entry.node, **({"lower": 0.5} if name == "threshold.yaml" else {})}  # it needs a bound
        spec = pruners.spec_from_config(cfg)  # every preset passes the job side's allowlist
        assert isinstance(pruners.build(spec, name), optuna.pruners.BasePruner)


def test_app_sweeps_from_another_folder(tmp_path, data_dir):
    """Run from outside the checkout, where Hydra's plugin scan cannot see an editable install's namespace
    package: the training app registers the sweeper itself, so `-m` still runs a study."""
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "-m",
            "budget=tiny",
            *FAST,
            "trainer.max_epochs=1",
            "hydra.sweeper.n_trials=1",
            f"paths.data_dir={data_dir}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"hydra.sweeper.storage={sqlite_storage(tmp_path)}",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": ""},
    )
    check(r)
    assert "\npatchtst.tiny.h1_1pct,1,0,0," in (tmp_path / "sweep" / "summary.csv").read_text()  # 1 COMPLETE
    import optuna

    study = optuna.load_study(study_name="patchtst.tiny.h1_1pct", storage=sqlite_storage(tmp_path))
    assert study.metric_names == ["val/auc"]  # optuna-dashboard's axis label
