"""How our Hydra apps report a user's mistake: one line on stderr naming the key, the value and the fix; exit 2.

Hydra prints composition errors over several lines (and for an unknown key suggests `+key`, which adds it
and hides the typo). `install()` wraps Hydra's reporter so our errors, OmegaConf's and Hydra's config errors
become one line; anything else (a bug) keeps Hydra's own report. `HYDRA_FULL_ERROR=1` still shows traces.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

EXIT_USAGE = 2


def _flatten(text: str) -> str:
    return " ".join(str(text).split())


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def suggest(full_key: str, value: str | None = None) -> str:
    """`did you mean ...?` for an unknown dotted key, from the schemas of the groups (empty if no idea)."""
    from patchtst_hpo.schemas import SCHEMAS, ArchSchema, keys_of

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


def one_line(exc: BaseException) -> str:
    """The message of a config/data error as one line that names the key, the value and the fix."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    chain = _chain(exc)
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
        wanted, options = m.group(1).split("/")[-1], m.group(3).split()
        close = difflib.get_close_matches(wanted, options, n=5, cutoff=0.5)
        shown = ", ".join(options if len(options) <= 12 else close or options[:12])
        what = "closest" if len(options) > 12 and close else "choose one of"
        more = f" ({len(options)} in all)" if len(options) > 12 else ""
        return (
            f"{m.group(1).replace('/', '=', 1)}: no such option in conf/{m.group(2)}/; {what}: {shown}{more}"
        )
    top = re.sub(r"\s*Config search path:.*$", "", top)
    return top.replace(
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.", ""
    ).strip()


def _known(exc: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from patchtst_hpo.errors import PatchTSTHPOError

    return isinstance(exc, PatchTSTHPOError | OmegaConfBaseException | HydraException)


def report(exc: BaseException) -> None:
    print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)


def install() -> None:
    """Make Hydra report config errors (ours, OmegaConf's, its own) as one line with exit code 2."""
    import hydra._internal.utils as hydra_utils

    original: Callable[[Any], Any] = hydra_utils.run_and_report
    if getattr(original, "_patchtst_hpo", False):
        return

    def run_and_report(func: Any) -> Any:
        def guarded() -> Any:
            try:
                return func()
            except Exception as e:
                if os.environ.get("HYDRA_FULL_ERROR") == "1" or not _known(e):
                    raise
                report(e)
                sys.exit(EXIT_USAGE)

        return original(guarded)

    run_and_report._patchtst_hpo = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report


class ValidateOnRunStart(Callback):
    """Validate a single run's config before Hydra makes its run folder, so a bad config writes nothing.

    Hydra turns exceptions raised in callbacks into warnings and goes on, hence the exit here.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from patchtst_hpo.validation import validate

        try:
            validate(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]))  # the job's view
        except Exception as e:
            if os.environ.get("HYDRA_FULL_ERROR") == "1" or not _known(e):
                raise
            report(e)
            sys.exit(EXIT_USAGE)
