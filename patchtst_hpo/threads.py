"""CPU threads per trial (`trainer.threads`): chosen from the machine and the launcher, set before torch runs.

`auto` (conf/trainer/cpu.yaml) = the cores this process may use (its CPU affinity: taskset, cgroups, SLURM),
divided by the trials running at once on this machine (joblib: min(launcher n_jobs, sweeper n_jobs); basic
and submitit: 1) and by the CPU ranks of a trial, and lowered further when the 1-minute load average says
other work already keeps the cores busy: a trial then gets what is left (at least 1). An integer is taken as
given; null leaves torch's own default (one thread per core, whatever else runs). On a host shared with
other work, oversubscribed OpenMP threads wait on each other: docs/performance.md "Threads" has the figures.
"""

from __future__ import annotations

import math
import os
from typing import Any

from omegaconf import DictConfig

from patchtst_hpo.errors import ConfigError

ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity API
        return os.cpu_count() or 1


def resolve(setting: Any, cores: int, concurrent: int, ranks: int, load: float) -> int | None:
    """Threads for one rank of one trial; None = leave torch's default. ConfigError for a bad setting."""
    if setting is None:
        return None
    if setting == "auto":
        per = max(1, concurrent) * max(1, ranks)
        others = max(0.0, load - per)  # runnable work that is not this sweep's trials
        return max(1, min(cores // per, math.floor((cores - others) / per)))
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ConfigError(
            f"trainer.threads={setting!r}: use auto (cores / concurrent trials, less what other work uses), "
            f"a number of threads >= 1, or null (torch's default)"
        )
    return int(setting)


def concurrent_trials(hydra_cfg: DictConfig | None, cores: int) -> int:
    """Trials this machine runs at once under the launcher of `hydra_cfg` (None: a single run)."""
    if hydra_cfg is None or "launcher" not in hydra_cfg:
        return 1
    launcher = hydra_cfg.launcher
    if "joblib" not in str(launcher.get("_target_", "")).lower():
        return 1  # basic: one after another; submitit: each job in its own allocation
    n = int(launcher.get("n_jobs", -1) or -1)
    n = n if n > 0 else max(1, cores + 1 + n)  # joblib: -1 = every core, -2 = all but one
    batch = hydra_cfg.get("sweeper", {}).get("n_jobs", None)
    return max(1, min(n, int(batch))) if isinstance(batch, int) else n


def cpu_ranks(trainer: DictConfig) -> int:
    """Processes one trial runs on this machine's CPUs (CPU DDP: trainer.devices); 1 on accelerators."""
    if str(trainer.get("accelerator", "cpu")) != "cpu":
        return 1
    devices = trainer.get("devices", 1)
    return int(devices) if isinstance(devices, int) and devices > 0 else 1


def apply(cfg: DictConfig, hydra_cfg: DictConfig | None) -> dict[str, Any]:
    """Choose and set this trial's threads (env for OpenMP/MKL and child processes, then torch); returns
    what metrics.json records: the setting, the threads used and what `auto` saw."""
    cores = usable_cores()
    concurrent = concurrent_trials(hydra_cfg, cores)
    ranks = cpu_ranks(cfg.trainer)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    setting = cfg.trainer.get("threads", "auto")
    n = resolve(setting, cores, concurrent, ranks, load)
    if n is not None:
        for key in ENV:
            os.environ[key] = str(n)
        import torch

        torch.set_num_threads(n)
    else:
        import torch
    return {
        "threads": torch.get_num_threads(),
        "threads_setting": setting,
        "threads_inputs": {
            "cores": cores,
            "concurrent_trials": concurrent,
            "ranks": ranks,
            "load_1min": load,
        },
    }
