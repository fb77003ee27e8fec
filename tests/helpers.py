"""Helpers shared by test files (imported as `tests.helpers`; test files never import each other)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from patchtst_hpo.paths import REPO_DIR

PY = sys.executable
# A few batches of the tiny budget: enough to exercise the whole path in seconds.
FAST = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "callbacks.progress.refresh_seconds=0",
]


def run_cli(args: list[str], cwd: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run `python <args>` in a subprocess and return the CompletedProcess (text, both streams)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [PY, *args], cwd=cwd or REPO_DIR, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def check(r: subprocess.CompletedProcess) -> None:
    """Assert a subprocess succeeded, showing the tail of its output when it did not."""
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


def sqlite_storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def sweep_args(sweep_dir: Path, data_dir: Path, storage: str, *extra: str, name: str = "s") -> list[str]:
    """`python -m patchtst_hpo.train -m` on FAST settings into `sweep_dir`, studies `<name>.*` in `storage`."""
    return [
        "-m",
        "patchtst_hpo.train",
        "-m",
        *FAST,
        f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.study_name={name}",
        *extra,
    ]


def synthetic_ohlcv(n: int = 400, seed: int = 0, start: str = "2000-01-03") -> pd.DataFrame:
    """A random-walk daily OHLCV table with the headers a downloaded file has (Date, Open, ..., Volume)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    return pd.DataFrame(
        {
            "Date": pd.bdate_range(start, periods=n),
            "Open": open_,
            "High": high,
            "Low": low,
            "Close": close,
            "Volume": rng.integers(1_000_000, 5_000_000, n).astype(float),
        }
    )


def snapshot(root: Path) -> dict:
    """Every file under root with its bytes (lock files aside): proves a failed command wrote nothing."""
    root = Path(root)
    if not root.exists():
        return {}
    return {
        p.relative_to(root): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }
