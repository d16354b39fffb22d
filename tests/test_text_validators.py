"""Free-text validators on hand-made replies, with guards against flagging right answers."""

from __future__ import annotations

from fractions import Fraction

import pytest

from cascade import ConfigError
from cascade.types import Candidate, Completion, Usage, Verdict
from validators import all_of
from validators._numbers import arithmetic_statements, evaluate, extract_number, parse_number
from validators.text import (
    arithmetic_consistent,
    final_answer,
    length_between,
    matches_regex,
    no_hedging,
    no_refusal,
    not_truncated,
    numeric_answer,
    uses_prompt_numbers,
)
from validators.text_contract import TextContract


def _check(validator: object, text: str, prompt: str = "", finish_reason: str | None = "stop") -> Verdict:
    candidate = Candidate(prompt, Completion(text, Usage(1, 1), "m", finish_reason=finish_reason))
    assert callable(validator)
    verdict = validator(candidate)
    assert isinstance(verdict, Verdict)
    return verdict


# -- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("1,000", Fraction(1000)),
        ("$5.00", Fraction(5)),
        ("5.", Fraction(5)),
        ("-3", Fraction(-3)),
        ("−3", Fraction(-3)),
        ("3/4", Fraction(3, 4)),
        ("1 1/2", Fraction(3, 2)),
        ("-1 1/2", Fraction(-3, 2)),
        ("12.5%", Fraction(25, 2)),
        ("**42**", Fraction(42)),
        ("$1,234,567.89", Fraction("1234567.89")),
    ],
)
def test_parse_number_reads_unusual_formats(written: str, value: Fraction) -> None:
    assert parse_number(written) == value


@pytest.mark.parametrize("written", ["1,00", "abc", "", "1/0", "12,34,567", "3.4.5"])
def test_parse_number_refuses_non_numbers(written: str) -> None:
    assert parse_number(written) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("The answer is 42.", Fraction(42)),
        ("So she pays $1,000 in total.\n#### 1,000", Fraction(1000)),
        ("Final answer: **-3**", Fraction(-3)),
        ("Thus \\boxed{3/4}.", Fraction(3, 4)),
        ("She has 5 apples and eats 2, so 3 are left.", Fraction(3)),
        ("#### 5.", Fraction(5)),
    ],
)
def test_extract_number(text: str, value: Fraction) -> None:
    assert extract_number(text) == value


def test_evaluate_is_exact_and_safe() -> None:
    assert evaluate("0.1 + 0.2") == Fraction(3, 10)
    assert evaluate("$1,500 x 2") == 3000
    assert evaluate("12.8 / 2/5") == 32  # a tight fraction is one number
    assert evaluate("2^10") == 1024
    assert evaluate("__import__('os')") is None
    assert evaluate("9 ** 9 ** 9") is None  # refused, not computed
    assert evaluate("1/0") is None


# -- final answer format -----------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["1,000", "$5.00", "5.", "-3", "3/4", "1 1/2", "42", "**42**", "12.5%"])
def test_final_answer_accepts_unusual_number_formats(answer: str) -> None:
    assert _check(final_answer(), f"Some working.\n#### {answer}").passed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("The answer is 42.", "no final-answer line"),
        ("#### 8 red chickens", "not just a number"),
        ("#### forty-two", "not just a number"),
    ],
)
def test_final_answer_flags_missing_or_wordy_answers(text: str, problem: str) -> None:
    verdict = _check(final_answer(), text)
    assert not verdict.passed and problem in verdict.feedback and "#### <number>" in verdict.feedback


def test_final_answer_integer_and_custom_pattern() -> None:
    assert not _check(final_answer(integer=True), "#### 2.67").passed
    assert _check(final_answer(integer=True), "#### 1,000.00").passed
    custom = final_answer(r"^ANSWER: (?P<answer>.+)$")
    assert _check(custom, "work\nANSWER: 7").passed
    assert not _check(custom, "work\n#### 7").passed
    assert repr(final_answer()) == "final_answer('####')"


def test_numeric_answer_bounds() -> None:
    assert _check(numeric_answer(), "The answer is 42.").passed
    assert not _check(numeric_answer(integer=True), "The answer is 2.5.").passed
    verdict = _check(numeric_answer(minimum=0), "The answer is -3.")
    assert not verdict.passed and "below 0" in verdict.feedback
    assert not _check(numeric_answer(), "I do not know.").passed
    assert not _check(numeric_answer(fallback_last=False), "It is 5 maybe").passed


# -- arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "He pays 3 * $1,500 = $<<3*1500=4500>>4,500.",
        "The average is 16/6 = <<16/6=2.6666666666666665>>2.67 inches.",  # rounding to the written place
        "So 2 * 2 * (1 + 1 + 25) = 2 * 2 * 27 = 108 cupcakes.",
        "Total: 5 + (-11) + (-16.5) = -22.5 dollars.",
        "15 x 6 = 90 and 1.5\\*11 = 16.5 and 0.1 * 100 = 10%.",
        "That is 90 / 450 = 0.2 * 100 = 20% of the time.",  # "=" used as "then"
        "Let x be the number: 3x + 5 = 20, so x = 5.",  # algebra is not arithmetic
        "She has 22 + 2/3 = 24 2/3 pies.",  # a mixed number is not cut at "24"
        "He earns $10 per hour.\n\n$250 = 5X",
    ],
)
def test_arithmetic_passes_right_or_uncheckable_statements(text: str) -> None:
    assert _check(arithmetic_consistent(), text).passed


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("So 60 + 40 = <<60+40=110>>110 minutes.", "<<60+40=110>> (it is 100)"),
        ("Each gets 100 / 4 = 20 dollars.", "100 / 4 = 20 (it is 25)"),
        ("Then 3 x 4 = 13 and 2 + 2 = 4.", "3 x 4 = 13 (it is 12)"),
        ("Total 12 + 7 + 1 = 2 + 18 = 21.", "2 + 18 = 21 (it is 20)"),
    ],
)
def test_arithmetic_flags_wrong_statements(text: str, wrong: str) -> None:
    verdict = _check(arithmetic_consistent(), text)
    assert not verdict.passed and wrong in verdict.feedback


def test_arithmetic_can_check_annotations_only() -> None:
    text = "Each gets 100 / 4 = 20 dollars."
    assert _check(arithmetic_consistent(inline=False), text).passed
    kinds = {s.source for s in arithmetic_statements("a <<1+1=2>> and 2 + 2 = 4")}
    assert kinds == {"annotation", "inline"}


# -- truncation, refusal, hedging, length -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("She feeds them 15 + 25 = <<15+2", "<<calculation>>"),
        ("The house is worth $<<80000+50000=130000>>130,00", "middle of a number"),
        ("In each room, Bob washes 2 sheets,", "mid-sentence"),
        ("Mamou gave out 64 + 30 +", "mid-sentence"),
        ("So we set up the following equation:", "mid-sentence"),
        ("Then she gives the rest of the", "mid-sentence"),
        ("```python\nprint(1)", "code block"),
        ("", "empty"),
    ],
)
def test_not_truncated_flags_cut_replies(text: str, reason: str) -> None:
    verdict = _check(not_truncated(), text)
    assert not verdict.passed and reason in verdict.feedback


@pytest.mark.parametrize(
    "text",
    [
        "The answer is 42",
        "The answer is 42.",
        "#### 5.",
        "#### 8 red chickens",  # a format problem, not a cut
        "Paris",
        "It costs $1,000",
        "Done! :)",
        "She pays 3/4 of it.\n#### 3/4",
        "Total: 100%",
    ],
)
def test_not_truncated_passes_complete_replies(text: str) -> None:
    assert _check(not_truncated(), text).passed


def test_not_truncated_reads_finish_reason() -> None:
    verdict = _check(not_truncated(), "A complete sentence.", finish_reason="length")
    assert not verdict.passed and "finish_reason=length" in verdict.feedback
    assert not _check(not_truncated(), "Fine.", finish_reason="max_tokens").passed


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I cannot assist with this request.",
        "As an AI language model, I cannot provide that.",
    ],
)
def test_no_refusal_flags_refusals(text: str) -> None:
    assert not _check(no_refusal(), text).passed


@pytest.mark.parametrize(
    "text",
    [
        "I can't believe how simple this is: 2 + 2 = 4.",
        "It is not possible to divide by zero, so the answer is undefined.",
        "The answer is 42. " + "x" * 400 + " I cannot help noticing it is neat.",  # late in the reply
    ],
)
def test_no_refusal_passes_answers(text: str) -> None:
    assert _check(no_refusal(), text).passed


def test_no_hedging() -> None:
    assert not _check(no_hedging(), "Each gets ≈ 3.33 pies.").passed
    assert not _check(no_hedging(), "We round it to 4 bags.").passed
    assert _check(no_hedging(), "The well-rounded team wins by 2 seconds.").passed


def test_length_between() -> None:
    assert _check(length_between(2, 10), "hello").passed
    assert not _check(length_between(10), "hello").passed
    verdict = _check(length_between(1, 3, unit="words"), "one two three four")
    assert not verdict.passed and "4 words" in verdict.feedback
    with pytest.raises(ConfigError):
        length_between(5, 2)


def test_uses_prompt_numbers() -> None:
    prompt = "Imma has 3 cats. She feeds them twice a day with 60 grams. How long do 720 grams last?"
    assert not _check(uses_prompt_numbers(), "720 / (60 * 2) = 6 days.", prompt).passed
    assert _check(uses_prompt_numbers(), "3 * 60 * 2 = 360 a day; 720 / 360 = 2 days.", prompt).passed
    assert _check(uses_prompt_numbers(), "0.5 * 10 = 5", "Half off (50%) of $10?").passed


def test_matches_regex_and_repr() -> None:
    validator = matches_regex(r"\bParis\b")
    assert _check(validator, "It is Paris.").passed and not _check(validator, "Lyon").passed
    assert repr(validator) == "matches_regex('\\\\bParis\\\\b')"


def test_text_contract_runs_cheapest_first_and_stops() -> None:
    contract = TextContract([arithmetic_consistent(), not_truncated(), final_answer()], name="math")
    result = contract.check_sync(Completion("2 + 2 = 5 and then", Usage(1, 1), "m"))
    assert not result.passed and [v.validator for v in result.verdicts] == ["not_truncated()"]
    ok = contract.check_sync(Completion("2 + 2 = 4\n#### 4", Usage(1, 1), "m"))
    assert ok.passed and ok.value == "2 + 2 = 4\n#### 4"
    trusting = TextContract([final_answer()], trusted_models={"big"})
    assert trusting.check_sync(Completion("no format at all", Usage(1, 1), "big")).passed
    assert _check(all_of(not_truncated(), final_answer()), "#### 3").passed


def test_an_annotated_statement_counts_once() -> None:
    verdict = _check(arithmetic_consistent(), "4 boxes hold 4 * 6 = <<4*6=26>>26 eggs.")
    assert not verdict.passed and verdict.feedback == "1 wrong calculation: <<4*6=26>> (it is 24)"
