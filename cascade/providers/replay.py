"""Serve recorded model outputs as if the model had just answered.

A :class:`ReplayStore` maps ``(model, item_id)`` to a :class:`Recording`.  The
provider answers ``request.item_id`` for ``tier.model``; it uses the recorded
token counts where present and an estimate (flagged) otherwise, and reports
the recorded latency so replayed ledgers look like live ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cascade.errors import ReplayMissError
from cascade.tiers import Tier
from cascade.tokens import estimate_tokens
from cascade.types import Completion, Request, ToolCall, Usage

__all__ = ["Recording", "ReplayProvider", "ReplayStore", "recorded_usage"]


@dataclass(frozen=True, slots=True)
class Recording:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    finish_reason: str | None = None


class ReplayStore:
    """Recorded outputs keyed by model and item id."""

    def __init__(self) -> None:
        self._recordings: dict[tuple[str, str], Recording] = {}

    def add(self, model: str, item_id: str, recording: Recording) -> None:
        self._recordings[(model, item_id)] = recording

    def extend(self, model: str, items: Iterable[tuple[str, Recording]]) -> None:
        for item_id, recording in items:
            self.add(model, item_id, recording)

    def get(self, model: str, item_id: str | None) -> Recording:
        if item_id is None or (model, item_id) not in self._recordings:
            raise ReplayMissError(model, item_id)
        return self._recordings[(model, item_id)]

    def models(self) -> list[str]:
        return sorted({m for m, _ in self._recordings})

    def __len__(self) -> int:
        return len(self._recordings)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._recordings)


class ReplayProvider:
    """A provider whose answers come from a :class:`ReplayStore`."""

    def __init__(self, store: ReplayStore) -> None:
        self.store = store

    def __call__(self, tier: Tier) -> ReplayProvider:
        """Act as its own factory, so one instance can be registered for every replay tier."""
        return self

    async def complete(self, tier: Tier, request: Request, *, timeout: float | None = None) -> Completion:
        recording = self.store.get(tier.model, request.item_id)
        return Completion(
            text=recording.text,
            usage=recorded_usage(recording, request),
            model=tier.model,
            tool_calls=recording.tool_calls,
            finish_reason=recording.finish_reason,
            latency_s=recording.latency_s if recording.latency_s is not None else 0.0,
        )


def recorded_usage(recording: Recording, request: Request) -> Usage:
    """Recorded token counts, or an estimate flagged as such."""
    if recording.input_tokens is not None and recording.output_tokens is not None:
        return Usage(recording.input_tokens, recording.output_tokens, estimated=False)
    output_text = recording.text + "".join(c.name + c.arguments for c in recording.tool_calls)
    return Usage(
        recording.input_tokens
        if recording.input_tokens is not None
        else estimate_tokens(request.prompt_text),
        recording.output_tokens if recording.output_tokens is not None else estimate_tokens(output_text),
        estimated=True,
    )
