"""Hydra override grammar -> grid cells (one study each) and Optuna distributions (searched within a study).

Command line:  `key=a,b`             -> grid: one study per value (Cartesian product over keys)
               `key=choice(a,b)`     -> categorical distribution
               `key=range(lo,hi,st)` -> stepped distribution; `hi` is exclusive, as everywhere in Hydra
               `key=interval(lo,hi)` -> float distribution; `tag(log, ...)` log scale; `int(interval(..))`
                                      or `tag(int, ...)` integer; `shuffle(range(..))` categorical
`conf/search/*.yaml` and `hydra.sweeper.params` use the same grammar, and there every sweep is a
distribution (a plain comma list is a categorical too); a plain value there is passed to every job.
In an app without budget and grid groups a command-line comma list is a categorical too (upstream's meaning).
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


def _is_int(*xs) -> bool:
    return all(isinstance(x, int) and not isinstance(x, bool) for x in xs)


def _distribution(o: Override) -> od.BaseDistribution:
    v = o.value()
    key = o.get_key_element()
    if isinstance(v, ChoiceSweep):  # choice(...), shuffle(choice(...)), a comma list
        if not v.list:
            raise ConfigError(f"{key}: {o.input_line!r} has no choices")
        return od.CategoricalDistribution(list(v.list))
    if isinstance(v, RangeSweep):
        start, stop, step = v.start, v.stop, v.step if v.step is not None else 1
        if step == 0:
            raise ConfigError(f"{key}: {o.input_line!r} has step 0; use a positive step")
        if step < 0:
            raise ConfigError(f"{key}: {o.input_line!r} counts down; write it as an increasing range")
        if stop <= start:
            raise ConfigError(f"{key}: range({start}, {stop}) is empty (the stop is exclusive)")
        n = math.ceil((stop - start) / step) - 1  # last value strictly below stop
        if v.shuffle:  # shuffle(range(...)): an unordered set of values, as in hydra-optuna-sweeper
            return od.CategoricalDistribution([start + i * step for i in range(n + 1)])
        high = start + n * step
        log = "log" in v.tags
        if log and (step != 1 or not _is_int(start, stop, step)):
            raise ConfigError(
                f"{key}: {o.input_line!r}: Optuna cannot search a log scale with a step; "
                f"use tag(log, int(interval({start}, {high}))) or drop the log tag"
            )
        if _is_int(start, stop, step):
            return od.IntDistribution(int(start), int(high), step=int(step), log=log)
        return od.FloatDistribution(float(start), float(high), step=float(step))
    if isinstance(v, IntervalSweep):
        lo, hi = v.start, v.end
        if not lo < hi:
            raise ConfigError(f"{key}: interval({lo}, {hi}) needs low < high")
        log = "log" in v.tags
        if log and lo <= 0:
            raise ConfigError(f"{key}: {o.input_line!r}: a log scale needs low > 0")
        if "int" in v.tags or _is_int(lo, hi):  # tag(int, interval(..)) or int(interval(..))
            if int(lo) != lo or int(hi) != hi:
                raise ConfigError(f"{key}: {o.input_line!r}: integer bounds needed, got {lo}, {hi}")
            return od.IntDistribution(int(lo), int(hi), log=log)
        return od.FloatDistribution(float(lo), float(hi), log=log)
    raise ConfigError(f"{key}: {o.input_line!r} is not a sweep (use choice/range/interval)")


def grid_choices(key: str, dist: od.BaseDistribution) -> list:
    """Every value of a discrete distribution, for Optuna's GridSampler (which needs the whole grid)."""
    if isinstance(dist, od.CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, od.IntDistribution):
        return list(range(dist.low, dist.high + 1, dist.step))
    if isinstance(dist, od.FloatDistribution) and dist.step is not None:
        n = round((dist.high - dist.low) / dist.step)
        return [dist.low + i * dist.step for i in range(n + 1)]
    raise ConfigError(
        f"{key}: the grid sampler needs a discrete search space (choice or range), not {dist!r}"
    )


def parse(strings: Iterable[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(list(strings))
    except Exception as e:
        raise ConfigError(f"cannot parse sweep overrides: {e}") from e


def plan(
    cli_overrides: Iterable[str], params: Mapping[str, str] | None, grid_as_studies: bool = True
) -> SweepPlan:
    """Split the command line and the configured search params into fixed, grid and searched parts.

    With `grid_as_studies` (apps with budget and grid groups) a command-line comma list is a grid of
    studies; without it (any other app) it is a categorical, as in hydra-optuna-sweeper. A plain value in
    `params` is passed to every job, as there too.
    """
    fixed, grid, space = [], {}, {}
    for o in parse(cli_overrides):
        if not o.is_sweep_override():
            fixed.append(o.input_line)
        elif o.value_type == ValueType.SIMPLE_CHOICE_SWEEP and grid_as_studies:
            grid[o.get_key_element()] = list(o.value().list)
        else:
            space[o.get_key_element()] = _distribution(o)
    for o in parse(f"{k}={v}" for k, v in (params or {}).items()):
        key = o.get_key_element()
        if key in grid or key in space or any(f.split("=")[0].lstrip("+~") == key for f in fixed):
            continue  # the command line wins over the configured space
        if not o.is_sweep_override():
            fixed.append(o.input_line)
            continue
        space[key] = _distribution(o)
    return SweepPlan(fixed, grid, space)


def cells(grid: Mapping[str, list]) -> list[dict]:
    """The Cartesian product of the grid, in command-line order (one dict per study)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))] or [
        {}
    ]


def _text(value) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        text = {True: "true", False: "false", None: "null"}[value]
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str) and not all(c.isalnum() or c in "_-./@" for c in value):
        text = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        text = str(value)
    return text


def override(key: str, value) -> str:
    """`key=value` in the override grammar, quoting strings that the grammar would misread."""
    return f"{key}={_text(value)}"


def suggest(trial, name: str, dist: od.BaseDistribution):
    """Draw `name` from `dist` through Optuna's public suggest API."""
    if isinstance(dist, od.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, od.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
