"""What a finished run records about itself beyond its metrics: its best epoch, the disk its checkpoints take,
its start-up time, warnings about evaluation splits too small to trust, and the code and library versions
that produced it (all in metrics.json; the report records the same provenance)."""

from __future__ import annotations

import logging
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)
# The libraries that shape a run's numbers (distribution names).
LIBRARIES = ("torch", "lightning", "optuna", "scikit-learn", "numpy", "pandas", "scipy", "hydra-core")


def _git(*args: str) -> str | None:
    from patchtst_hpo.paths import REPO_DIR

    try:
        r = subprocess.run(["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def provenance() -> dict:
    """The code (git commit and dirty flag in a checkout, else the installed package version) and the
    versions of the libraries behind the numbers."""
    from patchtst_hpo.paths import INSTALLED

    commit = None if INSTALLED else _git("rev-parse", "HEAD")  # a wheel inside some checkout is not it
    if commit:
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        code = {"commit": commit, "dirty": bool(dirty)}
    else:
        code = {"version": _version("patchtst_hpo")}
    return {"code": code, "libraries": {name: _version(name) for name in LIBRARIES}}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def checkpoint_bytes(trainer: L.Trainer) -> int:
    """Bytes the run's checkpoint folder holds at the end (what a sweep trial leaves on disk)."""
    cb = trainer.checkpoint_callback
    d = Path(cb.dirpath) if cb is not None and cb.dirpath else None
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) if d and d.is_dir() else 0


def since_process_start(t: float | None) -> float | None:
    """Seconds from this process's start to wall-clock time `t` (Linux /proc, 1 s resolution; else None).

    In a sweep every trial runs in the sweep's process, so there it is the time since the sweep started.
    """
    if t is None:
        return None
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return round(t - (boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")), 2)


def reliability_warnings(cfg: DictConfig, predictions: dict) -> list[str]:
    """Warnings (also logged) for evaluation splits too small or unbalanced to trust (metrics.json `warnings`)."""
    from patchtst_hpo import metrics  # scikit-learn: imported only once a run has predictions

    r = cfg.reliability
    out = [
        w
        for split, (y, _) in predictions.items()
        for w in metrics.reliability_warnings(y, split, int(r.min_samples), int(r.min_per_class))
    ]
    for w in out:
        log.warning("%s", w)
    return out


def best_epoch(ckpt: str | None) -> int | None:
    if not ckpt:
        return None
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)["epoch"]) + 1


def time_limited(trainer: L.Trainer) -> bool:
    """Training was stopped by `trainer.max_time` (Lightning's Timer) before its last epoch: the trial then
    completes on its best epoch so far, and says so (metrics.json and the trial's `time_limited`)."""
    from lightning.pytorch.callbacks import Timer

    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    if timer is None:
        return False
    remaining = timer.time_remaining("train")
    max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else None
    unfinished = max_epochs is None or int(trainer.current_epoch) < int(max_epochs)
    return remaining is not None and remaining <= 0 and unfinished
