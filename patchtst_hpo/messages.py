"""One-line messages for config errors: the key, the bad value and the fix (used by compose() and the CLIs).

OmegaConf and Hydra describe a bad override over several lines; the schemas (`schemas.py`) know which keys exist,
so an unknown key gets a `did you mean ...?` instead of Hydra's `+key` hint, which would add it and hide the typo.
"""

from __future__ import annotations

import difflib
import re

from patchtst_hpo.schemas import SCHEMAS, ArchSchema, keys_of


def suggest(full_key: str, value: str | None = None) -> str:
    """`did you mean ...?` for an unknown dotted key, from the schemas of the groups (empty if no idea)."""
    group, _, key = full_key.rpartition(".")
    group = group.split(".")[0]
    key = key or full_key
    known = {g: keys_of(s) for g, s in {**SCHEMAS, "arch": ArchSchema}.items()}
    tail = f"={value}" if value is not None else ""
    same = difflib.get_close_matches(key, known.get(group, []), n=1, cutoff=0.6)
    if same:
        return f"did you mean {group}.{same[0]}{tail}?"
    for other, names in known.items():
        if key in names and other != group:
            return f"did you mean {other}.{key}{tail}?"
    if group in known:
        return f"{group}'s keys: {', '.join(k for k in known[group] if not k.startswith('_'))}"
    return ""


def _flatten(text: str) -> str:
    return " ".join(str(text).split())


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def one_line(exc: BaseException) -> str:
    """The message of a config/data error as one line that names the key, the value and the fix."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    from patchtst_hpo.errors import PatchTSTHPOError

    chain = _chain(exc)
    ours = next((e for e in chain if isinstance(e, PatchTSTHPOError)), None)
    if ours is not None:  # ours are one line already; Hydra wraps one raised in a plugin's __init__
        return _flatten(str(ours))
    top = _flatten(str(exc))
    override = re.search(r"(?:override|append to your config use) \+?(\S+?)=(\S*)", str(exc))
    for e in chain:
        full_key = getattr(e, "full_key", None)
        msg = str(e).splitlines()[0] if str(e) else ""
        if isinstance(e, ValidationError) and full_key:
            value = override.group(2) if override else None
            want = re.search(r"converted to (\w+)|not a valid (\w+)", msg)
            kind = _flatten(msg)
            if want:
                word = {"bool": "boolean"}.get(
                    (want.group(1) or want.group(2)).lower(), (want.group(1) or want.group(2)).lower()
                )
                kind = f"must be {'an' if word[0] in 'aeiou' else 'a'} {word}"
            shown = f"{full_key}={value}" if value is not None else full_key
            return f"{shown}: {kind} ({_flatten(msg)}); give {full_key} a value of that type"
        if isinstance(e, ConfigAttributeError | ConfigKeyError) and full_key and "not in" in msg:
            value = override.group(2) if override else None
            parent, _, key = full_key.rpartition(".")
            hint = suggest(full_key, value)
            where = f"'{parent}'" if parent else "the config"
            return f"{full_key}{'=' + value if value is not None else ''}: {where} has no key '{key}'" + (
                f"; {hint}" if hint else ""
            )
    m = re.search(
        r"Could not find '([^']+)'\s*Available options in '([^']+)':(.*?)(?:Config search path|$)", top
    )
    if m:
        group, _, wanted = m.group(1).rpartition("/")
        options = [o for o in m.group(3).split() if not o.endswith("_schema")]  # schemas are not choices
        close = difflib.get_close_matches(wanted, options, n=5, cutoff=0.5)
        shown = ", ".join(options if len(options) <= 12 else close or options[:12])
        what = "closest" if len(options) > 12 and close else "choose one of"
        more = f" ({len(options)} in all)" if len(options) > 12 else ""
        said = f"{group}={wanted}: no such option in conf/{m.group(2)}/; {what}: {shown}{more}"
        if m.group(1) == "hydra/sweeper/optuna":  # a hydra-optuna-sweeper (lightning-hydra-template) config
            said += (
                " (optuna is hydra-optuna-sweeper's sweeper, not installed; this project's is "
                "hydra/sweeper=patchtst, or budget_optuna for the plugin's bare defaults: docs/hpo.md, Migration)"
            )
        return said
    top = re.sub(r"\s*Config search path:.*$", "", top)
    return top.replace(
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.", ""
    ).strip()
