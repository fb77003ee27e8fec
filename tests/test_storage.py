"""Storages for real: PostgreSQL (a throwaway cluster) and journal files; heartbeats, recovery, secrets."""

from __future__ import annotations

import time

import optuna
import pytest
import yaml

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo import optuna_private
from patchtst_hpo.hpo.heartbeat import HOST, fail_stale_trials, failed_count
from patchtst_hpo.hpo.passwords import redact, split_password
from patchtst_hpo.hpo.storage import open_storage
from tests.helpers import check, run_cli, sweep_args

State = optuna.trial.TrialState
STUDY = "s.tiny.h1_1pct"


def finished(ts):
    return [t for t in ts if t.state in (State.COMPLETE, State.PRUNED)]


# ---- in-process: recovery rules on each storage kind ----


@pytest.fixture(params=["sqlite", "journal", "postgres"])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'o.db'}"
    if request.param == "journal":
        return f"journal:{tmp_path / 'new' / 'folder' / 'o.log'}"  # missing folders are created
    return request.getfixturevalue("pg_url")


def _study(url):
    storage = open_storage(url, heartbeat_interval=1, grace_period=2, max_retry=2)
    return optuna.create_study(study_name="x", storage=storage)


def test_trial_killed_right_after_ask_is_failed_and_requeued_once(any_url):
    study = _study(any_url)
    study.enqueue_trial({"arch": "d16_l1"}, user_attrs={"enqueued": "extreme"})
    # what a sweeper SIGKILLed between taking the trial and its first heartbeat leaves behind
    tid = optuna_private.pop_waiting_trial_id(study)
    assert fail_stale_trials(study) == []  # within the grace period: maybe still alive
    time.sleep(2.5)
    other = _study_loaded(any_url)  # another sweeper (another process, maybe another host)
    assert fail_stale_trials(other) == [0]
    assert fail_stale_trials(study) == []  # recovered once, whoever comes second
    ts = other.get_trials()
    assert [t.state for t in ts] == [State.FAIL, State.WAITING]
    assert ts[0].user_attrs["fail_reason"].startswith("stale: no sweeper heartbeat")
    assert ts[1].user_attrs == {"enqueued": "extreme"}  # the configuration, not the dead attempt
    assert failed_count(ts) == 0  # a lost sweeper is not the trial's fault
    retry = other.ask()  # the queued configuration comes back with the same arch
    assert retry.number == 1 and retry.suggest_categorical("arch", ["d16_l1", "x"]) == "d16_l1"
    assert optuna_private.trial_id(ts[0]) == tid


def _study_loaded(url):
    storage = open_storage(url, heartbeat_interval=1, grace_period=2, max_retry=2)
    return optuna.load_study(study_name="x", storage=storage)


def test_heartbeat_keeps_a_trial_alive_and_dead_local_pid_is_recovered_at_once(tmp_path):
    url = f"journal:{tmp_path / 'o.log'}"
    study = _study(url)
    storage = optuna_private.storage(study)
    alive, dead = study.ask(), study.ask()
    for _ in range(4):  # beating: never stale
        storage.record_heartbeat(optuna_private.trial_id(alive))
        time.sleep(0.7)
    proc = __import__("subprocess").Popen(["true"])
    proc.wait()
    dead.set_user_attr("sweeper_host", HOST)
    dead.set_user_attr("sweeper_pid", proc.pid)  # a sweeper on this host that has exited
    storage.record_heartbeat(optuna_private.trial_id(dead))
    assert fail_stale_trials(study) == [dead.number]  # no waiting for the grace period
    assert study.get_trials()[alive.number].state == State.RUNNING
    assert "died" in study.get_trials()[dead.number].user_attrs["fail_reason"]


# ---- URLs and secrets ----


def test_password_split_and_redaction():
    assert split_password("postgresql://u:s3cret@h:5/db") == ("postgresql://u@h:5/db", "s3cret")
    assert split_password("postgresql://u@h/db") == ("postgresql://u@h/db", None)
    assert split_password("journal:/x/y.log") == ("journal:/x/y.log", None)
    assert split_password(None) == (None, None)
    assert redact("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    with pytest.raises(ConfigError, match="option file"):
        split_password("mysql+pymysql://u:s3cret@h/db")


def test_journal_path_must_be_absolute():
    with pytest.raises(ConfigError, match="absolute path"):
        open_storage("journal:relative/o.log")


def test_postgres_sweep_keeps_the_password_out_of_every_file(tmp_path, data_dir, pg_url, postgres):
    """The documented `postgresql://` URL works (psycopg 3) and its password is written nowhere."""
    sweep = tmp_path / "sweep"
    r = run_cli(sweep_args(sweep, data_dir, pg_url, "budget=tiny", "hydra.sweeper.n_trials=2"))
    check(r)
    ts = optuna.load_study(study_name=STUDY, storage=pg_url).get_trials()
    assert len(finished(ts)) == 2 and all(t.intermediate_values for t in ts)  # jobs reported to PostgreSQL
    pw = postgres.password
    assert pw not in r.stdout + r.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaks = [str(p) for p in files if pw.encode() in p.read_bytes()]
    assert leaks == []
    hydra_cfg = yaml.safe_load((sweep / STUDY / "0" / ".hydra" / "hydra.yaml").read_text())["hydra"]
    public = pg_url.replace(f":{pw}@", "@")
    assert hydra_cfg["sweeper"]["storage"] == public
    job = yaml.safe_load((sweep / STUDY / "0" / ".hydra" / "config.yaml").read_text())
    assert job["trial"]["storage"] == public


@pytest.mark.slow
def test_sweepers_creating_the_schema_at_once(pg_url):
    """Four processes open an empty PostgreSQL database together: all get the storage (schema race retried)."""
    import subprocess
    import sys

    code = (
        f"from patchtst_hpo.hpo.storage import open_storage; open_storage({pg_url!r}, heartbeat_interval=1)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errs
