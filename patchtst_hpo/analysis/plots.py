"""The report's figures: the scaling curve and the architecture landscape."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from patchtst_hpo.analysis.scaling import Fit  # noqa: E402

BASELINE_STYLE = {"logistic": "--", "volatility_logistic": ":", "majority": "-."}


def scaling_figure(
    path: Path,
    winners: pd.DataFrame,
    seeds: pd.DataFrame,
    baselines: dict,
    fits: dict[str, Fit | None],
    metric: str,
) -> None:
    """Test metric (and log loss) vs exact parameter count: winners with CIs, seeds, baselines, fit."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    # (metric key, axis label, whether the fit was made on 1 - value)
    panels = [
        (metric, f"test {metric.upper()} (higher is better)", True),
        ("log_loss", "test log loss (lower is better)", False),
    ]
    for ax, (key, label, fit_on_complement) in zip(axes, panels, strict=True):
        ax.scatter(seeds["params"], seeds[key], s=14, color="0.6", label="one seed", zorder=2)
        w = winners.sort_values("params")
        lo, hi = w[f"{key}_ci_lo"], w[f"{key}_ci_hi"]
        ax.errorbar(
            w["params"],
            w[f"{key}_mean"],
            yerr=[w[f"{key}_mean"] - lo, hi - w[f"{key}_mean"]],
            fmt="o",
            color="C0",
            capsize=4,
            label="winner: seed mean, 95% CI",
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
        for name, style in BASELINE_STYLE.items():
            if name in baselines:
                ax.axhline(baselines[name][key], ls=style, color="C3", lw=1, label=f"baseline: {name}")
        f = fits.get(key)
        if f is not None and len(w) >= 2:
            xs = np.geomspace(w["params"].min() / 1.5, w["params"].max() * 1.5, 100)
            ys = 1 - f.predict(xs) if fit_on_complement else f.predict(xs)
            ax.plot(xs, ys, color="C2", lw=1.5, label=f"fit E + A N^-alpha, alpha={f.alpha:.2f}")
        ax.set_xscale("log")
        ax.set_xlim(w["params"].min() / 3, w["params"].max() * 4)  # room for the labels beside the points
        ax.xaxis.set_minor_formatter(
            matplotlib.ticker.NullFormatter()
        )  # minor labels overlap on short ranges
        ax.set_xlabel("exact parameter count N (log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
    verdict = fits.get(metric).verdict() if fits.get(metric) else "fewer than 3 budgets: no fit"
    fig.suptitle(f"PatchTST scaling on the held-out test period. {metric.upper()}: {verdict}", fontsize=9)
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
