"""The small protocols the engine and its plug-ins meet at.

``validators`` may import this module, :mod:`cascade.types` and
:mod:`cascade.errors`, and nothing else from the engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cascade.tiers import Tier
from cascade.types import Attempt, Candidate, CheckResult, Completion, Request, Verdict

__all__ = [
    "AttemptSink",
    "CheckContext",
    "Contract",
    "ModelCaller",
    "Provider",
    "Router",
    "Validator",
]


@runtime_checkable
class Validator(Protocol):
    """A small synchronous check of one candidate.

    Validators carry a ``cost`` hint (lower runs first when combined) and a
    readable ``__repr__``; see :mod:`validators` for the factories.
    """

    def __call__(self, candidate: Candidate) -> Verdict: ...


class Provider(Protocol):
    """One method: send a request to a tier's model and return its completion.

    Implementations translate every foreign error into :mod:`cascade.errors`
    in one place, and never retry on their own: retries are policy.
    """

    async def complete(self, tier: Tier, request: Request, *, timeout: float | None = None) -> Completion: ...


#: A metered model call that validators (a judge) may make: the engine records
#: it as an attempt and charges it to the request's budget.
ModelCaller = Callable[[Tier, Request], Awaitable[Completion]]


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a contract's ``check`` gets besides the completion."""

    prompt: str
    call_model: ModelCaller
    request_id: str = ""
    #: The caller's id for the task (a dataset row, a ticket): replayed judges key on it.
    item_id: str | None = None


class Contract(Protocol):
    """What a valid answer looks like.

    ``prepare`` adds to the request what helps a model meet the contract
    (a schema for structured output, tools, instructions); ``check`` judges
    one completion and returns every verdict plus the parsed value.
    """

    @property
    def name(self) -> str: ...

    def prepare(self, request: Request) -> Request: ...

    async def check(self, completion: Completion, ctx: CheckContext) -> CheckResult: ...


class Router(Protocol):
    """Picks the tiers for one request before the cascade starts (rules, a classifier model).

    ``call_model`` is metered like a judge: recorded as a ``route`` attempt and charged to
    the request's budget.
    """

    async def route(
        self, request: Request, tiers: Sequence[Tier], call_model: ModelCaller
    ) -> Sequence[Tier]: ...


class AttemptSink(Protocol):
    """Where attempts go as they happen (the ledger)."""

    def record(self, attempt: Attempt) -> None: ...
