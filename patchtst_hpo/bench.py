"""`python -m patchtst_hpo.bench [mode=smoke]`: how fast, how close to the machine, and against what.

Everything is measured side by side in one process and reported as medians of `repeats` runs, with ratios:
training throughput and an MFU-like ratio against this machine's fp32 matmul rate; our Lightning path
against a plain PyTorch loop on the same model and tensors; HuggingFace's PatchTSTForClassification at a
matched parameter count (optional `bench` extra); the data path; the sweeper's per-trial overhead; exact
parameter accounting of every 2B candidate on the meta device; a GPU section when CUDA is present.
Writes results.json and results.md in the run folder (outputs/bench/<time>/). See docs/performance.md.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from patchtst_hpo.atomic import write_json, write_text
from patchtst_hpo.config import compose
from patchtst_hpo.data.datamodule import WindowDataModule
from patchtst_hpo.models import arch_grid
from patchtst_hpo.models.arch_grid import (
    Arch,
    Dims,
    arch_from_cfg,
    budget_candidates,
    count_params,
    dims_from_cfg,
)
from patchtst_hpo.models.lit_module import LitPatchTST, warmup_cosine
from patchtst_hpo.models.patchtst import PatchTST
from patchtst_hpo.paths import CONF_DIR, REPO_DIR
from patchtst_hpo.train import model_config

log = logging.getLogger(__name__)


def forward_flops(arch: Arch, dims: Dims) -> int:
    """Matmul FLOPs of one sample's forward pass (2 per multiply-add); training is ~3x this."""
    p, d, f = dims.num_patches, arch.d_model, arch.d_ff
    embed = 2 * p * dims.patch_len * dims.num_features * d
    layer = 2 * p * d * 3 * d + 2 * p * d * d + 2 * 2 * p * d * f + 2 * 2 * p * p * d  # qkv, proj, ffn, attn
    head = 2 * d * p * dims.num_classes
    return embed + arch.n_layers * layer + head


def matmul_gflops(n: int, repeats: int) -> float:
    """Dense fp32 matmul rate of this machine (the denominator of the MFU-like ratio)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(3):
            torch.mm(a, b)
        rates.append(3 * 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return statistics.median(rates)


def _batches(dm: WindowDataModule, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)]


def plain_loop(cfg: DictConfig, batches, warmup: int) -> float:
    """samples/s of a hand-written loop: forward, BCE, backward, clip, the configured AdamW, schedule.

    `batches` is any iterable of (x, y): the DataModule's loader (as our path uses) or ready tensors.
    """
    torch.manual_seed(0)
    model = PatchTST(model_config(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg)))
    opt = instantiate(cfg.optimizer)(model.parameters())
    sched = warmup_cosine(opt, 1000, 0.05, 0.1)
    model.train()
    n, t0 = 0, 0.0
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            t0 = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        n += len(y) if i >= warmup else 0
    return n / (time.perf_counter() - t0)


class _StepTimer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.t0, self.t1, self.samples = warmup, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.samples += len(batch[1])
            self.t1 = time.perf_counter()


def lightning_loop(cfg: DictConfig, dm: WindowDataModule, steps: int, warmup: int) -> float:
    """samples/s of our training path: LitPatchTST in a Trainer, batches from the DataModule."""
    torch.manual_seed(0)
    lit = LitPatchTST(
        model_config(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg)),
        instantiate(cfg.optimizer),
        lambda opt, total_steps: warmup_cosine(opt, total_steps, 0.05, 0.1),
    )
    timer = _StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=warmup + steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        callbacks=[timer],
        num_sanity_val_steps=0,
    )
    trainer.fit(lit, train_dataloaders=dm.train_dataloader())
    return timer.samples / (timer.t1 - timer.t0)


def training_section(bcfg: DictConfig, peak: float, data_dir: str) -> list[dict]:
    rows = []
    for budget in bcfg.budgets:
        cfg = compose(
            "train", [f"budget={budget}", f"data.batch_size={bcfg.batch_size}", f"paths.data_dir={data_dir}"]
        )
        dm = WindowDataModule(cfg.data, cfg.task, 0)
        dm.setup()
        arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
        plains, lights = [], []
        for _ in range(bcfg.repeats):  # interleaved, so drift in machine speed hits both alike
            loader = itertools.islice(dm.train_dataloader(), bcfg.warmup + bcfg.steps)
            plains.append(plain_loop(cfg, loader, bcfg.warmup))
            lights.append(lightning_loop(cfg, dm, bcfg.steps, bcfg.warmup))
        plain, light = statistics.median(plains), statistics.median(lights)
        flops = forward_flops(arch, dims)
        achieved = light * 3 * flops / 1e9
        rows.append(
            {
                "budget": budget,
                "arch": arch.name,
                "params": count_params(arch, dims),
                "batch_size": int(bcfg.batch_size),
                "plain_samples_per_s": plain,
                "lightning_samples_per_s": light,
                "lightning_vs_plain": light / plain,
                "train_flops_per_sample": 3 * flops,
                "achieved_gflops": achieved,
                "mfu_vs_matmul": achieved / peak,
            }
        )
        log.info(
            "train %s %s: plain %.0f/s, lightning %.0f/s (%.0f%%), %.1f GFLOP/s = %.0f%% of matmul",
            budget,
            arch.name,
            plain,
            light,
            100 * light / plain,
            achieved,
            100 * achieved / peak,
        )
    return rows


def hf_section(bcfg: DictConfig, data_dir: str) -> dict:
    """transformers' PatchTSTForClassification at a matched parameter count vs our model (plain loops)."""
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
    dm = WindowDataModule(cfg.data, cfg.task, 0)
    dm.setup()
    warmup = 1  # HF's step is ~40x slower: few steps, few repeats keep `make bench` under 10 minutes
    batches = _batches(dm, warmup + int(bcfg.hf_steps))

    def hf_rate() -> float:
        torch.manual_seed(0)
        model = hf_model(best).train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        for i, (x, y) in enumerate(batches):
            if i == warmup:
                t0 = time.perf_counter()
            loss = model(past_values=x, target_values=y.long()).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return sum(len(y) for _, y in batches[bcfg.warmup :]) / (time.perf_counter() - t0)

    hf = statistics.median(hf_rate() for _ in range(bcfg.repeats))
    ours_rate = statistics.median(plain_loop(cfg, batches, bcfg.warmup) for _ in range(bcfg.repeats))
    return {
        "budget": bcfg.hf_budget,
        "ours_arch": ours.name,
        "ours_params": target,
        "hf_params": sum(p.numel() for p in hf_model(best).parameters()),
        "hf_layers": best,
        "hf_samples_per_s": hf,
        "ours_samples_per_s": ours_rate,
        "ours_vs_hf": ours_rate / hf,
        "note": "HF PatchTST is channel-independent: num_features x more tokens per sample",
    }


def data_section(bcfg: DictConfig, data_dir: str, model_rate: float) -> dict:
    from patchtst_hpo.data.ingest import load_raw
    from patchtst_hpo.data.processed import make_features

    cfg = compose(
        "train", ["budget=tiny", f"data.batch_size={bcfg.batch_size}", f"paths.data_dir={data_dir}"]
    )
    dm = WindowDataModule(cfg.data, cfg.task, 0)
    dm.setup()
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
    import pandas as pd

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
                "callbacks.progress.refresh_rate=0",
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


def param_accounting_section(bcfg: DictConfig) -> dict:
    cfg = compose("train", ["budget=2B"])
    dims = dims_from_cfg(cfg)
    tracemalloc.start()
    t = time.perf_counter()
    cands = budget_candidates(cfg)
    for c in cands:
        with torch.device("meta"):
            model = PatchTST(arch_grid.model_config(c.arch, dims))
        assert sum(p.numel() for p in model.parameters()) == c.params
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "candidates": len(cands),
        "seconds": seconds,
        "peak_python_mib": peak / 2**20,
        "largest_params": max(c.params for c in cands),
        "all_exact": True,
    }


def gpu_section(bcfg: DictConfig, data_dir: str) -> dict:
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device on this machine"}
    out = {"device": torch.cuda.get_device_name(0), "rows": []}
    for budget in bcfg.gpu_budgets:
        cfg = compose("train", [f"budget={budget}", f"paths.data_dir={data_dir}"])
        arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
        for compiled in (False, True) if bcfg.gpu_compile else (False,):
            torch.manual_seed(0)
            model = PatchTST(model_config(cfg, arch_from_cfg(cfg), dims_from_cfg(cfg))).cuda()
            step_model = torch.compile(model) if compiled else model
            opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
            x = torch.randn(bcfg.gpu_batch_size, dims.context_length, dims.num_features, device="cuda")
            y = (torch.rand(bcfg.gpu_batch_size, device="cuda") > 0.5).float()
            for i in range(bcfg.warmup + bcfg.steps):
                if i == bcfg.warmup:
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(
                        step_model(x).squeeze(-1).float(), y
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            torch.cuda.synchronize()
            rate = bcfg.steps * bcfg.gpu_batch_size / (time.perf_counter() - t)
            tflops = rate * 3 * forward_flops(arch, dims) / 1e12
            out["rows"].append(
                {
                    "budget": budget,
                    "arch": arch.name,
                    "compiled": compiled,
                    "samples_per_s": rate,
                    "achieved_tflops_bf16": tflops,
                }
            )
            del model, step_model, opt
            torch.cuda.empty_cache()
    return out


def markdown(res: dict) -> str:
    m = res["meta"]
    lines = [
        f"# Benchmark {m['date']} ({m['mode']})",
        "",
        f"{m['cpu']}, {m['threads']} torch threads, torch {m['torch']}; matmul fp32 "
        f"{res['matmul_gflops']:.1f} GFLOP/s (n={m['matmul_n']}). Medians of {m['repeats']} runs.",
        "",
        "| budget | arch | params | batch | plain loop samples/s | our path samples/s | ours / plain | "
        "GFLOP/s | MFU vs matmul |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res.get("training", []):
        lines.append(
            f"| {r['budget']} | `{r['arch']}` | {r['params']:,} | {r['batch_size']} | "
            f"{r['plain_samples_per_s']:.0f} | {r['lightning_samples_per_s']:.0f} | "
            f"{r['lightning_vs_plain']:.1%} | {r['achieved_gflops']:.1f} | {r['mfu_vs_matmul']:.1%} |"
        )
    hf = res["hf"]
    lines += [
        "",
        "HuggingFace PatchTSTForClassification: "
        + (
            hf["skipped"]
            if "skipped" in hf
            else f"{hf['budget']}: ours `{hf['ours_arch']}` {hf['ours_params']:,} params at {hf['ours_samples_per_s']:.0f}/s "
            f"vs HF ({hf['hf_layers']} layers) {hf['hf_params']:,} params at {hf['hf_samples_per_s']:.0f}/s: "
            f"ours is {hf['ours_vs_hf']:.1f}x ({hf['note']})"
        ),
    ]
    d = res["data"]
    lines += (
        []
        if "skipped" in d
        else [
            "",
            f"Data path: loader {d['loader_windows_per_s']:,.0f} windows/s vs 2M model "
            f"{d['model_samples_per_s']:,.0f} samples/s = {d['loader_vs_model']:.0f}x; a25 build "
            f"{d['a25_build_seconds_sample']:.3f}s on the sample ({d['sample_rows']} rows), "
            f"{d['a25_build_seconds_synthetic']:.2f}s on {d['synthetic_rows']:,} synthetic rows.",
        ]
    )
    o = res["trial_overhead"]
    lines += [
        "",
        "Per-trial overhead: "
        + (
            o.get("error", o.get("skipped", ""))[:200]
            if "median_trial_seconds" not in o
            else f"median {o['median_overhead_seconds']:.2f}s of a {o['median_trial_seconds']:.2f}s tiny trial "
            f"(over {o['trials']} trials); sweeper process start-up {o['startup_seconds']:.1f}s once."
        ),
    ]
    p = res["param_accounting_2b"]
    lines += (
        []
        if "skipped" in p
        else [
            "",
            f"2B param accounting: {p['candidates']} candidates built on the meta device and counted exactly in "
            f"{p['seconds']:.2f}s, peak Python allocations {p['peak_python_mib']:.1f} MiB.",
        ]
    )
    g = res["gpu"]
    lines += ["", "GPU: " + (g["skipped"] if "skipped" in g else g["device"])]
    for r in g.get("rows", []):
        lines.append(
            f"- {r['budget']} `{r['arch']}` compiled={r['compiled']}: {r['samples_per_s']:.0f} samples/s, "
            f"{r['achieved_tflops_bf16']:.1f} TFLOP/s bf16"
        )
    return "\n".join(lines) + "\n"


def run(bcfg: DictConfig, out: Path) -> dict[str, Any]:
    data_dir = str(bcfg.data_dir)
    peak = matmul_gflops(int(bcfg.matmul_n), int(bcfg.repeats))
    res: dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "mode": bcfg.mode,
            "repeats": int(bcfg.repeats),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "matmul_n": int(bcfg.matmul_n),
            "config": OmegaConf.to_container(bcfg, resolve=True),
        },
        "matmul_gflops": peak,
    }
    sections = set(bcfg.sections)
    if "training" in sections:
        res["training"] = training_section(bcfg, peak, data_dir)
    if "hf" in sections:
        res["hf"] = hf_section(bcfg, data_dir)
    if "data" in sections:
        rates = {r["budget"]: r["plain_samples_per_s"] for r in res.get("training", [])}
        res["data"] = data_section(
            bcfg, data_dir, rates.get(bcfg.hf_budget, min(rates.values(), default=1.0))
        )
    if "trial_overhead" in sections:
        res["trial_overhead"] = trial_overhead_section(bcfg, data_dir)
    if "param_accounting" in sections:
        res["param_accounting_2b"] = param_accounting_section(bcfg)
    res["gpu"] = gpu_section(bcfg, data_dir) if "gpu" in sections else {"skipped": "not selected"}
    res.setdefault("training", [])
    for key in ("hf", "data", "trial_overhead", "param_accounting_2b"):
        res.setdefault(key, {"skipped": "not selected (bench.sections)"})
    write_json(out / "results.json", res)
    write_text(out / "results.md", markdown(res))
    print(markdown(res))
    return res


@hydra.main(config_path=str(CONF_DIR), config_name="bench", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
