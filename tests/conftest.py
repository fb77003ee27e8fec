"""Shared fixtures: composed configs and a private copy of the sample data (helpers live in tests/helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from patchtst_hpo.config import compose
from patchtst_hpo.paths import REPO_DIR

# Real PostgreSQL and SLURM clusters (postgres, pg_url, slurm fixtures): tests/storage_fixtures.py
pytest_plugins = ["tests.storage_fixtures"]


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


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny models run several times faster on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
