"""How our Hydra apps report a user's mistake: one line on stderr naming the key, the value and the fix; exit 2.

Hydra prints composition errors over several lines (and for an unknown key suggests `+key`, which adds it
and hides the typo). `install()` wraps Hydra's reporter so our errors, OmegaConf's and Hydra's config errors
become one line; anything else (a bug) keeps Hydra's own report. `HYDRA_FULL_ERROR=1` still shows traces.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.messages import one_line

EXIT_USAGE = 2


def _known(exc: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from patchtst_hpo.errors import PatchTSTHPOError

    return isinstance(exc, PatchTSTHPOError | OmegaConfBaseException | HydraException)


def report(exc: BaseException) -> None:
    print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)


def install() -> None:
    """Make Hydra report config errors (ours, OmegaConf's, its own) as one line with exit code 2, and share
    its ConfigStore instead of copying it (shared_store.py: what keeps `--help` fast)."""
    from patchtst_hpo.hpo.optuna_private import hydra_run_and_report_module
    from patchtst_hpo.shared_store import share_config_store

    share_config_store()
    hydra_utils = hydra_run_and_report_module()
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
