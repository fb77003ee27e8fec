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
from patchtst_hpo.data.manifest import Entry, Manifest, now_iso, sha256_file
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)

OHLCV = ["open", "high", "low", "close", "volume"]
PRICES = ["open", "high", "low", "close"]


def raw_manifest(root: Path) -> Manifest:
    return Manifest(Path(root) / "raw" / "manifest.json")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or parquet file, with errors that name the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path (relative paths are from the current folder)")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as e:  # pyarrow / pandas raise many types for corrupt files
        raise DataError(
            f"{path}: cannot be read as {'parquet' if path.suffix == '.parquet' else 'CSV'} ({e})"
        ) from e


def canonicalize(
    df: pd.DataFrame, source: str, value_columns: list[str] | None = None, date_column: str = "date"
) -> pd.DataFrame:
    """Validate and normalise a raw table; `value_columns=None` means OHLCV."""
    df = df.rename(columns={c: str(c).strip().lower().replace(" ", "_") for c in df.columns})
    date_column = date_column.lower()
    wanted = OHLCV if value_columns is None else [c.lower() for c in value_columns]
    missing = [c for c in [date_column, *wanted] if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; columns present: {list(df.columns)}. "
            f"Rename them, or pass --date-column / --value-column"
        )
    dates = pd.to_datetime(df[date_column], errors="coerce")
    if dates.isna().any():
        bad = df.loc[dates.isna(), date_column].head(3).tolist()
        raise DataError(
            f"{source}: column {date_column!r} has {int(dates.isna().sum())} unparseable date(s), "
            f"e.g. {bad}; fix them or pass --date-format"
        )
    dates = dates.dt.tz_localize(None) if dates.dt.tz is not None else dates
    dup = dates[dates.duplicated()]
    if len(dup):
        raise DataError(
            f"{source}: {len(dup)} duplicate date(s) in {date_column!r}, e.g. "
            f"{[d.date().isoformat() for d in dup.head(3)]}; keep one row per date"
        )
    values = df[wanted].apply(pd.to_numeric, errors="coerce").astype("float64")
    out = pd.concat([dates.rename("date"), values], axis=1)
    if not out["date"].is_monotonic_increasing:
        log.warning("%s: dates are not in increasing order; sorting them", source)
        out = out.sort_values("date", kind="stable")
    out = out.reset_index(drop=True)
    bad = ~np.isfinite(out[wanted].to_numpy())
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{source}: {int(bad.sum())} NaN/inf/non-numeric value(s); first in column "
            f"{wanted[col]!r} on {out['date'][row].date()}; fill or drop those rows"
        )
    prices = [c for c in wanted if c != "volume"]
    nonpos = out[prices].le(0).to_numpy()
    if nonpos.any():
        row, col = np.argwhere(nonpos)[0]
        raise DataError(
            f"{source}: {int(nonpos.sum())} non-positive price(s); first in column "
            f"{prices[col]!r} on {out['date'][row].date()}"
        )
    if "volume" in wanted and (out["volume"] < 0).any():
        raise DataError(f"{source}: negative values in column 'volume'")
    return out


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
) -> tuple[Entry, bool]:
    """Register `path` as dataset `name` under `root/raw`; returns (entry, created).

    Identical content is a no-op (returns the existing entry); changed content becomes version N+1.
    """
    df = canonicalize(read_table(path), str(path), value_columns, date_column)
    digest = content_sha256(df)
    manifest = raw_manifest(root)
    with manifest.locked() as datasets:
        versions = datasets.setdefault(name, [])
        for e in versions:
            if e["content_sha256"] == digest:
                log.info("%s: identical to %s v%d; nothing to do", path, name, e["version"])
                return e, False
        version = versions[-1]["version"] + 1 if versions else 1
        rel = Path("raw") / name / f"v{version}.parquet"
        atomic_write_bytes(Path(root) / rel, to_parquet_bytes(df))
        entry = {
            "name": name,
            "version": version,
            "path": str(rel),
            "sha256": sha256_file(Path(root) / rel),
            "content_sha256": digest,
            "rows": len(df),
            "columns": [c for c in df.columns if c != "date"],
            "first_date": df["date"].iloc[0].date().isoformat(),
            "last_date": df["date"].iloc[-1].date().isoformat(),
            "source": source or str(Path(path).resolve()),
            "created": now_iso(),
        }
        versions.append(entry)
    return entry, True


def load_raw(root: Path, name: str, version: int | str = "latest") -> tuple[pd.DataFrame, Entry]:
    """A registered raw dataset (sha256-checked) as a date-indexed frame, with its manifest entry."""
    manifest = raw_manifest(root)
    entry = manifest.get(name, version)
    path = manifest.check(entry)
    try:
        df = pd.read_parquet(path)
    except Exception as e:
        raise DataError(f"{path}: unreadable parquet ({e}); restore it or re-ingest") from e
    return df.set_index("date"), entry
