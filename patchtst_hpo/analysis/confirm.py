"""Confirmation runs: retrain a trial's config with several seeds on train+val, score on the held-out test.

Runs go through the training app as a Hydra multirun (basic sweeper, the configured launcher), one folder
per seed under `<report>/confirm/<study>/<trial>/seed<S>`. A seed whose folder already has metrics.json
is not run again, so an interrupted report resumes.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from patchtst_hpo import config as project_config
from patchtst_hpo import trust
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.errors import PatchTSTHPOError
from patchtst_hpo.hpo.search_space import override

log = logging.getLogger(__name__)


def trial_overrides(
    fixed: list[str], params: dict, source: str = "study", space: list[str] | None = None
) -> list[str]:
    """The study's fixed overrides plus the trial's chosen params, checked and re-rendered by `trust`.

    Both come from the storage: only keys a trial may set, plain values, and (with `space`, the keys of the
    study's search space) params of that space only. `paths.data_dir` is never taken from the storage: the
    report passes its own (`data_dir_overrides`).
    """
    if not isinstance(params, dict) or not isinstance(fixed, list | tuple):
        raise trust.UntrustedError(f"{source}: stored fixed_overrides / params are not a list / mapping")
    if space is not None:
        unknown = [k for k in params if k not in [*space, "arch"]]
        if unknown:
            raise trust.UntrustedError(
                f"{source}: trial params {unknown[:3]!r} are not in the study's search space; the storage was "
                f"changed by someone else. Nothing was run"
            )
    rest = [o for o in fixed if not _is_data_dir(o)]
    return trust.stored_overrides([*rest, *(override(str(k), v) for k, v in params.items())], source)


def stored(cfg: DictConfig, attrs: dict, params: dict, source: str, drop: tuple[str, ...] = ()) -> list[str]:
    """The checked overrides that retrain a stored trial (`params`; `{}` for the study's data only) in the
    report's data folder; fixed overrides starting with one of `drop` are left out."""
    fixed = attrs.get("fixed_overrides")
    if not isinstance(fixed, list):
        raise trust.UntrustedError(
            f"{source}: user attribute fixed_overrides is {type(fixed).__name__}, not a list"
        )
    space = attrs.get("search_space")
    custom = attrs.get("custom_search_space") is not None
    keys = list(space) if isinstance(space, dict) and not custom else None
    keep = [o for o in fixed if not (isinstance(o, str) and o.startswith(drop))]
    checked = trial_overrides(keep, params, source, keys)
    return [*checked, *data_dir_overrides(fixed, str(cfg.paths.data_dir), source)]


def _is_data_dir(o: object) -> bool:
    return isinstance(o, str) and o.lstrip("+").startswith("paths.data_dir=")


def data_dir_overrides(fixed: list[str], data_dir: str, source: str) -> list[str]:
    """`paths.data_dir=<the report's own data folder>`, after checking the study was swept on the same one.

    The folder is the report's (its `paths.data_dir`), never one read from the storage; a study swept on
    another folder is refused with the fix, since its confirmation would otherwise read other data.
    """
    stored = [o.split("=", 1)[1].strip("'\"") for o in fixed if _is_data_dir(o)]
    if stored and Path(stored[-1]).resolve() != Path(data_dir).resolve():
        raise PatchTSTHPOError(
            f"{source} was swept with paths.data_dir={stored[-1]!r} but the report reads paths.data_dir="
            f"{data_dir}; pass paths.data_dir=<that folder> to the report (after checking it is yours)"
        )
    return [override("paths.data_dir", str(data_dir))]


def refit_epochs(t: pd.Series) -> int:
    """Epochs for the refit: the trial's best epoch, else the epochs it ran, else 1 (NaN-safe). Both are
    read from the storage or the trial's metrics.json: at most `trust.BOUNDS['max_epochs']`."""
    for v in (t.get("best_epoch"), t.get("epochs")):
        if v is not None and pd.notna(v) and float(v) >= 1:
            where = f"study {t.get('study')!r} trial {t.get('number')}: stored epoch count"
            return trust.stored_int(float(v), where, 1, trust.BOUNDS["max_epochs"])
    return 1


def datamodule(overrides: list[str], refit: bool = True) -> tuple[DictConfig, WindowDataModule]:
    """The composed config and set-up DataModule a confirmation run with these (checked: `stored`) overrides
    sees (refit=False: the study's own trials' split, training rows only)."""
    tcfg = project_config.compose(
        "train", [*(with_confirm_overlay(overrides) if refit else overrides), "paths.output_dir=."]
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
        # No secret in the runs' environment (they read no storage), and they die with the report.
        env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
        r = subprocess.run(
            command(overrides, todo, epochs, out_dir, extra),
            env=env,
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )
        if r.returncode != 0:
            raise PatchTSTHPOError(
                f"confirmation run in {out_dir} failed (exit {r.returncode}); its log is in "
                f"{out_dir}/seed<S>/train.log. Fix the cause and re-run the report: finished seeds are kept"
            )
    return "python " + " ".join(shlex.quote(c) for c in cmd[1:])


def die_with_parent(parent: int) -> None:
    """In a child, before exec: SIGTERM when the parent (pid `parent`, the report) dies, even by SIGKILL
    (Linux prctl PR_SET_PDEATHSIG); if the parent is already gone, exit at once."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


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
