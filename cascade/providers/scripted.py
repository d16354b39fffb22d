"""A provider that answers from a script: for demos, tests and dry runs.

Each tier's answers come from a queue, in order; an entry may be a string, a
:class:`~cascade.types.Completion`, or an exception to raise (to rehearse
failures).  Every request it received is kept in ``requests`` so a caller can
read exactly what a model would have been sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cascade.errors import ProviderError
from cascade.tiers import Tier
from cascade.tokens import estimate_tokens
from cascade.types import Completion, Request, Usage

__all__ = ["ScriptEntry", "ScriptedProvider"]

ScriptEntry = str | Completion | BaseException


@dataclass
class ScriptedProvider:
    """Answers per tier name from ``script``; raises when a tier's script runs out."""

    script: Mapping[str, Iterable[ScriptEntry]]
    requests: list[tuple[str, Request]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queues = {name: deque(entries) for name, entries in self.script.items()}

    def __call__(self, tier: Tier) -> ScriptedProvider:
        return self

    async def complete(self, tier: Tier, request: Request, *, timeout: float | None = None) -> Completion:
        self.requests.append((tier.name, request))
        queue = self._queues.get(tier.name)
        if not queue:
            raise ProviderError(
                "the script has no more answers for this tier", provider="scripted", tier=tier.name
            )
        entry = queue.popleft()
        if isinstance(entry, BaseException):
            raise entry
        if isinstance(entry, Completion):
            return entry
        usage = Usage(estimate_tokens(request.prompt_text), estimate_tokens(entry), estimated=True)
        return Completion(text=entry, usage=usage, model=tier.model, finish_reason="stop")
