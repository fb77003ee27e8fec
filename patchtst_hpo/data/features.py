"""Causal feature tiers: every feature at row t is computed from rows <= t only.

Indicators use trailing rolling windows and `ewm(adjust=False)` recursions, both of which look only
backwards. Price-level indicators are expressed relative to the close (ratios) so that the 1999 and 2018
parts of a series live on the same scale. Formulas are listed in docs/data.md.

A tier is data: a name mapped to blocks of feature functions (`TIERS`). Adding a tier is one entry.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from patchtst_hpo.errors import ConfigError

Frame = pd.DataFrame
Block = dict[str, Callable[[Frame], pd.Series]]


def _ema(s: pd.Series, span: int) -> pd.Series:
    return s.ewm(span=span, adjust=False).mean()


def _wilder(s: pd.Series, n: int) -> pd.Series:
    return s.ewm(alpha=1.0 / n, adjust=False).mean()


def _rsi(close: pd.Series, n: int, lag: int = 1) -> pd.Series:
    delta = close.diff(lag)
    up, down = _wilder(delta.clip(lower=0), n), _wilder(-delta.clip(upper=0), n)
    return 100.0 - 100.0 / (1.0 + up / down.replace(0.0, np.nan))


def _stoch_rsi(close: pd.Series, n: int = 14) -> pd.Series:
    rsi = _rsi(close, n)
    lo, hi = rsi.rolling(n).min(), rsi.rolling(n).max()
    return (rsi - lo) / (hi - lo).replace(0.0, np.nan)


def _true_range(df: Frame) -> pd.Series:
    prev = df["close"].shift(1)  # fmax skips the NaN of the first row, elementwise (Series or wide frames)
    return np.fmax(np.fmax(df["high"] - df["low"], (df["high"] - prev).abs()), (df["low"] - prev).abs())


def _adx(df: Frame, n: int = 14) -> pd.Series:
    up, down = df["high"].diff(), -df["low"].diff()
    plus_dm = up.where((up > down) & (up > 0), 0.0)
    minus_dm = down.where((down > up) & (down > 0), 0.0)
    atr = _wilder(_true_range(df), n)
    plus_di, minus_di = 100 * _wilder(plus_dm, n) / atr, 100 * _wilder(minus_dm, n) / atr
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di).replace(0.0, np.nan)
    return _wilder(dx, n)


def _macd(close: pd.Series) -> tuple[pd.Series, pd.Series]:
    macd = (_ema(close, 12) - _ema(close, 26)) / close
    return macd, _ema(macd, 9)


def _obv_osc(df: Frame, n: int = 20) -> pd.Series:
    obv = (np.sign(df["close"].diff()).fillna(0.0) * df["volume"]).cumsum()
    return (obv - obv.rolling(n).mean()) / df["volume"].rolling(n).mean()


def _adosc(df: Frame) -> pd.Series:
    rng = (df["high"] - df["low"]).replace(0.0, np.nan)
    mfm = ((df["close"] - df["low"]) - (df["high"] - df["close"])) / rng
    ad = (mfm.fillna(0.0) * df["volume"]).cumsum()
    return (_ema(ad, 3) - _ema(ad, 10)) / df["volume"].rolling(10).mean()


def _bollinger(close: pd.Series, n: int = 20, k: float = 2.0) -> tuple[pd.Series, pd.Series]:
    mid, sd = close.rolling(n).mean(), close.rolling(n).std(ddof=0)
    lower, upper = mid - k * sd, mid + k * sd
    return (close - lower) / (upper - lower).replace(0.0, np.nan), (upper - lower) / mid


def _ratio(a: pd.Series, b: pd.Series) -> pd.Series:
    return a / b - 1.0


OHLCV5: Block = {
    "log_ret": lambda d: np.log(d["close"]).diff(),
    "hl_range": lambda d: (d["high"] - d["low"]) / d["close"],
    "oc_ret": lambda d: _ratio(d["close"], d["open"]),
    "gap": lambda d: _ratio(d["open"], d["close"].shift(1)),
    "log_vol_rel20": lambda d: np.log(d["volume"] / d["volume"].rolling(20).mean()),
}

A20: Block = {
    "sma5_rel": lambda d: _ratio(d["close"], d["close"].rolling(5).mean()),
    "sma10_rel": lambda d: _ratio(d["close"], d["close"].rolling(10).mean()),
    "sma20_rel": lambda d: _ratio(d["close"], d["close"].rolling(20).mean()),
    "sma50_rel": lambda d: _ratio(d["close"], d["close"].rolling(50).mean()),
    "dema10_rel": lambda d: _ratio(d["close"], 2 * _ema(d["close"], 10) - _ema(_ema(d["close"], 10), 10)),
    "dema20_rel": lambda d: _ratio(d["close"], 2 * _ema(d["close"], 20) - _ema(_ema(d["close"], 20), 20)),
    "rsi14": lambda d: _rsi(d["close"], 14) / 100.0,
    "rsi14_weekly": lambda d: _rsi(d["close"], 14, lag=5) / 100.0,
    "stochrsi_k": lambda d: _stoch_rsi(d["close"]),
    "stochrsi_d": lambda d: _stoch_rsi(d["close"]).rolling(3).mean(),
    "macd": lambda d: _macd(d["close"])[0],
    "macd_signal": lambda d: _macd(d["close"])[1],
    "macd_hist": lambda d: _macd(d["close"])[0] - _macd(d["close"])[1],
    "obv_osc20": _obv_osc,
    "adosc": _adosc,
    "atr14_rel": lambda d: _wilder(_true_range(d), 14) / d["close"],
    "adx14": lambda d: _adx(d) / 100.0,
    "bb_pctb20": lambda d: _bollinger(d["close"])[0],
    "bb_width20": lambda d: _bollinger(d["close"])[1],
    "vwap20_rel": lambda d: _ratio(
        d["close"],
        (d["close"] * d["volume"]).rolling(20).sum() / d["volume"].rolling(20).sum(),
    ),
}

VIX: Block = {
    "vix_log": lambda d: np.log(d["vix"]),
    "vix_chg": lambda d: np.log(d["vix"]).diff(),
    "vix_rel20": lambda d: _ratio(d["vix"], d["vix"].rolling(20).mean()),
    "vix_z20": lambda d: (d["vix"] - d["vix"].rolling(20).mean()) / d["vix"].rolling(20).std(ddof=0),
}

# name -> blocks, in column order. The VIX block is appended when a VIX series is given.
TIERS: dict[str, list[Block]] = {
    "a20": [A20],
    "a25": [OHLCV5, A20],
    "ohlcv5": [OHLCV5],
}

# Features a volatility-only baseline may use (see analysis/baselines.py).
VOLATILITY_FEATURES = ("atr14_rel", "hl_range", "bb_width20", "vix_log", "vix_rel20")


def _blocks(tier: str, with_vix: bool) -> list[Block]:
    if tier not in TIERS:
        raise ConfigError(
            f"data.tier={tier!r} is not a feature tier; known tiers: {', '.join(sorted(TIERS))}"
        )
    return TIERS[tier] + ([VIX] if with_vix else [])


def feature_names(tier: str, with_vix: bool = False) -> list[str]:
    return [name for block in _blocks(tier, with_vix) for name in block]


def compute_wide(frames: dict[str, Frame], tier: str) -> dict[str, Frame]:
    """Features of many symbols sharing one date index at once: `frames` maps open/high/low/close/volume
    to (dates x symbols) frames; returns feature name -> (dates x symbols) float32 frame, warm-up NaN.

    Every indicator is elementwise or a per-column rolling/ewm, so column j equals `compute` of symbol j
    alone, at the cost of one pandas call per indicator for the whole group (panels build in seconds).
    """
    return {
        name: fn(frames).replace([np.inf, -np.inf], np.nan).astype("float32")
        for block in _blocks(tier, False)
        for name, fn in block.items()
    }


def compute(df: Frame, tier: str, with_vix: bool = False) -> Frame:
    """Features of `df` (columns open/high/low/close/volume[, vix], date index); warm-up rows hold NaN."""
    cols = {name: fn(df) for block in _blocks(tier, with_vix) for name, fn in block.items()}
    out = pd.DataFrame(cols, index=df.index).replace([np.inf, -np.inf], np.nan)
    return out.astype("float32")
