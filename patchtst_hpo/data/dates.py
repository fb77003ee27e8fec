"""The date column of a raw file: text, numbers or timestamps -> one local (exchange) date per row.

- text with UTC offsets (`2020-03-06 16:00:00-05:00`, mixed across daylight saving or not): each row keeps
  its own wall-clock time, so its date is the exchange's local date; one line says so;
- integers yyyymmdd (20200102, in a CSV or a parquet integer column) are read as such; other numbers
  (epoch seconds, milliseconds, ...) are refused naming what they look like: never 1970-01-01;
- several rows on one date are intraday bars: refused, or aggregated into daily bars on request; one row
  per date with a time of day (a close time) keeps the date, with a note.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from patchtst_hpo.data.read import where as _where
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)

_OFFSET = r"(?<=\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}:?\d{2})$"
_TIME_TAIL = re.compile(r"(:\d{2}(?:\.\d+)?)?\s*(Z|UTC|[+-]\d{2}:?\d{2})$")
# Magnitudes of epoch timestamps of the years ~1973..2286, by unit.
_EPOCHS = [
    (1e8, 1e10, "epoch seconds"),
    (1e11, 1e13, "epoch milliseconds"),
    (1e14, 1e16, "epoch microseconds"),
    (1e17, 1e19, "epoch nanoseconds"),
]


def _from_numbers(df: pd.DataFrame, values: pd.Series, col: str, source: str, notes: set[str]) -> pd.Series:
    v = values.to_numpy(dtype="float64")
    whole = np.isfinite(v).all() and (v == np.round(v)).all()
    if whole and ((v >= 18000101) & (v <= 22001231)).all():
        dates = pd.to_datetime(
            pd.Series(v.astype("int64"), index=values.index).astype(str), format="%Y%m%d", errors="coerce"
        )
        if dates.isna().any():
            rows = values.index[dates.isna()]
            raise DataError(
                f"{source}: {int(dates.isna().sum())} integer date(s) in column {col!r} at {_where(df, rows)} are "
                f"not valid yyyymmdd (values {[int(x) for x in values[rows[:3]]]}); fix those rows"
            )
        notes.add(f"column {col!r} holds integer dates yyyymmdd; read as such")
        return dates
    kind = next((k for lo, hi, k in _EPOCHS if whole and lo <= abs(v).min() and abs(v).max() < hi), None)
    looks = f"they look like {kind}" if kind else "neither yyyymmdd integers nor epoch timestamps"
    raise DataError(
        f"{source}: column {col!r} holds numbers (e.g. {[float(x) for x in v[:2]]}), not dates; {looks}. "
        f"Write the dates as YYYY-MM-DD (for epochs: the exchange's local date) and ingest again"
    )


def _strip_offsets(text: pd.Series, notes: set[str]) -> pd.Series:
    """Text timestamps with UTC offsets -> their wall-clock text (the exchange's local time)."""
    has = text.str.contains(_OFFSET, regex=True)
    if not has.any():
        return text
    offsets = sorted(set(text[has].str.extract(r"(Z|UTC|[+-]\d{2}:?\d{2})$")[0]))
    shown = ", ".join(offsets[:4]) + (", ..." if len(offsets) > 4 else "")
    what = "mixed UTC offsets" if len(offsets) > 1 else "a UTC offset"
    notes.add(
        f"dates carry {what} ({shown}); each row is taken at its own local (exchange) date and the offset dropped"
    )
    return text.str.replace(_TIME_TAIL, lambda m: m.group(1) or "", regex=True)


def parse(
    df: pd.DataFrame, col: str, source: str, date_format: str | None, notes: set[str], given: bool = False
) -> tuple[pd.Series, str | None]:
    """(timestamps without time zone, the date format to use for the next chunk). `given`: the format is
    the user's (--date-format), not guessed from the first row."""
    raw = df[col]
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = raw
    elif pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return _from_numbers(df, raw, col, source, notes), date_format
    else:
        text = raw.astype(str).str.strip()  # " 2020-01-02" misleads the format
        if date_format is None and len(text) and text.str.fullmatch(r"[+-]?\d+(\.0*)?").all():
            return _from_numbers(df, pd.to_numeric(text), col, source, notes), date_format
        text = _strip_offsets(text, notes)
        if date_format is None and len(text):
            date_format = pd.tseries.api.guess_datetime_format(text.iloc[0])
        dates = pd.to_datetime(text, errors="coerce", format=date_format)
    bad = dates.isna()
    if bad.any():
        rows = df.index[bad]
        texts = [str(raw[r]) for r in rows[:3]]
        fix = (
            f"the format is --date-format {date_format!r}; fix those rows"
            if given
            else "fix those rows, or pass --date-format (e.g. --date-format %d/%m/%Y)"
        )
        raise DataError(
            f"{source}: {int(bad.sum())} unparseable date(s) in column {col!r} at {_where(df, rows)} "
            f"(text {texts}); {fix}"
        )
    if dates.dt.tz is not None:
        notes.add(f"dates carry a time zone ({dates.dt.tz}); the local dates are kept and the zone dropped")
        dates = dates.dt.tz_localize(None)
    return dates, date_format


def refuse_duplicates(
    out: pd.DataFrame, source: str, aggregate: bool, shape: pd.DataFrame | None = None
) -> None:
    """Exact duplicate timestamps refused; several bars on one date refused as intraday unless `aggregate`.
    `shape` carries the line numbering when `out` has lost it."""
    shape = out if shape is None else shape
    exact = out["date"].duplicated(keep=False)
    if exact.any():
        rows = out.index[exact]
        raise DataError(
            f"{source}: {int(out['date'].duplicated().sum())} duplicate date(s) in 'date' at {_where(shape, rows)}, "
            f"e.g. {[d.date().isoformat() for d in out['date'][exact].head(2)]}; keep one row per date"
        )
    day = out["date"].dt.normalize()
    several = day.duplicated(keep=False)
    if several.any() and not aggregate:
        rows = out.index[several]
        span = _where(shape, [out.index.min(), out.index.max()]).replace(", ", "-")
        raise DataError(
            f"{source}: intraday bars: {int(day[several].nunique())} date(s) in {span} have several rows (at "
            f"{_where(shape, rows)}, e.g. {[str(t) for t in out['date'][several].head(2)]}); this program needs "
            f"one bar per day: ingest daily data, or pass --aggregate-daily to make daily bars (open first, "
            f"high max, low min, close last, volume sum)"
        )


def one_row_per_date(out: pd.DataFrame, source: str) -> pd.DataFrame:
    """The dates of a table with one row per date (checked again over all chunks); a time of day is noted."""
    refuse_duplicates(out, source, aggregate=False)
    day = out["date"].dt.normalize()
    times = out["date"] - day
    if (times != pd.Timedelta(0)).any():
        example = str(times[times != pd.Timedelta(0)].iloc[0]).removeprefix("0 days ")
        log.warning(
            "%s: rows carry a time of day (e.g. %s), one row per date; the dates are kept", source, example
        )
    return out.assign(date=day)


_RULE = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def partial_bars(typed: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """One chunk's rows -> one bar per date (index: its first line; t0/t1: first/last time; n: rows)."""
    f = typed.assign(day=typed["date"].dt.normalize(), line=typed.index).sort_values("date", kind="stable")
    g = f.groupby("day", sort=False)
    bars = g.agg(
        line=("line", "min"),
        t0=("date", "min"),
        t1=("date", "max"),
        n=("date", "size"),
        **{c: (c, _RULE.get(c, "last")) for c in wanted},
    )
    return bars.reset_index().set_index("line").rename(columns={"day": "date"})


def merge_bars(parts: pd.DataFrame, source: str, wanted: list[str]) -> pd.DataFrame:
    """The chunks' bars of each date merged (a date may span chunks; rows may be out of order)."""
    parts = parts.assign(line=parts.index).sort_values("t0", kind="stable")
    g = parts.groupby("date", sort=True)
    daily = g.agg(line=("line", "min"), n=("n", "sum"), **{c: (c, _RULE.get(c, "last")) for c in wanted})
    by_end = parts.sort_values("t1", kind="stable").groupby("date", sort=True)
    for c in wanted:
        if _RULE.get(c, "last") == "last":
            daily[c] = by_end[c].last()
    log.warning(
        "%s: --aggregate-daily: %d intraday rows -> %d daily bars (open first, high max, low min, close last, "
        "volume sum)",
        source,
        int(daily["n"].sum()),
        len(daily),
    )
    out = daily.reset_index().set_index("line")[["date", *wanted]]
    out.index.name = None
    out.attrs = parts.attrs
    return out
