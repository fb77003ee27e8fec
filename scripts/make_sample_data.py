"""Re-create the bundled sample (data/raw) from the `arch` 8.0.0 wheel. Not needed at run time.

    pip download --no-deps -d /tmp/arch arch==8.0.0
    python scripts/make_sample_data.py /tmp/arch/arch-8.0.0-*.whl

The VIX file marks 46 days without a close (US holidays) with "."; those rows are dropped.
"""

from __future__ import annotations

import io
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from patchtst_hpo.data.ingest import ingest
from patchtst_hpo.paths import REPO_DIR

SOURCES = {
    "SPX.OHLCV.daily": ("arch/data/sp500/sp500.csv.gz", None),
    "VIX.close.daily": ("arch/data/vix/vix.csv.gz", ["vix"]),
}


def main(wheel: str) -> None:
    root = REPO_DIR / "data"
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        for name, (member, value_columns) in SOURCES.items():
            df = pd.read_csv(io.BytesIO(zf.read(member)), compression="gzip", na_values=["."])
            df = df.drop(columns=["Adj Close"], errors="ignore").dropna()
            path = Path(tmp) / f"{name}.csv"
            df.to_csv(path, index=False)
            entry, status = ingest(
                path, name, root, value_columns, "Date", source=f"arch 8.0.0 wheel (PyPI), {member}"
            )
            print(
                status,  # registered | unchanged | restored
                name,
                f"v{entry['version']}",
                entry["rows"],
                "rows",
            )


if __name__ == "__main__":
    main(sys.argv[1])
