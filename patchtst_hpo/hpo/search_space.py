"""Hydra override grammar -> grid cells (one study each) and Optuna distributions (searched within a study).

Command line:  `key=a,b`             -> grid: one study per value (Cartesian product over keys)
               `key=choice(a,b)`     -> categorical distribution
               `key=range(lo,hi,st)` -> stepped distribution; `hi` is exclusive, as everywhere in Hydra
               `key=interval(lo,hi)` -> float distribution; `tag(log, ...)` log scale; `tag(int, ...)` integer
`conf/search/*.yaml` and `hydra.sweeper.params` use the same grammar, and there every sweep is a
distribution (a plain comma list is a categorical too).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import optuna.distributions as od
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, ValueType

from patchtst_hpo.errors import ConfigError


@dataclass
class SweepPlan:
    fixed: list[str]  # plain overrides passed to every job
    grid: dict[str, list]  # key -> values; one study per combination
    space: dict[str, od.BaseDistribution]  # searched within each study


def _distribution(o: Override) -> od.BaseDistribution:
    v = o.value()
    key = o.get_key_element()
    if isinstance(v, ChoiceSweep):
        return od.CategoricalDistribution(list(v.list))
    if isinstance(v, RangeSweep):
        start, stop, step = v.start, v.stop, v.step if v.step is not None else 1
        if stop <= start:
            raise ConfigError(f"{key}: range({start}, {stop}) is empty (the stop is exclusive)")
        n = math.ceil((stop - start) / step) - 1  # last value strictly below stop
        high = start + n * step
        if all(isinstance(x, int) for x in (start, stop, step)):
            return od.IntDistribution(int(start), int(high), step=int(step), log="log" in v.tags)
        return od.FloatDistribution(float(start), float(high), step=float(step))
    if isinstance(v, IntervalSweep):
        lo, hi = v.start, v.end
        if not lo < hi:
            raise ConfigError(f"{key}: interval({lo}, {hi}) needs low < high")
        if "int" in v.tags:
            return od.IntDistribution(int(lo), int(hi), log="log" in v.tags)
        return od.FloatDistribution(float(lo), float(hi), log="log" in v.tags)
    raise ConfigError(f"{key}: {o.input_line!r} is not a sweep (use choice/range/interval)")


def parse(strings: Iterable[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(list(strings))
    except Exception as e:
        raise ConfigError(f"cannot parse sweep overrides: {e}") from e


def plan(cli_overrides: Iterable[str], params: Mapping[str, str]) -> SweepPlan:
    """Split the command line and the configured search params into fixed, grid and searched parts."""
    fixed, grid, space = [], {}, {}
    for o in parse(cli_overrides):
        if not o.is_sweep_override():
            fixed.append(o.input_line)
        elif o.value_type == ValueType.SIMPLE_CHOICE_SWEEP:
            grid[o.get_key_element()] = list(o.value().list)
        else:
            space[o.get_key_element()] = _distribution(o)
    for o in parse(f"{k}={v}" for k, v in params.items()):
        key = o.get_key_element()
        if key in grid or key in space or any(f.split("=")[0].lstrip("+~") == key for f in fixed):
            continue  # the command line wins over the configured space
        if not o.is_sweep_override():
            raise ConfigError(
                f"search param {key}={o.input_line.split('=', 1)[1]} is not a sweep; "
                f"use choice(...), range(...) or interval(...)"
            )
        space[key] = _distribution(o)
    return SweepPlan(fixed, grid, space)


def cells(grid: Mapping[str, list]) -> list[dict]:
    """The Cartesian product of the grid, in command-line order (one dict per study)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))] or [
        {}
    ]


def override(key: str, value) -> str:
    """`key=value` in the override grammar, quoting strings that the grammar would misread."""
    if isinstance(value, bool) or value is None:
        text = {True: "true", False: "false", None: "null"}[value]
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str) and not all(c.isalnum() or c in "_-./@" for c in value):
        text = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        text = str(value)
    return f"{key}={text}"


def suggest(trial, name: str, dist: od.BaseDistribution):
    """Draw `name` from `dist` through Optuna's public suggest API."""
    if isinstance(dist, od.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, od.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
