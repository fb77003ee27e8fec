"""Shared fixtures: composed configs, a private copy of the sample data, subprocess runners."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patchtst_hpo.config import REPO_DIR, compose

PY = sys.executable


@pytest.fixture
def cfg_factory():
    """Compose `conf/train.yaml` with overrides, as the app would."""
    return lambda *overrides: compose("train", list(overrides))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A private copy of data/ (raw sample + manifest), so tests never write into the checkout."""
    dst = tmp_path_factory.mktemp("data")
    shutil.copytree(REPO_DIR / "data" / "raw", dst / "raw")
    return dst


def run_cli(args: list[str], cwd: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run `python <args>` in a subprocess and return the CompletedProcess (text, both streams)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [PY, *args], cwd=cwd or REPO_DIR, capture_output=True, text=True, timeout=timeout, env=full_env
    )
