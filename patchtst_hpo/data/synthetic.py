"""A synthetic OHLCV panel with a planted, capacity-hungry signal: the known-answer check of the framework.

Each symbol's daily log return is `r[t+1] = sigma * (sqrt(1 - rho^2) * eps + rho * g[t])`, where `g[t]`
is a sum of products `sum_i mu_i (u_2i . v)(u_2i+1 . v)` of pairs of random orthonormal projections of
the last `LAGS` log-volume shocks `v` (i.i.d. normal; volume = 1e6 * exp(0.3 v)), with decaying weights
`mu_i ~ i^-0.5`. No linear function of the inputs predicts anything (g is symmetric and the returns feed
nothing back); each product needs hidden units of its own, so every extra unit of capacity buys the
next, smaller share of the signal: bigger models score better, with diminishing returns. With
`signal="none"` (rho = 0) nothing is predictable. The label that sees the signal is "tomorrow closes up": `task.horizon=1 task.threshold=0.0
task.label=close` (`conf/experiment/known_answer.yaml`).

Open, high, low and volume are drawn around the close (independent noise), so the OHLCV tiers compute.
Everything is seeded; the same arguments write byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from patchtst_hpo.errors import ConfigError

LAGS = 30  # the signal reads the last LAGS days (the known-answer context_length)
SIGMA = 0.01  # daily return volatility
VOL_SIGMA = 0.3  # log-volume noise (the carrier of the signal)
RHO = 0.6  # share of the next return's standard deviation that the signal explains
ABS_MEAN = float(np.sqrt(2 / np.pi))  # E|v| for v ~ N(0, 1)


def teacher(seed: int) -> np.ndarray:
    """The planted weights `mu` [LAGS] (lag 0 first): random signs, |mu_i| ~ (i+1)^-0.5, unit variance of g."""
    rng = np.random.default_rng([seed, 7])
    mu = np.arange(1, LAGS + 1) ** -0.5 * rng.choice([-1.0, 1.0], LAGS)
    return mu / np.sqrt(np.sum(mu**2) * (1 - ABS_MEAN**2))  # Var|v| = 1 - 2/pi


def signal_of(v: np.ndarray, seed: int) -> np.ndarray:
    """g[t] = sum_i mu_i (|v[t-i]| - E|v|) over the last LAGS values of `v`; NaN before LAGS-1."""
    mu, a = teacher(seed), np.abs(v) - ABS_MEAN
    g = np.full(v.shape, np.nan)
    g[..., LAGS - 1 :] = 0.0
    n = v.shape[-1]
    for i in range(LAGS):  # shift-and-add: memory stays O(symbols x days)
        g[..., LAGS - 1 :] += mu[i] * a[..., LAGS - 1 - i : n - i]
    return g


def draws(symbols: int, days: int, seed: int, signal: str = "planted") -> tuple[np.ndarray, np.ndarray]:
    """(log returns, standardised log-volume shocks), both [symbols, days]."""
    if signal not in ("planted", "none"):
        raise ConfigError(f"--signal {signal!r}: use planted or none")
    rng = np.random.default_rng(seed)
    eps, v = rng.normal(size=(symbols, days)), rng.normal(size=(symbols, days))
    if signal == "none":
        return SIGMA * eps, v
    g = np.nan_to_num(signal_of(v, seed))  # g[t] moves r[t+1]
    z = eps.copy()
    z[:, 1:] = np.sqrt(1 - RHO**2) * eps[:, 1:] + RHO * g[:, :-1]
    return SIGMA * z, v


def panel(symbols: int, days: int, seed: int, signal: str = "planted", start: str = "2000-01-03") -> dict:
    """{symbol: OHLCV frame with a `date` column}; symbols are named S0000, S0001, ..."""
    if symbols < 1 or days < 2 * LAGS:
        raise ConfigError(f"--symbols {symbols} --days {days}: need >= 1 symbol and >= {2 * LAGS} days")
    r, v = draws(symbols, days, seed, signal)
    rng = np.random.default_rng([seed, 11])
    dates = pd.bdate_range(start, periods=days)
    close = 100.0 * np.exp(np.cumsum(r, axis=1))
    prev = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    open_ = prev * np.exp(rng.normal(0, 0.002, r.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, r.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, r.shape)))
    volume = 1e6 * np.exp(VOL_SIGMA * v)
    return {
        f"S{i:04d}": pd.DataFrame(
            {
                "date": dates,
                "open": open_[i],
                "high": high[i],
                "low": low[i],
                "close": close[i],
                "volume": volume[i],
            }
        )
        for i in range(symbols)
    }


def write(out: Path, symbols: int, days: int, seed: int, signal: str = "planted") -> list[Path]:
    """Write one parquet per symbol into `out` (ready for `ingest-panel OUT --name NAME`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for sym, df in panel(symbols, days, seed, signal).items():
        path = out / f"{sym}.parquet"
        df.to_parquet(path, index=False)
        paths.append(path)
    return paths
