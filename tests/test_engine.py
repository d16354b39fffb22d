"""The escalation loop end to end through Cascade, with a scripted provider (no network)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pydantic
import pytest

from cascade import (
    BudgetExceeded,
    Cascade,
    CascadeFailed,
    ConfigError,
    DeadlineExceeded,
    InMemoryLedger,
    JsonContract,
    PromptTooLargeError,
    Tier,
)
from cascade.errors import AuthError, RateLimitError, ServerError
from cascade.providers.scripted import ScriptedProvider
from cascade.types import AttemptKind, Completion, Outcome, Request, Usage

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
GOOD = '{"name": "Ada", "age": 36}'
BAD = '{"name": "Ada"}'


def _tier(name: str, price: float, **settings: Any) -> Tier:
    return Tier(name, "scripted", f"model-{name}", price, price * 2, **settings)


def _engine(
    script: dict[str, list[Any]], *tiers: Tier, **options: Any
) -> tuple[Cascade, ScriptedProvider, InMemoryLedger]:
    provider = ScriptedProvider(script)
    ledger = InMemoryLedger()
    tier_list = tiers or (_tier("small", 0.1), _tier("large", 10.0))
    engine = Cascade(tier_list, providers={"scripted": provider}, ledger=ledger, seed=1, **options)
    return engine, provider, ledger


def test_first_pass_is_accepted_and_recorded() -> None:
    engine, _provider, ledger = _engine({"small": [GOOD]})
    result = engine.run("Extract: Ada, 36", JsonContract(SCHEMA, name="person"))
    assert result.accepted and result.tier == "small" and result.value == {"name": "Ada", "age": 36}
    assert [(a.tier, a.kind, a.outcome) for a in ledger.attempts()] == [
        ("small", AttemptKind.FIRST, Outcome.ACCEPTED)
    ]
    attempt = ledger.attempts()[0]
    assert attempt.contract == "person" and attempt.tokens_estimated
    assert attempt.cost_usd == pytest.approx(result.cost_usd) and result.cost_usd > 0
    assert all(v.passed for v in attempt.verdicts)
    assert result.escalations == 0


def test_pydantic_contract_returns_the_model_instance() -> None:
    class Person(pydantic.BaseModel):
        name: str
        age: int

    engine, _, _ = _engine({"small": [f"Sure:\n```json\n{GOOD}\n```"]})
    result = engine.run("Extract: Ada, 36", JsonContract(Person))
    assert isinstance(result.value, Person) and result.value.age == 36


def test_reask_sends_feedback_then_accepts() -> None:
    small = _tier("small", 0.1, reasks=1)
    engine, provider, ledger = _engine({"small": [BAD, GOOD]}, small, _tier("large", 10.0))
    result = engine.run("Extract: Ada, 36", JsonContract(SCHEMA))
    assert result.accepted and result.tier == "small"
    assert [a.kind for a in ledger.attempts()] == [AttemptKind.FIRST, AttemptKind.REASK]
    reask_request = provider.requests[1][1]
    assert reask_request.messages[-2].content == BAD  # the model sees its own answer...
    assert "'age' is a required property" in reask_request.messages[-1].content  # ...and why it failed


def test_escalates_with_a_summary_of_what_failed() -> None:
    engine, provider, ledger = _engine({"small": ["no idea"], "large": [GOOD]})
    result = engine.run("Extract: Ada, 36", JsonContract(SCHEMA))
    assert result.accepted and result.tier == "large" and result.escalations == 1
    assert [(a.tier, a.outcome) for a in ledger.attempts()] == [
        ("small", Outcome.REJECTED),
        ("large", Outcome.ACCEPTED),
    ]
    escalated = provider.requests[1][1].messages[-1].content
    assert (
        escalated.startswith("Extract: Ada, 36") and "previous attempt" in escalated and "JSON" in escalated
    )


def test_all_tiers_fail_raises_with_every_attempt() -> None:
    engine, _, ledger = _engine({"small": [BAD], "large": ["nothing"]})
    with pytest.raises(CascadeFailed) as failure:
        engine.run("Extract", JsonContract(SCHEMA))
    assert len(failure.value.attempts) == 2 == len(ledger.attempts())
    assert "small" in str(failure.value) and "large" in str(failure.value)


def test_best_effort_returns_the_best_scoring_attempt_unaccepted() -> None:
    engine, _, _ = _engine({"small": [BAD], "large": ["nothing"]}, best_effort=True)
    result = engine.run("Extract", JsonContract(SCHEMA))
    assert not result.accepted
    assert result.tier == "small"  # parsed JSON that missed a field beats no JSON at all
    assert result.text == BAD


def test_tiers_are_ordered_by_cost_unless_told_otherwise() -> None:
    cheap, dear = _tier("cheap", 0.1), _tier("dear", 5.0)
    providers = {"scripted": ScriptedProvider({})}
    assert [t.name for t in Cascade([dear, cheap], providers=providers).tiers] == ["cheap", "dear"]
    given = Cascade([dear, cheap], providers=providers, order="given")
    assert [t.name for t in given.tiers] == ["dear", "cheap"]


def test_budget_skips_a_tier_whose_worst_case_could_cross_the_cap() -> None:
    small, large = _tier("small", 0.1, max_tokens=100), _tier("large", 1000.0, max_tokens=100)
    engine, provider, ledger = _engine({"small": [BAD], "large": [GOOD]}, small, large, budget_usd=0.01)
    with pytest.raises(CascadeFailed) as failure:
        engine.run("Extract", JsonContract(SCHEMA))
    assert [t for t, _ in provider.requests] == ["small"]  # large was never called
    skip = ledger.attempts()[-1]
    assert (skip.tier, skip.kind, skip.outcome) == ("large", AttemptKind.SKIP, Outcome.SKIPPED)
    assert "budget" in (skip.error or "")
    assert sum(a.cost_usd for a in failure.value.attempts) <= 0.01


def test_budget_too_small_for_any_call_is_a_budget_error() -> None:
    engine, provider, _ = _engine({}, _tier("small", 100.0), budget_usd=1e-9)
    with pytest.raises(BudgetExceeded, match="budget"):
        engine.run("Extract", JsonContract(SCHEMA))
    assert provider.requests == []


def test_context_window_skip_is_recorded_and_the_next_tier_serves() -> None:
    tiny = _tier("tiny", 0.1, context_window=1100)  # 1024 output tokens leave ~76 for the prompt
    engine, _provider, ledger = _engine({"large": [GOOD]}, tiny, _tier("large", 10.0))
    result = engine.run("x" * 2000, JsonContract(SCHEMA))
    assert result.tier == "large"
    assert ledger.attempts()[0].outcome is Outcome.SKIPPED and "context" in (ledger.attempts()[0].error or "")


def test_prompt_too_big_for_every_tier_names_the_windows() -> None:
    engine, _, _ = _engine({}, _tier("a", 0.1, context_window=2000), _tier("b", 1.0, context_window=3000))
    with pytest.raises(PromptTooLargeError) as error:
        engine.run("word " * 20_000, JsonContract(SCHEMA))
    assert "a" in str(error.value) and "3000" in str(error.value)


def test_rate_limit_is_retried_honouring_retry_after() -> None:
    limited = RateLimitError("slow down", provider="scripted", tier="small", status=429, retry_after=0.0)
    engine, _, ledger = _engine({"small": [limited, GOOD]})
    result = engine.run("Extract", JsonContract(SCHEMA))
    assert result.accepted and result.tier == "small"
    assert [(a.kind, a.outcome) for a in ledger.attempts()] == [
        (AttemptKind.FIRST, Outcome.ERROR),
        (AttemptKind.RETRY, Outcome.ACCEPTED),
    ]
    assert ledger.attempts()[0].extra["error_type"] == "RateLimitError"


def test_transient_errors_are_bounded_then_escalate() -> None:
    def boom() -> ServerError:
        return ServerError("502", provider="scripted", tier="small", status=502)

    engine, _, ledger = _engine({"small": [boom(), boom()], "large": [GOOD]}, max_retries=1)
    engine.config = dataclasses.replace(engine.config, backoff_base_s=0.001, backoff_max_s=0.002)
    result = engine.run("Extract", JsonContract(SCHEMA))
    assert result.tier == "large"
    assert [a.outcome for a in ledger.attempts()] == [Outcome.ERROR, Outcome.ERROR, Outcome.ACCEPTED]


def test_permanent_errors_fail_over_or_raise_per_policy() -> None:
    def denied() -> AuthError:
        return AuthError("bad key", provider="scripted", tier="small", status=401)

    engine, _, ledger = _engine({"small": [denied()], "large": [GOOD]})
    assert engine.run("Extract", JsonContract(SCHEMA)).tier == "large"
    assert len(ledger.attempts()) == 2  # no retry of a permanent error

    strict, _, _ = _engine({"small": [denied()], "large": [GOOD]}, on_permanent="raise")
    with pytest.raises(AuthError):
        strict.run("Extract", JsonContract(SCHEMA))


class _SlowProvider:
    def __call__(self, tier: Tier) -> _SlowProvider:
        return self

    async def complete(self, tier: Tier, request: Request, *, timeout: float | None = None) -> Completion:
        await asyncio.sleep(30)
        return Completion(GOOD, Usage(1, 1), tier.model)


def test_deadline_bounds_the_whole_cascade() -> None:
    tiers = [Tier("slow", "slow", "m", 0.1, 0.1)]
    engine = Cascade(tiers, providers={"slow": _SlowProvider()}, deadline_s=0.2, max_retries=3)
    with pytest.raises(DeadlineExceeded) as error:
        engine.run("Extract", JsonContract(SCHEMA))
    assert error.value.attempts and error.value.attempts[0].extra["error_type"] == "TimeoutError_"


def test_unknown_provider_and_bad_tiers_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        Cascade([Tier("t", "nope", "m", 0.1, 0.1)])
    with pytest.raises(ConfigError, match="unique"):
        Cascade([_tier("a", 1.0), _tier("a", 2.0)])
    with pytest.raises(ConfigError):
        Cascade([])


async def test_amap_keeps_order_and_returns_errors_in_place() -> None:
    engine, _, _ = _engine({"small": [GOOD, "x", GOOD], "large": ["x"]})
    contract = JsonContract(SCHEMA)
    results = await engine.amap([("a", contract), ("b", contract), ("c", contract)], concurrency=1)
    assert [getattr(r, "accepted", None) for r in results] == [True, None, True]
    assert isinstance(results[1], CascadeFailed)


def test_store_text_is_opt_in() -> None:
    engine, _, ledger = _engine({"small": [GOOD]})
    engine.run("secret prompt", JsonContract(SCHEMA))
    assert ledger.attempts()[0].prompt is None and ledger.attempts()[0].response is None
    keeping, _, kept = _engine({"small": [GOOD]}, store_text=True)
    keeping.run("secret prompt", JsonContract(SCHEMA))
    assert kept.attempts()[0].prompt == "secret prompt" and kept.attempts()[0].response == GOOD


def test_sync_and_async_surfaces_match() -> None:
    """Every public coroutine method ``aX`` has a sync twin ``X`` taking exactly the same parameters."""
    import inspect

    from cascade.conversation import Conversation

    pairs = 0
    for cls in (Cascade, Conversation):
        for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction):
            twin = (
                getattr(cls, name[1:], None) if name.startswith("a") and not name.startswith("__") else None
            )
            if twin is None:
                continue
            pairs += 1
            async_params = list(inspect.signature(member).parameters.values())
            sync_params = list(inspect.signature(twin).parameters.values())
            assert [(p.name, p.kind, p.default) for p in sync_params] == [
                (p.name, p.kind, p.default) for p in async_params
            ], f"{cls.__name__}.{name[1:]} and .{name} differ"
    assert pairs >= 4  # run/arun, map/amap, close/aclose, ask/aask


def test_missing_key_names_the_variable_and_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade import MissingKeyError, tier

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="OPENAI_API_KEY"):
        Cascade([tier("gpt-4o-mini")]).run("Extract", JsonContract(SCHEMA))


class _ClosingProvider(ScriptedProvider):
    closed = 0

    async def aclose(self) -> None:
        type(self).closed += 1


def test_close_closes_each_provider_once_on_its_own_loop() -> None:
    _ClosingProvider.closed = 0
    provider = _ClosingProvider({"small": ["x"], "large": [GOOD]})
    engine = Cascade([_tier("small", 0.1), _tier("large", 10.0)], providers={"scripted": provider})
    assert engine.run("Extract", JsonContract(SCHEMA)).tier == "large"
    engine.close()
    assert _ClosingProvider.closed == 1


async def test_async_with_closes_providers() -> None:
    provider = _ClosingProvider({"small": [GOOD]})
    _ClosingProvider.closed = 0
    async with Cascade([_tier("small", 0.1)], providers={"scripted": provider}) as engine:
        assert (await engine.arun("Extract", JsonContract(SCHEMA))).accepted
    assert _ClosingProvider.closed == 1


def test_a_conversation_moves_between_tiers_with_its_whole_history() -> None:
    from cascade import Message

    history = [
        Message("system", "You extract people as JSON."),
        Message("user", "Ada Lovelace was born in 1815. " * 60),  # too long for the small window
        Message("assistant", "Noted."),
        Message("user", "Now give me the JSON."),
    ]
    small = _tier("small", 0.1, context_window=1200)
    engine, provider, ledger = _engine({"large": [GOOD]}, small, _tier("large", 10.0))
    result = engine.run(history, JsonContract(SCHEMA))
    assert result.tier == "large"
    assert ledger.attempts()[0].kind is AttemptKind.SKIP
    sent = provider.requests[0][1].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1].content == history[1].content


def test_a_tier_can_decline_the_escalation_note() -> None:
    large = _tier("large", 10.0, escalation_note=False)
    engine, provider, _ = _engine({"small": ["no idea"], "large": [GOOD]}, _tier("small", 0.1), large)
    assert engine.run("Extract: Ada, 36", JsonContract(SCHEMA)).tier == "large"
    assert provider.requests[1][1].messages[-1].content == "Extract: Ada, 36"


def test_custom_validators_see_only_schema_valid_values_and_never_crash() -> None:
    from validators import predicate

    adult = predicate(lambda c: c.value["age"] >= 18, "adult", "the person must be an adult")
    contract = JsonContract(SCHEMA, validators=[adult])
    missing = contract.check_sync(Completion(BAD, Usage(0, 0), "m"))
    assert not missing.passed and [v.validator for v in missing.verdicts][-1].startswith("matches_schema")
    minor = contract.check_sync(Completion('{"name": "Kid", "age": 9}', Usage(0, 0), "m"))
    assert minor.feedback == "the person must be an adult"
    broken = predicate(lambda c: c.value["nope"] > 0, "broken", "needs nope")
    raised = JsonContract(SCHEMA, validators=[broken]).check_sync(Completion(GOOD, Usage(0, 0), "m"))
    assert not raised.passed and "raised KeyError" in raised.feedback


def test_a_cascade_can_serve_as_one_tier_of_another() -> None:
    from cascade.providers.nested import CascadeProvider

    inner_script = ScriptedProvider({"small": ["no idea", "still no"], "medium": [GOOD, "nothing"]})
    inner = Cascade([_tier("small", 0.1), _tier("medium", 1.0)], providers={"scripted": inner_script},
                    ledger=(inner_ledger := InMemoryLedger()))  # fmt: skip
    contract = JsonContract(SCHEMA)
    ladder = Tier("ladder", "nested", "inner-ladder", 0.0, 0.0)
    outer_script = ScriptedProvider({"big": [GOOD]})
    outer = Cascade([ladder, _tier("big", 50.0)], order="given", ledger=(outer_ledger := InMemoryLedger()),
                    providers={"nested": CascadeProvider(inner, contract), "scripted": outer_script})  # fmt: skip
    first = outer.run("Extract: Ada, 36", contract)
    assert first.accepted and first.tier == "ladder"
    assert first.completion is not None and first.completion.model == "model-medium"
    inner_attempts = inner_ledger.attempts()
    assert first.cost_usd == pytest.approx(sum(a.cost_usd for a in inner_attempts)) and first.cost_usd > 0
    assert outer_ledger.attempts()[0].input_tokens == sum(a.input_tokens for a in inner_attempts)
    # When the inner cascade accepts nothing, the outer one fails over to its next tier.
    second = outer.run("Extract: Ada, 36", contract)
    assert second.tier == "big"
    assert outer_ledger.attempts()[1].extra["error_type"] == "PermanentError"


def test_a_stuck_provider_times_out_per_call_and_fails_over() -> None:
    tiers = [Tier("slow", "slow", "m", 0.1, 0.1), _tier("large", 10.0)]
    providers = {"slow": _SlowProvider(), "scripted": ScriptedProvider({"large": [GOOD]})}
    engine = Cascade(tiers, providers=providers, call_timeout_s=0.05, max_retries=1, order="given")
    engine.config = dataclasses.replace(engine.config, backoff_base_s=0.001, backoff_max_s=0.002)
    result = engine.run("Extract", JsonContract(SCHEMA))
    assert result.tier == "large"
    errors = [a for a in result.attempts if a.outcome is Outcome.ERROR]
    assert [a.kind for a in errors] == [AttemptKind.FIRST, AttemptKind.RETRY]
    assert all(a.extra["error_type"] == "TimeoutError_" for a in errors)


def test_best_effort_keeps_what_it_has_when_the_deadline_passes() -> None:
    tiers = [_tier("small", 0.1), Tier("slow", "slow", "m", 5.0, 5.0)]
    providers = {"scripted": ScriptedProvider({"small": [BAD]}), "slow": _SlowProvider()}
    engine = Cascade(
        tiers, providers=providers, order="given", deadline_s=0.3, best_effort=True, max_retries=5
    )
    result = engine.run("Extract", JsonContract(SCHEMA))
    assert not result.accepted and result.tier == "small" and result.text == BAD
