"""budget_optuna as a drop-in for hydra-optuna-sweeper 1.4: tiny apps in tests/apps (no conf/ of ours, no torch).

Mirrors the behaviours upstream's own suite covers (TPE on a sphere, multi-objective front, custom search
space, failure rates, grid sampler, seeds) plus ours (resume identity, null/numeric study names).
"""

from __future__ import annotations

import optuna
import pytest
import yaml

from patchtst_hpo.paths import REPO_DIR
from tests.helpers import run_cli

APPS = REPO_DIR / "tests" / "apps"
ENV = {"PYTHONPATH": str(REPO_DIR)}


def run_app(app: str, tmp_path, *args: str):
    flags = [a for a in args if a.startswith("--")]  # argparse wants them before the overrides
    overrides = [a for a in args if not a.startswith("--")]
    cmd = [str(APPS / app), *flags, "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]
    return run_cli(cmd, env=ENV, timeout=300)


def ok(r):
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def results(tmp_path) -> dict:
    return yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())


def launched(r) -> list[str]:
    """The overrides of each launched job, from Hydra's `#N : ...` log lines."""
    return [line.split(" : ", 1)[1] for line in r.stdout.splitlines() if "] \t#" in line]


def test_tpe_sphere_finds_the_optimum(tmp_path):
    r = ok(run_app("sphere.py", tmp_path, "hydra.sweeper.sampler.seed=123"))
    res = results(tmp_path)
    assert res["trials"]["COMPLETE"] == 20 and len(launched(r)) == 20
    # upstream's bound: the 95th percentile of 1000 seeds' best value (their test_optuna_example)
    assert res["best_value"] <= 2.27
    assert res["best_value"] == res["best_params"]["x"] ** 2 + res["best_params"]["y"] ** 2
    assert "in memory" in r.stdout + r.stderr  # storage: null is said once
    assert (r.stdout + r.stderr).count("storage is null") == 1


def test_seeds_reproduce_and_differ(tmp_path):
    runs = {}
    for i, seed in enumerate((1, 1, 2)):
        r = ok(
            run_app(
                "sphere.py",
                tmp_path / str(i),
                "hydra/sweeper/sampler=random",
                "hydra.sweeper.n_trials=4",
                f"hydra.sweeper.sampler.seed={seed}",
            )
        )
        runs[i] = launched(r)
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_multi_objective_front(tmp_path):
    ok(
        run_app(
            "multi_objective.py", tmp_path, "hydra/sweeper/sampler=random", "x=range(0, 5)", "y=range(0, 3)"
        )
    )
    sols = results(tmp_path)["solutions"]
    assert sols
    for a in sols:
        x, y = a["params"]["x"], a["params"]["y"]
        assert x % 1 == 0 and y % 1 == 0
        assert a["values"] == pytest.approx([4 * x**2 + 4 * y**2, (x - 5) ** 2 + (y - 5) ** 2])
        for b in sols:  # no solution dominates another
            va, vb = a["values"], b["values"]
            assert not (
                all(p <= q for p, q in zip(vb, va, strict=True))
                and any(p < q for p, q in zip(vb, va, strict=True))
            )


def test_custom_search_space(tmp_path):
    ok(run_app("custom_space.py", tmp_path, "hydra/sweeper/sampler=random", "max_z_difference_from_x=0.3"))
    best = results(tmp_path)["best_params"]
    assert abs(best["x"] - best["z"]) <= 0.3 and 0 <= best["+w"] <= 1


@pytest.mark.parametrize("rate", [0.5, 1.0])
def test_failure_rate(tmp_path, rate):
    r = run_app(
        "sphere.py",
        tmp_path,
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=6",
        "hydra/sweeper/sampler=random",
        f"hydra.sweeper.max_failure_rate={rate}",
        "error=true",
    )
    if rate < 1.0:
        assert r.returncode != 0 and "RuntimeError: cfg.error is True" in r.stderr
        assert len(launched(r)) == 2  # the first batch failed the same way: stop
    else:  # 1.0 tolerates every failure: n_trials attempts, then a normal exit
        assert r.returncode == 0 and "cfg.error is True" not in r.stderr
        assert results(tmp_path)["trials"]["FAIL"] == 6


@pytest.mark.parametrize("n", [20, 3])
def test_grid_sampler(tmp_path, n):
    r = ok(run_app("sphere.py", tmp_path, "--config-name=grid", f"hydra.sweeper.n_trials={n}"))
    jobs = launched(r)
    assert len(jobs) == min(n, 8) == len(set(jobs))  # x in {-1,1}, y in {-1,0}, z in {foo,bar}: 8 cells
    res = results(tmp_path)
    if n >= 8:
        assert res["best_value"] == 1 and abs(res["best_params"]["x"]) == 1 and res["best_params"]["y"] == 0


def test_grid_sampler_refuses_continuous_space(tmp_path):
    r = run_app("sphere.py", tmp_path, "--config-name=grid", "x=interval(-1, 1)")
    assert r.returncode != 0 and "grid sampler needs a discrete search space" in r.stderr


def test_resume_tops_up_and_refuses_another_space(tmp_path):
    db = f"sqlite:///{tmp_path / 'o.db'}"
    common = [f"hydra.sweeper.storage={db}", "hydra.sweeper.study_name=7", "hydra/sweeper/sampler=random"]
    ok(run_app("sphere.py", tmp_path, *common, "hydra.sweeper.n_trials=3"))
    ok(run_app("sphere.py", tmp_path, *common, "hydra.sweeper.n_trials=5"))
    study = optuna.load_study(study_name="7", storage=db)  # a numeric study_name is a name
    assert len(study.trials) == 5
    assert study.metric_names == ["sphere"]  # no hydra.sweeper.metric: the task's name labels the axis
    r = run_app("sphere.py", tmp_path, *common, "hydra.sweeper.n_trials=6", "x=choice(0,1)")
    assert r.returncode != 0
    assert "search_space" in r.stderr and "new hydra.sweeper.study_name" in r.stderr
    r = run_app(
        "sphere.py", tmp_path, *common, "hydra.sweeper.n_trials=6", "hydra.sweeper.direction=maximize"
    )
    assert r.returncode != 0 and "direction" in r.stderr
    assert len(optuna.load_study(study_name="7", storage=db).trials) == 5  # nothing ran


def test_null_study_name_gets_optuna_default(tmp_path):
    db = f"sqlite:///{tmp_path / 'o.db'}"
    ok(
        run_app(
            "sphere.py",
            tmp_path,
            f"hydra.sweeper.storage={db}",
            "hydra.sweeper.study_name=null",
            "hydra.sweeper.n_trials=2",
        )
    )
    (name,) = optuna.get_all_study_names(db)
    assert name.startswith("no-name-")
