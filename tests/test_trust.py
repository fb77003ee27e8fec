"""The trust boundary (patchtst_hpo/trust.py): one test per rule, then a hostile-study corpus run through the
real report on real SQLite studies: every case refused with one line, nothing written outside its output."""

from __future__ import annotations

import os
import time

import optuna
import pytest

from patchtst_hpo import trust
from patchtst_hpo.config import compose
from patchtst_hpo.errors import ConfigError, DataError, PatchTSTHPOError
from tests.helpers import run_cli, snapshot
from tests.helpers import sqlite_storage as storage

# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["SPY.OHLCV.daily", "a", "x_1-2.b", "9lives", "A" * trust.NAME_MAX])
def test_safe_names_pass(name):
    assert trust.check_name(name, "name") == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "is empty"),
        ("..", "not a safe name"),
        (".hidden", "not a safe name"),
        ("../../x", "not a safe name"),
        ("/abs/path", "not a safe name"),
        ("a/b", "not a safe name"),
        ("-rf", "not a safe name"),
        ("~root", "not a safe name"),
        ("${oc.env:HOME}", "not a safe name"),
        ("a b", "not a safe name"),
        ("a\x00b", "not a safe name"),
        ("caf\u00e9", "not a safe name"),  # non-ASCII letters: homoglyphs
        ("a\u202eb", "not a safe name"),  # right-to-left override
        ("a\nb", "not a safe name"),
        ("x=1", "not a safe name"),  # '=' only in study names
        ("A" * (trust.NAME_MAX + 1), "characters long"),
        ("manifest.json", "registry file"),
        ("manifest.lock", "registry file"),
        ("v1.PARQUET", "registry file"),
        (3, "not a string"),
        (None, "not a string"),
    ],
)
def test_unsafe_names_are_refused_with_one_line(name, why):
    with pytest.raises(ConfigError) as e:
        trust.check_name(name, "--name")
    msg = str(e.value)
    assert msg.startswith("--name ") and why in msg and "\n" not in msg, msg


def test_study_names_may_hold_grid_cells_and_the_error_type_is_the_callers():
    assert trust.check_name("rep.tiny.h1_1pct.data.train_fraction=0.5", "study", study=True)
    with pytest.raises(ConfigError):
        trust.check_name("rep/../x", "study", study=True)
    with pytest.raises(DataError):
        trust.check_name("..", "--name", error=DataError)


# ---------------------------------------------------------------- stored overrides: one rule each

REFUSED = [
    ("hydra.run.dir=/tmp/x", "a Hydra setting"),
    ("hydra/launcher=joblib", "a Hydra setting"),
    ("+optimizer@hydra.callbacks.evil=adamw", "package override"),
    ("data@x=sample", "package override"),
    ("+callbacks.x._target_=builtins.exec", "instantiate key"),
    ("optimizer._partial_=false", "instantiate key"),
    ("paths.root_dir=/tmp/x", "a path or a job setting"),
    ("paths.data_dir=/tmp/x", "a path or a job setting"),
    ("ckpt_path=/tmp/x.ckpt", "a path or a job setting"),
    ("data.root=/tmp/x", "a path or a job setting"),
    ("trial.storage=sqlite:////tmp/x.db", "a path or a job setting"),
    ("callbacks.model_checkpoint.dirpath=/tmp/x", "text for a trainer or callback setting"),
    ("callbacks.model_checkpoint.filename=x", "text for a trainer or callback setting"),
    ("trainer.default_root_dir=/tmp/x", "text for a trainer or callback setting"),
    ("callbacks.x.y.z=1", "outside the allowlist"),
    ("logger.save_dir=/tmp/x", "outside the allowlist"),
    ("+evil=1", "outside the allowlist"),
    ("callbacks.model_checkpoint={monitor: x}", "replaced callback"),
    ("data.ohlcv=${oc.env:PGPASSWORD}", "'$'"),
    ("data.ohlcv='${data_home:/tmp/x}'", "'$'"),
    ("data.ohlcv='a\\\\b'", "'$' or"),
    ("data=../../x", "not a safe name"),
    ("experiment=[quick,../x]", "not a safe name"),
    ("trainer.max_epochs=1000000000", "outside [-1, 10000]"),
    ("data.batch_size=1e300", "outside"),
    ("optimizer.lr=nan", "the number nan"),
    ("seed=inf", "the number inf"),
    ("optimizer.lr=1e200", "larger than"),
    ("data.name=" + "x" * 300, "characters"),
    ("optimizer.betas=[[0.9]]", "nested"),
    ("budget=tiny,2M", "a sweep"),
    ("optimizer.lr=interval(0,1)", "a sweep"),
    ("budget=tiny\x00", "control characters"),
    ("data.ohlcv=a\u202eb", "control characters"),
    ("not an override ((", "does not parse"),
    (7, "not a string"),
]


@pytest.mark.parametrize("line, why", REFUSED, ids=[ascii(r[0])[:40] for r in REFUSED])
def test_stored_override_rule(line, why):
    with pytest.raises(trust.UntrustedError) as e:
        trust.stored_overrides(["budget=tiny", line], "study 'evil'")
    msg = str(e.value)
    assert msg.startswith("study 'evil': ") and why in msg and "\n" not in msg, msg


def test_allowed_overrides_are_re_rendered_with_strings_quoted():
    got = trust.stored_overrides(
        [
            "budget=tiny",
            "experiment=[quick]",
            "data.ohlcv=SPX.OHLCV.daily",
            "optimizer.lr=1e-3",
            "optimizer.betas=[0.9,0.95]",
            "~callbacks.early_stopping",
            "callbacks.model_checkpoint=null",
            "+data.extra=true",
            "trainer.max_epochs=3",
        ],
        "s",
    )
    assert got == [
        "budget=tiny",
        "experiment=[quick]",
        "data.ohlcv='SPX.OHLCV.daily'",
        "optimizer.lr=0.001",
        "optimizer.betas=[0.9,0.95]",
        "~callbacks.early_stopping",
        "callbacks.model_checkpoint=null",
        "+data.extra=true",
        "trainer.max_epochs=3",
    ]
    cfg = compose("train", got)  # what passes composes as the same config
    assert cfg.data.ohlcv == "SPX.OHLCV.daily" and "early_stopping" not in cfg.callbacks


def test_too_many_overrides_and_numbers_out_of_bounds():
    with pytest.raises(trust.UntrustedError, match="501 stored overrides"):
        trust.stored_overrides(["seed=1"] * 501, "s")
    assert trust.stored_int(3.0, "epochs", 1, 10) == 3
    for bad in (0, 11, 2.5, float("nan"), "3", True, None):
        with pytest.raises(trust.UntrustedError, match="need an integer in"):
            trust.stored_int(bad, "epochs", 1, 10)


@pytest.mark.parametrize(
    "run_dir", ["relative/3", "/a/../b/3", "/a/b/4", "/a/b/3/", "/a/$HOME/3", 3, "/a/\x00/3"]
)
def test_stored_run_dirs_must_be_the_trials_own_folder_name(run_dir):
    with pytest.raises(trust.UntrustedError, match="stored run_dir"):
        trust.check_run_dir(run_dir, 3, "study 's'")
    assert trust.check_run_dir("/out/sweep/s.tiny.h1_1pct/3", 3, "s")


# ---------------------------------------------------------------- the hostile-study corpus, through the report

ARCH = "d64_l3_h2_f128"


def _study(url, name, attrs=None, params=None, user_attrs=None, task="h1_1pct", data_dir=None):
    """A finished study as the sweeper leaves it, then made hostile by `attrs` / `params` / `user_attrs`."""
    base = {
        "budget": "tiny",
        "task": task,
        "data_id": "SPX.OHLCV.daily.a25",
        "metric": "val/auc",
        "direction": "maximize",
        "fixed_overrides": [f"task={task}", "budget=tiny", f"paths.data_dir={data_dir}"],
        "search_space": {},
    }
    base.update(attrs or {})
    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    for k, v in base.items():
        study.set_user_attr(k, v)
    params = params or {"arch": ARCH}
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={k: optuna.distributions.CategoricalDistribution([v]) for k, v in params.items()},
            value=0.6,
            user_attrs={"params": 118017, **(user_attrs or {})},
        )
    )


def _hostile(outside):
    """(case id, study-name suffix, attrs, params, trial user attrs): each a different way in."""
    o = str(outside)
    fixed = lambda *extra: {"fixed_overrides": ["task=h1_1pct", "budget=tiny", *extra]}  # noqa: E731
    cases = [
        ("name_dotdot", "tiny/../../../outside/x", {}, None, None),
        ("name_env", "${oc.env:PGPASSWORD}", {}, None, None),
        ("name_data_home", "${data_home:" + o + "}", {}, None, None),
        ("name_abs", "/" + o, {}, None, None),
        ("name_long", "x" * 400, {}, None, None),
        ("name_nul", "a\x00b", {}, None, None),
        ("name_rtl", "a\u202eb", {}, None, None),
        ("name_homoglyph", "tiny.h1_1\u0440ct", {}, None, None),
        ("name_space", "a b", {}, None, None),
        ("name_newline", "a\nb", {}, None, None),
        ("root_dir", "", fixed(f"paths.root_dir={o}"), None, None),
        ("log_dir", "", fixed(f"paths.log_dir={o}"), None, None),
        ("ckpt_dirpath", "", fixed(f"callbacks.model_checkpoint.dirpath={o}"), None, None),
        ("ckpt_path", "", fixed("ckpt_path=/etc/passwd"), None, None),
        ("hydra_callback", "", fixed("+optimizer@hydra.callbacks.evil=adamw"), None, None),
        ("hydra_run_dir", "", fixed(f"hydra.run.dir={o}"), None, None),
        ("target", "", fixed("+callbacks.x._target_=os.system"), None, None),
        ("huge_epochs", "", fixed("trainer.max_epochs=1000000000"), None, None),
        ("env_value", "", fixed("data.ohlcv=${oc.env:PGPASSWORD}"), None, None),
        ("data_home_value", "", fixed("data.ohlcv='${data_home:" + o + "}'"), None, None),
        ("group_traversal", "", fixed("data=../../../outside"), None, None),
        ("default_root_dir", "", fixed(f"trainer.default_root_dir={o}"), None, None),
        ("logger_dir", "", fixed(f"logger.save_dir={o}"), None, None),
        ("data_root", "", fixed(f"data.root={o}"), None, None),
        (
            "other_data_dir",
            "",
            {"fixed_overrides": ["task=h1_1pct", "budget=tiny", f"paths.data_dir={o}"]},
            None,
            None,
        ),
        ("fixed_not_list", "", {"fixed_overrides": "budget=tiny"}, None, None),
        ("fixed_int", "", fixed(12), None, None),
        ("fixed_many", "", fixed(*["seed=1"] * 600), None, None),
        ("fixed_nul", "", fixed("seed=1\x00"), None, None),
        ("task_dotdot", "", {"task": "..", "data_id": ".."}, None, None),
        ("param_path", "", {}, {"arch": ARCH, "paths.root_dir": o}, None),
        ("param_hydra", "", {}, {"arch": ARCH, "hydra.run.dir": o}, None),
        ("param_env", "", {}, {"arch": "${oc.env:PGPASSWORD}"}, None),
        ("param_target", "", {}, {"arch": ARCH, "+callbacks.x._target_": "os.system"}, None),
        ("param_unknown", "", {}, {"arch": ARCH, "optimizer.lr": 0.1}, None),
        ("param_epochs", "", {}, {"arch": ARCH, "trainer.max_epochs": 10**9}, None),
        ("epochs_attr", "", {}, None, {"epochs": 10**9}),
        ("run_dir_etc", "", {}, None, {"run_dir": "/etc"}),
        ("run_dir_dotdot", "", {}, None, {"run_dir": o + "/../../0"}),
        ("run_dir_relative", "", {}, None, {"run_dir": "outside/0"}),
    ]
    return cases


def _report_cfg(url, prefix, data_dir, *extra):
    return compose(
        "report",
        [f"storage={url}", f"study_prefix={prefix}", "n_boot=20", f"paths.data_dir={data_dir}", *extra],
    )


def test_hostile_study_corpus_every_case_refused_with_one_line_no_effect(tmp_path, data_dir, monkeypatch):
    """Each case is its own prefix in one SQLite file, reported in process by the real `report()` with
    confirm=false (a case that got through would then run baselines and write its summary: counted as run)."""
    from patchtst_hpo.hpo.storage import open_storage
    from patchtst_hpo.report import _preflight, report

    canary = "canary-" + os.urandom(6).hex()
    monkeypatch.setenv("PGPASSWORD", canary)
    monkeypatch.setenv("TRUST_CANARY", canary)
    outside = tmp_path / "outside"
    url = storage(tmp_path)
    store = optuna.storages.RDBStorage(url)  # one engine for all the studies (a URL makes one each time)
    cases = _hostile(outside)
    for i, (_, suffix, attrs, params, user_attrs) in enumerate(cases):
        name = f"h{i}.{suffix}" if suffix else f"h{i}.tiny.h1_1pct"
        _study(store, name, attrs, params, user_attrs, data_dir=data_dir)
    _study(store, "control.tiny.h1_1pct", data_dir=data_dir)
    # the same study unchanged passes every check (the whole report on such studies: tests/test_report.py)
    _preflight(_report_cfg(url, "control", data_dir), open_storage(url), ["control.tiny.h1_1pct"])
    t1 = time.perf_counter()
    before_data = snapshot(data_dir)
    before = {
        p for p in tmp_path.rglob("*") if "reports" not in p.parts and not p.name.startswith("optuna.db")
    }
    tally = {"tried": 0, "refused_one_line": 0, "ran": [], "multi_line": []}
    cfg = _report_cfg(url, "h0", data_dir, "confirm=false")  # composed once; each case sets its prefix
    for i, (case, *_rest) in enumerate(cases):
        tally["tried"] += 1
        cfg.study_prefix = f"h{i}"
        out = tmp_path / "reports" / f"h{i}"
        out.mkdir(parents=True)
        try:
            report(cfg, out)
        except PatchTSTHPOError as e:
            tally["multi_line" if "\n" in str(e) else "refused_one_line"] += [case] if "\n" in str(e) else 1
            continue
        tally["ran"].append(case)
    print(f"hostile corpus: {tally}; corpus {time.perf_counter() - t1:.1f}s")

    after = {
        p for p in tmp_path.rglob("*") if "reports" not in p.parts and not p.name.startswith("optuna.db")
    }
    assert tally["ran"] == [] and tally["multi_line"] == [], tally
    assert tally["refused_one_line"] == tally["tried"] == len(cases)
    assert after == before and not outside.exists() and snapshot(data_dir) == before_data
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
    assert leaks == []


def test_report_cli_refuses_a_hostile_study_with_one_line_exit_2(tmp_path, data_dir):
    url = storage(tmp_path)
    _study(url, "evil.tiny/../../x", {"fixed_overrides": ["budget=tiny", f"paths.root_dir={tmp_path / 'x'}"]})
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.report",
            f"storage={url}",
            "study_prefix=evil",
            f"hydra.run.dir={tmp_path / 'r'}",
        ]
    )
    assert r.returncode == 2, r.stderr[-3000:]
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: study name in sqlite") and "is not a safe name" in r.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "r" / "confirm").exists()


# ---------------------------------------------------------------- the sweeper's side


@pytest.mark.parametrize(
    "value, dist",
    [
        ("../../x", optuna.distributions.CategoricalDistribution(["d64_l2_h4_f256", "d128_l2_h4_f512"])),
        (1e9, optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)),
        (10**9, optuna.distributions.IntDistribution(1, 10)),
        (True, optuna.distributions.CategoricalDistribution(["a", "b"])),
    ],
)
def test_queued_params_outside_the_search_space_are_refused(value, dist):
    from patchtst_hpo.hpo import queued

    study = optuna.create_study()
    study.enqueue_trial({"k": value}, skip_if_exists=False)
    trial = study.ask()
    with pytest.raises(trust.UntrustedError, match="queued k"):
        queued.suggest(trial, "k", dist)
    fresh = study.ask()  # a trial the sampler draws passes
    assert queued.suggest(fresh, "j", optuna.distributions.IntDistribution(1, 10)) in range(1, 11)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"n_trials": -1}, "hydra.sweeper.n_trials=-1: use an integer >= 0"),
        ({"n_trials": 1.5}, "hydra.sweeper.n_trials=1.5: use an integer >= 0"),
        ({"n_jobs": 0}, "hydra.sweeper.n_jobs=0: use an integer >= 1"),
        ({"study_name": "../.."}, "hydra.sweeper.study_name= '../..' is not a safe name"),
        ({"study_name": "${oc.env:PGPASSWORD}"}, "hydra.sweeper.study_name= '${oc.env:PGPASSWORD}' is not a"),
    ],
)
def test_sweeper_settings_refused(kwargs, words):
    from patchtst_hpo.hpo.sweeper import BudgetOptunaSweeperImpl

    with pytest.raises(ConfigError) as e:
        BudgetOptunaSweeperImpl(sampler=None, **kwargs)
    assert str(e.value).startswith(words), str(e.value)


def test_sweep_cli_refuses_an_unsafe_study_name_and_writes_nothing_outside(tmp_path, data_dir):
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "-m",
            "budget=tiny",
            f"paths.data_dir={data_dir}",
            f"hydra.sweep.dir={tmp_path / 'out' / 'sweep'}",
            f"hydra.sweeper.storage=sqlite:///{tmp_path / 'out' / 'o.db'}",
            "hydra.sweeper.study_name=../../esc",
        ]
    )
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
        "error: hydra.sweeper.study_name="
    )
    assert (
        "Traceback" not in r.stderr
        and not (tmp_path / "esc").exists()
        and not (tmp_path / "out" / "o.db").exists()
    )
