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
import pandas as pd
from omegaconf import DictConfig

from patchtst_hpo import config as project_config
from patchtst_hpo.data.datamodule import WindowDataModule
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


def refit_epochs(t: pd.Series) -> int:
    """Epochs for the refit: the trial's best epoch, else the epochs it ran, else 1 (NaN-safe)."""
    for v in (t.get("best_epoch"), t.get("epochs")):
        if v is not None and pd.notna(v) and float(v) >= 1:
            return int(v)
    return 1


def datamodule(overrides: list[str], refit: bool = True) -> tuple[DictConfig, WindowDataModule]:
    """The composed config and set-up DataModule a confirmation run with these overrides sees (refit=False:
    the study's own trials' split, training rows only)."""
    plain = trial_overrides(overrides, {})
    tcfg = project_config.compose(
        "train", [*(with_confirm_overlay(plain) if refit else plain), "paths.output_dir=."]
    )
    dm = WindowDataModule(tcfg.data, tcfg.task, int(tcfg.seed))
    dm.setup()
    return tcfg, dm


def with_confirm_overlay(overrides: list[str]) -> list[str]:
    """Add the `experiment=confirm` overlay (conf/experiment/confirm.yaml), after any experiment of the study."""
    rest = [o for o in overrides if not o.startswith("experiment=")]
    chosen = [o.split("=", 1)[1].strip("[]") for o in overrides if o.startswith("experiment=")]
    names = [n for c in chosen for n in c.split(",") if n and n != "null"]
    return [*rest, f"experiment=[{','.join([*names, 'confirm'])}]" if names else "experiment=confirm"]


def command(
    overrides: list[str], seeds: list[int], epochs: int, out_dir: Path, extra: list[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "patchtst_hpo.train",
        "-m",
        "hydra/sweeper=basic",
        *with_confirm_overlay(overrides),
        f"seed={','.join(str(s) for s in seeds)}",
        f"trainer.max_epochs={epochs}",
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
    """Per seed: metrics.json plus the val and test labels and probabilities."""
    runs = []
    for s in seeds:
        d = out_dir / f"seed{s}"
        m = json.loads((d / "metrics.json").read_text())
        pred, val = np.load(d / "predictions_test.npz"), np.load(d / "predictions_val.npz")
        runs.append(
            {**m, "y_test": pred["y"], "p_test": pred["p"], "y_val": val["y"], "p_val": val["p"], "seed": s}
        )
    return runs
