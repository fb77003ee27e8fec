"""Crash-proof resume: a sweeper SIGKILLed at any moment is recovered by the next one (heartbeats)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from patchtst_hpo.hpo import optuna_private
from patchtst_hpo.paths import REPO_DIR
from tests.helpers import check, run_cli, sweep_args

State = optuna.trial.TrialState
STUDY = "s.tiny.h1_1pct"
BEAT = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3"]


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=STUDY, storage=url).get_trials()
    except KeyError:  # not created yet
        return []


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _kill_when(proc: subprocess.Popen, url: str, ready, timeout: float = 300) -> None:
    """SIGKILL the sweeper as soon as `ready(trials)` holds (polled every 50 ms) or it has exited."""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            if ready(_trials(url)):
                break
            time.sleep(0.05)
        else:
            if proc.poll() is None:
                pytest.fail("the sweep never reached the moment to kill it")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _job_files(sweep: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (sweep / STUDY).glob("*/metrics.json")}


def _check_resumed(url: str, sweep: Path, n_trials: int, before: dict[Path, bytes]) -> list:
    ts = _trials(url)
    done = [t for t in ts if t.state in (State.COMPLETE, State.PRUNED)]
    assert len(done) == n_trials
    assert [t.number for t in ts if t.state == State.RUNNING] == []
    extremes = optuna.load_study(study_name=STUDY, storage=url).user_attrs["arch_candidates"]
    assert extremes
    evaluated = [t.params["arch"] for t in done if t.user_attrs.get("enqueued") == "extreme"]
    assert len(evaluated) == len(set(evaluated)) == 2  # each shape extreme of the tiny budget, once
    run_dirs = [t.user_attrs["run_dir"] for t in ts if "run_dir" in t.user_attrs]
    assert len(run_dirs) == len(set(run_dirs))  # a retried trial is a new number, a new folder
    for p, content in before.items():  # no finished job's folder was overwritten
        assert p.read_bytes() == content
    for t in ts:
        if t.state == State.FAIL:
            assert t.user_attrs["fail_reason"].startswith("stale")
    return ts


def test_kill_right_after_ask_then_resume(tmp_path, data_dir):
    """Killed while a trial runs, plus a trial taken from the queue with no heartbeat yet (the moment right
    after ask): the re-run fails both, runs their configurations again and ends with exactly n_trials."""
    url, sweep = f"sqlite:///{tmp_path / 'o.db'}", tmp_path / "sweep"
    args = sweep_args(sweep, data_dir, url, "budget=tiny", "hydra.sweeper.n_trials=2", *BEAT)
    _kill_when(_start(args), url, lambda ts: any(t.state == State.RUNNING for t in ts))
    study = optuna.load_study(study_name=STUDY, storage=url)
    assert optuna_private.pop_waiting_trial_id(study) is not None  # an extreme, RUNNING, never beating
    before = _job_files(sweep)
    t0 = time.time()
    check(run_cli(args))
    ts = _check_resumed(url, sweep, 2, before)
    assert sum(t.state == State.FAIL for t in ts) == 2
    assert time.time() - t0 < 240


@pytest.mark.slow
def test_ten_random_kills_then_resume(tmp_path, data_dir):
    """SIGKILL at 10 random moments (half of them right after a trial appears), re-running each time."""
    url, sweep = f"sqlite:///{tmp_path / 'o.db'}", tmp_path / "sweep"
    n = 16  # more trials than 10 short-lived sweepers can finish, so every one of them is killed mid-sweep
    args = sweep_args(sweep, data_dir, url, "budget=tiny", f"hydra.sweeper.n_trials={n}", *BEAT)
    rng = random.Random(0)
    kills = 0
    for i in range(10):
        ts = _trials(url)
        if sum(t.state in (State.COMPLETE, State.PRUNED) for t in ts) >= n:
            break
        seen = len(ts)
        if i % 2 == 0:
            ready = lambda ts, seen=seen: len(ts) > seen  # noqa: E731  right after ask
        else:
            moment = time.time() + rng.uniform(1, 8)  # start-up, recovery or a running trial
            ready = lambda ts, moment=moment: time.time() > moment  # noqa: E731
        proc = _start(args)
        _kill_when(proc, url, ready)
        kills += proc.returncode == -signal.SIGKILL
    before = _job_files(sweep)
    check(run_cli(args))
    ts = _check_resumed(url, sweep, n, before)
    print(
        f"{kills} SIGKILLs, {sum(t.state == State.FAIL for t in ts)} stale trials recovered, {len(ts)} trials"
    )
    assert kills >= 8


@pytest.mark.slow
def test_postgres_sweeper_on_host_a_recovered_by_heartbeat_expiry(tmp_path, data_dir, pg_url):
    """A sweeper on "host A" dies; one started later elsewhere fails its trial after the grace period
    (no pid to check across hosts: only the heartbeat tells) and runs the configuration again."""
    sweep = tmp_path / "sweep"
    args = sweep_args(sweep, data_dir, pg_url, "budget=tiny", "hydra.sweeper.n_trials=3", *BEAT)
    _kill_when(_start(args), pg_url, lambda ts: any(t.state == State.RUNNING for t in ts))
    study = optuna.load_study(study_name=STUDY, storage=pg_url)
    storage = optuna_private.storage(study)
    lost = [t for t in study.get_trials() if t.state == State.RUNNING]
    assert lost
    for t in lost:  # as if that sweeper ran on another machine
        storage.set_trial_user_attr(optuna_private.trial_id(t), "sweeper_host", "host-a")
    before = _job_files(sweep)
    check(run_cli(args))
    ts = _check_resumed(pg_url, sweep, 3, before)
    for t in lost:
        assert ts[t.number].user_attrs["fail_reason"].startswith("stale: no sweeper heartbeat")
