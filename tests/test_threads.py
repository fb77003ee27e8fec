"""trainer.threads: the policy on known inputs, and what trials under each launcher used (metrics.json)."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.threads import concurrent_trials, resolve, usable_cores
from patchtst_hpo.train import train
from tests.helpers import FAST, check, run_cli, sweep_args


@pytest.mark.parametrize(
    ("setting", "cores", "concurrent", "ranks", "load", "want"),
    [
        ("auto", 16, 1, 1, 0.0, 16),  # an idle machine, one trial at a time: every core
        ("auto", 16, 4, 1, 4.0, 4),  # 4 joblib trials: their own load is not "other work"
        ("auto", 8, 1, 1, 5.0, 4),  # 4 cores kept busy by something else: the 4 left
        ("auto", 2, 1, 1, 12.0, 1),  # this shared 2-core host under 8 agents: 1, never 0
        ("auto", 8, 2, 2, 0.0, 2),  # 2 trials x 2 CPU ranks
        ("auto", 3, 4, 1, 0.0, 1),  # more trials than cores
        (3, 2, 1, 1, 12.0, 3),  # a number is taken as given
        (None, 2, 1, 1, 0.0, None),  # null: torch's default
    ],
)
def test_policy(setting, cores, concurrent, ranks, load, want):
    assert resolve(setting, cores, concurrent, ranks, load) == want


@pytest.mark.parametrize("bad", [0, -2, "two", True, 1.5])
def test_bad_setting_names_the_key(bad):
    with pytest.raises(ConfigError, match=r"trainer\.threads="):
        resolve(bad, 2, 1, 1, 0.0)


def test_concurrent_trials_per_launcher():
    def hydra(target: str, n_jobs=None, batch=None):
        launcher = {"_target_": target} | ({"n_jobs": n_jobs} if n_jobs is not None else {})
        return OmegaConf.create({"launcher": launcher, "sweeper": {"n_jobs": batch} if batch else {}})

    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert concurrent_trials(None, 8) == 1  # a single run
    assert concurrent_trials(hydra(basic, batch=4), 8) == 1  # one job after another
    assert concurrent_trials(hydra(joblib, -1, 2), 8) == 2  # the sweeper's batch bounds joblib's pool
    assert concurrent_trials(hydra(joblib, 3, 8), 8) == 3
    assert concurrent_trials(hydra(joblib, -2), 8) == 7  # joblib: all cores but one
    assert concurrent_trials(hydra(slurm, batch=8), 8) == 1  # each job in its own allocation


def test_single_run_sets_and_records_its_threads(cfg_factory, data_dir, tmp_path):
    before = torch.get_num_threads()
    try:
        cfg = cfg_factory(
            "budget=tiny",
            *FAST,
            "trainer.threads=1",
            f"paths.data_dir={data_dir}",
            f"paths.output_dir={tmp_path}",
        )
        res = train(cfg)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["threads"] == res["threads"] == 1 and saved["threads_setting"] == 1


@pytest.mark.slow
def test_joblib_trials_share_the_cores(tmp_path, data_dir):
    """Two joblib workers at once: each trial's auto threads count 2 concurrent trials, in its own process."""
    r = run_cli(
        sweep_args(
            tmp_path,
            data_dir,
            f"sqlite:///{tmp_path / 'o.db'}",
            "budget=tiny",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.n_trials=2",
        )
    )
    check(r)
    metrics = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("s.tiny.h1_1pct/*/metrics.json"))]
    assert len(metrics) == 2
    for m in metrics:
        inputs = m["threads_inputs"]
        assert m["threads_setting"] == "auto" and inputs["concurrent_trials"] == 2
        assert m["threads"] == resolve("auto", usable_cores(), 2, 1, inputs["load_1min"])
