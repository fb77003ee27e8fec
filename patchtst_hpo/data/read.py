"""Reading a raw file (CSV, gzipped CSV or parquet) with errors that name the file.

CSV is read as text in chunks of `CHUNK_ROWS` rows (canonical.py types each chunk at once, so a large file
never lives in memory as strings); every chunk keeps the file's line numbers: row i is line i + 2 (line 1 is
the header; blank lines are rows, dropped later with a note).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from patchtst_hpo.errors import DataError

CHUNK_ROWS = 50_000


def where(df: pd.DataFrame, rows: pd.Index | list) -> str:
    """'line 7' (CSV) or 'row 6' (parquet) for the first few offending rows."""
    rows = list(rows)
    first = df.attrs.get("first_line")
    label, offset = ("line", first) if first is not None else ("row", 1)
    shown = ", ".join(str(int(r) + offset) for r in rows[:3])
    return f"{label}{'s' if len(rows) > 1 else ''} {shown}{', ...' if len(rows) > 3 else ''}"


def _refuse(path: Path, e: Exception) -> DataError:
    kind = "parquet" if path.suffix == ".parquet" else "CSV"
    return DataError(f"{path}: cannot be read as {kind} ({' '.join(str(e).split())})")


def _exists(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path (relative paths are from the current folder)")
    return path


def read_parquet(path: Path) -> pd.DataFrame:
    path = _exists(path)
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types for corrupt files
        raise _refuse(path, e) from e
    if isinstance(df.index, pd.DatetimeIndex):  # written with the dates as its index
        df = df.reset_index()
    return df


def csv_chunks(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The CSV as text frames of at most `chunk_rows` rows, each cell as written; index = row number."""
    path = _exists(path)
    try:
        reader = pd.read_csv(
            path, skip_blank_lines=False, dtype=str, keep_default_na=False, chunksize=chunk_rows
        )
        for chunk in reader:
            chunk.attrs["first_line"] = 2
            yield chunk
    except DataError:
        raise
    except Exception as e:  # pandas raises many types for corrupt files
        raise _refuse(path, e) from e


def read_table(path: Path, text: bool = False) -> pd.DataFrame:
    """A whole CSV or parquet file as one frame (`text=True`: CSV cells as written). For files that fit in
    memory (panels' long files, tests); ingest reads CSVs chunk by chunk."""
    path = _exists(path)
    if path.suffix == ".parquet":
        return read_parquet(path)
    extra = {"dtype": str, "keep_default_na": False} if text else {}
    try:
        df = pd.read_csv(path, skip_blank_lines=False, **extra)
    except Exception as e:  # pandas raises many types for corrupt files
        raise _refuse(path, e) from e
    df.attrs["first_line"] = 2
    return df
