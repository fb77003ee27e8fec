"""The bench's sections: each measures one thing and returns a JSON-ready dict (or list of rows)."""

from __future__ import annotations

import gc
import itertools
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from patchtst_hpo.atomic import write_json
from patchtst_hpo.bench.loops import (
    Timing,
    cycle,
    lightning_loop,
    matmul_rate,
    our_path,
    plain_loop,
    plain_step,
    sync_fn,
    timed_loop,
)
from patchtst_hpo.config import compose
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.devices import data_to_device
from patchtst_hpo.models import arch_grid
from patchtst_hpo.models.arch_grid import (
    Candidate,
    Dims,
    arch_from_cfg,
    budget_candidates,
    count_params,
    dims_from_cfg,
)
from patchtst_hpo.models.patchtst import PatchTST
from patchtst_hpo.paths import REPO_DIR

log = logging.getLogger(__name__)


def _datamodule(cfg: DictConfig) -> WindowDataModule:
    dm = WindowDataModule(cfg.data, cfg.task, 0)
    dm.setup()
    return dm


def training_section(bcfg: DictConfig, peak: float, data_dir: str) -> list[dict]:
    """CPU: plain loop vs our path on the same model and loader, and the MFU-like ratio vs fp32 matmul."""
    rows = []
    for budget in bcfg.budgets:
        cfg = compose(
            "train", [f"budget={budget}", f"data.batch_size={bcfg.batch_size}", f"paths.data_dir={data_dir}"]
        )
        dm = _datamodule(cfg)
        arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
        plains, lights = [], []
        for _ in range(bcfg.repeats):  # interleaved, so drift in machine speed hits both alike
            loader = itertools.islice(dm.train_dataloader(), bcfg.warmup + bcfg.steps)
            plains.append(plain_loop(cfg, loader, bcfg.warmup))
            lights.append(lightning_loop(cfg, dm, bcfg.steps, bcfg.warmup))
        plain, light = statistics.median(plains), statistics.median(lights)
        flops = arch_grid.train_flops(arch, dims, 1)
        achieved = light * flops / 1e9
        rows.append(
            {
                "budget": budget,
                "arch": arch.name,
                "params": count_params(arch, dims),
                "batch_size": int(bcfg.batch_size),
                "plain_samples_per_s": plain,
                "lightning_samples_per_s": light,
                "lightning_vs_plain": light / plain,
                "train_flops_per_sample": flops,
                "achieved_gflops": achieved,
                "mfu_vs_matmul": achieved / peak,
            }
        )
        log.info(
            "train %s %s: plain %.0f/s, lightning %.0f/s (%.0f%%)",
            budget,
            arch.name,
            plain,
            light,
            100 * light / plain,
        )
    return rows


def hf_section(bcfg: DictConfig, data_dir: str) -> dict:
    """transformers' PatchTSTForClassification at a matched parameter count vs our model (plain loops).

    Both rates come from `timed_loop` over the same batches with the same warm-up, so each counts exactly
    the batches it times (`hf_timed_batches` = `ours_timed_batches` = `hf_steps`).
    """
    try:
        from transformers import PatchTSTConfig as HFConfig
        from transformers import PatchTSTForClassification
    except ImportError:
        return {"skipped": "transformers is not installed (pip install -e '.[bench]')"}
    cfg = compose(
        "train",
        [f"budget={bcfg.hf_budget}", f"data.batch_size={bcfg.batch_size}", f"paths.data_dir={data_dir}"],
    )
    dims, ours = dims_from_cfg(cfg), cfg.arch

    def hf_model(layers: int):
        c = HFConfig(
            num_input_channels=dims.num_features,
            context_length=dims.context_length,
            patch_length=dims.patch_len,
            patch_stride=dims.stride,
            d_model=ours.d_model,
            num_attention_heads=ours.n_heads,
            num_hidden_layers=layers,
            ffn_dim=ours.d_ff,
            num_targets=2,
            dropout=0.1,
            use_cls_token=False,
            pooling_type="mean",
        )
        return PatchTSTForClassification(c)

    target = count_params(arch_from_cfg(cfg), dims)
    best = min(
        range(1, 4 * ours.n_layers + 1),
        key=lambda n: abs(sum(p.numel() for p in hf_model(n).parameters()) - target),
    )
    warmup = 1  # HF's step is ~40x slower: few steps, few repeats keep `make bench` under 10 minutes
    batches = list(itertools.islice(_datamodule(cfg).train_dataloader(), warmup + int(bcfg.hf_steps)))

    def hf_step() -> Callable:
        torch.manual_seed(0)
        model = hf_model(best).train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)

        def step(x, y):
            loss = model(past_values=x, target_values=y.long()).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    repeats = int(bcfg.hf_repeats)
    hf = [timed_loop(batches, hf_step(), warmup) for _ in range(repeats)]
    ours_t = [timed_loop(batches, plain_step(cfg), warmup) for _ in range(repeats)]
    hf_rate, ours_rate = statistics.median(t.rate for t in hf), statistics.median(t.rate for t in ours_t)
    return {
        "budget": bcfg.hf_budget,
        "ours_arch": ours.name,
        "ours_params": target,
        "hf_params": sum(p.numel() for p in hf_model(best).parameters()),
        "hf_layers": best,
        "hf_samples_per_s": hf_rate,
        "ours_samples_per_s": ours_rate,
        "ours_vs_hf": ours_rate / hf_rate,
        "hf_timed_batches": hf[0].batches,
        "ours_timed_batches": ours_t[0].batches,
        "note": "HF PatchTST is channel-independent: num_features x more tokens per sample",
    }


def data_section(bcfg: DictConfig, data_dir: str, model_rate: float) -> dict:
    """Loader windows/s against the model's samples/s; the a25 feature build on the sample and synthetic rows."""
    import pandas as pd

    from patchtst_hpo.data.ingest import load_raw
    from patchtst_hpo.data.processed import make_features

    cfg = compose(
        "train", ["budget=tiny", f"data.batch_size={bcfg.batch_size}", f"paths.data_dir={data_dir}"]
    )
    dm = _datamodule(cfg)
    rates = []
    for _ in range(bcfg.repeats):
        t, n = time.perf_counter(), 0
        for _, y in dm.train_dataloader():
            n += len(y)
        rates.append(n / (time.perf_counter() - t))
    raw, _ = load_raw(Path(data_dir), "SPX.OHLCV.daily")
    sample_s = statistics.median(_timed(lambda: make_features(raw, "a25")) for _ in range(bcfg.repeats))
    rng = np.random.default_rng(0)
    n = int(bcfg.synthetic_rows)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    synth = {
        "open": close,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": rng.integers(1_000, 10_000, n).astype(float),
    }
    synth_df = pd.DataFrame(synth, index=pd.RangeIndex(n, name="date"))
    synth_s = _timed(lambda: make_features(synth_df, "a25"))
    loader = statistics.median(rates)
    return {
        "loader_windows_per_s": loader,
        "model_samples_per_s": model_rate,
        "loader_vs_model": loader / model_rate,
        "a25_build_seconds_sample": sample_s,
        "sample_rows": len(raw),
        "a25_build_seconds_synthetic": synth_s,
        "synthetic_rows": n,
    }


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def trial_overhead_section(bcfg: DictConfig, data_dir: str) -> dict:
    """Median (trial wall - training loop) over a real tiny sweep: Hydra, config, data and model set-up."""
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/o.db"
        t = time.perf_counter()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "patchtst_hpo.train",
                "-m",
                "budget=tiny",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=5",
                "trainer.limit_val_batches=1",
                "callbacks.progress.refresh_seconds=0",
                f"hydra.sweeper.n_trials={bcfg.overhead_trials}",
                f"paths.data_dir={data_dir}",
                f"hydra.sweep.dir={tmp}/sweep",
                f"hydra.sweeper.storage={url}",
                "hydra.sweeper.study_name=bench",
            ],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
        )
        total = time.perf_counter() - t
        if r.returncode:
            return {"error": (r.stdout + r.stderr)[-1000:]}
        trials = optuna.load_study(study_name="bench.tiny.h1_1pct", storage=url).trials
        walls, overheads = [], []
        for tr in trials:
            m = json.loads((Path(tr.user_attrs["run_dir"]) / "metrics.json").read_text())
            wall = (tr.datetime_complete - tr.datetime_start).total_seconds()
            walls.append(wall)
            overheads.append(wall - m["fit_seconds"])
    return {
        "trials": len(trials),
        "median_trial_seconds": statistics.median(walls),
        "median_overhead_seconds": statistics.median(overheads),
        "sweep_process_seconds": total,
        "startup_seconds": total - sum(walls),
    }


def param_accounting(
    cands: Sequence[Candidate], dims: Dims, count: Callable = count_params
) -> tuple[list[dict], float]:
    """Build every candidate on the meta device and compare `count(arch, dims)` with the built model.

    Returns the mismatches (empty when every count is exact) and the peak Python allocation in bytes.
    """
    tracemalloc.start()
    mismatches = []
    for c in cands:
        with torch.device("meta"):
            model = PatchTST(arch_grid.model_config(c.arch, dims))
        built, counted = sum(p.numel() for p in model.parameters()), int(count(c.arch, dims))
        if built != counted:
            mismatches.append({"arch": c.arch.name, "counted": counted, "built": built})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return mismatches, peak


def param_accounting_section(bcfg: DictConfig) -> dict:
    cfg = compose("train", ["budget=2B"])
    t = time.perf_counter()
    cands = budget_candidates(cfg)
    mismatches, peak = param_accounting(cands, dims_from_cfg(cfg))
    for m in mismatches:
        log.error("param accounting: %s counted %d, built %d", m["arch"], m["counted"], m["built"])
    return {
        "candidates": len(cands),
        "seconds": time.perf_counter() - t,
        "peak_python_mib": peak / 2**20,
        "largest_params": max(c.params for c in cands),
        "mismatches": mismatches,
        "all_exact": not mismatches,
    }


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
        dm = _datamodule(cfg)
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
