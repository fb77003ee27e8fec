"""Date-ordered train / val / test splits with purge gaps, and walk-forward folds.

A sample is anchored at row t: its input window is rows t-C+1..t and its label rows t+1..t+H. A segment
of rows [a, b) keeps the anchors whose window *and* label lie inside it: t in [a+C-1, b-H-1]. So between
the last train anchor and the first val anchor there are C+H rows (>= the required C+H-1), and no window or
label crosses a boundary. A larger `purge` drops more rows at the start of each later segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from patchtst_hpo.errors import ConfigError, DataError


@dataclass(frozen=True)
class Segment:
    name: str
    start: int  # first row (inclusive)
    stop: int  # last row (exclusive)

    def anchors(self, context_length: int, horizon: int) -> np.ndarray:
        """Anchor rows whose window and label lie inside the segment (empty if it is too short)."""
        return np.arange(self.start + context_length - 1, self.stop - horizon, dtype=np.int64)


def _rows_from_cfg(dates: pd.DatetimeIndex, split) -> tuple[int, int]:
    n = len(dates)
    if split.method == "fractions":
        train, val = float(split.train), float(split.val)
        if not (0 < train and 0 < val and train + val < 1):
            raise ConfigError(
                f"data.split.train={train}, data.split.val={val}: each must be > 0 and their "
                f"sum < 1 (the rest is test)"
            )
        return int(round(n * train)), int(round(n * (train + val)))
    if split.method == "dates":
        if split.val_start is None or split.test_start is None:
            raise ConfigError("data.split.method=dates needs data.split.val_start and data.split.test_start")
        v, t = pd.Timestamp(split.val_start), pd.Timestamp(split.test_start)
        if not v < t:
            raise ConfigError(
                f"data.split.val_start={v.date()} must be before data.split.test_start={t.date()}"
            )
        return int(dates.searchsorted(v)), int(dates.searchsorted(t))
    raise ConfigError(f"data.split.method={split.method!r}: use 'fractions' or 'dates'")


def train_val_test(dates: pd.DatetimeIndex, split, context_length: int, horizon: int) -> list[Segment]:
    """The three segments of rows for a split config; errors if any has no complete sample."""
    b1, b2 = _rows_from_cfg(dates, split)
    purge = 0 if split.get("purge") is None else int(split.purge)
    segs = [Segment("train", 0, b1), Segment("val", b1 + purge, b2), Segment("test", b2 + purge, len(dates))]
    need = context_length + horizon  # rows for one complete sample
    for s in segs:
        if s.stop - s.start < need:
            raise DataError(
                f"split {s.name!r} has {max(s.stop - s.start, 0)} rows but one sample needs context_length + "
                f"horizon = {need} (the dataset has {len(dates)} rows, {dates[0].date()}..{dates[-1].date()}; "
                f"about {3 * need + 2 * purge} rows are needed for the three splits); move data.split "
                f"boundaries or use more data"
            )
    return segs


def calendar_bounds(calendar: pd.DatetimeIndex, split) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First val date and first test date, shared by every symbol of a panel.

    `calendar` is the sorted union of all symbols' dates; `method: fractions` cuts it by row count, so
    with one symbol the boundaries are exactly those of `train_val_test`.
    """
    b1, b2 = _rows_from_cfg(calendar, split)
    if not 0 < b1 < b2 < len(calendar):
        raise DataError(
            f"data.split leaves an empty segment on the panel calendar ({len(calendar)} dates, "
            f"{calendar[0].date()}..{calendar[-1].date()}); move val_start/test_start inside it"
        )
    return calendar[b1], calendar[b2]


def symbol_segments(
    dates: pd.DatetimeIndex, bounds: tuple[pd.Timestamp, pd.Timestamp], purge: int, offset: int = 0
) -> list[Segment]:
    """One symbol's train/val/test rows (shifted by `offset`, its first row in the panel array).

    The calendar boundaries are shared; the purge is counted in this symbol's own rows, so a symbol
    with gaps still has `purge` rows of its own between segments. A segment may be too short for
    any sample: `Segment.anchors` is then empty and the symbol simply adds nothing to that split.
    """
    b1, b2 = (int(dates.searchsorted(b)) for b in bounds)
    n = len(dates)
    return [
        Segment("train", offset, offset + b1),
        Segment("val", offset + min(b1 + purge, b2), offset + b2),
        Segment("test", offset + min(b2 + purge, n), offset + n),
    ]


def walk_forward(
    n_rows: int, folds: int, val_rows: int, test_rows: int, min_train_rows: int, purge: int = 0
) -> list[list[Segment]]:
    """Expanding-window folds: fold k trains on everything before its val block; test follows val.

    Fold 0, the shortest, has last - val_rows - 2 * purge training rows (a purge before val and one before
    test): at least `min_train_rows`."""
    last = n_rows - folds * test_rows
    if last - val_rows - 2 * purge < min_train_rows:
        raise DataError(
            f"walk-forward: {n_rows} rows cannot hold {folds} folds of {test_rows} test rows, "
            f"{val_rows} val rows and >= {min_train_rows} train rows"
        )
    out = []
    for k in range(folds):
        test_start = last + k * test_rows
        val_start = test_start - purge - val_rows
        out.append(
            [
                Segment("train", 0, val_start - purge),
                Segment("val", val_start, test_start - purge),
                Segment("test", test_start, test_start + test_rows),
            ]
        )
    return out
