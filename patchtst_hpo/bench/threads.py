"""Bench section `threads` (issue 19): a tiny sweep's wall time under a competing CPU load, by thread policy.

Two real `n_trials`-trial tiny sweeps (basic launcher), one with `trainer.threads=auto` (the default) and one
with `trainer.threads=null` (torch's default: a thread per core), run one after the other while `busy`
processes spin on the CPU (as other work on a shared host would), repeated and interleaved so a change in
the machine's other load hits both alike. Everything runs at the bench's own priority.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig

from patchtst_hpo.paths import REPO_DIR
from patchtst_hpo.threads import usable_cores

BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def sweep_wall(data_dir: str, tmp: Path, setting: str, t: DictConfig) -> dict:
    """One sweep with `trainer.threads=setting`: its wall time and what its trials recorded."""
    sweep = tmp / f"sweep_{setting}_{time.monotonic_ns()}"
    args = [
        sys.executable,
        "-m",
        "patchtst_hpo.train",
        "-m",
        "budget=tiny",
        f"trainer.threads={setting}",
        f"trainer.max_epochs={t.epochs}",
        f"trainer.limit_train_batches={t.train_batches}",
        "trainer.limit_val_batches=2",
        "callbacks.progress=null",
        "logger=none",
        "callbacks.lr_monitor=null",
        f"hydra.sweeper.n_trials={t.trials}",
        f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={sweep}",
        f"hydra.sweeper.storage=sqlite:///{sweep}/o.db",
        "hydra.sweeper.study_name=bench",
    ]
    start = time.perf_counter()
    r = subprocess.run(args, cwd=REPO_DIR, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if r.returncode:
        raise RuntimeError(f"threads bench sweep ({setting}): {(r.stdout + r.stderr)[-2000:]}")
    metrics = [json.loads(p.read_text()) for p in sweep.glob("bench.tiny.*/*/metrics.json")]
    return {
        "wall_seconds": wall,
        "trials": len(metrics),
        "fit_seconds": sum(m["fit_seconds"] for m in metrics),
        "threads": sorted({m["threads"] for m in metrics}),
    }


def threads_section(bcfg: DictConfig, data_dir: str) -> dict:
    t = bcfg.threads
    busy = int(t.busy) if t.busy is not None else usable_cores()
    runs: dict[str, list[dict]] = {"auto": [], "null": []}
    with tempfile.TemporaryDirectory() as tmp:
        load = [
            subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=int(t.busy_limit_s))])
            for _ in range(busy)
        ]
        try:
            for _ in range(int(t.repeats)):
                for setting in runs:
                    runs[setting].append(sweep_wall(data_dir, Path(tmp), setting, t))
        finally:
            for p in load:
                p.kill()
                p.wait()
    auto = statistics.median(r["wall_seconds"] for r in runs["auto"])
    torch_default = statistics.median(r["wall_seconds"] for r in runs["null"])
    return {
        "trials": int(t.trials),
        "busy_processes": busy,
        "cores": usable_cores(),
        "auto": runs["auto"],
        "torch_default": runs["null"],
        "auto_wall_seconds": auto,
        "torch_default_wall_seconds": torch_default,
        "torch_default_vs_auto": torch_default / auto,
        "note": "the host's other users add their own load, unmeasured (this machine: 2 cores, 8 agents)",
    }
