"""The vocabulary of every config check: a ConfigError naming the key, the bad value and the fix."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.errors import ConfigError


def bad(key: str, value: Any, fix: str) -> ConfigError:
    """`key=value: fix`, the one-line form of every config error."""
    return ConfigError(f"{key}={show(value)}: {fix}")


def show(value: Any) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value)
    return str(value)


def num(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, throw_on_missing=True)


def in_range(
    cfg: DictConfig, key: str, lo: float | None, hi: float | None, fix: str, lo_open=False, hi_open=False
):
    """`key` is null or a finite number in [lo, hi] (open ends with lo_open / hi_open)."""
    v = num(cfg, key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise bad(key, v, f"must be a finite number; {fix}")
    if (
        lo is not None
        and (v <= lo if lo_open else v < lo)
        or hi is not None
        and (v >= hi if hi_open else v > hi)
    ):
        raise bad(key, v, fix)


def one_of(cfg: DictConfig, key: str, options: tuple[str, ...]) -> None:
    v = OmegaConf.select(cfg, key, throw_on_missing=True)
    if v not in options:
        raise bad(key, v, f"use one of {', '.join(options)}")
