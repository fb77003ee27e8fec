"""Bench section `gpu`: plain loop and our path side by side on a GPU (bf16, data on the device)."""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from patchtst_hpo.atomic import write_json
from patchtst_hpo.bench.loops import Timing, cycle, matmul_rate, our_path, plain_step, sync_fn, timed_loop
from patchtst_hpo.bench.sections import datamodule
from patchtst_hpo.config import compose
from patchtst_hpo.devices import data_to_device
from patchtst_hpo.models import arch_grid
from patchtst_hpo.models.arch_grid import arch_from_cfg, count_params, dims_from_cfg

log = logging.getLogger(__name__)


def gpu_section(bcfg: DictConfig, data_dir: str, partial: Path | None = None) -> dict:
    """GPU: plain loop and our path side by side (same model, batch, bf16 autocast, data on the device).

    MFU is against a big bf16 matmul timed in the same run. Our path's set-up (trainer + model build to the
    first step) is reported apart from its steady state; process start-up is timed by scripts/gpu_check.sh.
    After each row the results so far go to `partial` (a time limit may stop the section before it ends).
    """
    device = str(bcfg.gpu_device)
    if device == "cuda" and not torch.cuda.is_available():
        return {"skipped": "no CUDA device on this machine"}
    cuda = device == "cuda"
    sync = sync_fn(device) or (lambda: None)
    peak = matmul_rate(int(bcfg.gpu_matmul_n), int(bcfg.repeats), device, torch.bfloat16)
    out = {
        "device": torch.cuda.get_device_name(0)
        if cuda
        else f"{device} (gpu_device={device}: a plumbing check)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "matmul_tflops_bf16": peak / 1e12,
        "rows": [],
    }
    steps, warmup = int(bcfg.steps), int(bcfg.warmup)
    for budget in bcfg.gpu_budgets:
        over = [f"budget={budget}", f"trainer={bcfg.gpu_trainer}", f"paths.data_dir={data_dir}"]
        if bcfg.gpu_batch_size is not None:
            over.append(f"data.batch_size={bcfg.gpu_batch_size}")
        cfg = compose("train", over)
        arch, dims, batch = arch_from_cfg(cfg), dims_from_cfg(cfg), int(cfg.data.batch_size)
        dm = datamodule(cfg)
        data_to_device(dm.datasets, torch.device(device))
        flops = arch_grid.train_flops(arch, dims, 1)
        row = {
            "budget": budget,
            "arch": arch.name,
            "params": count_params(arch, dims),
            "batch_size": batch,
            "precision": str(cfg.trainer.precision),
            "train_flops_per_sample": flops,
        }
        compiled = (False, True) if budget in bcfg.gpu_compile_budgets else (False,)
        for c in compiled:
            tag = "compiled" if c else "eager"
            t = time.perf_counter()
            step = plain_step(cfg, device, compiled=c)
            timing = timed_loop(cycle(dm.train_dataloader, warmup + steps), step, warmup, sync)
            row[f"plain_{tag}"] = _rate_fields(timing, flops, peak)
            row[f"plain_{tag}"]["setup_and_warmup_seconds"] = time.perf_counter() - t - timing.seconds
            del step
            _release(cuda)
            ccfg = compose("train", [*over, f"trainer.compile={c}"])
            timing, setup = our_path(ccfg, dm, steps, warmup)
            row[f"ours_{tag}"] = {**_rate_fields(timing, flops, peak), "setup_to_first_step_seconds": setup}
            row[f"ours_vs_plain_{tag}"] = (
                row[f"ours_{tag}"]["samples_per_s"] / row[f"plain_{tag}"]["samples_per_s"]
            )
            _release(cuda)
            log.info(
                "gpu %s %s %s: plain %.0f/s, ours %.0f/s (%.0f%%), MFU %.0f%%",
                budget,
                arch.name,
                tag,
                row[f"plain_{tag}"]["samples_per_s"],
                row[f"ours_{tag}"]["samples_per_s"],
                100 * row[f"ours_vs_plain_{tag}"],
                100 * row[f"ours_{tag}"]["mfu"],
            )
        if cuda:
            row["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            torch.cuda.reset_peak_memory_stats()
        out["rows"].append(row)
        if partial is not None:
            write_json(partial, out)
    return out


def _release(cuda: bool) -> None:
    """Free the last model before the next: Trainer and LightningModule reference each other (a cycle)."""
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


def _rate_fields(t: Timing, flops_per_sample: int, peak: float) -> dict:
    achieved = t.rate * flops_per_sample
    return {
        "samples_per_s": t.rate,
        "timed_batches": t.batches,
        "tflops": achieved / 1e12,
        "mfu": achieved / peak,
    }
