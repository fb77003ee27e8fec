"""`python -m patchtst_hpo.report [study_prefix=... storage=...]`: studies -> conclusions a reviewer accepts.

An orchestrator: it opens the storage once, writes trials.parquet / trials.csv, splits the studies into
(task, data) groups and hands each to analysis/group_report.py (confirmation with S seeds under
`experiment=confirm`, baselines incl. gradient-boosted trees, paired and block bootstraps, scaling and
compute fits, economics, optional walk-forward), then writes summary.md (verdict first), report.json and
the figures. Winners are chosen on validation; the test period never takes part in a choice.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
import optuna
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from patchtst_hpo import cli, run_record, trust
from patchtst_hpo.analysis import aggregate, summary
from patchtst_hpo.analysis.groups import split as split_groups
from patchtst_hpo.atomic import atomic_write_bytes, write_json, write_text
from patchtst_hpo.errors import ConfigError, PatchTSTHPOError
from patchtst_hpo.hpo.passwords import redact, split_password
from patchtst_hpo.hpo.search_space import override
from patchtst_hpo.hpo.storage import open_storage
from patchtst_hpo.paths import CONF_DIR

if TYPE_CHECKING:
    from patchtst_hpo.analysis import group_report

log = logging.getLogger(__name__)


def _write_table(df: pd.DataFrame, out: Path, stem: str) -> None:
    atomic_write_bytes(out / f"{stem}.csv", df.to_csv(index=False).encode())
    tmp = out / f".{stem}.parquet.tmp"
    df.astype({c: "string" for c in df.columns if df[c].dtype == object}).to_parquet(tmp, index=False)
    tmp.replace(out / f"{stem}.parquet")


def _failed_only(trials: pd.DataFrame, out: Path) -> None:
    counts = Counter(trials["state"])
    reasons = Counter(r for r in trials["fail_reason"].dropna())
    lines = [
        "# Report: no completed trial",
        "",
        f"The selected studies hold {len(trials)} trials and none completed "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}), so there is nothing to confirm or fit.",
        "",
        "Most common failure reasons:",
        "",
    ]
    lines += [f"- {n} x `{r}`" for r, n in reasons.most_common(5)] or ["- (none recorded)"]
    lines += [
        "",
        "Fix the cause (see each trial's run folder and `fail_reason`), then re-run the sweep: "
        "finished trials are kept and the study tops up to n_trials.",
    ]
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    print(f"no completed trial in {len(trials)} trials; see {out / 'summary.md'}")


def report(cfg: DictConfig, out: Path) -> dict:
    """All studies under `study_prefix`, reported per (task, data) group; returns what report.json holds."""
    # confirmation and figures import Lightning, sklearn and matplotlib: not for --help or a refused config
    from patchtst_hpo.analysis import group_report, plots

    _scrub_password(cfg, out)
    trust.check_name(str(cfg.study_prefix), "study_prefix=", study=True)
    storage = open_storage(cfg.storage)  # opened once, passed to everything that reads the studies
    names = aggregate.study_names(storage, cfg.study_prefix)
    if not names:
        known = optuna.get_all_study_names(storage)
        raise ConfigError(
            f"no study named {cfg.study_prefix}.* in {redact(cfg.storage)}; studies there: "
            f"{[trust.shown(n) for n in known[:20]] or 'none'}."
            f" Set study_prefix= (the sweep's hydra.sweeper.study_name) and storage="
        )
    for name in names:  # they become folder names and override values
        trust.check_name(
            name, f"study name in {redact(cfg.storage)}:", study=True, error=trust.UntrustedError
        )
    _preflight(cfg, storage, names)
    trials = aggregate.trials_table(storage, names)
    _write_table(trials, out, "trials")
    log.info("%d trials from %d studies -> %s", len(trials), len(names), out / "trials.parquet")
    if (trials["state"] == "COMPLETE").sum() == 0:
        _failed_only(trials, out)
        return {"status": "no_complete_trials"}
    groups = split_groups(storage, names, trials)
    _check_groups(groups, trials)
    plots.architectures_figure(out / "architectures.png", trials, groups[0].first.get("metric", "?"))
    results = [group_report.run(cfg, g, storage, out, tag="" if len(groups) == 1 else g.key) for g in groups]
    _write_table(pd.concat([r.top.assign(group=r.group.key) for r in results]), out, "confirmed")
    seeds = [r.seeds.assign(group=r.group.key) for r in results if len(r.seeds)]
    if seeds:
        _write_table(pd.concat(seeds), out, "confirmation_runs")
    for name, frames in (
        ("economics", [r.sharpe for r in results]),
        ("walk_forward", [r.walk_forward for r in results]),
    ):
        got = [f.assign(group=r.group.key) for f, r in zip(frames, results, strict=True) if f is not None]
        if got:
            _write_table(pd.concat(got), out, name)
    _write_table(_with_verdicts(trials, results), out, "trials")
    result = {
        "studies": names,
        "trials": len(trials),
        "provenance": run_record.provenance(),
        "groups": {r.group.key: _group_json(r) for r in results},
    }
    write_text(out / "summary.md", summary.render(cfg, names, trials, results, result["provenance"]))
    write_json(out / "report.json", result)
    for r in results:
        print(f"[{r.group.key}] {r.verdict.headline}")
    print(f"report: {out / 'summary.md'}")
    return result


def _preflight(cfg: DictConfig, storage, names: list[str]) -> None:
    """Everything read from the storage that becomes an override is checked (`trust`) before any work, so
    a changed storage stops the report with one line and nothing run."""
    from patchtst_hpo.analysis import confirm

    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if done:  # a study without complete trials is only counted
            confirm.stored(cfg, study.user_attrs, {}, f"study {name!r}")
        for t in done:
            confirm.stored(cfg, study.user_attrs, t.params, f"study {name!r} trial {t.number}")


def _check_groups(groups: list, trials: pd.DataFrame) -> None:
    """Group keys (from the studies' task and data_id: folder and figure names) and refit epoch counts."""
    from patchtst_hpo.analysis import confirm

    for g in groups:
        trust.check_name(g.key, f"group of study {g.studies[0]!r} (task.data_id)", study=True)
    for _, t in trials[trials["state"] == "COMPLETE"].iterrows():
        confirm.refit_epochs(t)


def _group_json(r: group_report.GroupResult) -> dict:
    v = r.verdict
    return {
        "task": r.group.task,
        "data_id": r.group.data_id,
        "studies": r.group.studies,
        "verdict": v.headline,
        "verdict_detail": v.as_dict(),
        "warnings": r.warnings,
        "block_length": r.block,
        "baselines": r.base,
        "comparisons": [c.as_dict() for c in v.comparisons],
        "economics": r.sharpe.to_dict("records") if r.sharpe is not None else None,
        "walk_forward": r.walk_forward.to_dict("records") if r.walk_forward is not None else None,
        "shuffled_control": r.control,
        "figures": r.figures,
        "figure_titles": r.titles,
    }


def _with_verdicts(trials: pd.DataFrame, results: list) -> pd.DataFrame:
    """The trials table with each study's kind (search or demo) and its group's scaling verdict."""
    kinds = {s["study"]: s["kind"] for r in results for s in r.verdict.studies}
    status = {name: r.verdict.scaling.status for r in results for name in r.group.studies}
    return trials.assign(study_kind=trials["study"].map(kinds), scaling_verdict=trials["study"].map(status))


@hydra.main(config_path=str(CONF_DIR), config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        report(cfg, Path(HydraConfig.get().runtime.output_dir))
    except PatchTSTHPOError as e:
        log.error("%s: %s", type(e).__name__, cli.one_line(e))  # for the log; stderr gets the line below
        cli.report(e)
        sys.exit(cli.EXIT_USAGE)


def _scrub_password(cfg: DictConfig, out: Path) -> None:
    """A password in `storage` set in a config file (not on the command line, which `run` cleans) reached
    the run's .hydra files: replace it there by *** and hand it to the storage through PGPASSWORD."""
    _, password = split_password(str(cfg.storage))
    if password is None:
        return
    os.environ["PGPASSWORD"] = password
    for f in (out / ".hydra").glob("*.yaml"):
        text = f.read_text()
        if password in text:
            write_text(f, text.replace(password, "***"))


def hide_password(argv: list[str]) -> list[str]:
    """`storage=postgresql://user:PASSWORD@host/db` on the command line: the password goes to PGPASSWORD
    (which libpq reads) and the URL without it to Hydra, so no file the report writes holds it."""
    out = []
    for a in argv:
        key, _, url = a.partition("=")
        if key.lstrip("+") == "storage" and url:
            public, password = split_password(url.strip("'\""))
            if password is not None:
                os.environ["PGPASSWORD"] = password
                a = override(key, public)
        out.append(a)
    return out


def run() -> None:
    """`python -m patchtst_hpo.report` and `patchtst-report`: config errors as one line (exit 2), then Hydra."""
    cli.install()
    try:
        sys.argv[1:] = hide_password(sys.argv[1:])
    except PatchTSTHPOError as e:
        cli.report(e)
        sys.exit(cli.EXIT_USAGE)
    main()


if __name__ == "__main__":
    run()
