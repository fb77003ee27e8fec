"""The `ingest-panel` and `synth` subcommands of `python -m patchtst_hpo.data` (registered by __main__)."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMANDS = ("ingest-panel", "synth")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser(
        "ingest-panel",
        help="register many symbols as one panel: a folder/glob of per-symbol files or one long file",
    )
    i.add_argument("spec", help="a folder, a quoted glob ('prices/*.csv') or, with --symbol-column, one file")
    i.add_argument("--name", required=True, help="panel name, e.g. US.STOCKS.daily")
    i.add_argument(
        "--symbol-column", default=None, help="the column naming the symbol in one long file (e.g. symbol)"
    )
    i.add_argument("--date-column", default="date")
    i.add_argument(
        "--value-column", action="append", dest="value_columns", help="value columns instead of OHLCV"
    )
    s = sub.add_parser(
        "synth", help="write a synthetic OHLCV panel (one parquet per symbol) for ingest-panel"
    )
    s.add_argument("--symbols", type=int, required=True)
    s.add_argument("--days", type=int, required=True)
    s.add_argument("--out", type=Path, required=True, help="folder to write S0000.parquet, ... into")
    s.add_argument("--signal", choices=("planted", "none"), default="planted")
    s.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> None:
    """Run one of COMMANDS; errors are the project's own exceptions (the caller prints them, exits 2)."""
    if args.cmd == "ingest-panel":
        from patchtst_hpo.data.panel import ingest_panel

        e, created = ingest_panel(
            args.spec, args.name, args.root, args.symbol_column, args.value_columns, args.date_column
        )
        word = "registered" if created else "unchanged"
        print(
            f"{word}: panel {e['name']} v{e['version']} ({len(e['symbols'])} symbols, {e['rows']} rows, "
            f"{e['first_date']}..{e['last_date']}) -> {e['path']}"
        )
    else:
        from patchtst_hpo.data.synthetic import write

        paths = write(args.out, args.symbols, args.days, args.seed, args.signal)
        print(
            f"wrote {len(paths)} symbols x {args.days} days ({args.signal} signal, seed {args.seed}) to {args.out}"
        )
