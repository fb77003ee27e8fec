"""`python -m patchtst_hpo.report [study_prefix=... storage=...]`: studies -> conclusions a reviewer accepts.

1. all trials of the studies -> trials.parquet / trials.csv;
2. the top-k trials per study (chosen on val) retrained with S seeds on train+val, scored on the held-out
   test period, with bootstrap CIs (resumable);
3. baselines on the same split and features;
4. the scaling fit over budgets with a bootstrap CI on alpha;
5. summary.md, scaling.png, architectures.png, and the command that reproduces each confirmed row.
Winners are chosen on validation; the test period never takes part in a choice.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path

import hydra
import numpy as np
import optuna
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from patchtst_hpo import config as project_config
from patchtst_hpo import metrics
from patchtst_hpo.analysis import aggregate, baselines, confirm, plots, scaling
from patchtst_hpo.atomic import atomic_write_bytes, write_json, write_text
from patchtst_hpo.data import features
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.errors import ConfigError, PatchTSTHPOError
from patchtst_hpo.hpo.storage import open_storage
from patchtst_hpo.paths import CONF_DIR

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


def _auc_ci_over_seeds(runs: list[dict], n_boot: int, seed: int) -> tuple[float, float]:
    """Bootstrap over test rows of the seed-mean AUC (all seeds share the same test rows)."""
    y = runs[0]["y_test"]
    ps = np.stack([r["p_test"] for r in runs])
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        v = np.mean([metrics.auc(y[i], p[i]) for p in ps])
        if np.isfinite(v):
            vals.append(v)
    return tuple(np.quantile(vals, [0.025, 0.975])) if vals else (np.nan, np.nan)


def _mean_ci(values: np.ndarray) -> tuple[float, float]:
    """95% t-interval of the mean over seeds (used for log loss)."""
    from scipy import stats

    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def report(cfg: DictConfig, out: Path) -> dict:
    names = aggregate.study_names(cfg.storage, cfg.study_prefix)
    if not names:
        known = optuna.get_all_study_names(open_storage(cfg.storage))
        raise ConfigError(
            f"no study named {cfg.study_prefix}.* in {cfg.storage}; studies there: {known or 'none'}."
            f" Set study_prefix= (the sweep's hydra.sweeper.study_name) and storage="
        )
    trials = aggregate.trials_table(cfg.storage, names)
    _write_table(trials, out, "trials")
    log.info("%d trials from %d studies -> %s", len(trials), len(names), out / "trials.parquet")
    done = trials[trials["state"] == "COMPLETE"]
    if done.empty:
        _failed_only(trials, out)
        return {"status": "no_complete_trials"}
    metric = optuna.load_study(study_name=names[0], storage=open_storage(cfg.storage)).user_attrs.get(
        "metric", "?"
    )
    plots.architectures_figure(out / "architectures.png", trials, metric)
    storage = open_storage(cfg.storage)
    seed_rows, commands, top_rows = [], [], []
    base = None
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        attrs = study.user_attrs
        ok = done[done["study"] == name]
        if ok.empty:
            log.warning("%s: no complete trial; left out", name)
            continue
        ascending = attrs.get("direction") == "minimize"
        top = ok.sort_values("value", ascending=ascending).head(int(cfg.top_k))
        if base is None:
            base = _baselines(attrs["fixed_overrides"], cfg, f"study {name!r}")
        for rank, (_, t) in enumerate(top.iterrows(), start=1):
            row = {
                "study": name,
                "budget": t["budget"],
                "rank": rank,
                "trial": int(t["number"]),
                "arch": t["arch"],
                "params": int(t["params"]),
                "val_objective": float(t["value"]),
            }
            if cfg.confirm:
                params = study.trials[int(t["number"])].params
                overrides = confirm.trial_overrides(attrs["fixed_overrides"], params, f"study {name!r}")
                epochs = int(t["best_epoch"] or t["epochs"] or 1)
                d = out / "confirm" / name / str(int(t["number"]))
                commands.append(
                    (
                        name,
                        rank,
                        confirm.run(overrides, list(cfg.seeds), epochs, d, list(cfg.confirm_overrides)),
                    )
                )
                runs = confirm.load(d, list(cfg.seeds))
                aucs = np.array([r["test"]["auc"] for r in runs], dtype=float)
                lls = np.array([r["test"]["log_loss"] for r in runs], dtype=float)
                lo, hi = _auc_ci_over_seeds(runs, int(cfg.n_boot), int(cfg.seed))
                llo, lhi = _mean_ci(lls)
                row.update(
                    {
                        "auc_mean": aucs.mean(),
                        "auc_ci_lo": lo,
                        "auc_ci_hi": hi,
                        "auc_seed_min": aucs.min(),
                        "auc_seed_max": aucs.max(),
                        "log_loss_mean": lls.mean(),
                        "log_loss_ci_lo": llo,
                        "log_loss_ci_hi": lhi,
                        "test_samples": int(runs[0]["test"]["n"]),
                        "test_positive_rate": runs[0]["test"]["positive_rate"],
                    }
                )
                for s, r in zip(cfg.seeds, runs, strict=True):
                    seed_rows.append(
                        {
                            "study": name,
                            "budget": t["budget"],
                            "rank": rank,
                            "params": int(t["params"]),
                            "seed": s,
                            "auc": r["test"]["auc"],
                            "log_loss": r["test"]["log_loss"],
                            "run_dir": r["output_dir"],
                        }
                    )
            top_rows.append(row)
    top_df = pd.DataFrame(top_rows)
    _write_table(top_df, out, "confirmed")
    result = {"studies": names, "trials": len(trials), "baselines": base}
    if cfg.confirm and seed_rows:
        seeds_df = pd.DataFrame(seed_rows)
        _write_table(seeds_df, out, "confirmation_runs")
        winners = top_df[top_df["rank"] == 1]
        winner_seeds = seeds_df[seeds_df["rank"] == 1]
        fits = {
            "auc": scaling.fit(
                winner_seeds["params"], 1 - winner_seeds["auc"], n_boot=500, seed=int(cfg.seed)
            ),
            "log_loss": scaling.fit(
                winner_seeds["params"], winner_seeds["log_loss"], n_boot=500, seed=int(cfg.seed)
            ),
        }
        fits = {k: (f if winners["params"].nunique() >= 3 else None) for k, f in fits.items()}
        plots.scaling_figure(out / "scaling.png", winners, winner_seeds, base, fits, "auc")
        result["scaling"] = {k: (vars(f) | {"verdict": f.verdict()} if f else None) for k, f in fits.items()}
    write_text(
        out / "summary.md", _summary_md(cfg, names, trials, top_df, base, result.get("scaling"), commands)
    )
    write_json(out / "report.json", result)
    print(_console_table(top_df))
    print(f"report: {out / 'summary.md'}")
    return result


def _baselines(fixed_overrides: list[str], cfg: DictConfig, source: str) -> dict:
    """Baselines on the data, task and split of a study, fit on train+val like the confirmation runs."""
    overrides = confirm.trial_overrides(fixed_overrides, {}, source)
    tcfg = project_config.compose("train", [*overrides, "data.fit_on=train_val", "paths.output_dir=."])
    dm = WindowDataModule(tcfg.data, tcfg.task, int(tcfg.seed))
    dm.setup()
    names = features.feature_names(tcfg.data.tier, with_vix=bool(tcfg.data.vix))
    return baselines.evaluate(dm, names, int(cfg.n_boot), int(cfg.seed))


def _fmt(x, spec=".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def _summary_md(cfg, names, trials, top, base, fits, commands) -> str:
    counts = Counter(trials["state"])
    lines = [
        f"# Scaling report: `{cfg.study_prefix}`",
        "",
        f"Storage `{cfg.storage}`; {len(names)} studies, {len(trials)} trials "
        f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}).",
        "",
        "Winners are the best trial of each study **on validation**; the test period is only used to "
        "score the confirmation runs (train+val fit, seeds " + ", ".join(map(str, cfg.seeds)) + ").",
        "",
    ]
    if "auc_mean" in top:
        w = top[top["rank"] == 1].sort_values("params")
        lines += [
            "## Per budget",
            "",
            "| budget | best arch | params | val AUC (HPO) | test AUC mean [95% CI] | seed spread | "
            "vs logistic | test log loss |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for _, r in w.iterrows():
            delta = r["auc_mean"] - base["logistic"]["auc"]
            lines.append(
                f"| {r['budget']} | `{r['arch']}` | {r['params']:,} | {_fmt(r['val_objective'])} | "
                f"{_fmt(r['auc_mean'])} [{_fmt(r['auc_ci_lo'])}, {_fmt(r['auc_ci_hi'])}] | "
                f"{_fmt(r['auc_seed_min'])}-{_fmt(r['auc_seed_max'])} | {delta:+.3f} | "
                f"{_fmt(r['log_loss_mean'])} |"
            )
        n, pos = int(w["test_samples"].iloc[0]), float(w["test_positive_rate"].iloc[0])
        lines += ["", f"Test period: {n} samples, positive rate {pos:.1%}.", ""]
    lines += [
        "## Baselines (same split, same features, fit on train+val)",
        "",
        "| baseline | test AUC [95% CI] | log loss | Brier | test samples | positive rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, b in base.items():
        lines.append(
            f"| {k} | {_fmt(b['auc'])} [{_fmt(b['auc_ci'][0])}, {_fmt(b['auc_ci'][1])}] | "
            f"{_fmt(b['log_loss'])} | {_fmt(b['brier'])} | {int(b['n'])} | {b['positive_rate']:.1%} |"
        )
    if fits is not None:
        lines += ["", "## Scaling fit `L(N) = E + A N^-alpha`", ""]
        for k, label in (("auc", "1 - test AUC"), ("log_loss", "test log loss")):
            f = fits.get(k)
            lines.append(
                f"- {label}: "
                + (f"{f['verdict']}; E={f['E']:.4f}, A={f['A']:.4g}" if f else "fewer than 3 budgets: no fit")
            )
        lines += ["", "![scaling](scaling.png)", ""]
    lines += [
        "## Top-k per study",
        "",
        "| study | rank | trial | arch | params | val objective | test AUC mean |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for _, r in top.iterrows():
        lines.append(
            f"| {r['study']} | {r['rank']} | {r['trial']} | `{r['arch']}` | {r['params']:,} | "
            f"{_fmt(r['val_objective'])} | {_fmt(r.get('auc_mean'))} |"
        )
    lines += ["", "![architectures](architectures.png)", ""]
    if commands:
        lines += ["## Reproduce", "", "Each confirmed row (from the repository root):", ""]
        for name, rank, cmd in commands:
            lines += [f"- `{name}` rank {rank}:", "", f"  ```\n  {cmd}\n  ```"]
    return "\n".join(lines) + "\n"


def _console_table(top: pd.DataFrame) -> str:
    cols = [
        c
        for c in ("study", "rank", "arch", "params", "val_objective", "auc_mean", "auc_ci_lo", "auc_ci_hi")
        if c in top
    ]
    return top[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")


@hydra.main(config_path=str(CONF_DIR), config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        report(cfg, Path(HydraConfig.get().runtime.output_dir))
    except PatchTSTHPOError as e:
        log.error("%s: %s", type(e).__name__, e)
        sys.exit(2)


if __name__ == "__main__":
    main()
