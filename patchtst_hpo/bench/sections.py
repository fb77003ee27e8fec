"""The bench's CPU sections (training, data, trial overhead, 2B param accounting); each measures one thing and
returns a JSON-ready dict or list of rows. The HF, GPU, pruning and threads sections have their own modules."""

from __future__ import annotations

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

from patchtst_hpo.bench.loops import (
    lightning_loop,
    plain_loop,
)
from patchtst_hpo.config import compose
from patchtst_hpo.data.datamodule import WindowDataModule
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


def datamodule(cfg: DictConfig) -> WindowDataModule:
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
        dm = datamodule(cfg)
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


def data_section(bcfg: DictConfig, data_dir: str, model_rate: float) -> dict:
    """Loader windows/s against the model's samples/s; the a25 feature build on the sample and synthetic rows."""
    import pandas as pd

    from patchtst_hpo.data.ingest import load_raw
    from patchtst_hpo.data.processed import make_features

    cfg = compose(
        "train", ["budget=tiny", f"data.batch_size={bcfg.batch_size}", f"paths.data_dir={data_dir}"]
    )
    dm = datamodule(cfg)
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
