"""No secret in any output: a password-protected PostgreSQL storage (the real server of
tests/storage_fixtures.py) through the report, and through a sweep and its report; every file written is
grepped for the password, and so are both processes' output."""

from __future__ import annotations

import optuna

from tests.helpers import FAST, check, run_cli


def _leaks(root, password: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]


def _report(url, out, *extra):
    return run_cli(["-m", "patchtst_hpo.report", f"storage={url}", f"hydra.run.dir={out}", *extra])


def test_report_on_a_password_storage_writes_no_password(tmp_path, pg_url, postgres):
    study = optuna.create_study(study_name="pw.tiny.h1_1pct", storage=pg_url)
    for _ in range(2):
        t = study.ask()
        t.set_user_attr("fail_reason", "RuntimeError: boom")
        study.tell(t, state=optuna.trial.TrialState.FAIL)
    out = tmp_path / "report"
    r = _report(pg_url, out, "study_prefix=pw")
    check(r)
    assert (out / "summary.md").exists() and (out / ".hydra" / "overrides.yaml").exists()
    assert "postgresql://optuna@" in (out / ".hydra" / "overrides.yaml").read_text()
    assert _leaks(tmp_path, postgres.password) == []
    assert postgres.password not in r.stdout + r.stderr
    r = _report(pg_url, tmp_path / "r2", "study_prefix=zzz")  # the error names the storage: redacted
    assert r.returncode == 2 and "postgresql://" in r.stderr and postgres.password not in r.stderr
    assert _leaks(tmp_path, postgres.password) == []


def test_mysql_password_in_report_storage_is_refused_in_one_line(tmp_path):
    r = _report("mysql://u:s3cret-pw@127.0.0.1/db", tmp_path / "r", "study_prefix=x")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert "s3cret-pw" not in r.stderr and not (tmp_path / "r").exists()


# in the default suite (~25 s): the key behaviour must run in CI
def test_sweep_and_report_with_confirmation_write_no_password(tmp_path, pg_url, postgres, data_dir):
    sweep = run_cli(
        [
            "-m",
            "patchtst_hpo.train",
            "-m",
            *FAST,
            "budget=tiny",
            "hydra.sweeper.n_trials=2",
            f"paths.data_dir={data_dir}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"hydra.sweeper.storage={pg_url}",
            "hydra.sweeper.study_name=pw",
        ]
    )
    check(sweep)
    out = tmp_path / "report"
    r = _report(
        pg_url, out, "study_prefix=pw", "top_k=1", "seeds=[1]", "n_boot=50", f"paths.data_dir={data_dir}"
    )
    check(r)
    assert "postgresql://" in (out / "summary.md").read_text() and list(
        (out / "confirm").rglob("metrics.json")
    )
    assert _leaks(tmp_path, postgres.password) == []
    assert postgres.password not in sweep.stdout + sweep.stderr + r.stdout + r.stderr
