"""Panels: many symbols as one dataset, each symbol still a versioned, checksummed raw dataset.

Raw layout: every symbol is registered by `ingest.ingest` as dataset `<NAME>/<SYMBOL>`
(`raw/<NAME>/<SYMBOL>/v<N>.parquet`); the panel itself is one more raw manifest entry `<NAME>` with
`kind: panel` whose file (`raw/<NAME>/panel_v<N>.json`) lists the members (symbol, name, version,
sha256). Re-ingesting identical files is a no-op; a changed symbol becomes its own version N+1 and the
panel a new version listing it.

Processed layout: `processed/<NAME>.<tier>/v<N>.parquet` with a `symbol` column, rows sorted by
(symbol, date); features are computed per symbol (`processed.make_features`), so no indicator ever
reads another symbol's rows. Its manifest entry lists every input (the panel and each member).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from patchtst_hpo.data import features
from patchtst_hpo.data.ingest import (
    canonicalize,
    ingest,
    load_raw,
    raw_manifest,
    read_table,
    to_parquet_bytes,
)
from patchtst_hpo.data.manifest import Entry
from patchtst_hpo.data.processed import LABEL_COLUMNS, PIPELINE_VERSION, processed_manifest
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)
SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SUFFIXES = (".csv", ".csv.gz", ".parquet")


def _symbol_of(path: Path) -> str:
    name = path.name
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _check_symbol(symbol: str, source: str) -> str:
    if not SYMBOL.match(symbol):
        raise DataError(
            f"{source}: symbol {symbol!r} is not a safe name (letters, digits, '.', '_', '-'); "
            f"rename the file or the value in the symbol column"
        )
    return symbol


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
    with tempfile.TemporaryDirectory() as tmp:
        if symbol_column:
            members = _split_long(Path(spec), symbol_column, Path(tmp))
            sources = {sym: f"{Path(spec).resolve()}#{symbol_column}={sym}" for sym, _ in members}
        else:
            members = [(_check_symbol(_symbol_of(f), str(f)), f) for f in member_files(spec)]
            sources = {sym: str(f.resolve()) for sym, f in members}
        dup = pd.Series([s for s, _ in members]).duplicated()
        if dup.any():
            raise DataError(f"{spec}: symbol(s) {sorted(set(pd.Series([s for s, _ in members])[dup]))} twice")
        for sym, f in members:  # validate all before writing any
            canonicalize(read_table(f), sources[sym], value_columns, date_column)
        entries = [
            ingest(f, f"{name}/{sym}", root, value_columns, date_column, sources[sym])[0]
            for sym, f in members
        ]
    listing = [
        {
            "symbol": sym,
            "name": e["name"],
            "version": e["version"],
            "sha256": e["sha256"],
            "content_sha256": e["content_sha256"],
        }
        for (sym, _), e in zip(members, entries, strict=True)
    ]
    digest = json.dumps([(m["symbol"], m["content_sha256"]) for m in listing]).encode()
    content = hashlib.sha256(digest).hexdigest()
    manifest = raw_manifest(root)
    blob = (json.dumps({"symbols": listing}, indent=1) + "\n").encode()
    entry, found = manifest.add_version(
        name,
        lambda e: e.get("content_sha256") == content,
        blob,
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


def dataset_id(name: str, tier: str) -> str:
    return f"{name}.{tier}"


def _inputs(entry: Entry) -> list[dict]:
    return [
        {"name": entry["name"], "version": entry["version"], "sha256": entry["sha256"]},
        *({"name": m["name"], "version": m["version"], "sha256": m["sha256"]} for m in entry["symbols"]),
    ]


def make_panel_features(root: Path, entry: Entry, tier: str) -> pd.DataFrame:
    """Features of every member, computed per symbol, stacked in (symbol, date) order.

    Symbols are computed together (`features.compute_wide`) on the union calendar when their dates are a
    contiguous run of it (late starts and early ends included), else with the symbols sharing their exact
    dates: the same numbers as `processed.make_features` of each symbol alone (tested), without one pandas
    pass per symbol.
    Leading warm-up rows are dropped per symbol and later gaps carry forward within the symbol.
    """
    names = features.feature_names(tier)
    raws = {m["symbol"]: load_raw(root, m["name"], m["version"])[0] for m in entry["symbols"]}
    union = pd.DatetimeIndex(np.unique(np.concatenate([r.index.to_numpy() for r in raws.values()])))
    groups: dict[bytes, tuple[pd.DatetimeIndex, list[tuple[str, int]]]] = {}
    for sym, raw in raws.items():
        p = int(union.searchsorted(raw.index[0]))
        if union[p : p + len(raw)].equals(raw.index):  # a contiguous run of the union calendar
            groups.setdefault(b"union", (union, []))[1].append((sym, p))
        else:  # gaps of its own: computed with the symbols that share its exact dates
            groups.setdefault(raw.index.to_numpy().tobytes(), (raw.index, []))[1].append((sym, 0))
    parts: dict[str, dict[str, np.ndarray]] = {}
    for dates, members in groups.values():
        wide = {}
        for c in ("open", "high", "low", "close", "volume"):
            arr = np.full((len(dates), len(members)), np.nan)
            for j, (sym, p) in enumerate(members):
                arr[p : p + len(raws[sym]), j] = raws[sym][c].to_numpy()
            wide[c] = pd.DataFrame(arr, index=dates, columns=[sym for sym, _ in members])
        # before a symbol's first date its column is NaN: trailing windows and ewm(adjust=False) then
        # start at its first row, exactly as for the symbol alone (tested with a late-starting symbol)
        feats = features.compute_wide(wide, tier)
        complete = np.isfinite(np.stack([feats[n].to_numpy() for n in names])).all(axis=0)
        filled = np.stack([feats[n].ffill().to_numpy() for n in names])  # [features, dates, symbols]
        for j, (sym, p) in enumerate(members):
            stop = p + len(raws[sym])
            if not complete[p:stop, j].any():
                log.warning(
                    "panel %s: symbol %s skipped (shorter than the longest indicator window)",
                    entry["name"],
                    sym,
                )
                continue
            first = p + int(np.argmax(complete[p:stop, j]))
            cols = {"date": dates.to_numpy()[first:stop]}
            cols.update({n: filled[k, first:stop, j] for k, n in enumerate(names)})
            cols.update({c: wide[c].to_numpy()[first:stop, j] for c in LABEL_COLUMNS})
            parts[sym] = cols
    if not parts:
        raise DataError(f"panel {entry['name']!r}: no symbol is long enough for tier {tier!r}")
    order = [m["symbol"] for m in entry["symbols"] if m["symbol"] in parts]
    n = [len(parts[s]["date"]) for s in order]
    out = {"symbol": pd.Categorical(np.repeat(order, n), categories=order)}
    for col in ["date", *names, *LABEL_COLUMNS]:
        out[col] = np.concatenate([parts[s][col] for s in order])
    return pd.DataFrame(out)


def build(root: Path, name: str, tier: str, version: int | str = "latest") -> tuple[Entry, bool]:
    """Build (or find) the processed panel; returns (entry, created)."""
    root = Path(root)
    names = features.feature_names(tier)  # unknown tier -> ConfigError before any work
    entry = panel_entry(root, name, version)
    did = dataset_id(name, tier)
    manifest = processed_manifest(root)
    key = {"tier": tier, "inputs": _inputs(entry), "pipeline_version": PIPELINE_VERSION}
    for e in manifest.versions(did):
        if all(e[k] == v for k, v in key.items()):
            return e, False
    t0 = time.perf_counter()
    df = make_panel_features(root, entry, tier)
    seconds = time.perf_counter() - t0
    blob = to_parquet_bytes(df)
    out, found = manifest.add_version(
        did,
        lambda e: all(e[k] == v for k, v in key.items()),  # another process may have built it meanwhile
        blob,
        f"processed/{did}/v{{version}}.parquet",
        {
            "id": did,
            **key,
            "kind": "panel",
            "features": names,
            "symbols": int(df["symbol"].nunique()),
            "rows": len(df),
            "first_date": df["date"].min().date().isoformat(),
            "last_date": df["date"].max().date().isoformat(),
            "build_seconds": round(seconds, 3),
        },
    )
    if found:
        return out, False
    log.info(
        "built %s v%d: %d symbols, %d rows in %.1fs", did, out["version"], out["symbols"], len(df), seconds
    )
    return out, True


def load(root: Path, name: str, tier: str, version: int | str = "latest") -> tuple[pd.DataFrame, Entry]:
    """The processed panel (built on first use), sha256-checked, rows in (symbol, date) order."""
    entry, _ = build(root, name, tier, version)
    path = processed_manifest(root).check(entry)
    try:  # written in (symbol, date) order by `build`, and the sha256 proves it is that file
        return pd.read_parquet(path), entry
    except Exception as e:
        raise DataError(
            f"{path}: unreadable parquet ({e}); delete it and its manifest entry to rebuild"
        ) from e
