"""Several sweepers on one shared study (PostgreSQL, journal file): no configuration twice, extremes once."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest

from patchtst_hpo.hpo.storage import open_storage
from patchtst_hpo.paths import REPO_DIR
from tests.helpers import sweep_args

State = optuna.trial.TrialState
STUDY = "s.tiny.h1_1pct"


def _run_together(n_sweepers: int, args: list[str], env: dict | None = None) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, *args], cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(n_sweepers)
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-4000:]


def _check_shared_study(url: str, n_trials: int, n_sweepers: int) -> None:
    ts = optuna.load_study(study_name=STUDY, storage=open_storage(url)).get_trials()
    done = [t for t in ts if t.state in (State.COMPLETE, State.PRUNED)]
    # each sweeper stops at n_trials finished; the others' trials in flight may still land
    assert n_trials <= len(done) <= n_trials + n_sweepers - 1
    configs = [json.dumps(t.params, sort_keys=True) for t in done]
    assert len(configs) == len(set(configs)), "a configuration ran twice"
    extremes = [t.params["arch"] for t in ts if t.user_attrs.get("enqueued") == "extreme"]
    assert sorted(extremes) == ["d64_l2_h2_f128", "d64_l3_h2_f128"]  # each extreme enqueued (and run) once
    assert all(t.state != State.RUNNING for t in ts)
    assert len({t.user_attrs["run_dir"] for t in ts}) == len(ts)
    assert all(t.system_attrs.get("heartbeat") for t in ts if url.startswith("journal:"))  # sweepers beat


@pytest.mark.parametrize(
    ("kind", "n"),
    [
        pytest.param("journal", 3, id="journal-3"),
        pytest.param("journal", 9, id="journal-9", marks=pytest.mark.slow),
        pytest.param("postgres", 9, id="postgres-9", marks=pytest.mark.slow),
    ],
)
def test_three_sweepers_started_together(kind, n, tmp_path, data_dir, request):
    # a journal in folders that do not exist yet: the sweepers create them
    url = (
        f"journal:{tmp_path / 'shared' / 'fs' / 'optuna.log'}"
        if kind == "journal"
        else request.getfixturevalue("pg_url")
    )
    args = sweep_args(
        tmp_path / "sweep",
        data_dir,
        url,
        "budget=tiny",
        f"hydra.sweeper.n_trials={n}",
        "trainer.max_epochs=1",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=5",
    )
    _run_together(3, args)
    _check_shared_study(url, n, 3)
