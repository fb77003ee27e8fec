"""A group's economic value: timing strategies of each budget winner and the baselines against buy-and-hold,
decile long-short on panels, equity curves.

Thresholds are out of sample for every model alike: chosen on val predictions of a model fitted on the
training rows only (PatchTST: the study's own trial; baselines: their train-only fit), then applied to the
test predictions of the train+val refit. A model without such predictions gets no strategy row, and the
report says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from patchtst_hpo.analysis import economics, plots


def _signals(winners: list, base, e, r) -> dict[str, tuple]:
    """name -> (y_val out of sample, p_val out of sample, p_test); models without them are noted in r.absent."""
    out, missing = {}, []
    for w in winners:
        if w.p_val_oos is None or base.y_val is None or not np.array_equal(w.y_val_oos, base.y_val):
            missing.append(f"PatchTST {w.budget}")
            continue
        out[f"PatchTST {w.budget}"] = (w.y_val_oos, w.p_val_oos, w.p_test.mean(0))
    if missing:
        r.absent["timing " + ", ".join(missing)] = (
            f"no timing strategy for {', '.join(missing)}: the study's trial left no val predictions on the "
            f"study's val rows (predictions_val.npz in its run folder), so no out-of-sample threshold exists"
        )
    for k in e.baselines:
        if k in base.p_test and k in base.p_val:
            out[f"baseline {k}"] = (base.y_val, base.p_val[k], base.p_test[k])
    return out


def _row(name: str, kind: str, thr: float, df: pd.DataFrame, pos, kw: dict) -> dict:
    s = economics.summarize(
        df["net"].to_numpy(), df["gross"].to_numpy(), pos, df["turnover"].to_numpy(), **kw
    )
    return {"strategy": name, "kind": kind, "threshold": thr, **s}


def run(cfg, dm, winners: list, base, out: Path, r) -> None:
    """The Sharpe table (r.sharpe) and the equity figure."""
    e = cfg.economics
    frame = dm.anchor_frame("test")
    if not np.array_equal(frame["label"].to_numpy(), base.y_test):
        raise RuntimeError("economics: anchor frame labels differ from the test labels")
    kw = {"periods_per_year": int(e.periods_per_year), "n_boot": int(cfg.n_boot), "seed": int(cfg.seed)}
    kw["block"] = int(e.block)
    bh = economics.timing_frame(frame, np.ones(len(frame)), 0.5, float(e.cost_bp))
    rows, curves = [_row("buy_and_hold", "buy-and-hold", np.nan, bh, bh["pos"].to_numpy(), kw)], {}
    curves["buy_and_hold (buy-and-hold)"] = bh["net"]
    n_sym = frame["symbol"].nunique()
    long_short = n_sym >= int(e.min_symbols)
    if not long_short:
        r.absent["decile long-short"] = (
            f"decile long-short left out: the test period has {n_sym} symbol(s), fewer than "
            f"economics.min_symbols={int(e.min_symbols)}"
        )
    for name, (y_va, p_va, p_te) in _signals(winners, base, e, r).items():
        thr = economics.choose_threshold(y_va, p_va, str(e.threshold_rule))
        df = economics.timing_frame(frame, p_te, thr, float(e.cost_bp))
        rows.append(_row(name, "timing", thr, df, df["pos"].to_numpy(), kw))
        curves[f"{name} (timing)"] = df["net"]
        if long_short:
            ls = economics.decile_long_short(
                frame, p_te, float(e.quantile), int(e.min_symbols), float(e.cost_bp)
            )
            if len(ls):
                rows.append(_row(name, "decile long-short", np.nan, ls, np.ones(len(ls)), kw))
                curves[f"{name} (long-short)"] = ls["net"]
    r.sharpe = pd.DataFrame(rows)
    plots.equity_figure(
        r.figure(out, "equity"),
        curves,
        f"{r.group.task} on {r.group.data_id}: test-period equity, {e.cost_bp} bp per trade; thresholds "
        f"chosen on out-of-sample val predictions",
    )
