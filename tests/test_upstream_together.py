"""hydra-optuna-sweeper and budget_optuna in one environment: each app gets its own sweeper and sampler.

Upstream is installed as docs/hpo.md says (`pip install --no-deps`: its optuna<3 pin would downgrade ours)
into a folder put first on PYTHONPATH, so Hydra's plugin scan imports upstream's registrations before ours.
Both register `hydra/sweeper/sampler/{tpe,random,cmaes,nsgaii,grid,motpe}`; whichever wins, an upstream app
must get upstream's sampler, and this project its own `patchtst_tpe`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from patchtst_hpo.paths import CONF_DIR, REPO_DIR
from tests.helpers import run_cli

APPS = REPO_DIR / "tests" / "apps"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    target = tmp_path_factory.mktemp("upstream")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            "hydra-optuna-sweeper",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0:  # no index reachable: nothing to compare with
        pytest.skip(f"cannot install hydra-optuna-sweeper: {r.stderr.strip()[-300:]}")
    return {"PYTHONPATH": str(target)}


PROBE = r"""
import json, sys
import optuna
from hydra import compose, initialize_config_dir
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.utils import instantiate
from omegaconf import OmegaConf
import hydra_plugins.hydra_optuna_sweeper.config as up
import patchtst_hpo.config  # the project's schemas and arch group, as its apps register them

apps, conf = sys.argv[1], sys.argv[2]

def sampler(conf_dir, name, *overrides):
    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = compose(name, list(overrides), return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.sweeper.sampler)

def tpe(node):  # what a TPESampler does (its private attributes are the only record of its settings)
    s = instantiate(node)
    p = s._parzen_estimator_parameters
    return [s._n_startup_trials, s._n_ei_candidates, s._multivariate, s._constant_liar,
            p.prior_weight, p.consider_magic_clip, p.consider_endpoints]

names = {"random": up.RandomSamplerConfig, "cmaes": up.CmaEsSamplerConfig, "nsgaii": up.NSGAIISamplerConfig,
         "grid": up.GridSamplerConfig}
out = {"sweepers": sorted(p.__name__ for p in Plugins.instance().discover(Sweeper))}
for sweeper in ("optuna", "budget_optuna"):
    app = apps  # a bare app: config.yaml holds only its own keys
    out[sweeper] = {n: sampler(app, "config", f"hydra/sweeper={sweeper}", f"hydra/sweeper/sampler={n}")
                    for n in names}
    out[sweeper + "_tpe"] = tpe(sampler(app, "config", f"hydra/sweeper={sweeper}", "hydra/sweeper/sampler=tpe"))
out["upstream"] = {n: OmegaConf.to_container(OmegaConf.structured(c)) for n, c in names.items()}
out["upstream_tpe"] = tpe(OmegaConf.structured(up.TPESamplerConfig))
out["project"] = sampler(conf, "train")
print(json.dumps(out))
"""


def test_each_app_gets_its_own_sampler(upstream, tmp_path):
    (tmp_path / "config.yaml").write_text("x: 1\n")
    r = run_cli(["-c", PROBE, str(tmp_path), str(CONF_DIR)], cwd=tmp_path, env=upstream)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.splitlines()[-1])
    assert {"OptunaSweeper", "BudgetOptunaSweeper"} <= set(got["sweepers"])
    for name in got["upstream"]:  # field for field, value for value, under either sweeper
        assert got["optuna"][name] == got["upstream"][name] == got["budget_optuna"][name], name
    assert got["optuna_tpe"] == got["budget_optuna_tpe"] == got["upstream_tpe"]
    assert got["upstream_tpe"][:3] == [10, 24, False]  # upstream's TPE: 10 start-up trials, independent
    project = got["project"]
    assert (project["n_startup_trials"], project["multivariate"], project["constant_liar"]) == (8, True, True)


@pytest.mark.slow
def test_both_sweepers_run_in_one_environment(upstream, tmp_path):
    """A real sweep with each: upstream's plugin (on this project's Optuna) and ours, same app, same env."""
    for sweeper in ("optuna", "budget_optuna"):
        out = tmp_path / sweeper
        r = run_cli([str(APPS / "sphere.py"), "-m", f"hydra/sweeper={sweeper}", "hydra.sweeper.n_trials=3",
                     f"hydra.sweep.dir={out}"], cwd=tmp_path, env=upstream)  # fmt: skip
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        res = yaml.safe_load((out / "optimization_results.yaml").read_text())
        assert res["name"] == "optuna" and set(res["best_params"]) == {"x", "y"}
        assert ("sweeper" in res) == (sweeper == "budget_optuna")  # ours adds its fields beside upstream's
