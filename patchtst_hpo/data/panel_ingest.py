"""Ingest a panel: many symbols (a folder, a glob or one long file) as one versioned raw dataset.

Every symbol is registered by `ingest.ingest` as dataset `<NAME>/<SYMBOL>` (`raw/<NAME>/<SYMBOL>/v<N>.parquet`);
the panel itself is one more raw manifest entry `<NAME>` with `kind: panel` whose file
(`raw/<NAME>/panel_v<N>.json`) lists the members (symbol, name, version, sha256). Re-ingesting identical
files is a no-op; a changed symbol becomes its own version N+1 and the panel a new version listing it.
Features of a panel: `panel.py`.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import tempfile
from pathlib import Path

import pandas as pd

from patchtst_hpo import trust
from patchtst_hpo.data.ingest import (
    canonicalize,
    ingest,
    raw_manifest,
    read_table,
)
from patchtst_hpo.data.manifest import Entry
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)
SUFFIXES = (".csv", ".csv.gz", ".parquet")


def _symbol_of(path: Path) -> str:
    name = path.name
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _check_symbol(symbol: str, source: str) -> str:
    """A symbol is a safe name (`trust.check_name`): it becomes the member dataset `<panel>/<symbol>`."""
    return trust.check_name(
        symbol, f"{source}: symbol (rename the file or the value in the symbol column)", error=DataError
    )


def member_files(spec: str) -> list[Path]:
    """Per-symbol files from a folder (its *.csv, *.csv.gz, *.parquet) or a glob pattern."""
    p = Path(spec)
    if p.is_dir():
        files = [f for f in sorted(p.iterdir()) if f.is_file() and f.name.endswith(SUFFIXES)]
    else:
        files = [Path(f) for f in sorted(glob.glob(spec))]
    if not files:
        raise DataError(
            f"{spec}: no per-symbol files found (a folder of .csv/.csv.gz/.parquet files or a glob "
            f"such as 'prices/*.csv'); check the path"
        )
    return files


def _split_long(path: Path, symbol_column: str, tmp: Path) -> list[tuple[str, Path]]:
    """One long table with a symbol column -> one parquet per symbol in `tmp` (then ingested as files)."""
    df = read_table(path)
    col = {str(c).strip().lower(): c for c in df.columns}.get(symbol_column.lower())
    if col is None:
        raise DataError(
            f"{path}: no symbol column {symbol_column!r}; columns present: {list(df.columns)}. "
            f"Pass --symbol-column NAME"
        )
    if df[col].isna().any():
        raise DataError(f"{path}: {int(df[col].isna().sum())} row(s) with an empty {symbol_column!r}")
    out = []
    for sym, part in df.groupby(df[col].astype(str), sort=True):
        _check_symbol(sym, str(path))
        f = tmp / f"{sym}.parquet"
        part.drop(columns=[col]).to_parquet(f, index=False)
        out.append((sym, f))
    return out


def ingest_panel(
    spec: str,
    name: str,
    root: Path,
    symbol_column: str | None = None,
    value_columns: list[str] | None = None,
    date_column: str = "date",
) -> tuple[Entry, bool]:
    """Register a panel from a folder/glob of per-symbol files, or one long file with `symbol_column`.

    Every file is validated by `ingest.canonicalize` before anything is written, so one bad symbol
    leaves data/ unchanged. Returns (panel entry, created).
    """
    root = Path(root)
    trust.check_name(name, "panel name", error=DataError)
    with tempfile.TemporaryDirectory() as tmp:
        members, sources = _members(spec, symbol_column, Path(tmp))
        for sym, f in members:  # validate all before writing any
            canonicalize(read_table(f), sources[sym], value_columns, date_column)
        entries = [
            ingest(f, f"{name}/{sym}", root, value_columns, date_column, sources[sym])[0]
            for sym, f in members
        ]
    return _register(root, name, spec, [sym for sym, _ in members], entries)


def _members(
    spec: str, symbol_column: str | None, tmp: Path
) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """(symbol, file) of every member and each one's source as recorded; DataError on a repeated symbol."""
    if symbol_column:
        members = _split_long(Path(spec), symbol_column, tmp)
        sources = {sym: f"{Path(spec).resolve()}#{symbol_column}={sym}" for sym, _ in members}
    else:
        members = [(_check_symbol(_symbol_of(f), str(f)), f) for f in member_files(spec)]
        sources = {sym: str(f.resolve()) for sym, f in members}
    dup = pd.Series([s for s, _ in members]).duplicated()
    if dup.any():
        raise DataError(f"{spec}: symbol(s) {sorted(set(pd.Series([s for s, _ in members])[dup]))} twice")
    return members, sources


def _register(
    root: Path, name: str, spec: str, symbols: list[str], entries: list[Entry]
) -> tuple[Entry, bool]:
    """The panel's own raw entry listing its members: the same listing is that version, else version N+1."""
    listing = [
        {"symbol": sym} | {k: e[k] for k in ("name", "version", "sha256", "content_sha256")}
        for sym, e in zip(symbols, entries, strict=True)
    ]
    digest = json.dumps([(m["symbol"], m["content_sha256"]) for m in listing]).encode()
    content = hashlib.sha256(digest).hexdigest()
    entry, found = raw_manifest(root).add_version(
        name,
        lambda e: e.get("content_sha256") == content,
        (json.dumps({"symbols": listing}, indent=1) + "\n").encode(),
        f"raw/{name}/panel_v{{version}}.json",
        {
            "name": name,
            "kind": "panel",
            "content_sha256": content,
            "symbols": listing,
            "rows": int(sum(e["rows"] for e in entries)),
            "columns": entries[0]["columns"],
            "first_date": min(e["first_date"] for e in entries),
            "last_date": max(e["last_date"] for e in entries),
            "source": f"panel of {len(listing)} symbols from {spec}",
        },
    )
    if found:
        log.info("%s: identical to panel %s v%d; nothing to do", spec, name, entry["version"])
    return entry, not found


def panel_entry(root: Path, name: str, version: int | str = "latest") -> Entry:
    """The panel's raw manifest entry, sha256-checked, with a clear error if `name` is a single series."""
    manifest = raw_manifest(root)
    datasets = manifest.load()
    if name not in datasets:  # list the panels only, not every member symbol
        panels = sorted(n for n, v in datasets.items() if v and v[-1].get("kind") == "panel")
        raise DataError(
            f"panel {name!r} is not in {manifest.path} (panels: {', '.join(panels) or 'none'}); ingest it "
            f"with `python -m patchtst_hpo.data ingest-panel DIR --name {name}` or set data.panel"
        )
    entry = manifest.get(name, version)
    if entry.get("kind") != "panel":
        raise DataError(
            f"raw dataset {name!r} is a single series, not a panel; use data.ohlcv={name} "
            f"(data=sample) or ingest a panel with `python -m patchtst_hpo.data ingest-panel`"
        )
    manifest.check(entry)
    return entry
