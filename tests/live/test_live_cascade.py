"""The cascade against the live local model: only facts that do not depend on the exact text."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from cascade import Cascade, JsonContract
from cascade.errors import ProviderError, TransientError
from cascade.ledger import SQLiteLedger
from cascade.local.demo import SCHEMA, SENTENCES, extraction_contract, messages_for
from cascade.local.server import LocalServer
from cascade.providers.openai import OpenAIProvider
from cascade.reports import build_report
from cascade.tiers import Tier
from cascade.types import AttemptKind, Outcome, Request

pytestmark = pytest.mark.live

TierPair = Callable[..., tuple[Tier, Tier]]


def test_constrained_tier_output_always_meets_the_schema(make_tiers: TierPair, live_base_url: str) -> None:
    _, constrained = make_tiers(live_base_url)
    contract = JsonContract(SCHEMA, name="payment-schema")
    with Cascade([constrained], max_retries=0) as engine:
        results = engine.map([(messages_for(s), contract) for s in SENTENCES[:6]], concurrency=1)
    failures = [r for r in results if not (hasattr(r, "accepted") and r.accepted)]
    assert failures == []


def test_escalation_follows_an_unconstrained_failure(make_tiers: TierPair, live_base_url: str) -> None:
    free, constrained = make_tiers(live_base_url)
    # One output token cannot hold an object with three required keys: tier 1 must fail, for sure.
    starved = replace(free, max_tokens=1)
    with Cascade([starved, constrained], order="given", max_retries=0) as engine:
        result = engine.run(messages_for(SENTENCES[0]), JsonContract(SCHEMA, name="payment-schema"))
    kinds = [(a.tier, a.outcome) for a in result.attempts]
    assert kinds == [(starved.name, Outcome.REJECTED), (constrained.name, Outcome.ACCEPTED)]
    assert result.accepted and result.tier == constrained.name and result.escalations == 1


def test_every_unconstrained_rejection_escalates_and_no_acceptance_does(
    make_tiers: TierPair, live_base_url: str
) -> None:
    free, constrained = make_tiers(live_base_url)
    sentences = SENTENCES[:8]
    with Cascade([free, constrained], order="given", max_retries=0) as engine:
        results = engine.map([(messages_for(s), extraction_contract(s)) for s in sentences], concurrency=1)
    for result in results:
        attempts = list(getattr(result, "attempts", ()))
        assert attempts and attempts[0].tier == free.name
        later = [a.tier for a in attempts[1:]]
        if attempts[0].outcome is Outcome.ACCEPTED:
            assert later == []
        else:
            assert later == [constrained.name]


def test_usage_latency_and_cost_are_recorded_in_the_ledger(
    make_tiers: TierPair, live_base_url: str, tmp_path: Path
) -> None:
    free, constrained = make_tiers(live_base_url, input_per_mtok=0.5, output_per_mtok=2.0)
    path = tmp_path / "ledger.sqlite"
    with SQLiteLedger(path) as ledger, Cascade([free, constrained], ledger=ledger, order="given") as engine:
        engine.map([(messages_for(s), extraction_contract(s)) for s in SENTENCES[:3]], concurrency=1)
    with SQLiteLedger(path) as reopened:
        attempts = reopened.attempts()
    called = [a for a in attempts if a.kind is not AttemptKind.SKIP]
    assert len(called) >= 3
    by_name = {free.name: free, constrained.name: constrained}
    for attempt in called:
        assert attempt.outcome in (Outcome.ACCEPTED, Outcome.REJECTED)
        assert attempt.input_tokens > 0 and attempt.output_tokens > 0 and not attempt.tokens_estimated
        assert attempt.latency_s > 0
        tier = by_name[attempt.tier]
        assert attempt.cost_usd == pytest.approx(tier.cost(attempt.input_tokens, attempt.output_tokens))
    report = build_report(attempts)
    assert report.total.requests == 3
    assert report.total.estimated_token_share == 0.0


def test_killed_server_raises_a_typed_error_and_the_cascade_fails_over(
    make_tiers: TierPair, live_base_url: str, own_server: LocalServer
) -> None:
    doomed = replace(make_tiers(own_server.base_url)[1], name="doomed")
    _, constrained = make_tiers(live_base_url)
    request = Request(messages_for(SENTENCES[1]))
    provider = OpenAIProvider(doomed)
    assert asyncio.run(provider.complete(doomed, request, timeout=120)).usage.output_tokens > 0

    assert own_server.pid is not None
    os.killpg(own_server.pid, signal.SIGKILL)
    with pytest.raises(ProviderError) as info:
        asyncio.run(OpenAIProvider(doomed).complete(doomed, request, timeout=30))
    assert isinstance(info.value, TransientError) and info.value.tier == "doomed"

    contract = JsonContract(SCHEMA, name="payment-schema")
    with Cascade([doomed, constrained], order="given", max_retries=1, deadline_s=180) as engine:
        result = engine.run(messages_for(SENTENCES[1]), contract)
    errors = [a for a in result.attempts if a.tier == "doomed"]
    assert errors and all(a.outcome is Outcome.ERROR and a.error for a in errors)
    assert result.accepted and result.tier == constrained.name
