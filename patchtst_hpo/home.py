"""The data home of a run: a folder holding `raw/` and `processed/` with their manifests.

In a checkout that is the repository's `data/`. Installed from a wheel it is `<home>/data`, where home is
`$PATCHTST_HPO_HOME` or the current folder (conf/paths/default.yaml); on first use it is seeded with the
bundled sample so `python -m patchtst_hpo.train` works from an empty folder. Never site-packages.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from patchtst_hpo.atomic import atomic_write_bytes
from patchtst_hpo.paths import SAMPLE_DIR


def ensure_data_home(data_dir: str | Path) -> str:
    """`data_dir`, with the bundled sample's raw files and manifest copied in if it has no raw manifest."""
    root = Path(data_dir)
    manifest = root / "raw" / "manifest.json"
    if root.resolve() == SAMPLE_DIR.resolve() or manifest.exists():
        return str(data_dir)
    src = SAMPLE_DIR / "raw"
    for f in sorted(src.rglob("*.parquet")):
        dst = root / "raw" / f.relative_to(src)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
    atomic_write_bytes(manifest, (src / "manifest.json").read_bytes())  # last: the copy is complete
    return str(data_dir)
