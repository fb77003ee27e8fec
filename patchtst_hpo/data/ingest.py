"""Raw files (CSV or parquet; OHLCV or one value column) -> canonical raw parquet + raw manifest entry.

Canonical raw: a `date` column (datetime64, sorted, unique) and float64 value columns in a fixed order.
Bad input raises `DataError` before anything is written; a failed ingest leaves data/ as it was.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from patchtst_hpo.atomic import atomic_write_bytes
from patchtst_hpo.data.manifest import Entry, Manifest, sha256_file
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)

OHLCV = ["open", "high", "low", "close", "volume"]
PRICES = ["open", "high", "low", "close"]


def raw_manifest(root: Path) -> Manifest:
    return Manifest(Path(root) / "raw" / "manifest.json")


def normalize_name(name: object) -> str:
    """A column name as ingest compares it: stripped, lower case, inner spaces as `_` (`Adj Close` -> `adj_close`)."""
    return "_".join(str(name).replace("\ufeff", "").strip().lower().split())


def read_table(path: Path, text: bool = False) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or parquet file, with errors that name the file.

    CSV rows keep their file line numbers (blank lines are rows, dropped later with a note); `text=True`
    keeps every CSV cell as written, so a bad value can be shown as the text it is.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path (relative paths are from the current folder)")
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
            if isinstance(df.index, pd.DatetimeIndex):  # written with the dates as its index
                df = df.reset_index()
            return df
        extra = {"dtype": str, "keep_default_na": False} if text else {}
        df = pd.read_csv(path, skip_blank_lines=False, **extra)
    except Exception as e:  # pyarrow / pandas raise many types for corrupt files
        kind = "parquet" if path.suffix == ".parquet" else "CSV"
        raise DataError(f"{path}: cannot be read as {kind} ({' '.join(str(e).split())})") from e
    df.attrs["first_line"] = 2  # row i of the frame is line i + 2 of the file (line 1 is the header)
    return df


def _where(df: pd.DataFrame, rows: pd.Index | list) -> str:
    """'line 7' (CSV) or 'row 6' (parquet) for the first few offending rows."""
    rows = list(rows)
    first = df.attrs.get("first_line")
    label, offset = ("line", first) if first is not None else ("row", 1)
    shown = ", ".join(str(int(r) + offset) for r in rows[:3])
    return f"{label}{'s' if len(rows) > 1 else ''} {shown}{', ...' if len(rows) > 3 else ''}"


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | series.astype(str).str.strip().eq("")


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


def _parse_dates(df: pd.DataFrame, col: str, source: str, date_format: str | None) -> pd.Series:
    raw = df[col]
    text = raw.str.strip() if pd.api.types.is_string_dtype(raw) else raw  # " 2020-01-02" misleads the format
    dates = pd.to_datetime(text, errors="coerce", format=date_format)
    bad = dates.isna()
    if bad.any():
        rows = df.index[bad]
        texts = [str(raw[r]) for r in rows[:3]]
        fix = (
            f"the format is --date-format {date_format!r}; fix those rows"
            if date_format
            else "fix those rows, or pass --date-format (e.g. --date-format %d/%m/%Y)"
        )
        raise DataError(
            f"{source}: {int(bad.sum())} unparseable date(s) in column {col!r} at {_where(df, rows)} "
            f"(text {texts}); {fix}"
        )
    if dates.dt.tz is not None:
        log.warning("%s: dates carry a time zone (%s); it is dropped", source, dates.dt.tz)
        dates = dates.dt.tz_localize(None)
    return dates


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
                f"{source}: {int(blank.sum())} empty value(s) in column {col!r} at {_where(df, rows)}; "
                f"fill or drop those rows"
            )
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            rows = df.index[bad]
            texts = [str(raw[r]) for r in rows[:3]]
            raise DataError(
                f"{source}: {int(bad.sum())} value(s) in column {col!r} that are not finite numbers at "
                f"{_where(df, rows)} (text {texts}); fix or drop those rows"
            )
        out[col] = values
    return pd.DataFrame(out, index=df.index)


def canonicalize(
    df: pd.DataFrame,
    source: str,
    value_columns: list[str] | None = None,
    date_column: str = "date",
    date_format: str | None = None,
) -> pd.DataFrame:
    """Validate and normalise a raw table; `value_columns=None` means OHLCV.

    Every change made to the table (columns ignored, blank lines or time zones dropped, rows sorted) is
    logged once; anything that cannot be made right raises `DataError` naming the line and the text.
    """
    attrs = dict(df.attrs)
    df = df.rename(columns={c: normalize_name(c) for c in df.columns})
    df.attrs = attrs
    date_col = _date_column(df, source, date_column)
    wanted = OHLCV if value_columns is None else [normalize_name(c) for c in value_columns]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; columns present: {list(df.columns)}. "
            f"Rename them, or pass --date-column / --value-column"
        )
    ignored = [c for c in df.columns if c not in (date_col, *wanted)]
    if ignored:
        log.warning("%s: ignoring column(s) %s (only %s are used)", source, ignored, ["date", *wanted])
    empty = df[[date_col, *wanted]].apply(_blank).all(axis=1)
    if empty.any():
        log.warning(
            "%s: dropping %d blank row(s) at %s", source, int(empty.sum()), _where(df, df.index[empty])
        )
        df = df.loc[~empty]
    if df.empty:
        raise DataError(f"{source}: no data rows")
    dates = _parse_dates(df, date_col, source, date_format)
    dup = dates.duplicated(keep=False)
    if dup.any():
        rows = df.index[dup]
        raise DataError(
            f"{source}: {int(dates.duplicated().sum())} duplicate date(s) in {date_col!r} at {_where(df, rows)}, "
            f"e.g. {[d.date().isoformat() for d in dates[dup].head(2)]}; keep one row per date"
        )
    values = _parse_values(df, wanted, source)
    prices = [c for c in wanted if c != "volume"]
    nonpos = values[prices].le(0).any(axis=1)
    if nonpos.any():
        rows = values.index[nonpos]
        col = prices[int(np.argmax(values.loc[rows[0], prices].le(0).to_numpy()))]
        raise DataError(
            f"{source}: {int(nonpos.sum())} row(s) with a non-positive price at {_where(df, rows)}; first in "
            f"column {col!r} (value {values.loc[rows[0], col]}); prices must be > 0"
        )
    if "volume" in wanted:
        _check_volume(df, values["volume"], source)
    out = pd.concat([dates.rename("date"), values], axis=1)
    if not out["date"].is_monotonic_increasing:
        log.warning("%s: dates are not in increasing order; sorting them", source)
        out = out.sort_values("date", kind="stable")
    return out.reset_index(drop=True)


def _check_volume(df: pd.DataFrame, volume: pd.Series, source: str) -> None:
    neg = volume < 0
    if neg.any():
        raise DataError(
            f"{source}: {int(neg.sum())} negative value(s) in column 'volume' at {_where(df, volume.index[neg])}"
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
            _where(df, volume.index[zero]),
        )


def warmup_rows(tier: str) -> int:
    """Leading rows without every feature of `tier` (its longest indicator), measured on a synthetic series."""
    from patchtst_hpo.data import features

    n = 400
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    frame = pd.DataFrame(
        {
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.uniform(1, 2, n),
        }
    )
    complete = np.isfinite(features.compute(frame, tier).to_numpy()).all(axis=1)
    return int(np.argmax(complete))


def min_rows(tier: str, context_length: int, horizon: int = 1) -> int:
    """Rows a series needs for one training window: the tier's warm-up, then a context and its label."""
    return warmup_rows(tier) + context_length + horizon


def content_sha256(df: pd.DataFrame) -> str:
    """A hash of the table's content (not of the parquet bytes, which vary with the writer version)."""
    h = hashlib.sha256(",".join(df.columns).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def ingest(
    path: Path,
    name: str,
    root: Path,
    value_columns: list[str] | None = None,
    date_column: str = "date",
    source: str | None = None,
    date_format: str | None = None,
    need_rows: tuple[str, int] | None = None,
    allow_short: bool = False,
) -> tuple[Entry, str]:
    """Register `path` as dataset `name` under `root/raw`; returns (entry, what happened).

    What happened: `registered` (a new version), `unchanged` (identical content, file intact) or `restored`
    (identical content whose registered file was missing or altered: rewritten from this file).
    `need_rows=(tier, context_length)` refuses an OHLCV series too short for one window of that tier
    (`allow_short` turns the refusal into a warning).
    """
    df = canonicalize(read_table(path, text=True), str(path), value_columns, date_column, date_format)
    if need_rows is not None and value_columns is None:
        tier, context = need_rows
        need = min_rows(tier, context)
        if len(df) < need:
            msg = (
                f"{path}: {len(df)} rows, but one window of tier {tier} needs {need} "
                f"({warmup_rows(tier)} warm-up rows for its longest indicator + context {context} + 1 label row; "
                f"three splits need about 3x that)"
            )
            if not allow_short:
                raise DataError(f"{msg}; use a longer history, or pass --allow-short to register it anyway")
            log.warning("%s; registering it anyway (--allow-short)", msg)
    digest = content_sha256(df)
    manifest = raw_manifest(root)
    entry, found = manifest.add_version(
        name,
        lambda e: e["content_sha256"] == digest,
        to_parquet_bytes(df),
        f"raw/{name}/v{{version}}.parquet",
        {
            "name": name,
            "content_sha256": digest,
            "rows": len(df),
            "columns": [c for c in df.columns if c != "date"],
            "first_date": df["date"].iloc[0].date().isoformat(),
            "last_date": df["date"].iloc[-1].date().isoformat(),
            "source": source or str(Path(path).resolve()),
            "ingest_args": {
                "date_column": date_column,
                "date_format": date_format,
                "value_columns": value_columns,
            },
        },
        on_match=lambda e: _restore(manifest, e, df, path),
    )
    return entry, found or "registered"


def _restore(manifest: Manifest, entry: Entry, df: pd.DataFrame, path: Path) -> str:
    """Identical content: rewrite the registered file if it is missing or altered (inside the manifest lock)."""
    target = manifest.file(entry)
    if target.exists() and sha256_file(target) == entry["sha256"]:
        log.info("%s: identical to %s v%d; nothing to do", path, entry["name"], entry["version"])
        return "unchanged"
    state = "missing" if not target.exists() else "altered"
    atomic_write_bytes(target, to_parquet_bytes(df))
    sha = sha256_file(target)
    if sha != entry["sha256"]:  # another parquet writer version: same table, other bytes
        log.warning("%s: rewritten with the same content but other bytes; sha256 updated", target)
        entry["sha256"] = sha
    log.warning(
        "%s was %s; restored from %s (same content as %s v%d)",
        target,
        state,
        path,
        entry["name"],
        entry["version"],
    )
    return "restored"


def load_raw(root: Path, name: str, version: int | str = "latest") -> tuple[pd.DataFrame, Entry]:
    """A registered raw dataset (sha256-checked) as a date-indexed frame, with its manifest entry."""
    manifest = raw_manifest(root)
    entry = manifest.get(name, version)
    path = manifest.check(entry)
    try:
        df = pd.read_parquet(path)
    except Exception as e:
        raise DataError(f"{path}: unreadable parquet ({e}); {manifest.repair_hint(entry)}") from e
    return df.set_index("date"), entry
