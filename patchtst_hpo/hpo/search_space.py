"""Hydra override grammar -> grid cells (one study each) and Optuna distributions (searched within a study).

Command line:  `key=a,b`             -> grid: one study per value (Cartesian product over keys)
               `key=choice(a,b)`     -> categorical distribution
               `key=range(lo,hi,st)` -> stepped distribution of Hydra's range values: `hi` is exclusive
                                      as everywhere in Hydra (warned once where upstream's differs),
                                      either direction, decimal steps exact (`range(0,1,0.3)` has 0.9)
               `key=interval(lo,hi)` -> float distribution; `tag(log, ...)` log scale; `int(interval(..))`
                                      or `tag(int, ...)` integer; `shuffle(range(..))` categorical
`conf/search/*.yaml` and `hydra.sweeper.params` use the same grammar, and there every sweep is a
distribution (a plain comma list is a categorical too); a plain value there is passed to every job.
With the generic planner (hpo/planner.py) a command-line comma list is a categorical too (upstream's meaning).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import optuna.distributions as od
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, ValueType

from patchtst_hpo.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class SweepPlan:
    fixed: list[str]  # plain overrides passed to every job
    grid: dict[str, list]  # key -> values; one study per combination
    space: dict[str, od.BaseDistribution]  # searched within each study


def _is_int(*xs) -> bool:
    return all(isinstance(x, int) and not isinstance(x, bool) for x in xs)


def _range_distribution(o: Override, v: RangeSweep) -> od.BaseDistribution:
    """The values Hydra's own range gives (start, start+step, ... strictly before stop, either direction),
    computed in decimal so `range(0,1,0.3)` keeps 0.9, as a stepped distribution (or, shuffled, a categorical).
    """
    key, step = o.get_key_element(), v.step if v.step is not None else 1
    if step == 0:
        raise ConfigError(f"{key}: {o.input_line!r} has step 0; use a non-zero step")
    start, stop, dstep = (Decimal(str(x)) for x in (v.start, v.stop, step))
    n = math.ceil((stop - start) / dstep)  # how many values before the stop
    if n <= 0:
        raise ConfigError(f"{key}: range({v.start}, {v.stop}, {step}) is empty (the stop is exclusive)")
    integers = _is_int(v.start, v.stop, step)
    value = int if integers else float
    if v.shuffle:  # shuffle(range(...)): an unordered set of values, as in hydra-optuna-sweeper
        return od.CategoricalDistribution([value(start + i * dstep) for i in range(n)])
    if dstep > 0 and (stop - start) % dstep == 0:  # upstream refuses descending ranges
        _warn_exclusive_stop(o, v.stop, value(stop + dstep))
    last = start + (n - 1) * dstep
    low, high, dstep = min(start, last), max(start, last), abs(dstep)
    log = "log" in v.tags
    if log and (dstep != 1 or not integers):
        raise ConfigError(
            f"{key}: {o.input_line!r}: Optuna cannot search a log scale with a step; "
            f"use tag(log, int(interval({low}, {high}))) or drop the log tag"
        )
    if integers:
        return od.IntDistribution(int(low), int(high), step=int(dstep), log=log)
    return od.FloatDistribution(float(low), float(high), step=float(dstep))


_warned: set[str] = set()


def _warn_exclusive_stop(o: Override, stop, later_stop) -> None:
    """Once per range per process: hydra-optuna-sweeper would also draw `stop` (its Optuna bounds are
    inclusive); here it is left out, as by Hydra's range everywhere else (docs/hpo.md, Migration)."""
    if o.input_line in _warned:
        return
    _warned.add(o.input_line)
    log.warning(
        "%s: the stop %s is excluded, as by Hydra's range (hydra-optuna-sweeper includes it); "
        "to search it too, end the range at %s (docs/hpo.md, Migration)",
        o.input_line,
        stop,
        later_stop,
    )


def _distribution(o: Override) -> od.BaseDistribution:
    v = o.value()
    key = o.get_key_element()
    if isinstance(v, ChoiceSweep):  # choice(...), shuffle(choice(...)), a comma list
        if not v.list:
            raise ConfigError(f"{key}: {o.input_line!r} has no choices")
        return od.CategoricalDistribution(list(v.list))
    if isinstance(v, RangeSweep):
        return _range_distribution(o, v)
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
        low, step = Decimal(str(dist.low)), Decimal(str(dist.step))
        n = round((Decimal(str(dist.high)) - low) / step)
        return [float(low + i * step) for i in range(n + 1)]  # decimal: 0.3, not 0.30000000000000004
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

    With `grid_as_studies` (the planner's choice; the budget planner's) a command-line comma list is a grid
    of studies; without it (the generic planner) it is a categorical, as in hydra-optuna-sweeper. A plain value in
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
