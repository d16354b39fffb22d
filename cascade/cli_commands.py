"""The core ``cascade`` subcommands: ``bench``, ``report`` and ``prices``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cascade.bench import SUITES, load_suite

__all__ = ["bench_common_arguments", "register"]


def register(subparsers: Any) -> None:
    _register_bench(subparsers)
    _register_report(subparsers)
    _register_prices(subparsers)


def bench_common_arguments() -> argparse.ArgumentParser:
    """Options every bench suite takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", type=Path, default=None,
                        help="dataset folder or file in this suite's format (default: $CASCADE_DATA_DIR/<suite dataset>)")  # fmt: skip
    common.add_argument("--out", type=Path, default=Path("bench-out"),
                        help="folder for the JSON and PNG outputs (default: bench-out)")  # fmt: skip
    common.add_argument("--ledger", type=Path, default=None,
                        help="also write every replayed attempt to this SQLite ledger")  # fmt: skip
    common.add_argument("--limit", type=int, default=None, help="use only the first N items (quick look)")
    return common


def _register_bench(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="offline cascade-vs-single-model benches on recorded outputs (no API key)"
    )
    suites = parser.add_subparsers(dest="suite", metavar="SUITE", required=True)
    common = bench_common_arguments()
    for name, (_, description) in SUITES.items():
        try:
            suite = load_suite(name)
        except ModuleNotFoundError as exc:
            if exc.name != SUITES[name][0]:
                raise
            continue  # a suite that is not built yet is simply not offered
        sub = suites.add_parser(name, help=description, description=description, parents=[common])
        suite.add_arguments(sub)
        sub.set_defaults(handler=suite.run)


def _register_report(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="per contract and tier: pass rate, escalation, $ per accepted output, latency"
    )
    parser.add_argument("--ledger", type=Path, default=None,
                        help="SQLite ledger (default: $CASCADE_LEDGER or ~/.cascade/ledger.sqlite)")  # fmt: skip
    parser.add_argument("--since", type=float, default=None, metavar="HOURS",
                        help="only attempts recorded in the last HOURS hours")  # fmt: skip
    parser.add_argument("--prices", type=Path, default=None, help="JSON price file for counterfactual costs")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    import time

    from cascade.pricing import PriceTable
    from cascade.reports import format_table, load_report, to_json

    table = PriceTable.builtin()
    if args.prices is not None:
        table = table.merged(PriceTable.from_file(args.prices))
    since = time.time() - args.since * 3600 if args.since is not None else None
    report = load_report(args.ledger, since=since, price_table=table)
    if args.json:
        print(json.dumps(to_json(report), indent=2))
    elif sys.stdout.isatty():
        _print_rich(report)
    else:
        print(format_table(report))
    return 0


def _print_rich(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    from cascade.reports import tables

    console = Console()
    for table in tables(report):
        grid = RichTable(title=table.title, title_justify="left")
        for header in table.headers:
            grid.add_column(header, overflow="fold")
        for row in table.rows:
            grid.add_row(*row)
        console.print(grid)


def _register_prices(subparsers: Any) -> None:
    parser = subparsers.add_parser("prices", help="list the price table ($ per 1M tokens)")
    parser.add_argument(
        "--file", type=Path, default=None, help="merge this JSON price file over the built-in table"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_prices)


def _prices(args: argparse.Namespace) -> int:
    from cascade.pricing import PriceTable

    table = PriceTable.builtin()
    if args.file is not None:
        table = table.merged(PriceTable.from_file(args.file))
    rows = sorted(table.items(), key=lambda kv: (kv[1].input_per_mtok, kv[0]))
    if args.json:
        print(json.dumps({m: {"input_per_mtok": p.input_per_mtok, "output_per_mtok": p.output_per_mtok,
                              "context_window": p.context_window} for m, p in rows}, indent=2))  # fmt: skip
        return 0
    print(f"{'model':<36} {'$/1M in':>9} {'$/1M out':>9} {'context':>9}")
    for model, price in rows:
        print(
            f"{model:<36} {price.input_per_mtok:>9.3f} {price.output_per_mtok:>9.3f} {price.context_window:>9}"
        )
    return 0
