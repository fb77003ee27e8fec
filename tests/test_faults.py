"""Faults end cleanly: a torn journal line is refused before anything is appended (the suggested repair
works), and the report's training children die with the report."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time

import optuna
import pytest

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.hpo.storage import open_storage


def _journal(tmp_path):
    path = tmp_path / "o.log"
    study = optuna.create_study(study_name="j", storage=open_storage(f"journal:{path}"))
    for i in range(5):
        study.enqueue_trial({"x": i})
    return path


@pytest.mark.parametrize("cut", [7, 1])
def test_torn_journal_line_refused_untouched_and_the_suggested_command_repairs_it(tmp_path, cut):
    path = _journal(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])  # the last operation cut short (cut=1: only its newline lost)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ConfigError) as e:
        open_storage(f"journal:{path}", heartbeat_interval=1, grace_period=2)
    msg = str(e.value)
    assert "\n" not in msg and "is torn" in msg and "nothing was appended" in msg, msg
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha  # the file is untouched
    cmd = re.search(r"`(truncate [^`]+)`", msg).group(1)
    subprocess.run(shlex.split(cmd), check=True)
    study = optuna.load_study(study_name="j", storage=open_storage(f"journal:{path}"))
    assert len(study.trials) == 4  # the torn operation is gone, the rest kept
    study.enqueue_trial({"x": 9})
    assert len(optuna.load_study(study_name="j", storage=open_storage(f"journal:{path}")).trials) == 5


def test_intact_journal_opens(tmp_path):
    path = _journal(tmp_path)
    assert len(optuna.load_study(study_name="j", storage=open_storage(f"journal:{path}")).trials) == 5


def test_a_child_started_like_the_reports_confirmations_dies_with_its_parent(tmp_path):
    """The parent is SIGKILLed (no handler can run): the child gets SIGTERM from the kernel (prctl)."""
    pidfile = tmp_path / "child.pid"
    parent = textwrap.dedent(
        f"""
        import functools, os, subprocess, sys, time
        from patchtst_hpo.analysis.confirm import die_with_parent
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             preexec_fn=functools.partial(die_with_parent, os.getpid()))
        open({str(pidfile)!r}, "w").write(str(p.pid))
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], env={**os.environ})
    deadline = time.time() + 300  # the parent imports the report's modules (torch): slow on a busy machine
    while not (pidfile.exists() and pidfile.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    child = int(pidfile.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its parent")


def test_a_lost_joblib_worker_fails_its_trials_and_the_sweep_goes_on(tmp_path):
    from patchtst_hpo.paths import REPO_DIR
    from tests.helpers import run_cli

    url = f"sqlite:///{tmp_path / 'o.db'}"
    r = run_cli(
        [
            str(REPO_DIR / "tests" / "apps" / "crash.py"),
            "-m",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"hydra.sweeper.storage={url}",
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.n_jobs=2",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            f"+marker={tmp_path / 'killed'}",
        ],
        env={"PYTHONPATH": str(REPO_DIR)},
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "killed").exists()  # a worker really died
    trials = optuna.load_study(study_name="sphere", storage=url).trials
    states = [t.state.name for t in trials]
    lost = [
        t for t in trials if str(t.user_attrs.get("fail_reason", "")).startswith("stale: the launcher lost")
    ]
    assert "RUNNING" not in states and states.count("COMPLETE") == 4 and lost, states
    assert "Traceback" not in r.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MiB tmpfs (needs root / CAP_SYS_ADMIN; skipped where mount is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize(
    "left",
    [
        20_000,  # Hydra's own .hydra/ files do not fit: the launcher raises
        pytest.param(300_000, marks=pytest.mark.slow),  # the run trains, its checkpoint does not fit
    ],
)
def test_a_full_disk_stops_the_sweep_with_one_line_fails_the_trial_removes_partial_files(
    tmp_path, small_disk, data_dir, left
):
    from tests.helpers import FAST, run_cli

    with open(small_disk / "filler", "wb") as f:
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        f.write(b"\0" * max(0, free - left))
    url = f"sqlite:///{tmp_path / 'o.db'}"  # the storage lives elsewhere
    r = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "-m",
            *FAST,
            "budget=2M",
            "hydra.sweeper.n_trials=2",
            f"paths.data_dir={data_dir}",
            f"hydra.sweep.dir={small_disk / 'sweep'}",
            f"hydra.sweeper.storage={url}",
            "hydra.sweeper.study_name=full",
        ]
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2, out[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: study full.") and "is full" in last and "Traceback" not in r.stderr, out[
        -3000:
    ]
    trials = [
        t
        for n in optuna.get_all_study_names(url)
        for t in optuna.load_study(study_name=n, storage=url).trials
    ]
    assert trials and all(t.state.name != "RUNNING" for t in trials)
    assert any(t.state.name == "FAIL" for t in trials)
    assert (
        list((small_disk / "sweep").rglob("*.ckpt")) == []
        and list((small_disk / "sweep").rglob("*.tmp")) == []
    )
