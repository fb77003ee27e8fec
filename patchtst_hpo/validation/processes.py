"""Checks of where a run trains: devices this machine lacks, and precision/strategy combinations that cannot
run on its CPU. They import torch (the GPU count), so `validate` runs them after the cheap checks, still before
any data is read."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from patchtst_hpo.validation.values import bad

CPU_ONLY_FIX = "use trainer=cpu, or trainer=ddp_cpu for several CPU processes"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_processes(cfg: DictConfig) -> None:
    import torch

    from patchtst_hpo.devices import local_world, sharded, world_size

    t = cfg.trainer
    accel, precision, local = str(t.get("accelerator", "auto")), str(t.get("precision")), local_world(cfg)
    if world_size(cfg) > 1 and t.get("use_distributed_sampler"):
        raise bad(
            "trainer.use_distributed_sampler",
            True,
            "the DataModule shards the training windows itself and every rank evaluates all of val/test; "
            "Lightning's sampler would shard both again (an epoch would see 1/W of the windows); set it false",
        )
    if accel in ("gpu", "cuda"):
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus == 0:
            raise bad("trainer.accelerator", accel, f"this machine has no CUDA GPU; {CPU_ONLY_FIX}")
        if local > gpus:
            raise bad(
                "trainer.devices", t.devices, f"this machine has {gpus} GPU(s); use trainer.devices<={gpus}"
            )
        return
    if accel not in ("cpu", "auto") or (accel == "auto" and torch.cuda.is_available()):
        return
    if sharded(cfg):
        raise bad(
            "trainer.strategy",
            "FSDPStrategy",
            f"FSDP shards across GPUs and cannot run on CPU (nor autocast trainer.precision={precision} there); "
            f"use trainer=fsdp on GPUs, or trainer=ddp_cpu for several CPU processes",
        )
    if precision in ("16-mixed", "16"):
        raise bad(
            "trainer.precision", precision, "fp16 autocast needs a GPU; on CPU use bf16-mixed or 32-true"
        )
    if local > _cores():
        raise bad(
            "trainer.devices",
            t.devices,
            f"{local} CPU training processes on the {_cores()} cores this process may use; "
            f"use trainer.devices<={_cores()}",
        )
