"""The trust boundary: names and values that come from outside (a shared storage, a command line, a file name)
are data, checked here before they become a path, a folder name or a config override.

Rules (each with its parametrised test in tests/test_trust.py):
- **names** (datasets, panels, symbols, study names and prefixes): ASCII letters, digits and `._-`, starting
  with a letter or digit, at most `NAME_MAX` characters; study names may also hold `=` (grid cells are named
  `prefix.budget.task.key=value`). A name is then one folder or file name: no `/`, no `..`, no `~`, no `$`.
- **stored overrides** (a study's `fixed_overrides` and a trial's params): an allowlist of keys a trial may set
  (config group choices and the leaves of the search-able config sections, `ALLOWED_*`), never `hydra.`,
  `paths.`, a package (`@`), an instantiate key or a path-valued leaf; values are plain scalars or flat lists
  of them, strings without `$`, `\\` or control characters, re-rendered quoted; numbers finite and within
  `BOUNDS`.
- nothing read from a storage chooses a path: callers build paths from validated names only.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from patchtst_hpo.errors import ConfigError, PatchTSTHPOError

NAME_MAX = 128
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_STUDY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]*")
# Files a data registry keeps next to its dataset folders: a dataset may not be named like them.
RESERVED_SUFFIXES = (".json", ".lock", ".tmp", ".parquet")

# OmegaConf/Hydra keys that make `instantiate` build or call something.
INSTANTIATE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
# `group=option` choices (an option is a YAML file under conf/<group>/, so the option must be a name).
ALLOWED_GROUPS = (
    "arch",
    "budget",
    "callbacks",
    "data",
    "experiment",
    "grid",
    "logger",
    "model",
    "optimizer",
    "reliability",
    "scheduler",
    "search",
    "task",
    "trainer",
)
# Leaves under these sections hold hyperparameters and data choices only.
ALLOWED_SECTIONS = (
    "arch.",
    "budget.",
    "data.",
    "model.",
    "objective.",
    "optimizer.",
    "reliability.",
    "scheduler.",
    "task.",
)
# ... except these, which hold paths.
PATH_LEAVES = ("data.root",)
# Trainer and callback settings (`trainer.<x>`, `callbacks.<name>.<x>`) may be numbers, booleans or null
# (a path is text, so none can be chosen); text only for these leaves.
TEXT_SETTINGS = (
    "trainer.precision",
    "trainer.gradient_clip_algorithm",
    "callbacks.lr_monitor.logging_interval",
)
ALLOWED_LEAVES = ("seed", *TEXT_SETTINGS)
# Callbacks a stored override may drop (`~callbacks.x` or `callbacks.x=null`), never replace.
DROPPABLE = (
    "callbacks.early_stopping",
    "callbacks.lr_monitor",
    "callbacks.progress",
    "callbacks.model_checkpoint",
)
# Upper bounds of numbers by the last part of their key (inclusive); every number must also be finite.
BOUNDS = {
    "max_epochs": 10_000,
    "min_epochs": 10_000,
    "patience": 10_000,
    "batch_size": 1 << 20,
    "eval_batch_size": 1 << 20,
    "gpu_batch_size": 1 << 20,
    "accumulate_grad_batches": 4096,
    "num_workers": 256,
    "context_length": 100_000,
    "horizon": 10_000,
    "refresh_seconds": 86_400,
}
NUMBER_MAX = 1e12  # any other number: |x| <= this
TEXT_MAX = 256


class UntrustedError(ConfigError):
    """A value read from outside broke a rule of this module (the message names the value and the rule)."""


def shown(value: object) -> str:
    """The value as a message may show it: repr (escapes control and format characters), cut short."""
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_name(
    value: object, what: str, study: bool = False, error: type[PatchTSTHPOError] = ConfigError
) -> str:
    """`value` if it is a safe name (see the module docstring); else `error` naming `what` and the rule.

    `study=True` also allows `=` (grid cells). Dataset-like names may not end like a registry file
    (`RESERVED_SUFFIXES`).
    """
    grammar = _STUDY if study else _NAME
    if not isinstance(value, str) or not value:
        why = "is empty" if value == "" else f"is a {type(value).__name__}, not a string"
    elif len(value) > NAME_MAX:
        why = f"is {len(value)} characters long (at most {NAME_MAX})"
    elif not grammar.fullmatch(value):
        extra = ", '='" if study else ""
        why = f"is not a safe name (ASCII letters, digits, '.', '_', '-'{extra}; starting with a letter or digit)"
    elif not study and value.lower().endswith(RESERVED_SUFFIXES):
        why = f"ends like a registry file ({', '.join(RESERVED_SUFFIXES)})"
    else:
        return value
    raise error(f"{what} {shown(value)} {why}; choose a name like {'spy_h5' if study else 'SPY.OHLCV.daily'}")


def _text_problem(s: str) -> str | None:
    if len(s) > TEXT_MAX:
        return f"a string of {len(s)} characters (at most {TEXT_MAX})"
    if "$" in s or "\\" in s:
        return "a string with '$' or '\\' (an interpolation or escape)"
    if any(unicodedata.category(c).startswith("C") for c in s):
        return "a string with control or format characters"
    return None


def _number_problem(key: str, v: float) -> str | None:
    if not math.isfinite(v):
        return f"the number {v}"
    leaf = key.rsplit(".", 1)[-1]
    if leaf in BOUNDS and not -1 <= v <= BOUNDS[leaf]:
        return f"{v}, outside [-1, {BOUNDS[leaf]}] for {leaf}"
    if abs(v) > NUMBER_MAX:
        return f"{v}, larger than {NUMBER_MAX:g}"
    return None


def value_problem(key: str, v: Any) -> str | None:
    """Why `v` is not a plain value a trial may set for `key` (None when it is)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return _number_problem(key, float(v))
    if isinstance(v, str):
        return _text_problem(v)
    if isinstance(v, list | tuple):
        if len(v) > 64:
            return f"a list of {len(v)} items"
        for x in v:
            if isinstance(x, list | tuple | dict):
                return "a nested list or mapping"
            if why := value_problem(key, x):
                return why
        return None
    return f"a {type(v).__name__}"


def key_problem(key: str) -> str | None:
    """Why an override key is outside the allowlist (None when a stored override may set it)."""
    if "@" in key:
        return "a package override (@)"
    if key == "hydra" or key.startswith(("hydra.", "hydra/")):
        return "a Hydra setting"
    if any(p in INSTANTIATE_KEYS for p in key.replace("/", ".").split(".")):
        return "an instantiate key"
    if key in PATH_LEAVES or key.split(".")[0] in ("paths", "ckpt_path", "trial"):
        return "a path or a job setting"
    if key in ALLOWED_GROUPS or key in ALLOWED_LEAVES or key in DROPPABLE or key.startswith(ALLOWED_SECTIONS):
        return None
    parts = key.split(".")
    if (parts[0], len(parts)) in (("trainer", 2), ("callbacks", 3)):
        return None  # a setting: numbers, booleans or null only (`_problem`)
    return "a key outside the allowlist of what a trial may set"


def _render(v: Any) -> str:
    """A checked value in the override grammar: strings always quoted (no interpolation can be meant)."""
    if isinstance(v, list | tuple):
        return "[" + ",".join(_render(x) for x in v) + "]"
    if v is None or isinstance(v, bool):
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "\\'") + "'"


def _group_value(key: str, v: Any, source: str) -> str:
    options = v if isinstance(v, list | tuple) else [v]
    for o in options:
        check_name(o, f"{source}: stored override {key}= option", error=UntrustedError)
    return f"[{','.join(options)}]" if isinstance(v, list | tuple) else str(v)


def _parse(line: object, source: str):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not isinstance(line, str):
        raise UntrustedError(f"{source}: stored override {shown(line)} is not a string")
    if len(line) > 2 * TEXT_MAX or any(unicodedata.category(c).startswith("C") for c in line):
        raise UntrustedError(f"{source}: stored override {shown(line)} is too long or has control characters")
    try:
        (o,) = OverridesParser.create().parse_overrides([line])
    except Exception as e:  # Hydra's OverrideParseException and friends
        why = " ".join(str(e).split()[:12])
        raise UntrustedError(f"{source}: stored override {shown(line)} does not parse ({why} ...)") from e
    return o


def _problem(o) -> str | None:
    """Why a parsed override is refused (None: it may pass)."""
    if o.is_sweep_override():
        return "a sweep"
    if o.package is not None:
        return "a package override (@)"
    key = o.key_or_group
    if why := key_problem(key):
        return why
    value = None if o.is_delete() else o.value()
    if key in DROPPABLE:
        return None if value is None else "a replaced callback (a stored override may only drop one)"
    if key.startswith(("trainer.", "callbacks.")) and key not in TEXT_SETTINGS:
        if not (value is None or isinstance(value, bool | int | float)):
            return "text for a trainer or callback setting (only numbers, booleans or null: no path)"
    return value_problem(key, value)


def checked_override(line: object, source: str) -> str:
    """One stored override, re-rendered from its checked parts; `UntrustedError` (one line) otherwise."""
    o = _parse(line, source)
    if why := _problem(o):
        raise UntrustedError(
            f"{source}: stored override {shown(line)} is {why}; the sweeper never writes that, so the storage "
            f"was changed by someone else. Nothing was run. Check who can write the storage"
        )
    key = o.key_or_group
    if o.is_delete():
        return f"~{key}"
    prefix = "++" if o.is_force_add() else "+" if o.is_add() else ""
    if key in ALLOWED_GROUPS:
        return f"{prefix}{key}={_group_value(key, o.value(), source)}"
    return f"{prefix}{key}={_render(o.value())}"


def stored_overrides(overrides: Iterable[object], source: str) -> list[str]:
    """Every stored override checked and re-rendered (see `checked_override`); at most 500 of them."""
    overrides = list(overrides)
    if len(overrides) > 500:
        raise UntrustedError(f"{source}: {len(overrides)} stored overrides (at most 500)")
    return [checked_override(o, source) for o in overrides]


def check_run_dir(value: object, number: int, source: str) -> str:
    """A trial's run folder read from a storage (to read its metrics.json): an absolute, normalised path of
    safe characters whose last part is the trial's number. Nothing is ever written there."""
    import os.path

    ok = (
        isinstance(value, str)
        and len(value) <= 4096
        and os.path.isabs(value)
        and os.path.normpath(value) == value
        and not _text_problem(value.replace("\\", "")[:TEXT_MAX])
        and value.rsplit("/", 1)[-1] == str(number)
    )
    if not ok:
        raise UntrustedError(
            f"{source}: stored run_dir {shown(value)} is not an absolute, normalised folder ending in /{number}; "
            f"the storage was changed by someone else. Nothing was run"
        )
    return value


def stored_int(value: object, what: str, low: int, high: int) -> int:
    """An integer read from outside (an epoch count, a trial number) within [low, high]."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or int(value) != value or not low <= int(value) <= high:
        raise UntrustedError(f"{what} is {shown(value)}: need an integer in [{low}, {high}]")
    return int(value)
