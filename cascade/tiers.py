"""Tiers: a named model on a provider, with its prices and context window."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cascade.errors import ConfigError
from cascade.pricing import ModelPrice, PriceTable, cost_usd
from cascade.types import Completion

__all__ = ["Tier", "order_by_cost", "tier"]

#: Output tokens assumed for ordering and budget checks when a tier sets no max_tokens.
DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class Tier:
    """One rung of a cascade.

    ``reasks`` is how many times the same tier is re-asked with validator
    feedback before escalating.  ``profile`` names the server's capability
    profile (how it takes structured output); ``options`` is passed to the
    provider as-is.  ``escalation_note=False`` sends this tier the original
    prompt, without the summary of what failed below it (small models can be
    thrown by it).
    """

    name: str
    provider: str
    model: str
    input_per_mtok: float
    output_per_mtok: float
    context_window: int = 128_000
    temperature: float | None = None
    max_tokens: int | None = None
    reasks: int = 0
    base_url: str | None = None
    api_key_env: str | None = None
    profile: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Append a one-line summary of what failed on earlier tiers to this tier's prompt.
    escalation_note: bool = True

    def __post_init__(self) -> None:
        if self.input_per_mtok < 0 or self.output_per_mtok < 0:
            raise ConfigError(f"tier {self.name!r}: prices cannot be negative")
        if self.context_window <= 0:
            raise ConfigError(f"tier {self.name!r}: context_window must be positive")
        if self.reasks < 0:
            raise ConfigError(f"tier {self.name!r}: reasks cannot be negative")

    @property
    def price(self) -> ModelPrice:
        return ModelPrice(self.input_per_mtok, self.output_per_mtok, self.context_window)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return cost_usd(input_tokens, output_tokens, self.price)

    def call_cost(self, completion: Completion) -> float:
        """What a call cost: the provider's own figure when it gives one, else tokens at this tier's prices."""
        if completion.cost_usd is not None:
            return completion.cost_usd
        return self.cost(completion.usage.input_tokens, completion.usage.output_tokens)

    def output_allowance(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS

    def expected_cost(self, input_tokens: int = 1000) -> float:
        """Cost of a typical call, used to order tiers cheapest first."""
        return self.cost(input_tokens, self.output_allowance())

    def with_options(self, **changes: Any) -> Tier:
        return replace(self, **changes)


def tier(
    model: str,
    *,
    provider: str = "openai",
    name: str | None = None,
    prices: PriceTable | None = None,
    input_per_mtok: float | None = None,
    output_per_mtok: float | None = None,
    context_window: int | None = None,
    **settings: Any,
) -> Tier:
    """Build a tier, taking prices and context window from the price table unless given.

    >>> tier("gpt-4o-mini").output_per_mtok
    0.6
    """
    if input_per_mtok is None or output_per_mtok is None:
        listed = (prices or PriceTable.builtin()).lookup(model)
        input_per_mtok = listed.input_per_mtok if input_per_mtok is None else input_per_mtok
        output_per_mtok = listed.output_per_mtok if output_per_mtok is None else output_per_mtok
        context_window = context_window or listed.context_window
    return Tier(
        name=name or model,
        provider=provider,
        model=model,
        input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok,
        context_window=context_window or 128_000,
        **settings,
    )


def order_by_cost(tiers: Iterable[Tier], input_tokens: int = 1000) -> tuple[Tier, ...]:
    """Cheapest expected call first; ties keep the given order."""
    return tuple(sorted(tiers, key=lambda t: t.expected_cost(input_tokens)))
