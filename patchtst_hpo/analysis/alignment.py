"""Test (or val) samples -> their anchor date, symbol and the next period's return, in prediction order.

Predictions files (predictions_<split>.npz) hold labels and probabilities in the DataModule's sample order;
the report rebuilds the same DataModule (same data, task and split overrides) and reads the anchors here, so
economics and walk-forward folds can align each prediction with a date and a return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patchtst_hpo.data import processed
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.errors import DataError


def anchor_frame(dm: WindowDataModule, split: str) -> pd.DataFrame:
    """Columns date, symbol, ret (close[t+1] / close[t] - 1 of anchor t), label; one row per sample.

    A panel DataModule that knows its symbols provides `anchor_frame(split)` itself (same columns); for the
    single-series DataModule this rebuilds it from the processed dataset.
    """
    if hasattr(dm, "anchor_frame"):  # INTEGRATOR: panel DataModule hook (data/panel*.py), same columns
        return dm.anchor_frame(split)
    d = dm.data_cfg
    df, entry = processed.load(d.root, d.ohlcv, d.tier, d.vix, d.version)
    a = dm.datasets[split].anchors.numpy()
    close = df["close"].to_numpy(dtype=np.float64)
    if a.max() + 1 >= len(close):
        raise DataError(f"{entry['id']}: the last {split} anchor has no next-day close to compute its return")
    return pd.DataFrame(
        {
            "date": pd.to_datetime(df["date"].to_numpy()[a]),
            "symbol": str(d.ohlcv),
            "ret": close[a + 1] / close[a] - 1,
            "label": dm.datasets[split].y[a].numpy().astype(np.float64),
        }
    )


def calendar(dm: WindowDataModule) -> pd.DatetimeIndex:
    """Every date of the dataset (sorted, unique): the rows walk-forward folds are cut on."""
    if hasattr(dm, "calendar"):  # INTEGRATOR: panel DataModule hook (the union of the symbols' dates)
        return dm.calendar()
    d = dm.data_cfg
    df, _ = processed.load(d.root, d.ohlcv, d.tier, d.vix, d.version)
    return pd.DatetimeIndex(pd.to_datetime(df["date"]).drop_duplicates().sort_values())
