"""Engine overhead per attempt, excluding provider and validator time.

Side by side in one run, over the same requests:

* ``direct``: what a hand-written loop does with no engine: call the provider,
  run the contract's check, move to the next tier;
* ``engine``: the same requests through ``Cascade.arun`` (policy generator,
  attempt records, ledger sink, budget and context checks).

The provider answers at once and the contract returns a precomputed verdict,
so the difference is the engine's own cost.  Goal: median <= 0.2 ms per
attempt.  A last line adds what a durable SQLite ledger costs on top.  Run: ``python benchmarks/engine_overhead.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from cascade import Cascade, InMemoryLedger, SQLiteLedger, Tier
from cascade.protocols import AttemptSink, CheckContext
from cascade.types import CheckResult, Completion, Request, Usage, Verdict

REQUESTS = 3000
PASS = CheckResult((Verdict(True, "instant"),), {"ok": True})
FAIL = CheckResult((Verdict(False, "instant", 0.0, "not yet"),))


class InstantProvider:
    """Answers immediately; the first tier's answer fails the contract, the second passes."""

    def __call__(self, tier: Tier) -> InstantProvider:
        return self

    async def complete(self, tier: Tier, request: Request, *, timeout: float | None = None) -> Completion:
        return Completion("fail" if tier.name == "small" else "pass", Usage(120, 30), tier.model)


class InstantContract:
    name = "instant"

    def prepare(self, request: Request) -> Request:
        return request

    async def check(self, completion: Completion, ctx: CheckContext) -> CheckResult:
        return PASS if completion.text == "pass" else FAIL


TIERS = [Tier("small", "instant", "s", 0.1, 0.4), Tier("large", "instant", "l", 2.5, 10.0)]


async def direct(prompt: str) -> float:
    """Two attempts by hand: the floor any engine starts from."""
    provider, contract = InstantProvider(), InstantContract()
    ctx = CheckContext(prompt, _no_judge)
    t0 = time.perf_counter()
    for tier in TIERS:
        completion = await provider.complete(tier, Request(messages=()), timeout=None)
        if (await contract.check(completion, ctx)).passed:
            break
    return time.perf_counter() - t0


async def _no_judge(tier: Tier, request: Request) -> Completion:
    raise AssertionError("no judge here")


async def measure(ledger: AttemptSink) -> tuple[list[float], list[float]]:
    engine = Cascade(TIERS, providers={"instant": InstantProvider()}, ledger=ledger, order="given")
    contract = InstantContract()
    engine_times, direct_times = [], []
    for i in range(REQUESTS):
        t0 = time.perf_counter()
        result = await engine.arun(f"request {i}", contract)  # type: ignore[arg-type]
        engine_times.append((time.perf_counter() - t0) / len(result.attempts))
        direct_times.append(await direct(f"request {i}") / 2)
    engine.close()
    return engine_times, direct_times


def main() -> None:
    asyncio.run(measure(InMemoryLedger()))  # warm-up: imports, caches
    engine_times, direct_times = asyncio.run(measure(InMemoryLedger()))
    with tempfile.TemporaryDirectory() as folder, SQLiteLedger(Path(folder) / "ledger.sqlite") as sqlite:
        sqlite_times, _ = asyncio.run(measure(sqlite))
    engine_med, direct_med = statistics.median(engine_times), statistics.median(direct_times)
    overhead = engine_med - direct_med
    print(f"requests: {REQUESTS}, attempts per request: 2 (first rejected, second accepted)")
    print(f"direct loop     median per attempt: {direct_med * 1e3:.4f} ms")
    print(f"through engine  median per attempt: {engine_med * 1e3:.4f} ms")
    print(f"engine overhead median per attempt: {overhead * 1e3:.4f} ms  (goal <= 0.2 ms)")
    p95 = statistics.quantiles(engine_times, n=20)[-1]
    print(f"through engine  p95 per attempt:    {p95 * 1e3:.4f} ms")
    print(f"ratio engine / direct: {engine_med / direct_med:.1f}x")
    sqlite_med = statistics.median(sqlite_times)
    print(f"with SQLiteLedger (one committed row per attempt) median per attempt: {sqlite_med * 1e3:.4f} ms")


if __name__ == "__main__":
    main()
