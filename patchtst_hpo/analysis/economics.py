"""What a predictor earns: a timing strategy and a cross-sectional decile long-short, net of costs.

Conventions (documented in docs/runbook.md "Statistics"): a prediction made at the close of anchor day t sets
the position held over t -> t+1 (its simple return `ret`); a trade costs `cost_bp` basis points per unit of
position changed; no risk-free rate (Sharpe = mean / std * sqrt(periods_per_year)); annualised return is
geometric. The Sharpe CI is a circular block bootstrap over periods (blocks keep volatility clusters together).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patchtst_hpo import metrics
from patchtst_hpo.analysis import uncertainty
from patchtst_hpo.errors import ConfigError


def positions(p: np.ndarray, threshold: float) -> np.ndarray:
    """Long (1) when the signal fires (p >= threshold), else flat (0)."""
    return (np.asarray(p, dtype=np.float64) >= threshold).astype(np.float64)


def sharpe(r: np.ndarray, periods_per_year: int) -> float:
    sd = float(np.std(r, ddof=1)) if len(r) > 1 else 0.0
    return float(np.mean(r) / sd * np.sqrt(periods_per_year)) if sd > 0 else float("nan")


def max_drawdown(r: np.ndarray) -> float:
    """Largest peak-to-trough fall of the equity curve prod(1 + r), as a positive fraction."""
    equity = np.cumprod(1 + np.asarray(r, dtype=np.float64))
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return float(np.max(1 - equity / peak)) if len(equity) else float("nan")


def sharpe_ci(
    r: np.ndarray, periods_per_year: int, n_boot: int, block: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """The Sharpe ratio's interval from the report's one bootstrap (circular blocks of `block` periods)."""
    e = uncertainty.Bootstrap.for_rows(len(r), block, n_boot, seed).sharpe(r, periods_per_year)
    return e.lo, e.hi


def summarize(
    r: np.ndarray,
    gross: np.ndarray,
    pos: np.ndarray,
    turnover: np.ndarray,
    periods_per_year: int,
    n_boot: int,
    block: int,
    seed: int,
) -> dict[str, float]:
    """Annualised return/vol, Sharpe [CI], max drawdown, turnover, hit rate (share of invested periods won)."""
    r = np.asarray(r, dtype=np.float64)
    n = len(r)
    invested = np.asarray(pos) != 0
    lo, hi = sharpe_ci(r, periods_per_year, n_boot, block, seed)
    return {
        "ann_return": float(np.prod(1 + r) ** (periods_per_year / n) - 1) if n else float("nan"),
        "ann_vol": float(np.std(r, ddof=1) * np.sqrt(periods_per_year)) if n > 1 else float("nan"),
        "sharpe": sharpe(r, periods_per_year),
        "sharpe_ci_lo": lo,
        "sharpe_ci_hi": hi,
        "max_drawdown": max_drawdown(r),
        "turnover": float(np.mean(turnover)) if n else float("nan"),
        "hit_rate": float(np.mean(np.asarray(gross)[invested] > 0)) if invested.any() else float("nan"),
        "exposure": float(np.mean(invested)) if n else float("nan"),
        "periods": float(n),
    }


def timing_frame(frame: pd.DataFrame, p: np.ndarray, threshold: float, cost_bp: float) -> pd.DataFrame:
    """Per date: the equal-weight (over symbols) net and gross timing return, position and turnover.

    `frame` has one row per test sample (columns date, symbol, ret), in the order of `p`.
    """
    f = frame[["date", "symbol", "ret"]].copy()
    f["pos"] = positions(p, threshold)
    f = f.sort_values(["symbol", "date"], kind="stable")
    f["turnover"] = f.groupby("symbol")["pos"].diff().abs().fillna(f["pos"].abs())
    f["gross"] = f["pos"] * f["ret"]
    f["net"] = f["gross"] - f["turnover"] * cost_bp / 1e4
    return f.groupby("date", sort=True)[["net", "gross", "pos", "turnover"]].mean()


def decile_long_short(
    frame: pd.DataFrame, p: np.ndarray, quantile: float, min_symbols: int, cost_bp: float
) -> pd.DataFrame:
    """Per date: long the top `quantile` of symbols by p, short the bottom, equal weights (net of costs).

    Dates with fewer than `min_symbols` symbols are skipped. Turnover is sum |w_t - w_t-1| over symbols.
    """
    f = frame[["date", "symbol", "ret"]].copy()
    f["p"] = np.asarray(p, dtype=np.float64)
    f = f[f.groupby("date")["symbol"].transform("size") >= min_symbols]
    if f.empty:
        return pd.DataFrame(columns=["net", "gross", "pos", "turnover"])
    rank = f.groupby("date")["p"].rank(pct=True, method="first")
    long, short = rank > 1 - quantile, rank <= quantile
    f["w"] = 0.0
    f.loc[long, "w"] = 1.0 / f[long].groupby("date")["symbol"].transform("size")
    f.loc[short, "w"] = -1.0 / f[short].groupby("date")["symbol"].transform("size")
    w = f.pivot_table(index="date", columns="symbol", values="w", fill_value=0.0).sort_index()
    turnover = w.diff().abs().sum(axis=1)
    turnover.iloc[0] = w.iloc[0].abs().sum()
    gross = (f["w"] * f["ret"]).groupby(f["date"]).sum().reindex(w.index)
    out = pd.DataFrame({"gross": gross, "turnover": turnover, "pos": 1.0})
    out["net"] = out["gross"] - out["turnover"] * cost_bp / 1e4
    return out


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray, rule: str) -> float:
    """The signal threshold from out-of-sample val predictions: `f1` (best-F1) or `median` (fires half the time)."""
    if rule == "f1":
        return metrics.best_f1_threshold(np.asarray(y_val), np.asarray(p_val))
    if rule == "median":
        return float(np.median(p_val))
    raise ConfigError(f"economics.threshold_rule={rule!r}: use f1 or median")
