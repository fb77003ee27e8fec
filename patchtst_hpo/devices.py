"""Device memory: what a run needs and what its device has, checked before anything is allocated."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from patchtst_hpo.errors import ConfigError

TRAIN_BYTES_PER_PARAM = 16  # fp32 weights + gradients + AdamW's two moments


def available_bytes(accelerator: str) -> int | None:
    """Free memory of the device a run will train on (None where it cannot be read)."""
    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.mem_get_info()[0]
    if accelerator == "cpu":
        try:
            with open("/proc/meminfo") as f:
                info = dict(line.split(":", 1) for line in f)
            return int(info["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            return None
    return None


def check_memory(cfg: DictConfig, params: int) -> None:
    """Refuse, before allocating, a model whose training state cannot fit (instead of an OOM kill)."""
    strategy = cfg.trainer.get("strategy")
    if strategy is not None and "FSDP" in str(strategy):
        return  # sharded across devices: each holds a fraction
    need, have = params * TRAIN_BYTES_PER_PARAM, available_bytes(str(cfg.trainer.accelerator))
    if have is not None and need > have:
        raise ConfigError(
            f"budget={cfg.budget.name} arch={cfg.arch.name} needs about {need / 2**30:.1f} GiB for weights, "
            f"gradients and AdamW state ({TRAIN_BYTES_PER_PARAM} bytes x {params:,} parameters) but "
            f"trainer.accelerator={cfg.trainer.accelerator} has {have / 2**30:.1f} GiB free; use trainer=gpu on a "
            f"larger device or trainer=fsdp across GPUs"
        )
