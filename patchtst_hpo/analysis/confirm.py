"""Confirmation runs: retrain a trial's config with several seeds on train+val, score on the held-out test.

Runs go through the training app as a Hydra multirun (basic sweeper, the configured launcher), one folder
per seed under `<report>/confirm/<study>/<trial>/seed<S>`. A seed whose folder already has metrics.json
is not run again, so an interrupted report resumes.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from patchtst_hpo.errors import PatchTSTHPOError
from patchtst_hpo.hpo.search_space import override
from patchtst_hpo.hpo.stored import validate_stored_overrides

log = logging.getLogger(__name__)


def trial_overrides(fixed: list[str], params: dict, source: str = "study") -> list[str]:
    """The study's fixed overrides (minus sweeper/output settings) plus the trial's chosen params.

    Both come from the storage, so they are checked to be plain overrides the sweeper could have written.
    """
    keep = [o for o in fixed if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    return validate_stored_overrides([*keep, *(override(k, v) for k, v in params.items())], source)


def command(
    overrides: list[str], seeds: list[int], epochs: int, out_dir: Path, extra: list[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "patchtst_hpo.train",
        "-m",
        "hydra/sweeper=basic",
        *overrides,
        f"seed={','.join(str(s) for s in seeds)}",
        "data.fit_on=train_val",
        f"trainer.max_epochs={epochs}",
        "callbacks.early_stopping=null",
        "callbacks.model_checkpoint.monitor=null",
        "test=true",
        "callbacks.progress.refresh_rate=0",
        f"hydra.sweep.dir={out_dir}",
        "hydra.sweep.subdir=seed${seed}",
        *extra,
    ]


def run(overrides: list[str], seeds: list[int], epochs: int, out_dir: Path, extra: list[str]) -> str:
    """Run the seeds not yet done; returns the full command (for the report's reproduce section)."""
    todo = [s for s in seeds if not (out_dir / f"seed{s}" / "metrics.json").exists()]
    cmd = command(overrides, seeds, epochs, out_dir, extra)
    if todo:
        log.info("confirming %s with seeds %s (%d epochs on train+val)", out_dir.name, todo, epochs)
        # The runs' own logs stream through (epochs as they finish) and stay in <seed dir>/train.log.
        # In the caller's folder (not the package's): installed, that folder is where runs read and write.
        r = subprocess.run(command(overrides, todo, epochs, out_dir, extra))
        if r.returncode != 0:
            raise PatchTSTHPOError(
                f"confirmation run in {out_dir} failed (exit {r.returncode}); its log is in "
                f"{out_dir}/seed<S>/train.log. Fix the cause and re-run the report: finished seeds are kept"
            )
    return "python " + " ".join(shlex.quote(c) for c in cmd[1:])


def load(out_dir: Path, seeds: list[int]) -> list[dict]:
    """Per seed: metrics.json plus the test labels and probabilities."""
    runs = []
    for s in seeds:
        d = out_dir / f"seed{s}"
        m = json.loads((d / "metrics.json").read_text())
        pred = np.load(d / "predictions_test.npz")
        runs.append({**m, "y_test": pred["y"], "p_test": pred["p"]})
    return runs
