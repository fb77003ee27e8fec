"""Where the project's files live: the bottom layer, imported by any module that needs a path.

Two layouts, one code path:
- a source checkout (or an editable install): the repository's `conf/` and `data/` beside the package;
- a wheel install: the same trees shipped read-only inside the package as `patchtst_hpo/conf` and
  `patchtst_hpo/sample_data` (pyproject maps them; `conf/` stays the one place defaults live).
Where a run writes (data you ingest, processed datasets, outputs) is a config default, `conf/paths/`.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# A wheel carries conf/ inside the package; a checkout has it beside the package.
INSTALLED = (PACKAGE_DIR / "conf").is_dir()
CONF_DIR = PACKAGE_DIR / "conf" if INSTALLED else REPO_DIR / "conf"
GRID_DIR = CONF_DIR / "grid"  # every file here is a search space; the arch group holds all their points
# The bundled sample (raw/manifest.json + parquet): read-only; copied into a user data dir on first use.
SAMPLE_DIR = PACKAGE_DIR / "sample_data" if INSTALLED else REPO_DIR / "data"
DATA_DIR = REPO_DIR / "data"  # the checkout's data root (tests, scripts); runs use paths.data_dir
