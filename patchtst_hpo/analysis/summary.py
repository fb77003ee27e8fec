"""The report's summary.md: the verdict first, then per (task, data) group its tables and figures."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from patchtst_hpo.hpo.passwords import redact

STATS_NOTE = (
    "Intervals are 95% percentile intervals of one hierarchical bootstrap: circular blocks of {block} test "
    "dates (horizon {h}; labels of windows closer than H rows share future days; a panel's symbols move "
    "with their date) and, for the transformer, its seeds resampled too (seed mean). Differences are paired: "
    "every model is scored on the same resampled dates. MDE: the smallest difference this test set detects "
    "(80% power, 5% level)."
)


def fmt(x, spec=".3f") -> str:
    try:
        return format(x, spec) if x is not None and np.isfinite(float(x)) else "n/a"
    except (TypeError, ValueError):
        return "n/a"


def _ci(v, lo, hi, spec=".3f") -> str:
    return f"{fmt(v, spec)} [{fmt(lo, spec)}, {fmt(hi, spec)}]"


def _per_budget(r) -> list[str]:
    v = r.verdict
    w = r.top[r.top["rank"] == 1].sort_values("params")
    vs = v.baseline.b.split(" ", 1)[1] if v.baseline else "best baseline"
    lines = [
        "### Per budget (winner = best trial on validation)",
        "",
        f"| budget | best arch | params | train FLOPs | val objective | test AUC [95% CI] | seed spread | "
        f"vs {vs}, paired [95% CI] | test log loss [95% CI] |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, row in w.iterrows():
        c = next(
            (c for c in v.comparisons if c.a == f"PatchTST {row['budget']}" and c.b.startswith("baseline")),
            None,
        )
        diff = f"{_ci(c.diff.point, c.diff.lo, c.diff.hi, '+.3f')} {c.verdict}" if c else "n/a"
        lines.append(
            f"| {row['budget']} | `{row['arch']}` | {row['params']:,} | {fmt(row.get('compute'), '.3g')} | "
            f"{fmt(row['val_objective'])} | {_ci(row['auc_mean'], row['auc_ci_lo'], row['auc_ci_hi'])} | "
            f"{fmt(row['auc_seed_min'])}-{fmt(row['auc_seed_max'])} | {diff} | "
            f"{_ci(row['log_loss_mean'], row['log_loss_ci_lo'], row['log_loss_ci_hi'])} |"
        )
    n, pos = int(w["test_samples"].iloc[0]), float(w["test_positive_rate"].iloc[0])
    lines += ["", f"Test period: {n} samples, positive rate {pos:.1%}.", ""]
    lines += ["Paired comparisons (test AUC difference, MDE = minimal detectable effect):", ""]
    lines += [f"- {c.sentence} (MDE {fmt(c.diff.mde)})" for c in v.comparisons]
    return [*lines, ""]


def _baselines(r) -> list[str]:
    lines = [
        "### Baselines (same split, same anchor-day features, fit on train+val)",
        "",
        "| baseline | test AUC [95% CI] | log loss [95% CI] | Brier | test samples | positive rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, b in r.base.items():
        lines.append(
            f"| {k} | {_ci(b['auc'], *b['auc_ci'])} | {_ci(b['log_loss'], *b['log_loss_ci'])} | "
            f"{fmt(b['brier'])} | {int(b['n'])} | {b['positive_rate']:.1%} |"
        )
    return [*lines, ""]


def _fits(r) -> list[str]:
    v = r.verdict
    lines = ["### Scaling over budgets (the verdict's readings)", ""]
    sc = v.scaling
    lines.append(f"- Against parameters N: {sc.sentence}.")
    if sc.largest_vs_smallest is not None:
        d = sc.largest_vs_smallest
        lines.append(
            f"  - model-free: largest - smallest budget {_ci(d.point, d.lo, d.hi, '+.3f')} (MDE {fmt(d.mde)})"
        )
    if sc.rank is not None:
        lines.append(
            f"  - rank trend (Spearman over budgets): {_ci(sc.rank.point, sc.rank.lo, sc.rank.hi, '+.2f')}"
        )
    if sc.fit_sentence:
        lines.append(f"  - power law: {sc.fit_sentence}")
    c = v.compute
    lines.append(
        f"- Against training compute C (budgets' winners only): {c.sentence}."
        if c
        else "- Against training compute C: not assessed (fewer than 2 confirmed budgets or compute unknown)."
    )
    lines.append("")
    for key, cap in (
        ("scaling", "scaling"),
        ("compute", "loss vs parameters and compute"),
        ("data_scaling", "L(N, D)"),
    ):
        if key in r.figures:
            lines += [f"![{cap}]({r.figures[key]})", ""]
    return lines


def _studies(r) -> list[str]:
    lines = ["### Study sizes (what the finished trials were)", ""]
    lines += [f"- {s['sentence']}" for s in r.verdict.studies]
    return [*lines, ""]


def _absent(r) -> list[str]:
    if not r.verdict.absent:
        return []
    return ["### Not in this report", "", *[f"- {why}." for why in r.verdict.absent.values()], ""]


def _sharpe(r) -> list[str]:
    if r.sharpe is None or r.sharpe.empty:
        return []
    lines = [
        "### Economic value on the test period (net of costs)",
        "",
        "| strategy | kind | threshold (out-of-sample val) | ann. return | ann. vol | Sharpe [95% CI] | max DD | turnover/period | hit rate | exposure |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, s in r.sharpe.iterrows():
        lines.append(
            f"| {s['strategy']} | {s['kind']} | {fmt(s['threshold'])} | {fmt(s['ann_return'], '.1%')} | "
            f"{fmt(s['ann_vol'], '.1%')} | {_ci(s['sharpe'], s['sharpe_ci_lo'], s['sharpe_ci_hi'], '.2f')} | "
            f"{fmt(s['max_drawdown'], '.1%')} | {fmt(s['turnover'])} | {fmt(s['hit_rate'], '.1%')} | {fmt(s['exposure'], '.1%')} |"
        )
    lines += [
        "",
        "Long when p >= threshold for the next day, else flat; transformer p = seed mean. Thresholds are "
        "chosen on val predictions of models fit on the training rows only (PatchTST: the study's own trial; "
        "baselines: a train-only fit), never on rows the scored model trained on. That fit and the train+val "
        "refit may put probabilities on different scales: exposure shows where the threshold landed.",
        "",
    ]
    if "equity" in r.figures:
        lines += [f"![equity]({r.figures['equity']})", ""]
    return lines


def _walk_forward(r) -> list[str]:
    if r.walk_forward is None or r.walk_forward.empty:
        return []
    lines = [
        "### Walk-forward confirmation (best winner, expanding window)",
        "",
        "| fold | test dates | n | pos. rate | PatchTST AUC [95% CI] | logistic | gbdt | paired vs best baseline |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, f in r.walk_forward.iterrows():
        lines.append(
            f"| {f['fold']} | {f['first']}..{f['last']} | {f['n']} | {f['positive_rate']:.1%} | "
            f"{_ci(f['auc'], f['auc_ci_lo'], f['auc_ci_hi'])} | {fmt(f['logistic_auc'])} | {fmt(f['gbdt_auc'])} | "
            f"{_ci(f['diff'], f['diff_lo'], f['diff_hi'], '+.3f')} {f['verdict']} {f['vs']} |"
        )
    return [*lines, ""]


def _control(r) -> list[str]:
    c = r.control
    if not c:
        return []
    return [
        "### Shuffled-label control",
        "",
        f"PatchTST {c['budget']} (`{c['arch']}`) refit with its training labels permuted "
        f"(`data.shuffle_labels=true`): test AUC {_ci(c['auc'], c['auc_ci_lo'], c['auc_ci_hi'])} -> "
        + (
            "~0.5 as it must be: no sign of leakage."
            if c["passed"]
            else "**not ~0.5: the inputs leak the labels.**"
        ),
        "",
    ]


def _top_k(r) -> list[str]:
    lines = [
        "### Top-k per study",
        "",
        "| study | rank | trial | arch | params | val objective | test AUC mean |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for _, t in r.top.iterrows():
        lines.append(
            f"| {t['study']} | {t['rank']} | {t['trial']} | `{t['arch']}` | {t['params']:,} | "
            f"{fmt(t['val_objective'])} | {fmt(t.get('auc_mean'))} |"
        )
    return [*lines, ""]


def _provenance(p: dict) -> str:
    code = p.get("code", {})
    where = (
        f"git {code.get('commit', '?')[:12]}{' (dirty)' if code.get('dirty') else ''}"
        if "commit" in code
        else (f"patchtst_hpo {code.get('version', '?')} (installed, no git checkout)")
    )
    libs = ", ".join(f"{k} {v}" for k, v in p.get("libraries", {}).items())
    return f"Code: {where}; {libs}."


def render(cfg, names: list[str], trials: pd.DataFrame, results: list, provenance: dict) -> str:
    counts = Counter(trials["state"])
    lines = [
        f"# Scaling report: `{cfg.study_prefix}`",
        "",
        f"Storage `{redact(str(cfg.storage))}`; {len(names)} studies in {len(results)} (task, data) group(s), {len(trials)} "
        f"trials ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}).",
        "",
        "Winners are the best trial of each study **on validation**; the test period only scores the "
        "confirmation runs (`experiment=confirm`: train+val fit, seeds "
        + ", ".join(map(str, cfg.seeds))
        + ").",
        "",
        _provenance(provenance),
        "",
        "## Verdict",
        "",
    ]
    lines += [f"- **{r.group.task} on {r.group.data_id}**: {r.verdict.headline}" for r in results]
    lines.append("")
    for r in results:
        lines += [
            f"## {r.group.task} on {r.group.data_id}",
            "",
            STATS_NOTE.format(block=r.block, h=r.horizon),
            "",
        ]
        if r.warnings:
            lines += ["**Warnings**", "", *[f"- {w}" for w in r.warnings], ""]
        if "auc_mean" in r.top:
            lines += _per_budget(r)
        lines += _baselines(r) + _fits(r) + _studies(r) + _sharpe(r) + _walk_forward(r) + _control(r)
        lines += _absent(r) + _top_k(r)
        if r.commands:
            lines += ["### Reproduce", "", "Each confirmed row (from the repository root):", ""]
            for name, rank, cmd in r.commands:
                lines += [f"- `{name}` rank {rank}:", "", f"  ```\n  {cmd}\n  ```"]
            lines.append("")
    lines += ["![architectures](architectures.png)", ""]
    return "\n".join(lines) + "\n"
