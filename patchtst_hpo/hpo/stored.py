"""Overrides read back from a study storage are data: accept only what the sweeper itself could have written.

The report rebuilds a trial's training config from the study's `fixed_overrides` and the trial's params.
Whoever can write the storage could otherwise add `+callbacks.x._target_=builtins.exec` and have the
report run it. `validate_stored_overrides` parses each override with Hydra's own parser and refuses
anything that could instantiate or resolve code, or change Hydra itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser

from patchtst_hpo.errors import ConfigError

# OmegaConf/Hydra keys that make `instantiate` build or call something.
INSTANTIATE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")


def _bad_value(v: Any) -> str | None:
    """Why a parsed override value is not plain data (None when it is)."""
    if isinstance(v, str):
        return "an interpolation (${...})" if "${" in v else None
    if isinstance(v, dict):
        for k, x in v.items():
            if str(k) in INSTANTIATE_KEYS:
                return f"a mapping with {k}"
            if why := _bad_value(k) or _bad_value(x):
                return why
        return None
    if isinstance(v, list | tuple):
        return next((why for x in v if (why := _bad_value(x))), None)
    if v is None or isinstance(v, bool | int | float):
        return None
    return f"a {type(v).__name__}"


def validate_stored_overrides(overrides: Iterable[str], source: str) -> list[str]:
    """Return `overrides` unchanged if each is a plain `key=value` the sweeper could have produced.

    Refused (ConfigError naming `source` and the override): unparsable text, sweeps, `hydra.`/`hydra/` keys,
    keys with an instantiate key (`_target_`, `_partial_`, `_args_`, `_recursive_`, `_convert_`), values
    holding interpolations (`${...}`, which may call resolvers) or mappings with an instantiate key.
    """
    overrides = list(overrides)
    parser = OverridesParser.create()
    for line in overrides:
        if not isinstance(line, str):
            raise ConfigError(f"{source}: stored override {line!r} is not a string")
        try:
            (o,) = parser.parse_overrides([line])
        except Exception as e:  # Hydra's OverrideParseException and friends
            raise ConfigError(f"{source}: stored override {line!r} does not parse: {e}") from e
        key = o.get_key_element()
        why = None
        if o.is_sweep_override():
            why = "a sweep"
        elif key.split("@")[0].startswith(("hydra.", "hydra/")) or key == "hydra":
            why = "a Hydra setting"
        elif any(part in INSTANTIATE_KEYS for part in key.replace("/", ".").replace("@", ".").split(".")):
            why = "an instantiate key"
        elif not o.is_delete() or o.value() is not None:
            why = _bad_value(o.value())
        if why:
            raise ConfigError(
                f"{source}: stored override {line!r} is {why}; the sweeper never writes that, so the storage "
                f"was changed by someone else. Nothing was run. Check who can write the storage"
            )
    return overrides
