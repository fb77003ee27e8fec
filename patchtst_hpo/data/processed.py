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
from patchtst_hpo.data.manifest import Entry, Manifest, sha256_file
from patchtst_hpo.errors import DataError

log = logging.getLogger(__name__)

# Bump when features, warm-up handling or the file layout change: old processed files stay valid records.
PIPELINE_VERSION = 1
LABEL_COLUMNS = ["high", "close"]


def processed_manifest(root: Path) -> Manifest:
    return Manifest(Path(root) / "processed" / "manifest.json")


def dataset_id(ohlcv: str, tier: str, vix: str | None = None) -> str:
    return f"{ohlcv}{'+' + vix if vix else ''}.{tier}"


def make_features(
    raw: pd.DataFrame, tier: str, vix: pd.DataFrame | None = None, name: str = "the OHLCV series"
) -> pd.DataFrame:
    """Features of one OHLCV frame (date index), optionally joined with a VIX frame on common dates.

    Leading warm-up rows (any feature undefined) are dropped; later gaps (e.g. a flat RSI range, a
    zero-volume day) carry the last value forward, which uses only the past. Both are logged with counts.
    """
    frame = raw if vix is None else raw.join(vix[["vix"]], how="inner")
    if vix is not None and frame.empty:
        raise DataError("the OHLCV and VIX datasets share no dates; check data.ohlcv and data.vix")
    if vix is not None and len(frame) < len(raw):
        log.info("%s: %d of %d rows have a VIX value; the others are left out", name, len(frame), len(raw))
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0 volume), 0/0 ranges: NaN, filled below
        feats = features.compute(frame, tier, with_vix=vix is not None)
    complete = np.isfinite(feats.to_numpy()).all(axis=1)
    if not complete.any():
        from patchtst_hpo.data.ingest import warmup_rows

        raise DataError(
            f"{name}: no row has all {feats.shape[1]} features of tier {tier!r}: the series has {len(frame)} "
            f"rows and the tier's longest indicator needs {warmup_rows(tier) + 1}, plus data.context_length + "
            f"horizon for one window; ingest a longer history"
        )
    first = int(np.argmax(complete))
    out = feats.iloc[first:]
    gaps = int(out.isna().to_numpy().sum())
    if gaps:
        log.info(
            "%s: %d undefined feature value(s) after the warm-up carry the previous value forward", name, gaps
        )
    log.info("%s: the first %d rows are the warm-up of tier %s and are dropped", name, first, tier)
    out = out.ffill()
    out[LABEL_COLUMNS] = frame[LABEL_COLUMNS].iloc[first:].astype("float64")
    return out.reset_index()


def build(
    root: Path,
    ohlcv: str,
    tier: str,
    vix: str | None = None,
    version: int | str = "latest",
    force: bool = False,
) -> tuple[Entry, str]:
    """Build (or find) the processed dataset; returns (entry, what happened).

    What happened: `built` (a new version), `up to date`, or `repaired` (the matching version's file was
    missing or altered, or `force`: recomputed from the sha256-checked raw inputs and rewritten in place).
    """
    root = Path(root)
    features.feature_names(tier, with_vix=bool(vix))  # unknown tier -> ConfigError before any work
    raw, vix_df, inputs = _raw_inputs(root, ohlcv, version, vix)
    did = dataset_id(ohlcv, tier, vix)
    manifest = processed_manifest(root)
    key = {"tier": tier, "inputs": inputs, "pipeline_version": PIPELINE_VERSION}
    existing = next((e for e in manifest.versions(did) if all(e[k] == v for k, v in key.items())), None)
    if existing is not None and not force and _intact(manifest, existing):
        return existing, "up to date"
    t0 = time.perf_counter()
    df = make_features(raw, tier, vix_df, ohlcv)
    seconds = time.perf_counter() - t0
    entry, found = manifest.add_version(
        did,
        lambda e: all(e[k] == v for k, v in key.items()),  # another process may have built it meanwhile
        to_parquet_bytes(df),
        f"processed/{did}/v{{version}}.parquet",
        {
            "id": did,
            **key,
            "features": features.feature_names(tier, with_vix=bool(vix)),
            "rows": len(df),
            "first_date": df["date"].iloc[0].date().isoformat(),
            "last_date": df["date"].iloc[-1].date().isoformat(),
            "build_seconds": round(seconds, 3),
        },
        on_match=lambda e: "up to date" if not force and _intact(manifest, e) else _rewrite(manifest, e, df),
    )
    if found:
        return entry, found
    log.info(
        "built %s v%d: %d rows x %d features in %.2fs",
        did,
        entry["version"],
        len(df),
        len(entry["features"]),
        seconds,
    )
    return entry, "built"


def _raw_inputs(
    root: Path, ohlcv: str, version: int | str, vix: str | None
) -> tuple[pd.DataFrame, pd.DataFrame | None, list[dict]]:
    """The sha256-checked raw OHLCV (and VIX) frames, and the `inputs` record of the processed entry."""
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
    return raw, vix_df, inputs


def _intact(manifest: Manifest, entry: Entry) -> bool:
    path = manifest.file(entry)
    return path.exists() and sha256_file(path) == entry["sha256"]


def _rewrite(manifest: Manifest, entry: Entry, df: pd.DataFrame) -> str:
    """Write a recomputed version in place of its missing/altered file (inside the manifest lock)."""
    path = manifest.file(entry)
    state = "intact" if _intact(manifest, entry) else "missing" if not path.exists() else "altered"
    atomic_write_bytes(path, to_parquet_bytes(df))
    sha = sha256_file(path)
    if sha != entry["sha256"]:
        log.warning(
            "%s: recomputed with other bytes than recorded (a new library version?); sha256 updated", path
        )
        entry["sha256"] = sha
    log.warning(
        "%s v%d was %s; recomputed from its raw inputs and rewritten", entry["id"], entry["version"], state
    )
    return "repaired"


def load(
    root: Path, ohlcv: str, tier: str, vix: str | None = None, version: int | str = "latest"
) -> tuple[pd.DataFrame, Entry]:
    """The processed dataset for these inputs (built on first use), sha256-checked."""
    entry, _ = build(root, ohlcv, tier, vix, version)  # repairs a missing or altered file on the way
    manifest = processed_manifest(root)
    path = manifest.check(entry)
    try:
        return pd.read_parquet(path), entry
    except Exception as e:
        raise DataError(f"{path}: unreadable parquet ({e}); {manifest.repair_hint(entry)}") from e
