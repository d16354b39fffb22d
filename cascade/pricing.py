"""Price tables: US$ per 1M input and output tokens, and context windows.

The built-in table ships in ``cascade/data/model_prices.json``.  A file of the same
shape (``{"model": {"input": .., "output": .., "context_window": ..}}``, keys
starting with ``_`` ignored) overrides or extends it; ``CASCADE_PRICE_FILE``
names one for every engine in the process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cascade.errors import ConfigError, UnknownModelError

__all__ = ["ModelPrice", "PriceTable", "cost_usd"]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float
    context_window: int | None = None


def cost_usd(input_tokens: int, output_tokens: int, price: ModelPrice) -> float:
    return (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1_000_000


class PriceTable(Mapping[str, ModelPrice]):
    """An immutable mapping of model id to :class:`ModelPrice`."""

    def __init__(self, prices: Mapping[str, ModelPrice]) -> None:
        self._prices = dict(prices)

    @classmethod
    def builtin(cls) -> PriceTable:
        text = resources.files("cascade").joinpath("data/model_prices.json").read_text(encoding="utf-8")
        table = cls(_parse(json.loads(text), "built-in price table"))
        env_file = os.environ.get("CASCADE_PRICE_FILE")
        return table.merged(cls.from_file(env_file)) if env_file else table

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PriceTable:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read price file {str(path)!r}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"price file {str(path)!r} is not JSON: {exc.msg} at line {exc.lineno}"
            ) from None
        return cls(_parse(raw, str(path)))

    def merged(self, other: Mapping[str, ModelPrice]) -> PriceTable:
        return PriceTable({**self._prices, **other})

    def lookup(self, model: str) -> ModelPrice:
        """The price of ``model``; a suffix like ``-FC`` or a date stamp falls back to the base name."""
        for candidate in _name_variants(model):
            if candidate in self._prices:
                return self._prices[candidate]
        raise UnknownModelError(model, list(self._prices))

    def __getitem__(self, model: str) -> ModelPrice:
        return self._prices[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)


def _name_variants(model: str) -> Iterator[str]:
    yield model
    if model.endswith("-FC"):
        yield model[: -len("-FC")]


def _parse(raw: object, source: str) -> dict[str, ModelPrice]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object of model -> prices")
    out: dict[str, ModelPrice] = {}
    for model, entry in raw.items():
        if model.startswith("_"):
            continue
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
            raise ConfigError(f"{source}: model {model!r} needs numeric 'input' and 'output' prices")
        try:
            window = entry.get("context_window")
            out[model] = ModelPrice(
                float(entry["input"]), float(entry["output"]), int(window) if window else None
            )
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: model {model!r} has a non-numeric price") from None
    return out
