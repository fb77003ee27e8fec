"""Raw datasets -> a processed feature dataset (parquet) + processed manifest entry.

A processed dataset is keyed by its id (`<ohlcv>[+<vix>].<tier>`) and versioned by its inputs: the same
tier, raw sha256s and pipeline version reuse the existing file; anything else becomes a new version.
It holds `date`, the tier's features and the `high`/`close` columns the labels need (labels are made
per task in the DataModule, since they depend on horizon and threshold).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from patchtst_hpo.atomic import atomic_write_bytes
from patchtst_hpo.data import features
from patchtst_hpo.data.ingest import load_raw, to_parquet_bytes
from patchtst_hpo.data.manifest import Entry, Manifest, now_iso, sha256_file
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)

# Bump when features, warm-up handling or the file layout change: old processed files stay valid records.
PIPELINE_VERSION = 1
LABEL_COLUMNS = ["high", "close"]


def processed_manifest(root: Path) -> Manifest:
    return Manifest(Path(root) / "processed" / "manifest.json")


def dataset_id(ohlcv: str, tier: str, vix: str | None = None) -> str:
    return f"{ohlcv}{'+' + vix if vix else ''}.{tier}"


def make_features(raw: pd.DataFrame, tier: str, vix: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features of one OHLCV frame (date index), optionally joined with a VIX frame on common dates.

    Leading warm-up rows (any feature undefined) are dropped; later gaps (e.g. a flat RSI range) carry
    the last value forward, which uses only the past.
    """
    frame = raw if vix is None else raw.join(vix[["vix"]], how="inner")
    if vix is not None and frame.empty:
        raise DataError("the OHLCV and VIX datasets share no dates; check data.ohlcv and data.vix")
    feats = features.compute(frame, tier, with_vix=vix is not None)
    complete = np.isfinite(feats.to_numpy()).all(axis=1)
    if not complete.any():
        raise DataError(
            f"no row has all {feats.shape[1]} features of tier {tier!r}; the series "
            f"({len(frame)} rows) is shorter than the longest indicator window"
        )
    first = int(np.argmax(complete))
    out = feats.iloc[first:].ffill()
    out[LABEL_COLUMNS] = frame[LABEL_COLUMNS].iloc[first:].astype("float64")
    return out.reset_index()


def build(
    root: Path, ohlcv: str, tier: str, vix: str | None = None, version: int | str = "latest"
) -> tuple[Entry, bool]:
    """Build (or find) the processed dataset; returns (entry, created)."""
    root = Path(root)
    features.feature_names(tier, with_vix=bool(vix))  # unknown tier -> ConfigError before any work
    raw, raw_entry = load_raw(root, ohlcv, version)
    inputs = [{"name": ohlcv, "version": raw_entry["version"], "sha256": raw_entry["sha256"]}]
    vix_df = None
    if vix:
        vix_df, vix_entry = load_raw(root, vix)
        if "vix" not in vix_df.columns:
            raise DataError(
                f"dataset {vix!r} has columns {list(vix_df.columns)}, no 'vix'; ingest it with "
                f"--value-column vix"
            )
        inputs.append({"name": vix, "version": vix_entry["version"], "sha256": vix_entry["sha256"]})
    did = dataset_id(ohlcv, tier, vix)
    manifest = processed_manifest(root)
    key = {"tier": tier, "inputs": inputs, "pipeline_version": PIPELINE_VERSION}
    for e in manifest.versions(did):
        if all(e[k] == v for k, v in key.items()):
            return e, False
    t0 = time.perf_counter()
    df = make_features(raw, tier, vix_df)
    seconds = time.perf_counter() - t0
    with manifest.locked() as datasets:
        versions = datasets.setdefault(did, [])
        for e in versions:  # another process may have built it while we computed
            if all(e[k] == v for k, v in key.items()):
                return e, False
        v = versions[-1]["version"] + 1 if versions else 1
        rel = Path("processed") / did / f"v{v}.parquet"
        atomic_write_bytes(root / rel, to_parquet_bytes(df))
        entry = {
            "id": did,
            "version": v,
            "path": str(rel),
            "sha256": sha256_file(root / rel),
            **key,
            "features": features.feature_names(tier, with_vix=bool(vix)),
            "rows": len(df),
            "first_date": df["date"].iloc[0].date().isoformat(),
            "last_date": df["date"].iloc[-1].date().isoformat(),
            "build_seconds": round(seconds, 3),
            "created": now_iso(),
        }
        versions.append(entry)
    log.info("built %s v%d: %d rows x %d features in %.2fs", did, v, len(df), len(entry["features"]), seconds)
    return entry, True


def load(
    root: Path, ohlcv: str, tier: str, vix: str | None = None, version: int | str = "latest"
) -> tuple[pd.DataFrame, Entry]:
    """The processed dataset for these inputs (built on first use), sha256-checked."""
    entry, _ = build(root, ohlcv, tier, vix, version)
    manifest = processed_manifest(root)
    path = manifest.check(entry)
    try:
        return pd.read_parquet(path), entry
    except Exception as e:
        raise DataError(
            f"{path}: unreadable parquet ({e}); delete it and its manifest entry to rebuild"
        ) from e
