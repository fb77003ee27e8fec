"""Registering raw files: canonical table (data/canonical.py, read by data/read.py) -> versioned raw parquet
+ raw manifest entry; restoring a registered file that went missing; loading one back (sha256-checked).

Canonical raw: a `date` column (datetime64, one row per day, sorted) and float64 value columns in a fixed
order. Bad input (a name that is not a safe name included) raises `DataError` before anything is written;
a failed ingest leaves data/ as it was.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from patchtst_hpo import trust
from patchtst_hpo.atomic import atomic_write_bytes
from patchtst_hpo.data.canonical import OHLCV, PRICES, Options, canonicalize, normalize_name
from patchtst_hpo.data.manifest import Entry, Manifest, sha256_file
from patchtst_hpo.data.read import CHUNK_ROWS, csv_chunks, read_parquet, read_table
from patchtst_hpo.errors import DataError

__all__ = ["OHLCV", "PRICES", "Options", "canonicalize", "normalize_name", "read_table"]  # re-exported

log = logging.getLogger(__name__)


def raw_manifest(root: Path) -> Manifest:
    return Manifest(Path(root) / "raw" / "manifest.json")


def check_dataset_name(name: object) -> str:
    """A dataset name (`trust.check_name`), or `<panel>/<symbol>` for a panel's member."""
    parts = name.split("/", 1) if isinstance(name, str) else [name]
    for part in parts:
        trust.check_name(part, "dataset name", error=DataError)
    return str(name)


def read_canonical(path: Path, source: str, opts: Options, chunk_rows: int = CHUNK_ROWS) -> pd.DataFrame:
    """The canonical table of a raw file; a CSV is read and typed chunk by chunk."""
    if Path(path).suffix == ".parquet":
        return canonicalize(read_parquet(path), source, opts=opts)
    return canonicalize(csv_chunks(path, chunk_rows), source, opts=opts)


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
    repair_ohlc: bool = False,
    aggregate_daily: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[Entry, str]:
    """Register `path` as dataset `name` under `root/raw`; returns (entry, what happened).

    What happened: `registered` (a new version), `unchanged` (identical content, file intact) or `restored`
    (identical content whose registered file was missing or altered: rewritten from this file).
    `need_rows=(tier, context_length)` refuses an OHLCV series too short for one window of that tier
    (`allow_short` turns the refusal into a warning). `repair_ohlc` / `aggregate_daily`: data/canonical.py.
    """
    check_dataset_name(name)
    opts = Options(value_columns, date_column, date_format, repair_ohlc, aggregate_daily)
    df = read_canonical(path, str(path), opts, chunk_rows)
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
                **({"repair_ohlc": True} if repair_ohlc else {}),
                **({"aggregate_daily": True} if aggregate_daily else {}),
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
