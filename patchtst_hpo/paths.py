"""Where the project's files live: the bottom layer, imported by any module that needs a path (imports nothing).

In a source checkout these are the repository's `conf/` and `data/`.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
CONF_DIR = REPO_DIR / "conf"
GRID_FILE = CONF_DIR / "grid" / "default.yaml"
DATA_DIR = REPO_DIR / "data"
