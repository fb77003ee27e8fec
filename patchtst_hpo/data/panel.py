"""Panels' features: many symbols as one processed dataset (ingesting a panel: `panel_ingest.py`).

Processed layout: `processed/<NAME>.<tier>/v<N>.parquet` with a `symbol` column, rows sorted by
(symbol, date); features are computed per symbol (`processed.make_features`), so no indicator ever
reads another symbol's rows. Its manifest entry lists every input (the panel and each member).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from patchtst_hpo.data import features
from patchtst_hpo.data.ingest import (
    load_raw,
    to_parquet_bytes,
)
from patchtst_hpo.data.manifest import Entry
from patchtst_hpo.data.panel_ingest import ingest_panel, panel_entry  # noqa: F401  (panel.ingest_panel)
from patchtst_hpo.data.processed import LABEL_COLUMNS, PIPELINE_VERSION, processed_manifest
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)


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
