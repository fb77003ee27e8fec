"""Checks of the data config: windows, loaders, splits, feature tier, and the registered dataset's dates."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.errors import ConfigError
from patchtst_hpo.validation.values import bad, in_range, one_of


def check_data(cfg: DictConfig) -> None:
    d = cfg.data
    for key in ("context_length", "batch_size", "eval_batch_size"):
        in_range(cfg, f"data.{key}", 1, None, "must be >= 1")
    in_range(cfg, "data.num_workers", 0, None, "must be >= 0")
    one_of(cfg, "data.normalize", ("zscore", "none"))
    one_of(cfg, "data.fit_on", ("train", "train_val"))
    if "train_fraction" in d and not OmegaConf.is_missing(d, "train_fraction"):
        in_range(
            cfg, "data.train_fraction", 0, 1, "a fraction of the training windows in (0, 1]", lo_open=True
        )
    s = d.split
    one_of(cfg, "data.split.method", ("fractions", "dates"))
    if s.method == "fractions":
        tr, va = float(s.train), float(s.val)
        if not (0 < tr and 0 < va and tr + va < 1):
            raise ConfigError(
                f"data.split.train={tr}, data.split.val={va}: each must be > 0 and their sum < 1 (the rest is test)"
            )
    else:
        import datetime as dt

        for key in ("val_start", "test_start"):
            v = s.get(key)
            if v is None:
                raise bad(f"data.split.{key}", v, "data.split.method=dates needs a date (YYYY-MM-DD) here")
            try:
                dt.date.fromisoformat(str(v)[:10])
            except ValueError:
                raise bad(f"data.split.{key}", v, "not a date; write it as YYYY-MM-DD") from None
        if not str(s.val_start)[:10] < str(s.test_start)[:10]:
            raise ConfigError(
                f"data.split.val_start={s.val_start} must be before data.split.test_start={s.test_start}"
            )
    in_range(cfg, "data.split.purge", 0, None, "rows dropped at each boundary: >= 0 or null")


def check_tier(cfg: DictConfig) -> None:
    from patchtst_hpo.data.features import TIERS  # imports pandas: the last cheap check

    d = cfg.data

    if d.tier not in TIERS:
        raise bad("data.tier", d.tier, f"not a feature tier; use one of {', '.join(sorted(TIERS))}")


def check_dataset_dates(cfg: DictConfig) -> None:
    """The raw dataset is registered, and date split boundaries lie inside its span (manifest only)."""
    from patchtst_hpo.data.manifest import Manifest
    from patchtst_hpo.errors import DataError

    d = cfg.data
    panel = None if OmegaConf.is_missing(d, "panel") else d.get("panel")
    if d.get("ohlcv") is None and panel is None:
        raise ConfigError(
            "data.ohlcv is not set: pass the name you ingested your file under, e.g. data=own "
            "data.ohlcv=SPY.OHLCV.daily (python -m patchtst_hpo.data list shows the names)"
        )
    name = d.get("ohlcv")
    if not name:
        return
    manifest = Manifest(Path(str(d.root)) / "raw" / "manifest.json")
    try:
        entry = manifest.get(name)
    except DataError as e:
        raise ConfigError(f"data.ohlcv={name}: {e}") from None
    try:
        entry = manifest.get(name, d.version)
    except (DataError, ValueError) as e:
        raise bad("data.version", d.version, f"{e}; use latest or one of those") from None
    if d.get("vix"):
        try:
            manifest.get(d.vix)
        except DataError as e:
            raise ConfigError(f"data.vix={d.vix}: {e}; or data.vix=null for no VIX block") from None
    if d.split.method != "dates":
        return
    first, last = entry["first_date"], entry["last_date"]
    for key in ("val_start", "test_start"):
        v = str(d.split[key])[:10]
        if not first < v <= last:
            raise bad(
                f"data.split.{key}",
                v,
                f"lies {'after the last' if v > last else 'on or before the first'} date of {name} "
                f"({first}..{last}); pick a date inside that span or use data.split.method=fractions",
            )
