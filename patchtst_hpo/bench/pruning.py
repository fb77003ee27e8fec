"""Bench section `pruning` (issue 19): a job's pruning CPU per trial against the study's size.

For each size (100 / 1,000 / 5,000 finished trials, synthetic: bench/studies.py) and storage (SQLite,
journal), a fresh process per measurement does what a job does for one trial of `steps` epochs: open its
trial, then per epoch report and ask the pruner (MedianPruner, as conf/hydra/sweeper/pruner/median). Timed
as CPU seconds of that process (`time.process_time`), imports excluded. Side by side: Optuna's own path
(`load_study` + `Trial.should_prune`, as the job did before) and ours (`hpo.job_trial.JobTrial`), each in a
fresh process (a submitit job, a new joblib worker), and ours in a process that already ran two jobs (the
basic launcher runs every job in the sweeper's process). Optuna's and ours give the same decisions (checked
on every measurement here, and in tests/test_job_trial.py).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig

from patchtst_hpo.bench import studies

PRUNER = {"name": "MedianPruner", "kwargs": {"n_startup_trials": 5, "n_warmup_steps": 0}}


def one_trial(url: str, path: str, steps: int, jobs: int = 1) -> dict:
    """In this process, `jobs` times: a new RUNNING trial, then one job's pruning work on it along `path`;
    the CPU of the last (jobs > 1: a process that ran jobs before, as the basic launcher's sweeper)."""
    for _ in range(jobs):
        out = _job(url, path, steps)
    return out


def _job(url: str, path: str, steps: int) -> dict:
    import optuna

    from patchtst_hpo.hpo import optuna_private, pruners
    from patchtst_hpo.hpo.job_trial import JobTrial
    from patchtst_hpo.hpo.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    setup = open_storage(url)  # the sweeper's side, untimed: a new RUNNING trial (no sampler, no study read)
    number = setup.get_trial_number_from_id(setup.create_new_trial(setup.get_study_id_from_name("s")))
    curve = [0.6 + 0.01 * s for s in range(steps)]
    t = time.process_time()
    if path == "optuna":
        study = optuna.load_study(study_name="s", storage=open_storage(url))
        study.pruner = pruners.build(study.user_attrs["pruner"], "bench")
        sid = optuna_private.study_id(study)
        trial = optuna.trial.Trial(
            study, optuna_private.storage(study).get_trial_id_from_study_id_trial_number(sid, number)
        )
    else:
        trial = JobTrial(url, "s", number)
    decisions = []
    for step, v in enumerate(curve):
        trial.report(v, step)
        decisions.append(bool(trial.should_prune()))
    return {"cpu_seconds": time.process_time() - t, "decisions": decisions}


def _measure(url: str, path: str, steps: int, jobs: int = 1) -> dict:
    code = (
        "import json, sys; from patchtst_hpo.bench.pruning import one_trial; "
        f"print(json.dumps(one_trial({url!r}, {path!r}, {steps}, {jobs})))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if r.returncode:
        raise RuntimeError(f"pruning bench ({path}, {url}): {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def pruning_section(bcfg: DictConfig) -> dict:
    """CPU per trial of a job's pruning path, Optuna's vs ours, per storage and study size (medians)."""
    p = bcfg.pruning
    steps, repeats = int(p.steps), int(p.repeats)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in p.sizes:
            trials = studies.finished_trials(int(n), steps)
            for kind in p.storages:
                url = f"sqlite:///{tmp}/s{n}.db" if kind == "sqlite" else f"journal:{tmp}/j{n}.log"
                studies.build(url, "s", trials, {"pruner": PRUNER})
                got = {"optuna": [], "ours": [], "reused": []}
                for _ in range(repeats):  # interleaved: drift in machine speed hits both alike
                    for path in ("optuna", "ours"):
                        got[path].append(_measure(url, path, steps))
                    got["reused"].append(_measure(url, "ours", steps, jobs=3))
                same = all(
                    a["decisions"] == b["decisions"] for a, b in zip(got["optuna"], got["ours"], strict=True)
                )
                optuna_s = statistics.median(m["cpu_seconds"] for m in got["optuna"])
                ours_s = statistics.median(m["cpu_seconds"] for m in got["ours"])
                reused_s = statistics.median(m["cpu_seconds"] for m in got["reused"])
                rows.append(
                    {
                        "storage": kind,
                        "finished_trials": int(n),
                        "optuna_cpu_s": optuna_s,
                        "ours_cpu_s": ours_s,
                        "ours_reused_process_cpu_s": reused_s,
                        "optuna_vs_ours": optuna_s / ours_s,
                        "same_decisions": same,
                    }
                )
                for f in Path(tmp).glob("*"):
                    f.unlink()
    return {"steps": steps, "repeats": repeats, "pruner": PRUNER, "rows": rows, "flat": _flat(rows)}


def _flat(rows: list[dict]) -> dict:
    """Per storage and path: largest size's CPU / smallest size's (the issue asks <= 2 for ours)."""
    out = {}
    for kind in dict.fromkeys(r["storage"] for r in rows):
        mine = sorted((r for r in rows if r["storage"] == kind), key=lambda r: r["finished_trials"])
        for key in ("optuna_cpu_s", "ours_cpu_s", "ours_reused_process_cpu_s"):
            out[f"{kind}_{key}"] = mine[-1][key] / mine[0][key]
    return out
