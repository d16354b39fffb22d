"""Drive the real engine over recorded outputs and score it against single tiers.

Every offline bench does the same three things, written once here:

1. put each tier's recorded answers in a :class:`~cascade.providers.replay.ReplayStore`;
2. run every item through :class:`~cascade.engine.Cascade` with a
   :class:`~cascade.providers.replay.ReplayProvider`, so the bench exercises
   the same policy, contracts and ledger rows as production;
3. score the outputs with a ``quality`` function that only the bench sees
   (gold labels and hidden tests never reach a validator).

A single tier's row is "send every request to that tier and ship what it
says": its cost is the recorded call cost of every item, its quality the
recorded answer's quality.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from cascade.bench.report import SystemResult, TierStats
from cascade.engine import Cascade, CascadeResult
from cascade.errors import CascadeError
from cascade.protocols import AttemptSink, Contract
from cascade.providers.replay import ReplayProvider, ReplayStore, recorded_usage
from cascade.tiers import Tier
from cascade.types import Attempt, AttemptKind, Message, Outcome, Request

__all__ = [
    "AttemptList",
    "BenchItem",
    "Quality",
    "run_cascade_bench",
    "single_tier_result",
    "tier_stats",
]

#: ``quality(item_id, model) -> score in [0, 1]``, from data no validator sees.
Quality = Callable[[str, str], float]


@dataclass(frozen=True, slots=True)
class BenchItem:
    """One task: its id in the store, the prompt a deployment would send, and its contract."""

    item_id: str
    prompt: str
    contract: Contract


@dataclass
class AttemptList:
    """An in-memory attempt sink that can also forward to another sink (a ledger)."""

    attempts: list[Attempt] = field(default_factory=list)
    forward: AttemptSink | None = None

    def record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        if self.forward is not None:
            self.forward.record(attempt)


def single_tier_result(
    tier: Tier, items: Sequence[BenchItem], store: ReplayStore, quality: Quality
) -> SystemResult:
    """Every item answered by ``tier`` alone, whatever it said."""
    cost = estimated = total_quality = 0.0
    for item in items:
        recording = store.get(tier.model, item.item_id)
        usage = recorded_usage(recording, _request(item))
        call_cost = tier.cost(usage.input_tokens, usage.output_tokens)
        cost += call_cost
        estimated += call_cost if usage.estimated else 0.0
        total_quality += quality(item.item_id, tier.model)
    n = len(items)
    return SystemResult(
        name=tier.name, kind="single", items=n, quality=total_quality / n if n else 0.0, cost_usd=cost,
        estimated_cost_share=estimated / cost if cost else 0.0,
    )  # fmt: skip


def run_cascade_bench(
    name: str,
    tiers: Sequence[Tier],
    items: Sequence[BenchItem],
    store: ReplayStore,
    quality: Quality,
    *,
    judge_tiers: Iterable[Tier] = (),
    ledger: AttemptSink | None = None,
    concurrency: int = 32,
) -> tuple[SystemResult, list[CascadeResult | CascadeError]]:
    """Run the cascade over ``items`` on recorded outputs; return its row and every result."""
    sink = AttemptList(forward=ledger)
    replay = ReplayProvider(store)
    providers = {t.provider: replay for t in (*tiers, *judge_tiers)}
    # A recording can't change, so re-asking a replayed tier would only repeat its answer.
    fixed = [replace(t, reasks=0) for t in tiers]
    engine = Cascade(fixed, providers=providers, ledger=sink, order="given", best_effort=True, seed=0)
    try:
        results = asyncio.run(_run_all(engine, name, items, concurrency))
    finally:
        engine.close()
    total_quality = 0.0
    for item, result in zip(items, results, strict=True):
        if isinstance(result, CascadeResult) and result.model is not None:
            total_quality += quality(item.item_id, result.model)
    cost = sum(a.cost_usd for a in sink.attempts)
    estimated = sum(a.cost_usd for a in sink.attempts if a.tokens_estimated)
    n = len(items)
    row = SystemResult(
        name=name, kind="cascade", items=n, quality=total_quality / n if n else 0.0, cost_usd=cost,
        estimated_cost_share=estimated / cost if cost else 0.0,
        tiers=tier_stats([*tiers, *judge_tiers], sink.attempts),
        extra={"accepted": sum(1 for r in results if isinstance(r, CascadeResult) and r.accepted),
               "errors": sum(1 for r in results if isinstance(r, CascadeError))},
    )  # fmt: skip
    return row, results


async def _run_all(
    engine: Cascade, name: str, items: Sequence[BenchItem], concurrency: int
) -> list[CascadeResult | CascadeError]:
    """Every item through the engine, in input order, with a progress bar on a terminal's stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    limiter = asyncio.Semaphore(max(1, concurrency))
    results: list[CascadeResult | CascadeError | None] = [None] * len(items)

    async def one(index: int, item: BenchItem) -> None:
        async with limiter:
            try:
                results[index] = await engine.arun(item.prompt, item.contract, item_id=item.item_id)
            except CascadeError as exc:
                results[index] = exc
        progress.advance(task)

    console = Console(stderr=True)
    columns = (TextColumn(name), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(name, total=len(items))
        await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
    return [r for r in results if r is not None]


def tier_stats(tiers: Sequence[Tier], attempts: Sequence[Attempt]) -> tuple[TierStats, ...]:
    """Per tier: requests that reached it, were accepted on it, or left it for a later tier."""
    by_request: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_request.setdefault(attempt.request_id, []).append(attempt)
    stats = []
    for tier in tiers:
        reached = accepted = escalated = 0
        for rows in by_request.values():
            called = [a for a in rows if a.kind is not AttemptKind.SKIP]
            order = [a.tier for a in called if not a.kind.is_side_call]
            if tier.name not in order:
                continue
            reached += 1
            if any(a.tier == tier.name and a.outcome is Outcome.ACCEPTED for a in called):
                accepted += 1
            elif order[-1] != tier.name:
                escalated += 1
        cost = sum(a.cost_usd for a in attempts if a.tier == tier.name)
        stats.append(TierStats(tier.name, reached, accepted, escalated, cost))
    return tuple(stats)


def _request(item: BenchItem) -> Request:
    return item.contract.prepare(Request(messages=(Message("user", item.prompt),), item_id=item.item_id))
