"""docs/runbook.md's SLURM recipe on a real one-node SLURM cluster, jobs reporting to a real PostgreSQL."""

from __future__ import annotations

import optuna

from patchtst_hpo.hpo.passwords import split_password
from tests.helpers import check, run_cli, sweep_args

State = optuna.trial.TrialState
STUDY = "s.tiny.h1_1pct"


def test_slurm_recipe_jobs_report_to_postgres(tmp_path, data_dir, slurm, pg_url, postgres):
    """The documented form: the URL without password, the password in PGPASSWORD (jobs inherit it)."""
    sweep = tmp_path / "sweep"
    public, password = split_password(pg_url)
    args = sweep_args(
        sweep,
        data_dir,
        public,
        "budget=tiny",
        "hydra/launcher=submitit_slurm",
        f"hydra.launcher.partition={slurm.partition}",
        "hydra.launcher.timeout_min=10",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=2",
    )
    r = run_cli(args, env={**slurm.env, "PGPASSWORD": password})
    check(r)
    ts = optuna.load_study(study_name=STUDY, storage=pg_url).get_trials()
    assert [t.state for t in ts] == [State.COMPLETE, State.COMPLETE]
    # each trial ran as a SLURM job (submitit's folder is named by job id) and reported every epoch to
    # PostgreSQL for the pruner, with the password from the environment, never from a file
    assert len(list((sweep / ".submitit").iterdir())) >= 2
    assert all(sorted(t.intermediate_values) == [0, 1] for t in ts)
    for t in ts:
        assert (sweep / STUDY / str(t.number) / "metrics.json").exists()
    leaks = [
        str(p) for p in tmp_path.rglob("*") if p.is_file() and postgres.password.encode() in p.read_bytes()
    ]
    assert leaks == [] and postgres.password not in r.stdout + r.stderr
