"""A lightning-hydra-template user's habits: `hparams_search=...`, `optimized_metric`, `tags`, an upstream
`hparams_search` file verbatim, and `optuna` swapped for `budget_optuna`: each works or says what to do."""

from __future__ import annotations

import pytest

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.validation import validate
from tests.helpers import FAST, run_cli

LHT_FILE = """# @package _global_
defaults:
  - override /hydra/sweeper: optuna

optimized_metric: "val/auc"

hydra:
  mode: "MULTIRUN"
  sweeper:
    _target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper
    storage: null
    n_trials: 20
    sampler:
      _target_: optuna.samplers.TPESampler
      seed: 1234
      n_startup_trials: 10
    params:
      optimizer.lr: interval(0.0001, 0.1)
"""


def test_verbatim_lht_file_is_refused_in_one_line_naming_our_sweeper(tmp_path):
    (tmp_path / "hparams_search").mkdir()
    (tmp_path / "hparams_search" / "lht_optuna.yaml").write_text(LHT_FILE)
    r = run_cli(
        ["-m", "patchtst_hpo.train", f"hydra.searchpath=[file://{tmp_path}]", "hparams_search=lht_optuna"]
    )
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(
        "error: hydra/sweeper=optuna: no such option in conf/hydra/sweeper/; choose one of:"
    )
    assert "hydra/sweeper=patchtst" in line and "_schema" not in line and "hydra=sweeper" not in line


@pytest.mark.parametrize(
    "override, fix",
    [
        ("+optimized_metric=val/auc", "objective.metric=val/auc"),
        ("+tags=[dev]", "hydra.sweeper.study_name"),
    ],
)
def test_template_keys_are_refused_with_the_fix(cfg_factory, override, fix):
    with pytest.raises(ConfigError, match="lightning-hydra-template's key, not read here") as e:
        validate(cfg_factory(override))
    assert fix in str(e.value)


def test_hparams_search_entry_is_our_sweep():
    r = run_cli(["-m", "patchtst_hpo.train", "hparams_search=patchtst", "--cfg", "hydra"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "\n  mode: MULTIRUN\n" in r.stdout
    assert "planner: patchtst_hpo.hpo.budget_planner.BudgetPlanner" in r.stdout
    assert "storage: sqlite:///" in r.stdout


@pytest.mark.slow
def test_bare_budget_optuna_in_this_app_says_what_it_lacks(tmp_path, data_dir):
    r = run_cli(["-m", "patchtst_hpo.train", "-m", "hydra/sweeper=budget_optuna", "budget=tiny", *FAST,
                 "trainer.max_epochs=1", "hydra.sweeper.n_trials=1", f"paths.data_dir={data_dir}",
                 f"hydra.sweep.dir={tmp_path / 'sweep'}"])  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "hydra/sweeper=budget_optuna is the plugin's bare defaults: storage null (in memory" in r.stdout
    assert "this project's defaults are hydra/sweeper=patchtst" in r.stdout
