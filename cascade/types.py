"""Frozen value types that cross the engine's boundaries.

These are the only engine types the ``validators`` package may import
(together with :mod:`cascade.protocols` and :mod:`cascade.errors`), so they
stay small, dependency-free and immutable.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
JSONSchema = Mapping[str, Any]

__all__ = [
    "Attempt",
    "AttemptKind",
    "Candidate",
    "CheckResult",
    "Completion",
    "JSONSchema",
    "Message",
    "Outcome",
    "Request",
    "Role",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "Verdict",
]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call, described by a JSON Schema for its arguments."""

    name: str
    description: str
    parameters: JSONSchema


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model made; ``arguments`` is the raw JSON text it produced."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Request:
    """What one provider call sends.

    ``json_schema`` asks for provider-native structured output where the tier
    supports it; ``tools`` offers functions.  ``item_id`` lets a replay
    provider find the recorded answer; live providers ignore it.
    """

    messages: tuple[Message, ...]
    json_schema: JSONSchema | None = None
    schema_name: str = "output"
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None
    item_id: str | None = None

    @property
    def prompt_text(self) -> str:
        """All message contents joined, for token estimates and context checks."""
        return "\n".join(m.content for m in self.messages)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call; ``estimated`` is true when no provider reported them."""

    input_tokens: int
    output_tokens: int
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider's answer, normalised across providers."""

    text: str
    usage: Usage
    model: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    #: Seconds the provider reported (replay) or that the call took; ``None`` = measure it.
    latency_s: float | None = None
    #: What the call cost when the provider knows better than tokens x the tier's prices
    #: (a wrapped cascade, a router that bills per call); ``None`` = price the tokens.
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One validator's judgement of one output.

    ``feedback`` is short and written for the model: a re-ask appends it.
    """

    passed: bool
    validator: str
    score: float | None = None
    feedback: str = ""

    def __post_init__(self) -> None:
        if self.score is None:
            object.__setattr__(self, "score", 1.0 if self.passed else 0.0)


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a validator may see: the task as a deployment sees it, and the model's answer."""

    prompt: str
    completion: Completion
    #: The value an earlier stage parsed out of the answer (JSON, a program, ...).
    value: Any = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A contract's judgement: every verdict in order, and the parsed value when accepted."""

    verdicts: tuple[Verdict, ...]
    value: Any = None

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and all(v.passed for v in self.verdicts)

    @property
    def score(self) -> float:
        """Mean validator score; 0 when nothing ran."""
        if not self.verdicts:
            return 0.0
        return sum(v.score or 0.0 for v in self.verdicts) / len(self.verdicts)

    @property
    def feedback(self) -> str:
        return "\n".join(v.feedback for v in self.verdicts if not v.passed and v.feedback)


class AttemptKind(enum.StrEnum):
    FIRST = "first"
    REASK = "reask"
    RETRY = "retry"
    JUDGE = "judge"
    ROUTE = "route"
    SKIP = "skip"

    @property
    def is_side_call(self) -> bool:
        """A metered call beside the cascade's path (a judge, a routing classifier)."""
        return self in (AttemptKind.JUDGE, AttemptKind.ROUTE)


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ERROR = "error"
    SKIPPED = "skipped"
    JUDGED = "judged"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One row of the ledger: one provider call (or one recorded skip)."""

    request_id: str
    seq: int
    contract: str
    tier: str
    model: str
    kind: AttemptKind
    outcome: Outcome
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_estimated: bool = False
    cost_usd: float = 0.0
    latency_s: float = 0.0
    verdicts: tuple[Verdict, ...] = ()
    error: str | None = None
    started_at: float = 0.0
    prompt: str | None = None
    response: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
