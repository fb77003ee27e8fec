"""`python -m patchtst_hpo.data {ingest,ingest-panel,synth,build,verify,list}`: the data registry from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from patchtst_hpo import trust
from patchtst_hpo.data import ingest as ingest_mod
from patchtst_hpo.data import panel_cli, processed
from patchtst_hpo.errors import DataError, PatchTSTHPOError
from patchtst_hpo.home import default_data_dir
from patchtst_hpo.paths import CONF_DIR


def _data_defaults() -> dict:
    """Tier and context length of the default data config (conf/data/sample.yaml), for the length check."""
    from omegaconf import OmegaConf

    d = OmegaConf.load(CONF_DIR / "data" / "sample.yaml")
    return {"tier": str(d.tier), "context_length": int(d.context_length)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m patchtst_hpo.data", description=__doc__)
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="data root holding raw/ and processed/ (default: conf/paths data_dir)",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("ingest", help="register a CSV/parquet file as a raw dataset version")
    i.add_argument("file", type=Path)
    i.add_argument("--name", required=True, help="dataset name, e.g. SPY.OHLCV.daily")
    i.add_argument(
        "--date-column",
        default="date",
        help="the date column's header, any case and spacing (a blank first header is found on its own)",
    )
    i.add_argument(
        "--date-format", help="strptime format of the dates when pandas cannot guess it, e.g. %%d/%%m/%%Y"
    )
    i.add_argument(
        "--value-column",
        action="append",
        dest="value_columns",
        help="a single-value series (e.g. vix) instead of OHLCV; repeatable",
    )
    i.add_argument("--source", help="provenance note stored in the manifest (default: the file path)")
    defaults = _data_defaults()
    i.add_argument(
        "--tier",
        default=defaults["tier"],
        help="an OHLCV series must be long enough for one window of this tier (default: conf/data/sample.yaml)",
    )
    i.add_argument(
        "--context-length", type=int, default=defaults["context_length"], help="window length for that check"
    )
    i.add_argument(
        "--allow-short", action="store_true", help="register a series too short for one window (warns)"
    )
    i.add_argument(
        "--repair-ohlc",
        action="store_true",
        help="widen high/low to cover open and close on rows that break low <= open, close <= high (warns)",
    )
    i.add_argument(
        "--aggregate-daily",
        action="store_true",
        help="intraday bars -> daily bars (open first, high max, low min, close last, volume sum) (warns)",
    )
    b = sub.add_parser("build", help="build a processed feature dataset from raw datasets")
    b.add_argument("--ohlcv", required=True, help="raw OHLCV dataset name")
    b.add_argument("--tier", default="a25")
    b.add_argument("--vix", default=None, help="raw VIX dataset name (adds the VIX block)")
    b.add_argument("--version", default="latest", help="raw OHLCV version")
    b.add_argument(
        "--force", action="store_true", help="recompute and rewrite the file even if it looks intact"
    )
    panel_cli.add_parsers(sub)
    sub.add_parser("verify", help="re-hash every registered file and report changes")
    sub.add_parser("list", help="show both manifests")
    return p


def _list(root: Path) -> None:
    for title, manifest in (
        ("raw", ingest_mod.raw_manifest(root)),
        ("processed", processed.processed_manifest(root)),
    ):
        print(f"{title} datasets ({manifest.path}):")
        print(f"  {'name':<36}{'ver':>4}{'rows':>8}  {'span':<23}  {'sha256':<12}  detail")
        for name, entries in sorted(manifest.load().items()):
            for e in entries:
                detail = e.get("source") or f"tier {e['tier']}, {len(e['features'])} features"
                print(
                    f"  {name:<36}{e['version']:>4}{e['rows']:>8}  {e['first_date']}..{e['last_date']}"
                    f"  {e['sha256'][:12]}  {detail}"
                )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    args.root = args.root or default_data_dir()  # only now: --root DIR must not seed the default folder
    try:
        for flag in ("name", "ohlcv", "vix"):  # every name a command takes becomes a folder or file name
            if getattr(args, flag, None) is not None:
                trust.check_name(getattr(args, flag), f"--{flag}", error=DataError)
        if args.cmd == "ingest":
            entry, word = ingest_mod.ingest(
                args.file,
                args.name,
                args.root,
                args.value_columns,
                args.date_column,
                args.source,
                date_format=args.date_format,
                need_rows=(args.tier, args.context_length),
                allow_short=args.allow_short,
                repair_ohlc=args.repair_ohlc,
                aggregate_daily=args.aggregate_daily,
            )
            print(
                f"{word}: {entry['name']} v{entry['version']} ({entry['rows']} rows, "
                f"{entry['first_date']}..{entry['last_date']}) -> {entry['path']}"
            )
        elif args.cmd == "build":
            entry, word = processed.build(
                args.root, args.ohlcv, args.tier, args.vix, args.version, args.force
            )
            print(
                f"{word}: {entry['id']} v{entry['version']} ({entry['rows']} rows x {len(entry['features'])} "
                f"features, {entry['first_date']}..{entry['last_date']}) -> {entry['path']}"
            )
        elif args.cmd in panel_cli.COMMANDS:
            panel_cli.run(args)
        elif args.cmd == "verify":
            problems = [
                *ingest_mod.raw_manifest(args.root).verify(),
                *processed.processed_manifest(args.root).verify(),
            ]
            for line in problems:
                print(f"CHANGED {line}")
            if problems:
                return 1
            print("all registered files match their sha256")
        else:
            _list(args.root)
    except PatchTSTHPOError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
