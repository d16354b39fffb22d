"""The engine: drives :func:`cascade.policy.run_cascade` with real I/O.

``Cascade.arun`` is the async driver; ``Cascade.run`` is a sync facade that
runs it on a private event-loop thread (so SDK connection pools survive
between calls, and sync code never has to own a loop).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import structlog

from cascade.errors import BudgetExceeded, CascadeError, ConfigError, TimeoutError_
from cascade.policy import (
    CallModel,
    CallResult,
    CheckOutput,
    Decision,
    PolicyConfig,
    Record,
    RunState,
    Wait,
    run_cascade,
    worst_case_cost,
)
from cascade.protocols import AttemptSink, CheckContext, Contract, Provider, Router
from cascade.providers import create_provider, registered_providers
from cascade.tiers import Tier, order_by_cost
from cascade.types import Attempt, AttemptKind, CheckResult, Completion, Message, Outcome, Request, Verdict

__all__ = ["Cascade", "CascadeResult", "Prompt"]

log = structlog.get_logger("cascade")
T = TypeVar("T")
Prompt = str | Sequence[Message]


@dataclass(frozen=True, slots=True)
class CascadeResult:
    """What one request produced: the output, whether it was accepted, and what it cost."""

    request_id: str
    accepted: bool
    value: Any
    text: str
    tier: str | None
    model: str | None
    attempts: tuple[Attempt, ...]
    cost_usd: float
    verdicts: tuple[Verdict, ...]
    completion: Completion | None

    @property
    def escalations(self) -> int:
        """How many tiers were left behind before the chosen one."""
        tiers = [a.tier for a in self.attempts if not a.kind.is_side_call]
        return len(dict.fromkeys(tiers)) - 1 if tiers else 0


class Cascade:
    """Try tiers cheapest first until an output meets the contract.

    >>> from cascade import Cascade, JsonContract, tier
    >>> engine = Cascade([tier("gpt-4o-mini"), tier("gpt-4o")])  # doctest: +SKIP
    """

    def __init__(
        self,
        tiers: Iterable[Tier],
        *,
        providers: Mapping[str, Provider] | None = None,
        ledger: AttemptSink | None = None,
        order: Literal["cost", "given"] = "cost",
        budget_usd: float | None = None,
        deadline_s: float | None = None,
        max_retries: int = 2,
        on_permanent: Literal["failover", "raise"] = "failover",
        best_effort: bool = False,
        store_text: bool = False,
        seed: int | None = None,
        router: Router | None = None,
        call_timeout_s: float | None = 120.0,
    ) -> None:
        tier_list = list(tiers)
        if not tier_list:
            raise ConfigError("a cascade needs at least one tier")
        names = [t.name for t in tier_list]
        if len(set(names)) != len(names):
            raise ConfigError(f"tier names must be unique, got {names}")
        self.tiers: tuple[Tier, ...] = order_by_cost(tier_list) if order == "cost" else tuple(tier_list)
        self.ledger = ledger
        self.store_text = store_text
        self.router = router
        self.config = PolicyConfig(
            budget_usd=budget_usd, deadline_s=deadline_s, max_retries=max_retries,
            on_permanent=on_permanent, best_effort=best_effort, call_timeout_s=call_timeout_s,
        )  # fmt: skip
        self._provider_overrides = dict(providers or {})
        known = {*registered_providers(), *self._provider_overrides}
        for unknown in [t for t in self.tiers if t.provider not in known]:
            raise ConfigError(
                f"tier {unknown.name!r} names unknown provider {unknown.provider!r}; known: {', '.join(sorted(known))}"
            )
        self._providers: dict[str, Provider] = {}
        self._rng = random.Random(seed)
        self._loop = _LoopThread()

    # -- public API ------------------------------------------------------------------

    async def arun(
        self,
        prompt: Prompt,
        contract: Contract,
        *,
        item_id: str | None = None,
        tiers: Sequence[Tier] | None = None,
        budget_usd: float | None = None,
        deadline_s: float | None = None,
        best_effort: bool | None = None,
        max_tokens: int | None = None,
        request_id: str | None = None,
    ) -> CascadeResult:
        """Run one request; raises :class:`~cascade.errors.CascadeFailed` unless best effort."""
        request = contract.prepare(
            Request(messages=_messages(prompt), item_id=item_id, max_tokens=max_tokens)
        )
        config = self._config(budget_usd, deadline_s, best_effort)
        state = RunState(
            request_id=request_id or uuid.uuid4().hex, contract=contract.name, config=config,
            clock=time.monotonic, store_text=self.store_text,
        )  # fmt: skip
        if tiers is None:
            tiers = await self._route(request, state)
        decision = await self._drive(tuple(tiers), request, contract, state)
        return _result(state.request_id, decision)

    def run(
        self,
        prompt: Prompt,
        contract: Contract,
        *,
        item_id: str | None = None,
        tiers: Sequence[Tier] | None = None,
        budget_usd: float | None = None,
        deadline_s: float | None = None,
        best_effort: bool | None = None,
        max_tokens: int | None = None,
        request_id: str | None = None,
    ) -> CascadeResult:
        """Sync facade of :meth:`arun`."""
        return self._loop.run(
            self.arun(
                prompt, contract, item_id=item_id, tiers=tiers, budget_usd=budget_usd, deadline_s=deadline_s,
                best_effort=best_effort, max_tokens=max_tokens, request_id=request_id,
            )
        )  # fmt: skip

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run any coroutine that uses this engine on its private loop (for sync wrappers)."""
        return self._loop.run(coro)

    async def amap(
        self,
        prompts: Iterable[tuple[Prompt, Contract] | tuple[Prompt, Contract, str | None]],
        *,
        concurrency: int = 8,
        **options: Any,
    ) -> list[CascadeResult | CascadeError]:
        """Run many requests, at most ``concurrency`` at once; results in input order.

        A request that fails returns its :class:`CascadeError` in place, so one
        bad item never loses the others' results.
        """
        limiter = asyncio.Semaphore(max(1, concurrency))

        async def one(job: tuple[Any, ...]) -> CascadeResult | CascadeError:
            async with limiter:
                try:
                    item_id = job[2] if len(job) > 2 else None
                    return await self.arun(job[0], job[1], item_id=item_id, **options)
                except CascadeError as exc:
                    return exc

        return list(await asyncio.gather(*(one(job) for job in prompts)))

    def map(
        self,
        prompts: Iterable[tuple[Prompt, Contract] | tuple[Prompt, Contract, str | None]],
        *,
        concurrency: int = 8,
        **options: Any,
    ) -> list[CascadeResult | CascadeError]:
        """Sync facade of :meth:`amap`."""
        return self._loop.run(self.amap(prompts, concurrency=concurrency, **options))

    async def aclose(self) -> None:
        """Close the providers' HTTP pools (on the loop that used them)."""
        providers, self._providers = list(self._providers.values()), {}
        for provider in {id(p): p for p in providers}.values():  # one instance may serve many tiers
            closer = getattr(provider, "aclose", None)
            if closer is not None:
                await closer()

    def close(self) -> None:
        """Close the providers made by the sync facade, then its loop thread."""
        if self._loop.started:
            self._loop.run(self.aclose())
        self._loop.close()

    def __enter__(self) -> Cascade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Cascade:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        self._loop.close()

    # -- the driver ------------------------------------------------------------------

    async def _drive(
        self, tiers: Sequence[Tier], request: Request, contract: Contract, state: RunState
    ) -> Decision:
        flow = run_cascade(tiers, request, state, self._rng)
        ctx = CheckContext(
            prompt=request.prompt_text,
            call_model=lambda tier, req: self._side_call(tier, req, state),
            request_id=state.request_id,
            item_id=request.item_id,
        )
        reply: object = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as stop:
                decision: Decision = stop.value
                return decision
            if isinstance(step, CallModel):
                reply = await self._call(step.tier, step.request, step.timeout)
            elif isinstance(step, CheckOutput):
                reply = await self._check(contract, step.completion, ctx)
            elif isinstance(step, Record):
                self._record(step.attempt)
                reply = None
            elif isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
                reply = None

    async def _call(self, tier: Tier, request: Request, timeout: float | None) -> CallResult:
        started_at = time.time()
        t0 = time.perf_counter()
        try:
            provider = self._provider(tier)
            call = provider.complete(tier, request, timeout=timeout)
            completion = await (asyncio.wait_for(call, timeout) if timeout is not None else call)
        except ConfigError:
            raise  # a missing key or unknown model is the caller's to fix, not a reason to fail over
        except CascadeError as exc:
            return CallResult(None, exc, time.perf_counter() - t0, started_at)
        except TimeoutError:
            error = TimeoutError_(f"no answer within {timeout:.2f}s", provider=tier.provider, tier=tier.name)
            return CallResult(None, error, time.perf_counter() - t0, started_at)
        measured = time.perf_counter() - t0
        latency = completion.latency_s if completion.latency_s is not None else measured
        return CallResult(completion, None, latency, started_at)

    async def _check(self, contract: Contract, completion: Completion, ctx: CheckContext) -> CheckResult:
        try:
            return await contract.check(completion, ctx)
        except CascadeError as exc:
            # A validator that needs a model (a judge) may hit the budget or a provider error:
            # that output is then not accepted, and the reason is recorded as its verdict.
            return CheckResult((Verdict(False, f"{contract.name}:error", 0.0, str(exc)),))

    async def _route(self, request: Request, state: RunState) -> Sequence[Tier]:
        if self.router is None:
            return self.tiers
        chosen = await self.router.route(
            request, self.tiers, lambda tier, req: self._side_call(tier, req, state, AttemptKind.ROUTE)
        )
        if not chosen:
            raise ConfigError(f"the router {self.router!r} chose no tier")
        return chosen

    async def _side_call(
        self, tier: Tier, request: Request, state: RunState, kind: AttemptKind = AttemptKind.JUDGE
    ) -> Completion:
        """A metered call beside the path (judge, router): recorded and charged to the budget."""
        if not state.can_afford(worst_case_cost(tier, request)):
            raise BudgetExceeded(
                f"a {kind.value} call on {tier.name!r} could exceed the budget", state.attempts
            )
        result = await self._call(tier, request, state.remaining_s())
        completion = result.completion
        usage = completion.usage if completion else None
        attempt = Attempt(
            request_id=state.request_id, seq=0, contract=state.contract, tier=tier.name, model=tier.model,
            kind=kind, outcome=Outcome.JUDGED if completion else Outcome.ERROR,
            input_tokens=usage.input_tokens if usage else 0, output_tokens=usage.output_tokens if usage else 0,
            tokens_estimated=usage.estimated if usage else False,
            cost_usd=tier.call_cost(completion) if completion else 0.0,
            latency_s=result.latency_s, error=str(result.error) if result.error else None,
            started_at=result.started_at,
        )  # fmt: skip
        self._record(state.add(attempt))
        if completion is None:
            assert result.error is not None
            raise result.error
        return completion

    def _record(self, attempt: Attempt) -> None:
        if attempt.outcome is Outcome.ERROR:
            log.warning(
                "provider_error", request_id=attempt.request_id, tier=attempt.tier, kind=attempt.kind.value,
                error=attempt.error,
            )  # fmt: skip
        if self.ledger is not None:
            self.ledger.record(attempt)

    def _provider(self, tier: Tier) -> Provider:
        provider = self._providers.get(tier.name)
        if provider is None:
            override = self._provider_overrides.get(tier.provider)
            provider = override if override is not None else create_provider(tier)
            self._providers[tier.name] = provider
        return provider

    def _config(self, budget: float | None, deadline: float | None, best_effort: bool | None) -> PolicyConfig:
        changes: dict[str, Any] = {}
        if budget is not None:
            changes["budget_usd"] = budget
        if deadline is not None:
            changes["deadline_s"] = deadline
        if best_effort is not None:
            changes["best_effort"] = best_effort
        return replace(self.config, **changes) if changes else self.config


def _messages(prompt: Prompt) -> tuple[Message, ...]:
    if isinstance(prompt, str):
        return (Message("user", prompt),)
    messages = tuple(prompt)
    if not messages or not all(isinstance(m, Message) for m in messages):
        raise ConfigError("a prompt is a string or a non-empty sequence of cascade.Message")
    return messages


def _result(request_id: str, decision: Decision) -> CascadeResult:
    completion = decision.completion
    check = decision.check
    return CascadeResult(
        request_id=request_id,
        accepted=decision.accepted,
        value=check.value if check else None,
        text=completion.text if completion else "",
        tier=decision.tier.name if decision.tier else None,
        model=decision.tier.model if decision.tier else None,
        attempts=decision.attempts,
        cost_usd=decision.cost_usd,
        verdicts=check.verdicts if check else (),
        completion=completion,
    )


class _LoopThread:
    """A private event loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._loop is not None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._ensure()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C in the caller's thread: cancel the work on the loop instead of leaving it running.
            future.cancel()
            raise

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="cascade-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
