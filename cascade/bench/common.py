"""Helpers every bench suite shares: prices, replay tiers, the optional ledger, the outputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cascade.bench.report import BenchReport, format_table, write_outputs
from cascade.errors import ConfigError, UnknownModelError
from cascade.ledger import SQLiteLedger
from cascade.pricing import PriceTable
from cascade.tiers import Tier

__all__ = ["emit", "open_ledger", "price_table", "tiers_for"]


def price_table(source: Path, extra: Path | None = None) -> PriceTable:
    """Built-in prices, then any ``prices.json`` beside or above the data, then ``extra``."""
    table = PriceTable.builtin()
    folder = source if source.is_dir() else source.parent
    for candidate in (folder.parent / "prices.json", folder / "prices.json"):
        if candidate.exists():
            table = table.merged(PriceTable.from_file(candidate))
    return table.merged(PriceTable.from_file(extra)) if extra is not None else table


def tiers_for(models: Sequence[str], prices: PriceTable) -> list[Tier]:
    """One replay tier per model, priced from ``prices``; a missing price names the model."""
    tiers = []
    for model in models:
        try:
            price = prices.lookup(model)
        except UnknownModelError:
            raise ConfigError(
                f"no price for model {model!r}: add it to a JSON price file and pass --prices FILE"
            ) from None
        tiers.append(
            Tier(
                model,
                "replay",
                model,
                price.input_per_mtok,
                price.output_per_mtok,
                price.context_window or 128_000,
            )
        )
    return tiers


def open_ledger(path: Path | None) -> SQLiteLedger | None:
    return SQLiteLedger(path) if path is not None else None


def emit(report: BenchReport, out: Path) -> int:
    """Write the JSON and PNG, print the table; the suite's exit code."""
    paths = write_outputs(report, out)
    print(format_table(report))
    print(f"wrote {paths['json']} and {paths['png']}\n")
    return 0
