"""The data home of a run: a folder holding `raw/` and `processed/` with their manifests.

In a checkout that is the repository's `data/`. Installed from a wheel it is `<home>/data`, where home is
`$PATCHTST_HPO_HOME` or the current folder (conf/paths/default.yaml); on first use it is seeded with the
bundled sample so `python -m patchtst_hpo.train` works from an empty folder. Never site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from patchtst_hpo.atomic import atomic_write_bytes
from patchtst_hpo.paths import CONF_DIR, INSTALLED, REPO_DIR, SAMPLE_DIR


def project_root() -> str:
    """The `project_root` resolver: the repository in a checkout, the current folder when installed."""
    return os.getcwd() if INSTALLED else str(REPO_DIR)


def ensure_data_home(data_dir: str | Path) -> str:
    """`data_dir`, with the bundled sample's raw files and manifest copied in if it has no raw manifest."""
    root = Path(data_dir)
    manifest = root / "raw" / "manifest.json"
    if root.resolve() == SAMPLE_DIR.resolve() or manifest.exists():
        return str(data_dir)
    src = SAMPLE_DIR / "raw"
    # Each file atomically, the manifest last: concurrent first runs (a sweep's workers) never see half a copy.
    for f in sorted(src.rglob("*.parquet")):
        dst = root / "raw" / f.relative_to(src)
        if not dst.exists():
            atomic_write_bytes(dst, f.read_bytes())
    atomic_write_bytes(manifest, (src / "manifest.json").read_bytes())
    return str(data_dir)


def register_resolvers() -> None:
    """`project_root` and `data_home`, used by conf/paths/default.yaml."""
    for name, fn in (("project_root", project_root), ("data_home", ensure_data_home)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def default_data_dir() -> Path:
    """`paths.data_dir` of the default config, for CLIs that make no Hydra run (the data CLI).

    Read from conf/paths/default.yaml alone, so the data CLI needs neither Hydra's compose nor the arch group.
    """
    register_resolvers()
    paths = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "paths" / "default.yaml"), resolve=False)
    cfg = OmegaConf.create({"paths": {k: paths[k] for k in ("root_dir", "data_dir")}})
    return Path(cfg.paths.data_dir)
