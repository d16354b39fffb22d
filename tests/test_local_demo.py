"""The demo's contract and bookkeeping, without a model: outputs are written by hand here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cascade.local.demo import (
    EXAMPLE,
    SCHEMA,
    SENTENCES,
    Throughput,
    extraction_contract,
    local_tiers,
    messages_for,
    money_figures,
    throughput,
)
from cascade.providers.profiles import get_profile
from cascade.types import Attempt, AttemptKind, Completion, Outcome, Request, Usage

SENTENCE = "On 12 March 2024, Maria Lopez paid $1,250 for a new roof."


def check(answer: Any, sentence: str = SENTENCE) -> list[str]:
    """Names of the validators that failed on ``answer`` (given as a value or raw text)."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    result = extraction_contract(sentence).check_sync(Completion(text, Usage(1, 1), "m"))
    return [v.validator for v in result.verdicts if not v.passed]


def test_a_faithful_extraction_passes() -> None:
    assert check({"person": "Maria Lopez", "date": "12 March 2024", "amount": 1250}) == []


def test_fenced_answer_in_prose_still_passes() -> None:
    text = 'Sure! ```json\n{"person": "maria lopez", "date": "12  March 2024", "amount": 1250.0}\n```'
    assert check(text) == []


@pytest.mark.parametrize(
    ("answer", "failed"),
    [
        ({"person": "John Smith", "date": "12 March 2024", "amount": 1250}, "person_in_text"),
        ({"person": "Maria Lopez", "date": "2024-03-12", "amount": 1250}, "date_in_text"),
        ({"person": "Maria Lopez", "date": "March", "amount": 1250}, "date_has_digit"),
        ({"person": "Maria Lopez", "date": "12 March 2024", "amount": 2024}, "amount_in_text"),
        ({"person": "Maria Lopez", "date": "12 March 2024", "amount": 0}, "amount_in_text"),
        ({"person": "", "date": "12 March 2024", "amount": 1250}, "person_in_text"),
    ],
)
def test_values_not_stated_in_the_sentence_fail(answer: dict[str, Any], failed: str) -> None:
    assert check(answer) == [failed]


def test_wrong_types_fail_on_the_schema_first() -> None:
    failed = check({"person": "Maria Lopez", "date": "12 March 2024", "amount": "$1,250"})
    assert len(failed) == 1 and failed[0].startswith("matches_schema")


def test_money_figures_need_a_currency_and_ignore_dates() -> None:
    assert money_figures("On 5 June 2023 Kenji gave €300 and 4,300 dollars, then £64.20.") == {
        300,
        4300,
        64.2,
    }
    assert money_figures("Room 12 on 3 May 2021") == set()


def test_every_sentence_states_exactly_one_amount_and_the_example_is_not_in_the_batch() -> None:
    assert len(SENTENCES) >= 24
    assert all(len(money_figures(s)) == 1 for s in SENTENCES)
    assert EXAMPLE[0] not in SENTENCES
    assert json.loads(EXAMPLE[1]).keys() == SCHEMA["properties"].keys()


def test_tiers_are_free_local_and_differ_only_in_profile() -> None:
    free, constrained = local_tiers("http://127.0.0.1:1/v1", "tiny", n_ctx=1024)
    assert (free.profile, constrained.profile) == ("plain", "llamacpp")
    assert free.cost(1000, 1000) == 0.0 and free.context_window == 1024
    priced, _ = local_tiers("http://127.0.0.1:1/v1", "tiny", n_ctx=1024, price_per_mtok=0.1)
    assert priced.cost(1_000_000, 0) == pytest.approx(0.1)


def test_plain_profile_sends_the_prompt_unchanged() -> None:
    local_tiers("http://127.0.0.1:1/v1", "tiny", n_ctx=1024)  # registers it
    request = extraction_contract(SENTENCE).prepare(Request(messages_for(SENTENCE)))
    shaped = get_profile("plain").shape(request)
    assert shaped.messages == request.messages and not shaped.params and not shaped.extra_body
    llamacpp = get_profile("llamacpp").shape(request)
    assert llamacpp.params["response_format"]["type"] == "json_object"


def test_throughput_counts_answered_calls_only() -> None:
    def attempt(tier: str, outcome: Outcome, tokens: int, secs: float) -> Attempt:
        return Attempt(
            "r", 0, "c", tier, "m", AttemptKind.FIRST, outcome, output_tokens=tokens, latency_s=secs
        )

    rows = throughput(
        [
            attempt("a", Outcome.ACCEPTED, 30, 0.5),
            attempt("a", Outcome.REJECTED, 10, 0.5),
            attempt("a", Outcome.ERROR, 0, 9.0),
            attempt("b", Outcome.REJECTED, 0, 0.0),
        ]
    )
    assert rows["a"] == Throughput(calls=2, output_tokens=40, overall=40.0, median_call=40.0)
    assert rows["b"] == Throughput(calls=1, output_tokens=0, overall=0.0, median_call=0.0)
    assert set(rows) == {"a", "b"}


def test_median_call_rate_ignores_one_stalled_call() -> None:
    attempts = [
        Attempt("r", 0, "c", "a", "m", AttemptKind.FIRST, Outcome.ACCEPTED, output_tokens=30, latency_s=secs)
        for secs in (0.5, 0.5, 30.0)
    ]
    row = throughput(attempts)["a"]
    assert row.median_call == 60.0 and row.overall == pytest.approx(90 / 31)
