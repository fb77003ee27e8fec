"""The report's figures: scaling, loss vs compute, L(N, D), equity curves and the architecture landscape."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import textwrap  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from patchtst_hpo.analysis.verdict import Scaling, Verdict  # noqa: E402

BASELINE_STYLE = {"logistic": "--", "gbdt": "-", "volatility_logistic": ":", "majority": "-."}
BASELINE_COLOR = {"logistic": "C3", "gbdt": "C4", "volatility_logistic": "C5", "majority": "0.5"}


def ci_label(block: int) -> str:
    """The one kind of interval on a figure's legend (analysis/uncertainty.py)."""
    return f"95% CI: bootstrap over seeds and test dates (blocks of {block})"


def title(text: str, width: int = 150) -> str:
    """A verdict sentence as a figure title (wrapped; the words are the verdict's, unchanged)."""
    return "\n".join(textwrap.wrap(text, width))


def _baseline_bands(ax, baselines: dict, key: str) -> None:
    """Each baseline as a line with its bootstrap CI band (the same kind of interval as the winners')."""
    for name, style in BASELINE_STYLE.items():
        b = baselines.get(name)
        if b is None:
            continue
        color = BASELINE_COLOR[name]
        ax.axhline(b[key], ls=style, color=color, lw=1, label=f"baseline {name}")
        lo, hi = b.get(f"{key}_ci", (np.nan, np.nan))
        if np.isfinite(lo) and np.isfinite(hi):
            ax.axhspan(lo, hi, color=color, alpha=0.08, lw=0)


def _winners(ax, w: pd.DataFrame, seeds: pd.DataFrame, key: str) -> None:
    """Seeds as grey dots, each budget winner's seed mean with its interval, labelled with budget and arch."""
    ax.scatter(seeds["params"], seeds[key], s=14, color="0.6", label="one seed", zorder=2)
    mean, lo, hi = w[f"{key}_mean"], w[f"{key}_ci_lo"], w[f"{key}_ci_hi"]
    ax.errorbar(
        w["params"],
        mean,
        yerr=[mean - lo, hi - mean],
        fmt="o",
        color="C0",
        capsize=4,
        label="budget winner: seed mean",
        zorder=3,
    )
    for _, r in w.iterrows():
        ax.annotate(
            f"{r['budget']}\n{r['arch']}",
            (r["params"], r[f"{key}_mean"]),
            fontsize=7,
            xytext=(6, 6),
            textcoords="offset points",
        )


def scaling_figure(
    path: Path,
    winners: pd.DataFrame,
    seeds: pd.DataFrame,
    baselines: dict,
    verdict: Scaling,
    block: int = 1,
) -> str:
    """Test AUC (and log loss) vs exact parameter count: winners with CIs, seeds, baselines; the power-law
    curve only where the verdict allows it (enough budgets, alpha pinned, scaling detected). Returns the title.

    Every interval on this figure is the same kind (`ci_label`): winners' seed-mean and baselines alike.
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    panels = [("auc", "test AUC (higher is better)"), ("log_loss", "test log loss (lower is better)")]
    w = winners.sort_values("params")
    for ax, (key, label) in zip(axes, panels, strict=True):
        _winners(ax, w, seeds, key)
        _baseline_bands(ax, baselines, key)
        f = verdict.fit
        if key == "auc" and verdict.draw_curve and f is not None:
            xs = np.geomspace(w["params"].min() / 1.5, w["params"].max() * 1.5, 100)
            curve = f"fit 1 - (E + A N^-alpha), alpha={f.alpha:.2f}"
            ax.plot(xs, 1 - f.predict(xs), color="C2", lw=1.5, label=curve)
        ax.set_xscale("log")
        ax.set_xlim(w["params"].min() / 3, w["params"].max() * 4)  # room for the labels beside the points
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap
        ax.set_xlabel("exact parameter count N (log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best", title=ci_label(block), title_fontsize=7)
    text = f"PatchTST budget winners on the held-out test period: {verdict.sentence}"
    fig.suptitle(title(text), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return text


def _fit_line(ax, s: Scaling | None, xs: np.ndarray, what: str) -> None:
    """The verdict's power-law curve over the winners' test 1 - AUC, where the verdict allows one."""
    if s is None or not s.draw_curve or s.fit is None:
        return
    f = s.fit
    lo, hi = f.alpha_ci
    grid = np.geomspace(np.nanmin(xs) / 1.3, np.nanmax(xs) * 1.3, 100)
    label = f"fit {what} over winners' test 1 - AUC: alpha={f.alpha:.3f} [{lo:.2f}, {hi:.2f}]"
    ax.plot(grid, f.predict(grid), color="C2", lw=1.5, label=label)


def _trials_panel(ax, col: str, points: pd.DataFrame, winners, frontier_idx: np.ndarray) -> None:
    """Every complete trial's val loss by budget, the winners' test loss as stars, the compute frontier."""
    for i, (budget, g) in enumerate(points.groupby("budget", sort=False)):
        ax.scatter(g[col], g["loss"], s=22, color=f"C{i}", alpha=0.8, label=f"val, budget {budget}")
    if winners is not None and len(winners) and "test_loss" in winners:
        star = {"marker": "*", "s": 90, "color": "k", "label": "winner, test (seed mean)"}
        ax.scatter(winners[col], winners["test_loss"], **star)
    if col == "compute" and len(frontier_idx):
        fr = points.iloc[frontier_idx].sort_values("compute")
        style = {"where": "post", "color": "0.3", "lw": 1, "marker": "o", "mfc": "none", "ms": 10}
        ax.step(fr["compute"], fr["loss"], label="compute frontier (val)", **style)


def compute_figure(
    path: Path,
    points: pd.DataFrame,
    winners: pd.DataFrame | None,
    verdict: Verdict,
    loss_label: str,
    frontier_idx: np.ndarray,
) -> str:
    """Validation loss of every complete trial vs parameters and vs training FLOPs, coloured by budget.

    The right panel draws the compute frontier (lowest loss reached at each compute); confirmed winners'
    test loss (seed mean) is drawn as stars. Curves and the title are the verdict's (fits across budgets'
    winners only, never within a budget).
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), sharey=True)
    for ax, col, xlabel, s in (
        (axes[0], "params", "exact parameter count N (log scale)", verdict.scaling),
        (axes[1], "compute", "training compute C, FLOPs (log scale)", verdict.compute),
    ):
        _trials_panel(ax, col, points, winners, frontier_idx)
        xs = (
            winners[col].to_numpy(dtype=float) if winners is not None and len(winners) else np.array([np.nan])
        )
        _fit_line(ax, s, xs, "L(N)" if col == "params" else "L(C)")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"loss: {loss_label} (lower is better)")
    c = verdict.compute
    vs_c = c.sentence if c else "not assessed (compute unknown or one budget)"
    text = f"Loss vs parameters and training compute. vs N: {verdict.scaling.sentence}. vs C: {vs_c}"
    fig.suptitle(title(text), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return text


def data_scaling_figure(path: Path, points: pd.DataFrame, loss_label: str) -> None:
    """L(N, D): validation loss vs parameters, one line per training-data fraction (best trial per budget)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for i, (frac, g) in enumerate(points.groupby("train_fraction")):
        windows = g["train_windows"].dropna()
        d = f", D={int(windows.median()):,} windows" if len(windows) else ""
        best = g.loc[g.groupby("budget")["loss"].idxmin()].sort_values("params")
        ax.scatter(g["params"], g["loss"], s=14, color=f"C{i}", alpha=0.4)
        ax.plot(best["params"], best["loss"], "o-", color=f"C{i}", label=f"train_fraction={frac:g}{d}")
    ax.set_xscale("log")
    ax.set_xlabel("exact parameter count N (log scale)")
    ax.set_ylabel(f"val loss: {loss_label}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, title="line: best trial per budget", title_fontsize=7)
    ax.set_title("L(N, D): loss vs model size per training-data size", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def equity_figure(path: Path, curves: dict[str, pd.Series], title: str) -> None:
    """Cumulative net return (equity, start 1) of each strategy over the test period."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (name, r) in enumerate(curves.items()):
        ax.plot(r.index, np.cumprod(1 + r.to_numpy()), lw=1.2, color=f"C{i}", label=name)
    ax.set_ylabel("equity (net of costs, start = 1)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def architectures_figure(path: Path, trials: pd.DataFrame, metric_label: str) -> None:
    """HPO objective of complete trials vs depth and vs width, one colour per budget."""
    done = trials[trials["state"] == "COMPLETE"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, col, label in ((axes[0], "n_layers", "encoder layers"), (axes[1], "d_model", "d_model (width)")):
        for i, (budget, g) in enumerate(done.groupby("budget", sort=False)):
            jitter = 1 + 0.04 * (np.random.default_rng(i).random(len(g)) - 0.5)
            ax.scatter(g[col] * jitter, g["value"], s=22, color=f"C{i}", label=f"budget {budget}", alpha=0.8)
        ax.set_xscale("log", base=2)
        ticks = sorted(done[col].dropna().unique())
        ax.set_xticks(ticks, [str(int(t)) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(f"{label} (log scale)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"HPO objective: {metric_label}")
    axes[0].legend(fontsize=8)
    fig.suptitle("Architecture landscape of the studies (complete trials)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
