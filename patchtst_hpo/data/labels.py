"""Threshold labels: will the price rise X% within the next H days?"""

from __future__ import annotations

import numpy as np

from patchtst_hpo.errors import ConfigError


def threshold_labels(
    high: np.ndarray, close: np.ndarray, horizon: int, threshold: float, kind: str = "high"
) -> np.ndarray:
    """y[t] = max(P[t+1..t+H]) >= close[t] * (1 + X), with P = high (kind="high") or close (kind="close").

    Uses rows t..t+H only. The last H rows have no complete future and are NaN (never used as samples).
    """
    if horizon < 1:
        raise ConfigError(f"task.horizon={horizon}: must be >= 1 day")
    if kind not in ("high", "close"):
        raise ConfigError(f"task.label={kind!r}: use 'high' or 'close'")
    future = np.asarray(high if kind == "high" else close, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    n = len(close)
    y = np.full(n, np.nan)
    if n <= horizon:
        return y
    # windows[i] = future[i .. i+H-1]; the label of t uses future[t+1 .. t+H] = windows[t+1]
    windows = np.lib.stride_tricks.sliding_window_view(future, horizon)
    fut_max = windows[1 : n - horizon + 1].max(axis=1)
    y[: n - horizon] = (fut_max >= close[: n - horizon] * (1.0 + threshold)).astype(np.float64)
    return y
