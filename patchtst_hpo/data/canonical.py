"""A raw table -> the canonical raw table: `date` (datetime64, one row per day, sorted) + float64 values.

Row checks (dates, numbers) run on each chunk as it is read, so a large CSV is typed chunk by chunk; table
checks (one row per date, OHLC order, positive prices, volume) run on the typed table. Every change made
(columns ignored, blank lines, offsets, times of day dropped, rows sorted, bars aggregated or repaired on
request) is logged once; anything else that is wrong raises `DataError` naming the lines and the text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from patchtst_hpo.data import dates as date_rules
from patchtst_hpo.data.read import where
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)

OHLCV = ["open", "high", "low", "close", "volume"]
PRICES = ["open", "high", "low", "close"]


@dataclass
class Options:
    value_columns: list[str] | None = None  # None = OHLCV
    date_column: str = "date"
    date_format: str | None = None
    repair_ohlc: bool = False  # widen high/low to cover open and close instead of refusing
    aggregate_daily: bool = False  # several bars on one date -> one daily bar instead of refusing


def normalize_name(name: object) -> str:
    """A column name as ingest compares it: stripped, lower case, inner spaces as `_` (`Adj Close` -> `adj_close`)."""
    return "_".join(str(name).replace("\ufeff", "").strip().lower().split())


def _blank(series: pd.Series) -> pd.Series:
    """Empty or whitespace-only cells (text columns: without making new strings)."""
    if pd.api.types.is_string_dtype(series) or series.dtype == object:
        text = series.astype(str)
        return series.isna() | text.eq("") | text.str.isspace()
    return series.isna()


def _date_column(df: pd.DataFrame, source: str, date_column: str) -> str:
    """The date column: `date_column` (normalised like the headers), or a blank first header (`,Open,...`)."""
    want = normalize_name(date_column)
    if want in df.columns:
        return want
    first = str(df.columns[0])
    if first.startswith("unnamed:_0") or first == "":
        log.warning("%s: the first column has no header; using it as the date column", source)
        return df.columns[0]
    raise DataError(
        f"{source}: no date column {date_column!r}; columns present: {list(df.columns)}. "
        f"Pass --date-column NAME (one of those)"
    )


def _parse_values(df: pd.DataFrame, wanted: list[str], source: str) -> pd.DataFrame:
    """Float columns; a cell that is not a finite number is refused with its line and its text."""
    out = {}
    for col in wanted:
        raw = df[col]
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        blank = _blank(raw)
        if blank.any():
            rows = df.index[blank]
            raise DataError(
                f"{source}: {int(blank.sum())} empty value(s) in column {col!r} at {where(df, rows)}; "
                f"fill or drop those rows"
            )
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            rows = df.index[bad]
            texts = [str(raw[r]) for r in rows[:3]]
            raise DataError(
                f"{source}: {int(bad.sum())} value(s) in column {col!r} that are not finite numbers at "
                f"{where(df, rows)} (text {texts}); fix or drop those rows"
            )
        out[col] = values
    return pd.DataFrame(out, index=df.index)


class _Typer:
    """Types chunk after chunk: headers checked on the first, dates and values on each."""

    def __init__(self, source: str, opts: Options) -> None:
        self.source, self.opts = source, opts
        self.columns: list[str] | None = None
        self.date_col = ""
        self.wanted = OHLCV if opts.value_columns is None else [normalize_name(c) for c in opts.value_columns]
        self.blank_rows: list[int] = []
        self.attrs: dict = {}
        self.notes: set[str] = set()
        self.date_format = opts.date_format

    def _headers(self, df: pd.DataFrame) -> None:
        self.date_col = _date_column(df, self.source, self.opts.date_column)
        missing = [c for c in self.wanted if c not in df.columns]
        if missing:
            raise DataError(
                f"{self.source}: missing column(s) {missing}; columns present: {list(df.columns)}. "
                f"Rename them, or pass --date-column / --value-column"
            )
        ignored = [c for c in df.columns if c not in (self.date_col, *self.wanted)]
        if ignored:
            log.warning(
                "%s: ignoring column(s) %s (only %s are used)", self.source, ignored, ["date", *self.wanted]
            )
        self.columns = list(df.columns)

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        attrs = dict(df.attrs)
        df = df.rename(columns={c: normalize_name(c) for c in df.columns})
        df.attrs = self.attrs = attrs
        if self.columns is None:
            self._headers(df)
        cols = [self.date_col, *self.wanted]
        empty = df[cols].apply(_blank).all(axis=1) if len(df) else pd.Series(dtype=bool)
        if empty.any():
            self.blank_rows += list(df.index[empty])
            df = df.loc[~empty]
        stamps, self.date_format = date_rules.parse(
            df,
            self.date_col,
            self.source,
            self.date_format,
            self.notes,
            given=self.opts.date_format is not None,
        )
        typed = pd.concat([stamps.rename("date"), _parse_values(df, self.wanted, self.source)], axis=1)
        typed.attrs = attrs
        return typed


def canonicalize(
    frames: pd.DataFrame | Iterable[pd.DataFrame],
    source: str,
    value_columns: list[str] | None = None,
    date_column: str = "date",
    date_format: str | None = None,
    opts: Options | None = None,
) -> pd.DataFrame:
    """Validate and normalise a raw table (one frame, or the chunks of one file); see the module docstring."""
    opts = opts or Options(value_columns, date_column, date_format)
    typer = _Typer(source, opts)
    chunks, stamps = [], []
    for frame in [frames] if isinstance(frames, pd.DataFrame) else frames:
        typed = typer(frame)
        if opts.aggregate_daily:  # bars of each chunk merged at once: memory of the daily table only
            stamps.append(typed["date"])
            typed = date_rules.partial_bars(typed, typer.wanted)
        else:  # an intraday file is refused at its first chunk, not after reading it all
            date_rules.refuse_duplicates(typed, source, aggregate=False)
        chunks.append(typed)
    if typer.columns is None:
        raise DataError(f"{source}: no data rows")
    shape = pd.DataFrame()
    shape.attrs = typer.attrs
    if typer.blank_rows:
        log.warning(
            "%s: dropping %d blank row(s) at %s",
            source,
            len(typer.blank_rows),
            where(shape, typer.blank_rows),
        )
    out = pd.concat(chunks) if chunks else pd.DataFrame()
    if out.empty:
        raise DataError(f"{source}: no data rows")
    out.attrs = typer.attrs
    for note in sorted(typer.notes):
        log.warning("%s: %s", source, note)
    if opts.aggregate_daily:
        date_rules.refuse_duplicates(pd.concat(stamps).to_frame("date"), source, aggregate=True, shape=shape)
        out = date_rules.merge_bars(out, source, typer.wanted)
    else:
        out = date_rules.one_row_per_date(out, source)
    _check_prices(out, source, [c for c in typer.wanted if c != "volume"], opts.repair_ohlc)
    if "volume" in typer.wanted:
        _check_volume(out, out["volume"], source)
    if not out["date"].is_monotonic_increasing:
        log.warning("%s: dates are not in increasing order; sorting them", source)
        out = out.sort_values("date", kind="stable")
    return out.reset_index(drop=True)


def _check_prices(values: pd.DataFrame, source: str, prices: list[str], repair: bool) -> None:
    nonpos = values[prices].le(0).any(axis=1)
    if nonpos.any():
        rows = values.index[nonpos]
        col = prices[int(np.argmax(values.loc[rows[0], prices].le(0).to_numpy()))]
        raise DataError(
            f"{source}: {int(nonpos.sum())} row(s) with a non-positive price at {where(values, rows)}; first in "
            f"column {col!r} (value {values.loc[rows[0], col]}); prices must be > 0"
        )
    if set(PRICES) <= set(prices):
        _check_ohlc(values, source, repair)


def _check_ohlc(v: pd.DataFrame, source: str, repair: bool) -> None:
    """Low <= Open, Close <= High (and so Low <= High), refused with the lines, or widened on request."""
    top, bottom = v[["open", "close"]].max(axis=1), v[["open", "close"]].min(axis=1)
    bad = (v["high"] < top) | (v["low"] > bottom) | (v["low"] > v["high"])
    if not bad.any():
        return
    rows = v.index[bad]
    r = v.loc[rows[0]]
    example = f"open {r['open']:g}, high {r['high']:g}, low {r['low']:g}, close {r['close']:g}"
    if not repair:
        raise DataError(
            f"{source}: {int(bad.sum())} row(s) break low <= open, close <= high at {where(v, rows)} (first: "
            f"{example}); fix the file, or pass --repair-ohlc to widen high/low to cover open and close"
        )
    v.loc[bad, "high"] = np.maximum(v.loc[bad, "high"], top[bad])
    v.loc[bad, "low"] = np.minimum(v.loc[bad, "low"], bottom[bad])
    log.warning(
        "%s: --repair-ohlc: high/low widened on %d row(s) at %s (first was: %s)",
        source,
        int(bad.sum()),
        where(v, rows),
        example,
    )


def _check_volume(df: pd.DataFrame, volume: pd.Series, source: str) -> None:
    neg = volume < 0
    if neg.any():
        raise DataError(
            f"{source}: {int(neg.sum())} negative value(s) in column 'volume' at {where(df, volume.index[neg])}"
        )
    zero = volume == 0
    if zero.all():
        raise DataError(
            f"{source}: column 'volume' is 0 on every row (no volume data, as for many indices); every feature "
            f"tier uses volume, so ingest a file with real volume"
        )
    if zero.any():
        log.warning(
            "%s: %d zero-volume day(s) at %s; the volume features there (log_vol_rel20, ...) carry the "
            "previous day's value forward",
            source,
            int(zero.sum()),
            where(df, volume.index[zero]),
        )
