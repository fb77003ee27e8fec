"""One (task, data) group of studies -> its numbers: confirmation, baselines, paired comparisons, fits,
compute, economics and walk-forward. `report.py` calls `run` per group and writes the files."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from omegaconf import DictConfig

from patchtst_hpo import metrics
from patchtst_hpo.analysis import (
    baselines,
    compute,
    confirm,
    economics,
    plots,
    scaling,
    walkforward,
)
from patchtst_hpo.analysis.groups import Group, search_warnings
from patchtst_hpo.data import features
from patchtst_hpo.models.arch_grid import dims_from_cfg

log = logging.getLogger(__name__)


@dataclass
class Winner:
    """A budget's rank-1 trial after confirmation: seed stacks of its val/test probabilities."""

    budget: str
    params: int
    p_val: np.ndarray  # [seeds, val rows]
    p_test: np.ndarray  # [seeds, test rows]
    val_objective: float


@dataclass
class GroupResult:
    group: Group
    top: pd.DataFrame
    seeds: pd.DataFrame
    baseline: baselines.BaselineResult
    horizon: int
    block: int
    commands: list = field(default_factory=list)
    comparisons: list[dict] = field(default_factory=list)
    fits: dict | None = None
    compute_fits: dict = field(default_factory=dict)
    loss_label: str = ""
    sharpe: pd.DataFrame | None = None
    walk_forward: pd.DataFrame | None = None
    control: dict | None = None
    warnings: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    verdict: str = ""
    tag: str = ""  # figure-name suffix when the report has several groups

    def figure(self, out: Path, stem: str) -> Path:
        """Where figure `stem` of this group goes; its name is recorded for summary.md."""
        self.figures[stem] = f"{stem}_{self.tag}.png" if self.tag else f"{stem}.png"
        return out / self.figures[stem]

    @property
    def base(self) -> dict:
        return self.baseline.metrics


def _confirm_study(cfg, name: str, attrs: dict, ok: pd.DataFrame, storage, out: Path, r: GroupResult):
    """Top-k trials of one study: confirmation runs, seed rows, CIs; returns the rank-1 Winner (or None)."""
    ascending = attrs.get("direction") == "minimize"
    top = ok.sort_values("value", ascending=ascending).head(int(cfg.top_k))
    study = optuna.load_study(study_name=name, storage=storage)
    rows, winner = [], None
    for rank, (_, t) in enumerate(top.iterrows(), start=1):
        row = {
            "study": name,
            "budget": t["budget"],
            "rank": rank,
            "trial": int(t["number"]),
            "arch": t["arch"],
            "params": int(t["params"]),
            "val_objective": float(t["value"]),
            "compute": t.get("compute", np.nan),
        }
        if cfg.confirm:
            overrides = confirm.trial_overrides(
                attrs["fixed_overrides"], study.trials[int(t["number"])].params
            )
            d = out / "confirm" / name / str(int(t["number"]))
            cmd = confirm.run(
                overrides, list(cfg.seeds), confirm.refit_epochs(t), d, list(cfg.confirm_overrides)
            )
            r.commands.append((name, rank, cmd))
            runs = confirm.load(d, list(cfg.seeds))
            row.update(_seed_summary(runs, r.block, cfg))
            for run in runs:
                r.warnings += [f"{name} rank {rank} seed {run['seed']}: {w}" for w in run.get("warnings", [])]
                r.seeds = pd.concat(
                    [
                        r.seeds,
                        pd.DataFrame(
                            [
                                {
                                    "study": name,
                                    "budget": t["budget"],
                                    "rank": rank,
                                    "params": int(t["params"]),
                                    "seed": run["seed"],
                                    "auc": run["test"]["auc"],
                                    "log_loss": run["test"]["log_loss"],
                                    "run_dir": run["output_dir"],
                                }
                            ]
                        ),
                    ],
                    ignore_index=True,
                )
            if rank == 1:
                winner = Winner(
                    str(t["budget"]),
                    int(t["params"]),
                    np.stack([run["p_val"] for run in runs]),
                    np.stack([run["p_test"] for run in runs]),
                    float(t["value"]),
                )
                if not np.array_equal(runs[0]["y_test"], r.baseline.y_test):
                    raise RuntimeError(f"{name}: confirmation test rows differ from the baselines' test rows")
        rows.append(row)
    return rows, winner


def _seed_summary(runs: list[dict], block: int, cfg) -> dict:
    y, ps = runs[0]["y_test"], np.stack([run["p_test"] for run in runs])
    aucs = np.array([run["test"]["auc"] for run in runs], dtype=float)
    lls = np.array([run["test"]["log_loss"] for run in runs], dtype=float)
    n_boot, seed = int(cfg.n_boot), int(cfg.seed)
    lo, hi = metrics.bootstrap_ci(y, ps, n_boot=n_boot, seed=seed, block=block)
    llo, lhi = metrics.bootstrap_ci(y, ps, metrics.log_loss, n_boot=n_boot, seed=seed, block=block)
    return {
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


def _comparisons(winners: list[Winner], base: baselines.BaselineResult, block: int, cfg) -> list[dict]:
    """Paired bootstrap (same test rows) of each winner vs the best baseline, and of each budget vs the
    next smaller one. The best baseline is the one with the highest test AUC (the hardest bar to clear)."""
    y = base.y_test
    kw = {"n_boot": int(cfg.n_boot), "seed": int(cfg.seed), "block": block}
    best = max(
        (k for k in base.metrics if k != "majority"), key=lambda k: np.nan_to_num(base.metrics[k]["auc"])
    )
    out = []
    for w in winners:
        d = metrics.paired_bootstrap(y, w.p_test, base.p_test[best], **kw)
        out.append(
            {
                "a": f"PatchTST {w.budget}",
                "b": f"baseline {best}",
                **d,
                "verdict": metrics.verdict(d["lo"], d["hi"]),
            }
        )
    ws = sorted(winners, key=lambda w: w.params)
    for small, big in zip(ws, ws[1:], strict=False):
        d = metrics.paired_bootstrap(y, big.p_test, small.p_test, **kw)
        out.append(
            {
                "a": f"PatchTST {big.budget}",
                "b": f"PatchTST {small.budget}",
                **d,
                "verdict": metrics.verdict(d["lo"], d["hi"]),
            }
        )
    return out


def _economics(
    cfg, dm, winners: list[Winner], base: baselines.BaselineResult, out: Path, r: GroupResult
) -> None:
    """Sharpe table and equity curves: timing strategies of the best-val winner and the baselines vs buy-and-hold."""
    e = cfg.economics
    frame = dm.anchor_frame("test")
    if not np.array_equal(frame["label"].to_numpy(), base.y_test):
        raise RuntimeError("economics: anchor frame labels differ from the test labels")
    kw = {
        "periods_per_year": int(e.periods_per_year),
        "n_boot": int(cfg.n_boot),
        "seed": int(cfg.seed),
        "block": int(e.block),
    }
    signals = {f"PatchTST {w.budget}": (w.p_val.mean(0), w.p_test.mean(0)) for w in winners}
    signals |= {f"baseline {k}": (base.p_val[k], base.p_test[k]) for k in e.baselines if k in base.p_test}
    rows, curves = [], {}
    bh = economics.timing_frame(frame, np.ones(len(frame)), 0.5, float(e.cost_bp))
    for name, (p_va, p_te), strat, df in [("buy_and_hold", (None, None), "buy-and-hold", bh)] + [
        (n, ps, "timing", None) for n, ps in signals.items()
    ]:
        thr = np.nan
        if df is None:
            thr = economics.choose_threshold(base.y_val, p_va, str(e.threshold_rule))
            df = economics.timing_frame(frame, p_te, thr, float(e.cost_bp))
        rows.append(
            {
                "strategy": name,
                "kind": strat,
                "threshold": thr,
                **economics.summarize(
                    df["net"].to_numpy(),
                    df["gross"].to_numpy(),
                    df["pos"].to_numpy(),
                    df["turnover"].to_numpy(),
                    **kw,
                ),
            }
        )
        curves[f"{name} ({strat})"] = df["net"]
        if frame["symbol"].nunique() >= int(e.min_symbols) and p_te is not None:
            ls = economics.decile_long_short(
                frame, p_te, float(e.quantile), int(e.min_symbols), float(e.cost_bp)
            )
            if len(ls):
                rows.append(
                    {
                        "strategy": name,
                        "kind": "decile long-short",
                        "threshold": np.nan,
                        **economics.summarize(
                            ls["net"].to_numpy(),
                            ls["gross"].to_numpy(),
                            np.ones(len(ls)),
                            ls["turnover"].to_numpy(),
                            **kw,
                        ),
                    }
                )
                curves[f"{name} (long-short)"] = ls["net"]
    r.sharpe = pd.DataFrame(rows)
    plots.equity_figure(
        r.figure(out, "equity"),
        curves,
        f"{r.group.task} on {r.group.data_id}: test-period equity, {e.cost_bp} bp per trade",
    )


def _compute(cfg, r: GroupResult, tcfg: DictConfig, out: Path, winners_top: pd.DataFrame) -> pd.DataFrame:
    """Loss vs parameters and vs training compute for every complete trial (+ winners' test loss), fits of
    L(N) and L(C), and L(N, D) when trials differ in data.train_fraction. Returns trials with compute."""
    g = r.group
    trials = compute.add_compute(g.trials, dims_from_cfg(tcfg), int(tcfg.data.batch_size))
    done = trials[trials["state"] == "COMPLETE"].copy()
    metric, direction = str(g.first.get("metric", "objective")), str(g.first.get("direction", "maximize"))
    done["loss"], r.loss_label = compute.loss_of(done["value"], metric, direction)
    done = done.reset_index(drop=True)
    r.compute_fits = compute.fits(done, int(cfg.n_boot), int(cfg.seed))
    win = None
    if "auc_mean" in winners_top:
        win = winners_top.merge(
            done[["study", "number", "compute"]],
            left_on=["study", "trial"],
            right_on=["study", "number"],
            suffixes=("_x", ""),
        )
        win["test_loss"] = 1 - win["auc_mean"]
    c = done[np.isfinite(done["compute"].astype(float))]
    idx = (
        c.index[compute.frontier(c["compute"].to_numpy(float), c["loss"].to_numpy(float))].to_numpy()
        if len(c)
        else np.array([], int)
    )
    plots.compute_figure(
        r.figure(out, "compute"), done, win, r.compute_fits, f"val {r.loss_label}; stars: test 1 - AUC", idx
    )
    if done["train_fraction"].nunique() > 1:
        plots.data_scaling_figure(r.figure(out, "data_scaling"), done, r.loss_label)
    return trials


def _verdict(r: GroupResult, winners: list[Winner]) -> str:
    """One sentence: does the best transformer beat the best baseline (paired CI), and is there scaling?"""
    if not winners:
        return "No confirmed transformer: nothing to compare."
    best = max(
        winners,
        key=lambda w: w.val_objective if r.group.first.get("direction") != "minimize" else -w.val_objective,
    )
    c = next(
        c for c in r.comparisons if c["a"] == f"PatchTST {best.budget}" and c["b"].startswith("baseline")
    )
    row = r.top[(r.top["budget"] == best.budget) & (r.top["rank"] == 1)].iloc[0]
    b = r.base[c["b"].split(" ", 1)[1]]
    overlap = not (row["auc_ci_lo"] > b["auc_ci"][1] or row["auc_ci_hi"] < b["auc_ci"][0])
    s = (
        f"The best transformer on validation (PatchTST {best.budget}, test AUC {row['auc_mean']:.3f} "
        f"[{row['auc_ci_lo']:.3f}, {row['auc_ci_hi']:.3f}]) **{c['verdict']}** the best baseline "
        f"({c['b'].split(' ', 1)[1]}, {b['auc']:.3f} [{b['auc_ci'][0]:.3f}, {b['auc_ci'][1]:.3f}]): paired AUC "
        f"difference {c['diff']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]; their separate CIs "
        f"{'overlap' if overlap else 'do not overlap'}. "
    )
    f = (r.fits or {}).get("auc")
    if f is not None:
        return s + f"Scaling over budgets: {f.verdict()}."
    pairs = [c for c in r.comparisons if c["b"].startswith("PatchTST")]
    if not pairs:
        return s + "Scaling: not assessed (one budget)."
    up = [
        f"{c['a'].split()[1]} vs {c['b'].split()[1]} {c['verdict']} ({c['diff']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}])"
        for c in pairs
    ]
    detected = any(c["verdict"] == "beats" for c in pairs)
    return (
        s
        + f"Scaling {'detected' if detected else 'not detected'} (fewer than 3 budgets, no fit; paired: {'; '.join(up)})."
    )


def run(cfg: DictConfig, g: Group, storage, out: Path, tag: str = "") -> GroupResult:
    """Everything the report says about one (task, data) group."""
    tcfg, dm = confirm.datamodule(g.first["fixed_overrides"])
    horizon = int(tcfg.task.horizon)
    block = metrics.block_length(horizon, int(cfg.bootstrap.min_block))
    names = features.feature_names(tcfg.data.tier, with_vix=bool(tcfg.data.vix))
    base = baselines.evaluate(dm, names, cfg.baselines, int(cfg.n_boot), int(cfg.seed), block)
    r = GroupResult(g, pd.DataFrame(), pd.DataFrame(), base, horizon, block, tag=tag)
    rel = cfg.reliability
    r.warnings += search_warnings(g)
    r.warnings += metrics.reliability_warnings(
        base.y_test, "test", int(rel.min_samples), int(rel.min_per_class)
    )
    n_warn = g.trials["warnings"].notna().sum()
    if n_warn:
        r.warnings.append(f"{n_warn} HPO trials carry evaluation warnings (see trials.csv `warnings`)")
    done = g.trials[g.trials["state"] == "COMPLETE"]
    rows, winners = [], []
    for name in g.studies:
        ok = done[done["study"] == name]
        if ok.empty:
            log.warning("%s: no complete trial; left out", name)
            continue
        study_rows, w = _confirm_study(cfg, name, g.attrs[name], ok, storage, out, r)
        rows += study_rows
        winners += [w] if w is not None else []
    r.top = pd.DataFrame(rows)
    trials = _compute(cfg, r, tcfg, out, r.top[r.top["rank"] == 1] if len(r.top) else r.top)
    if r.top.empty:
        r.verdict = "No complete trial in this group: nothing to confirm."
        return r
    r.top = (
        r.top.drop(columns="compute")
        .merge(
            trials[["study", "number", "compute"]],
            left_on=["study", "trial"],
            right_on=["study", "number"],
            how="left",
        )
        .drop(columns="number")
    )
    if winners:
        r.comparisons = _comparisons(winners, base, block, cfg)
        _scaling(cfg, r, out)
        _economics(cfg, dm, winners, base, out, r)
        if cfg.shuffled_control.enabled:
            _shuffled_control(cfg, r, out, storage)
        if walkforward.enabled(cfg.walk_forward):
            best = max(
                winners,
                key=lambda w: w.val_objective if g.first.get("direction") != "minimize" else -w.val_objective,
            )
            r.walk_forward = walkforward.run(cfg, g, r, best.budget, storage, out)
    r.verdict = _verdict(r, winners)
    for w in r.warnings:
        log.warning("%s: %s", g.key, w)
    return r


def _scaling(cfg, r: GroupResult, out: Path) -> None:
    """Test-metric fit over budget winners (3+ budgets) and the scaling figure."""
    winners = r.top[r.top["rank"] == 1]
    ws = r.seeds[r.seeds["rank"] == 1]
    fits = {
        "auc": scaling.fit(ws["params"], 1 - ws["auc"], n_boot=int(cfg.n_boot), seed=int(cfg.seed)),
        "log_loss": scaling.fit(ws["params"], ws["log_loss"], n_boot=int(cfg.n_boot), seed=int(cfg.seed)),
    }
    r.fits = {k: (f if winners["params"].nunique() >= 3 else None) for k, f in fits.items()}
    plots.scaling_figure(r.figure(out, "scaling"), winners, ws, r.base, r.fits, "auc", r.block)


def _shuffled_control(cfg, r: GroupResult, out: Path, storage) -> None:
    """The best budget winner refit with data.shuffle_labels=true (training labels permuted): its test AUC
    must be ~0.5; more means the inputs leak the labels (future data, windows crossing split boundaries)."""
    c = cfg.shuffled_control
    win = (
        r.top[r.top["rank"] == 1]
        .sort_values("val_objective", ascending=r.group.first.get("direction") == "minimize")
        .iloc[0]
    )
    params = optuna.load_study(study_name=win["study"], storage=storage).trials[int(win["trial"])].params
    overrides = [
        *confirm.trial_overrides(r.group.attrs[win["study"]]["fixed_overrides"], params),
        "data.shuffle_labels=true",
    ]
    trial = r.group.trials[
        (r.group.trials["study"] == win["study"]) & (r.group.trials["number"] == win["trial"])
    ].iloc[0]
    d = out / "control" / win["study"] / str(int(win["trial"]))
    confirm.run(overrides, list(c.seeds), confirm.refit_epochs(trial), d, list(cfg.confirm_overrides))
    runs = confirm.load(d, list(c.seeds))
    y, ps = runs[0]["y_test"], np.stack([x["p_test"] for x in runs])
    auc = float(np.mean([metrics.auc(y, p) for p in ps]))
    lo, hi = metrics.bootstrap_ci(y, ps, n_boot=int(cfg.n_boot), seed=int(cfg.seed), block=r.block)
    ok = abs(auc - 0.5) <= float(c.tolerance) or lo <= 0.5 <= hi
    r.control = {
        "budget": win["budget"],
        "arch": win["arch"],
        "auc": auc,
        "auc_ci_lo": lo,
        "auc_ci_hi": hi,
        "passed": bool(ok),
    }
    if not ok:
        r.warnings.append(
            f"shuffled-label control: test AUC {auc:.3f} [{lo:.3f}, {hi:.3f}] is not ~0.5: check for leakage"
        )
