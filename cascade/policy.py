"""The cascade policy, written once and free of I/O.

:func:`run_cascade` is a generator in the style of httpx's auth flows: it
yields *steps* (call a model, check an output, wait, record an attempt) and
receives each step's result through ``send``.  Thin drivers in
:mod:`cascade.engine` run the steps; tests and the overhead benchmark can
drive it with no network at all.

Per tier: skip if the context cannot hold the request or the worst-case cost
could cross the budget; call (retrying transient errors with jittered backoff
inside the tier); check; accept, re-ask the same tier with the validators'
feedback, or escalate with a short summary of what failed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from cascade.errors import (
    BudgetExceeded,
    CascadeError,
    CascadeFailed,
    DeadlineExceeded,
    PromptTooLargeError,
    RateLimitError,
    TransientError,
)
from cascade.tiers import Tier
from cascade.tokens import estimate_tokens
from cascade.types import Attempt, AttemptKind, CheckResult, Completion, Message, Outcome, Request

__all__ = [
    "CallModel",
    "CallResult",
    "CheckOutput",
    "Decision",
    "PolicyConfig",
    "Record",
    "RunState",
    "Step",
    "Wait",
    "run_cascade",
    "worst_case_cost",
]


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    budget_usd: float | None = None
    deadline_s: float | None = None
    #: Transient-error retries per call, inside one tier.
    max_retries: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    on_permanent: Literal["failover", "raise"] = "failover"
    best_effort: bool = False
    #: Seconds one provider call may take (the deadline, when tighter, wins): a stuck server
    #: becomes a retryable timeout instead of a hang.
    call_timeout_s: float | None = 120.0


# -- steps the policy yields, and what it gets back --------------------------------


@dataclass(frozen=True, slots=True)
class CallModel:
    tier: Tier
    request: Request
    timeout: float | None


@dataclass(frozen=True, slots=True)
class CallResult:
    completion: Completion | None
    error: CascadeError | None
    latency_s: float
    started_at: float


@dataclass(frozen=True, slots=True)
class CheckOutput:
    tier: Tier
    completion: Completion


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


@dataclass(frozen=True, slots=True)
class Record:
    attempt: Attempt


Step = CallModel | CheckOutput | Wait | Record


@dataclass(frozen=True, slots=True)
class Decision:
    """How a cascade ended: the chosen output (accepted, or best effort) and every attempt."""

    accepted: bool
    tier: Tier | None
    completion: Completion | None
    check: CheckResult | None
    attempts: tuple[Attempt, ...]
    cost_usd: float


@dataclass
class RunState:
    """Mutable bookkeeping shared by the policy and a driver's metered judge calls."""

    request_id: str
    contract: str
    config: PolicyConfig
    clock: Callable[[], float]
    started: float = 0.0
    spent_usd: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    store_text: bool = False

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining_s(self) -> float | None:
        if self.config.deadline_s is None:
            return None
        return self.config.deadline_s - (self.clock() - self.started)

    def can_afford(self, worst_case_usd: float) -> bool:
        budget = self.config.budget_usd
        return budget is None or self.spent_usd + worst_case_usd <= budget + 1e-12

    def add(self, attempt: Attempt) -> Attempt:
        attempt = replace(attempt, seq=len(self.attempts))
        self.attempts.append(attempt)
        self.spent_usd += attempt.cost_usd
        return attempt


@dataclass
class _Best:
    check: CheckResult | None = None
    tier: Tier | None = None
    completion: Completion | None = None

    def offer(self, check: CheckResult, tier: Tier, completion: Completion) -> None:
        # Ties go to the later (pricier, usually stronger) tier's output.
        if self.check is None or check.score >= self.check.score:
            self.check, self.tier, self.completion = check, tier, completion


Flow = Generator[Step, object, Decision]


def run_cascade(
    tiers: Sequence[Tier], request: Request, state: RunState, rng: random.Random | None = None
) -> Flow:
    """Drive one request through ``tiers``; returns the :class:`Decision` or raises ``CascadeFailed``."""
    rng = rng or random.Random()
    best = _Best()
    summary = ""
    reasons: list[str] = []
    for tier in tiers:
        tier_request = (
            _with_escalation_note(request, summary) if summary and tier.escalation_note else request
        )
        skip = _skip_reason(tier, tier_request, state)
        if skip is not None:
            reasons.append(f"{tier.name}: skipped ({skip})")
            yield Record(state.add(_skip_attempt(state, tier, skip)))
            continue
        try:
            outcome = yield from _run_tier(tier, tier_request, state, rng, best, reasons)
        except DeadlineExceeded:
            if state.config.best_effort and best.check is not None:
                return _decision(False, best.tier, best.completion, best.check, state)
            raise
        if isinstance(outcome, Decision):
            return outcome
        summary = outcome
    return _give_up(tiers, request, state, best, reasons)


def _run_tier(
    tier: Tier, request: Request, state: RunState, rng: random.Random, best: _Best, reasons: list[str]
) -> Generator[Step, object, Decision | str]:
    """One tier: first call and re-asks.  Returns an accepted Decision or a summary of what failed."""
    kind = AttemptKind.FIRST
    for reask in range(tier.reasks + 1):
        if reask and _skip_reason(tier, request, state) is not None:
            break
        result, kind = yield from _call_with_retries(tier, request, kind, state, rng)
        if result.error is not None or result.completion is None:
            reasons.append(f"{tier.name}: {result.error}")
            error = result.error
            if (
                state.config.on_permanent == "raise"
                and error is not None
                and not isinstance(error, TransientError)
            ):
                raise error
            return f"the previous model failed with an error: {result.error}"
        check = yield CheckOutput(tier, result.completion)
        assert isinstance(check, CheckResult)
        accepted = check.passed
        yield Record(state.add(_call_attempt(state, tier, kind, result, check, accepted, request)))
        if accepted:
            return _decision(True, tier, result.completion, check, state)
        best.offer(check, tier, result.completion)
        feedback = check.feedback or "the output did not meet the contract"
        reasons.append(f"{tier.name}: {_first_line(feedback)}")
        if reask < tier.reasks:
            request = _with_reask(request, result.completion, feedback)
            kind = AttemptKind.REASK
            continue
        return feedback
    return "the previous model's output did not meet the contract"


def _call_with_retries(
    tier: Tier, request: Request, kind: AttemptKind, state: RunState, rng: random.Random
) -> Generator[Step, object, tuple[CallResult, AttemptKind]]:
    """Call once, retrying transient errors within the bound, deadline and budget; returns the last kind."""
    for retry in range(state.config.max_retries + 1):
        remaining = state.remaining_s()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded(_deadline_message(state), state.attempts)
        timeout = min((t for t in (remaining, state.config.call_timeout_s) if t is not None), default=None)
        result = yield CallModel(tier, request, timeout)
        assert isinstance(result, CallResult)
        if result.error is None:
            return result, kind
        yield Record(state.add(_error_attempt(state, tier, kind, result, request)))
        if not isinstance(result.error, TransientError) or retry == state.config.max_retries:
            return result, kind
        delay = _backoff(result.error, retry, state.config, rng)
        remaining = state.remaining_s()
        if remaining is not None and delay >= remaining:
            raise DeadlineExceeded(_deadline_message(state), state.attempts)
        if not state.can_afford(worst_case_cost(tier, request)):
            return result, kind
        yield Wait(delay)
        kind = AttemptKind.RETRY
    raise AssertionError("unreachable")  # pragma: no cover


def _backoff(error: TransientError, retry: int, config: PolicyConfig, rng: random.Random) -> float:
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        return min(max(error.retry_after, 0.0), config.backoff_max_s)
    ceiling = min(config.backoff_max_s, config.backoff_base_s * (2**retry))
    return rng.uniform(ceiling / 2, ceiling)  # "equal jitter": never zero, never synchronised


def _skip_reason(tier: Tier, request: Request, state: RunState) -> str | None:
    needed = estimate_tokens(request.prompt_text) + tier.output_allowance()
    if needed > tier.context_window:
        return f"context: needs ~{needed} tokens, window is {tier.context_window}"
    worst = worst_case_cost(tier, request)
    if not state.can_afford(worst):
        return f"budget: worst case ${worst:.6f} would exceed the ${state.config.budget_usd} cap"
    return None


def worst_case_cost(tier: Tier, request: Request) -> float:
    return tier.cost(estimate_tokens(request.prompt_text), request.max_tokens or tier.output_allowance())


def _give_up(
    tiers: Sequence[Tier], request: Request, state: RunState, best: _Best, reasons: list[str]
) -> Decision:
    called = [a for a in state.attempts if a.kind is not AttemptKind.SKIP]
    if state.config.best_effort and best.check is not None:
        return _decision(False, best.tier, best.completion, best.check, state)
    if not called and all("context:" in r for r in reasons):
        windows = {t.name: t.context_window for t in tiers}
        raise PromptTooLargeError(estimate_tokens(request.prompt_text), windows)
    detail = "; ".join(reasons) or "no tiers configured"
    if not called and any("budget:" in r for r in reasons):
        raise BudgetExceeded(f"no call fits the budget: {detail}", state.attempts)
    raise CascadeFailed(f"no tier produced an accepted output: {detail}", state.attempts)


def _decision(
    accepted: bool,
    tier: Tier | None,
    completion: Completion | None,
    check: CheckResult | None,
    state: RunState,
) -> Decision:
    return Decision(accepted, tier, completion, check, tuple(state.attempts), state.spent_usd)


def _with_reask(request: Request, completion: Completion, feedback: str) -> Request:
    note = (
        f"Your answer did not pass these checks:\n{feedback}\nReply again with a corrected, complete answer."
    )
    answer = completion.text or "\n".join(f"{c.name}({c.arguments})" for c in completion.tool_calls)
    return replace(request, messages=(*request.messages, Message("assistant", answer), Message("user", note)))


def _with_escalation_note(request: Request, summary: str) -> Request:
    note = f"\n\n(A previous attempt at this task failed: {_first_line(summary, 300)}. Avoid that mistake.)"
    messages = list(request.messages)
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            messages[i] = Message("user", messages[i].content + note)
            break
    return replace(request, messages=tuple(messages))


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _deadline_message(state: RunState) -> str:
    return f"the cascade's {state.config.deadline_s}s deadline passed after {len(state.attempts)} attempts"


# -- attempt records -----------------------------------------------------------------


def _skip_attempt(state: RunState, tier: Tier, reason: str) -> Attempt:
    return Attempt(
        request_id=state.request_id, seq=0, contract=state.contract, tier=tier.name, model=tier.model,
        kind=AttemptKind.SKIP, outcome=Outcome.SKIPPED, error=reason, started_at=0.0,
    )  # fmt: skip


def _error_attempt(
    state: RunState, tier: Tier, kind: AttemptKind, result: CallResult, request: Request
) -> Attempt:
    return Attempt(
        request_id=state.request_id, seq=0, contract=state.contract, tier=tier.name, model=tier.model,
        kind=kind, outcome=Outcome.ERROR, latency_s=result.latency_s, error=str(result.error),
        started_at=result.started_at, prompt=request.prompt_text if state.store_text else None,
        extra={"error_type": type(result.error).__name__},
    )  # fmt: skip


def _call_attempt(
    state: RunState, tier: Tier, kind: AttemptKind, result: CallResult, check: CheckResult,
    accepted: bool, request: Request,
) -> Attempt:  # fmt: skip
    completion = result.completion
    assert completion is not None
    usage = completion.usage
    return Attempt(
        request_id=state.request_id, seq=0, contract=state.contract, tier=tier.name, model=tier.model,
        kind=kind, outcome=Outcome.ACCEPTED if accepted else Outcome.REJECTED,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, tokens_estimated=usage.estimated,
        cost_usd=tier.call_cost(completion), latency_s=result.latency_s,
        verdicts=check.verdicts, started_at=result.started_at,
        prompt=request.prompt_text if state.store_text else None,
        response=completion.text if state.store_text else None,
        extra={"finish_reason": completion.finish_reason} if completion.finish_reason else {},
    )  # fmt: skip
