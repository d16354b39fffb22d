"""A whole cascade behind the provider interface, so it can serve as one tier of another.

The outer engine sees one call: the inner cascade's chosen completion, its
tokens summed over every inner call, and its real cost (``Completion.cost_usd``),
so budgets and ledgers stay truthful.  The inner attempts go to the inner
engine's own ledger.
"""

from __future__ import annotations

from cascade.engine import Cascade
from cascade.errors import CascadeFailed, PermanentError
from cascade.protocols import Contract
from cascade.tiers import Tier
from cascade.types import AttemptKind, Completion, Request, Usage

__all__ = ["CascadeProvider"]


class CascadeProvider:
    """Answer with ``engine`` under ``contract``; register it like any provider factory.

    >>> # outer = Cascade([Tier("cheap-ladder", "nested", "ladder", 0, 0), big],
    >>> #                 providers={"nested": CascadeProvider(inner, contract)})
    """

    def __init__(self, engine: Cascade, contract: Contract) -> None:
        self.engine = engine
        self.contract = contract

    def __call__(self, tier: Tier) -> CascadeProvider:
        return self

    async def complete(self, tier: Tier, request: Request, *, timeout: float | None = None) -> Completion:
        try:
            result = await self.engine.arun(
                request.messages, self.contract, item_id=request.item_id, deadline_s=timeout,
                max_tokens=request.max_tokens,
            )  # fmt: skip
        except CascadeFailed as exc:
            raise PermanentError(
                f"the inner cascade accepted no output: {exc}", provider=tier.provider, tier=tier.name
            ) from None
        calls = [a for a in result.attempts if a.kind is not AttemptKind.SKIP]
        usage = Usage(
            sum(a.input_tokens for a in calls),
            sum(a.output_tokens for a in calls),
            estimated=any(a.tokens_estimated for a in calls),
        )
        inner = result.completion
        return Completion(
            text=result.text, usage=usage, model=result.model or tier.model,
            tool_calls=inner.tool_calls if inner else (), finish_reason=inner.finish_reason if inner else None,
            latency_s=sum(a.latency_s or 0.0 for a in calls), cost_usd=result.cost_usd,
        )  # fmt: skip
