"""Multi-turn conversations over a cascade.

Each turn runs the whole conversation so far through the cascade, so any tier
can take over without losing context; as the history grows, tiers whose
context window can no longer hold it are skipped (and the skip recorded).
The accepted answer becomes the assistant's turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cascade.engine import Cascade, CascadeResult
from cascade.protocols import Contract
from cascade.types import Message

__all__ = ["Conversation"]


class Conversation:
    """A chat whose every turn may be answered by a different tier.

    >>> # chat = Conversation(engine, TextContract([...]), system="You are terse.")
    >>> # chat.ask("Hi"); chat.ask("And then?")   # chat.messages holds both turns and answers
    """

    def __init__(self, engine: Cascade, contract: Contract, *, system: str | None = None) -> None:
        self.engine = engine
        self.contract = contract
        self.messages: list[Message] = [Message("system", system)] if system else []
        self.results: list[CascadeResult] = []

    async def aask(self, text: str, **options: Any) -> CascadeResult:
        """Add a user turn, run the cascade on the whole history, keep the answer as the reply."""
        turn = [*self.messages, Message("user", text)]
        result = await self.engine.arun(turn, self.contract, **options)
        # The history only grows once a turn has an answer: a failed turn can simply be asked again.
        self.messages = [*turn, Message("assistant", result.text)]
        self.results.append(result)
        return result

    def ask(self, text: str, **options: Any) -> CascadeResult:
        """Sync facade of :meth:`aask`."""
        return self.engine.run_sync(self.aask(text, **options))

    @property
    def tiers_used(self) -> Sequence[str | None]:
        """The tier that answered each turn."""
        return [r.tier for r in self.results]
