"""Panel scale check: build a synthetic panel, then compare the train loader's batch rate with the 2M model's
step rate at the same batch size (the loader must never be what a study waits on).

`panel_loader_rows(...)` returns bench rows (a list of dicts); the bench package wires it in as a section.
`build_seconds` is processed features + DataModule setup (after ingest, which is timed apart); peak RSS is
the process peak (`resource.getrusage`), so it bounds every stage. `build_cpu_seconds` and the load
average are recorded because wall time on a shared machine says more about the neighbours.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


def _peak_rss_gib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kib / (1 << 30 if sys.platform == "darwin" else 1 << 20)


def _rate(step, n: int, warmup: int) -> float:
    """Calls per second of `step()` over n calls after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - t0)


def panel_loader_rows(
    symbols: int = 500,
    days: int = 5000,
    batch_size: int = 128,
    loader_batches: int = 2000,
    model_steps: int = 20,
    budget: str = "2M",
    seed: int = 0,
    workdir: Path | None = None,
) -> list[dict[str, Any]]:
    """Rows: build (seconds, peak RSS, windows), loader batches/s, the budget's model steps/s, their ratio."""
    from patchtst_hpo.config import compose
    from patchtst_hpo.data import panel, synthetic
    from patchtst_hpo.data.datamodule import WindowDataModule
    from patchtst_hpo.models.arch_grid import arch_from_cfg, dims_from_cfg, model_config
    from patchtst_hpo.models.patchtst import PatchTST

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        files, root = Path(tmp) / "files", Path(tmp) / "data"
        t0 = time.perf_counter()
        synthetic.write(files, symbols, days, seed, signal="none")
        t_gen = time.perf_counter()
        panel.ingest_panel(str(files), "BENCH.PANEL", root)
        t_ingest, cpu_ingest = time.perf_counter(), time.process_time()
        cfg = compose(
            "train",
            [
                "data=panel",
                "data.panel=BENCH.PANEL",
                f"data.batch_size={batch_size}",
                f"paths.data_dir={root}",
                f"budget={budget}",
            ],
        )
        dm = WindowDataModule(cfg.data, cfg.task, seed)
        dm.setup()
        t_build, cpu_build = time.perf_counter(), time.process_time()
        rss = _peak_rss_gib()
        windows = sum(len(ds) for ds in dm.datasets.values())

        loader = dm.train_dataloader()
        it = iter(loader)

        def next_batch() -> None:
            nonlocal it
            try:
                next(it)
            except StopIteration:  # a new epoch: reshuffle, as training does
                it = iter(loader)
                next(it)

        loader_rate = _rate(next_batch, loader_batches, warmup=10)

        arch, dims = arch_from_cfg(cfg), dims_from_cfg(cfg)
        model = PatchTST(model_config(arch, dims))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x, y = next(iter(dm.train_dataloader()))

        def step() -> None:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        model_rate = _rate(step, model_steps, warmup=3)
    common = {"symbols": symbols, "days": days, "batch_size": batch_size}
    return [
        {
            **common,
            "what": "panel build",
            "generate_seconds": round(t_gen - t0, 2),
            "ingest_seconds": round(t_ingest - t_gen, 2),
            "build_seconds": round(t_build - t_ingest, 2),
            "build_cpu_seconds": round(cpu_build - cpu_ingest, 2),  # the fair figure on a shared machine
            "load_average_1m": round(os.getloadavg()[0], 1),
            "peak_rss_gib": round(rss, 2),
            "windows": windows,
            "train_windows": dm.info["train_windows"],
        },
        {
            **common,
            "what": "train loader vs model",
            "loader_batches_per_s": round(loader_rate, 1),
            "model": f"{budget} {arch.name}",
            "model_steps_per_s": round(model_rate, 2),
            "loader_to_model_ratio": round(loader_rate / model_rate, 1),
            "threads": torch.get_num_threads(),
        },
    ]


if __name__ == "__main__":  # python -m patchtst_hpo.bench.panel [symbols days]
    import json

    logging.basicConfig(level=logging.INFO)
    args = [int(a) for a in sys.argv[1:3]]
    for row in panel_loader_rows(*args):
        print(json.dumps(row))
