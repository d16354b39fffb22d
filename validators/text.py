"""Free-text validators: cheap domain checks that catch a bad answer before paying for a stronger model.

Each factory returns a private callable class with a ``cost`` hint and a readable
``__repr__`` (see :mod:`validators._core`).  They judge only what a deployment
sees, the prompt and the reply, and they lean towards passing: a check that
cannot read something does not flag it, so a right answer in an unusual format
("1,000", "$5.00", "5.", "-3", "3/4", "The answer is 42.") is never rejected
by a checker's blind spot.

>>> from validators import all_of
>>> gate = all_of(not_truncated(), final_answer(), arithmetic_consistent())
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from cascade.errors import ConfigError
from cascade.types import Candidate, Verdict
from validators._core import CHEAP, MODERATE
from validators._numbers import (
    ANSWER_PATTERNS,
    arithmetic_statements,
    extract_number,
    leading_number,
    numbers_in,
)

__all__ = [
    "DEFAULT_HEDGES",
    "DEFAULT_REFUSALS",
    "GSM8K_ANSWER",
    "arithmetic_consistent",
    "final_answer",
    "length_between",
    "matches_regex",
    "no_hedging",
    "no_refusal",
    "not_truncated",
    "numeric_answer",
    "uses_prompt_numbers",
]

#: GSM8K's convention: the reply ends with a line ``#### <answer>``.
GSM8K_ANSWER = ANSWER_PATTERNS[0].pattern
_MAX_LISTED = 3


def _number_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


# -- format --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class _MatchesRegex:
    pattern: re.Pattern[str]
    label: str
    message: str
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        ok = self.pattern.search(candidate.completion.text) is not None
        return Verdict(ok, repr(self), feedback="" if ok else self.message)

    def __repr__(self) -> str:
        return f"matches_regex({self.label})"


def matches_regex(pattern: str | re.Pattern[str], *, message: str = "", flags: int = 0) -> _MatchesRegex:
    """Pass when the reply contains a match of ``pattern`` (``re.search``)."""
    compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
    label = compiled.pattern if len(compiled.pattern) <= 40 else compiled.pattern[:39] + "…"
    return _MatchesRegex(compiled, repr(label), message or f"the reply must match {label!r}")


@dataclass(frozen=True, slots=True, repr=False)
class _FinalAnswer:
    pattern: re.Pattern[str]
    numeric: bool
    integer: bool
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        found = list(self.pattern.finditer(candidate.completion.text))
        if not found:
            return self._fail("the reply has no final-answer line")
        answer = (found[-1].groupdict().get("answer") or found[-1].group(0)).strip()
        if not self.numeric:
            return Verdict(True, repr(self))
        value, rest = leading_number(answer)
        if value is None or rest.strip(" .*%"):
            return self._fail(f"the final answer {answer[:40]!r} is not just a number")
        if self.integer and value.denominator != 1:
            return self._fail(f"the final answer {answer[:40]!r} is not a whole number")
        return Verdict(True, repr(self))

    def _fail(self, problem: str) -> Verdict:
        shape = (
            "#### <number>" if self.pattern.pattern == GSM8K_ANSWER else f"matching {self.pattern.pattern!r}"
        )
        return Verdict(False, repr(self), 0.0, f"{problem}: end with a line {shape}")

    def __repr__(self) -> str:
        options = "".join(
            [", numeric=False" if not self.numeric else "", ", integer=True" if self.integer else ""]
        )
        shown = "'####'" if self.pattern.pattern == GSM8K_ANSWER else repr(self.pattern.pattern)
        return f"final_answer({shown}{options})"


def final_answer(
    pattern: str | re.Pattern[str] = GSM8K_ANSWER, *, numeric: bool = True, integer: bool = False
) -> _FinalAnswer:
    """Pass when the reply states its final answer in a fixed format.

    The default format is GSM8K's last line ``#### <number>``; give any regex
    (its ``answer`` group, else the whole match, is the answer).  ``numeric``
    demands that the answer be just a number (``1,000``, ``$5.00``, ``3/4``, ``-3``
    all count); ``integer`` that it be a whole one.
    """
    compiled = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
    return _FinalAnswer(compiled, numeric, integer)


@dataclass(frozen=True, slots=True, repr=False)
class _NumericAnswer:
    integer: bool
    minimum: Fraction | None
    maximum: Fraction | None
    fallback_last: bool
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        value = extract_number(candidate.completion.text, fallback_last=self.fallback_last)
        if value is None:
            return Verdict(False, repr(self), 0.0, "the reply states no numeric answer")
        shown = _number_text(value)
        if self.integer and value.denominator != 1:
            return Verdict(False, repr(self), 0.0, f"the answer {shown} should be a whole number")
        if self.minimum is not None and value < self.minimum:
            return Verdict(
                False, repr(self), 0.0, f"the answer {shown} is below {_number_text(self.minimum)}"
            )
        if self.maximum is not None and value > self.maximum:
            return Verdict(
                False, repr(self), 0.0, f"the answer {shown} is above {_number_text(self.maximum)}"
            )
        return Verdict(True, repr(self))

    def __repr__(self) -> str:
        parts = [
            "integer=True" if self.integer else "",
            f"minimum={_number_text(self.minimum)}" if self.minimum is not None else "",
            f"maximum={_number_text(self.maximum)}" if self.maximum is not None else "",
            "fallback_last=False" if not self.fallback_last else "",
        ]
        return f"numeric_answer({', '.join(p for p in parts if p)})"


def numeric_answer(
    *,
    integer: bool = False,
    minimum: float | Fraction | None = None,
    maximum: float | Fraction | None = None,
    fallback_last: bool = True,
) -> _NumericAnswer:
    """Pass when a numeric final answer can be extracted and meets the bounds.

    The answer is the number a ``#### x`` line, a ``\\boxed{x}`` or "the answer
    is x" states; else, with ``fallback_last``, the reply's last number.
    """
    low = Fraction(str(minimum)) if isinstance(minimum, float) else minimum
    high = Fraction(str(maximum)) if isinstance(maximum, float) else maximum
    return _NumericAnswer(integer, low, high, fallback_last)


# -- arithmetic ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class _ArithmeticConsistent:
    annotations: bool
    inline: bool
    cost: int = MODERATE

    def __call__(self, candidate: Candidate) -> Verdict:
        text = candidate.completion.text
        wrong: list[str] = []
        checked = 0
        for statement in arithmetic_statements(text, annotations=self.annotations, inline=self.inline):
            holds = statement.holds()
            if holds is None:
                continue
            checked += 1
            if not holds:
                value = statement.computed()
                assert value is not None
                wrong.append(f"{statement} (it is {_number_text(value)})")
        if not wrong:
            return Verdict(True, repr(self))
        score = 1.0 - len(wrong) / checked
        # the first line is what an escalation note quotes; keep it short, details follow
        head = f"{len(wrong)} wrong calculation{'s' if len(wrong) > 1 else ''}: {wrong[0]}"
        rest = "".join(f"\n{w}" for w in wrong[1:_MAX_LISTED])
        return Verdict(False, repr(self), score, head + rest)

    def __repr__(self) -> str:
        kinds = [k for k, on in (("annotations", self.annotations), ("inline", self.inline)) if on]
        return f"arithmetic_consistent({'+'.join(kinds)})"


def arithmetic_consistent(*, annotations: bool = True, inline: bool = True) -> _ArithmeticConsistent:
    """Recompute every ``<<a op b=c>>`` annotation and inline ``a op b = c``; fail on any wrong one.

    Results may be rounded or cut to their last written place (``16/6 = 2.67``
    holds); expressions that are not plain arithmetic are skipped, not flagged.
    """
    return _ArithmeticConsistent(annotations, inline)


# -- truncation, refusal, hedging, length ------------------------------------------------------

_LENGTH_REASONS = ("length", "max_tokens", "max_output_tokens")
_DANGLING_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "to",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "by",
        "with",
        "for",
        "in",
        "on",
        "at",
        "from",
        "that",
        "which",
        "so",
        "then",
        "but",
        "as",
        "than",
        "into",
        "per",
        "each",
        "its",
        "their",
        "his",
        "her",
        "our",
        "your",
        "this",
        "these",
        "those",
        "if",
        "when",
        "because",
    ]
)
_FINAL_LINE = re.compile(r"^\s*(?:####|final answer|answer\s*:|\\boxed)", re.IGNORECASE)
_CUT_MID_NUMBER = re.compile(r"\d,\d{0,2}$")
_OPEN_END = re.compile(r"[-+*/×÷=^(\[{,:;&]$")


def _truncation(text: str) -> str | None:
    """Why ``text`` looks cut off, or ``None``."""
    stripped = text.rstrip()
    if not stripped:
        return "the reply is empty"
    if stripped.rfind("<<") > stripped.rfind(">>"):
        return "the reply stops inside a <<calculation>>"
    if stripped.count("```") % 2:
        return "the reply stops inside a code block"
    if _CUT_MID_NUMBER.search(stripped):
        return "the reply stops in the middle of a number"
    last_line = stripped.splitlines()[-1].strip()
    if _FINAL_LINE.match(last_line):
        return None
    if _OPEN_END.search(stripped):
        return f"the reply stops mid-sentence after {stripped[-1]!r}"
    words = last_line.split()
    if words and words[-1].lower() in _DANGLING_WORDS and len(words) > 2:
        return f"the reply stops mid-sentence after {words[-1]!r}"
    if len(words) >= 8 and stripped[-1].isalpha() and not re.search(r"[.!?:]", last_line):
        return "the reply stops mid-sentence"
    return None


@dataclass(frozen=True, slots=True, repr=False)
class _NotTruncated:
    finish_reasons: tuple[str, ...]
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        reason = candidate.completion.finish_reason
        if reason is not None and reason.lower() in self.finish_reasons:
            return Verdict(False, repr(self), 0.0, f"the reply was cut off (finish_reason={reason})")
        problem = _truncation(candidate.completion.text)
        if problem is None:
            return Verdict(True, repr(self))
        return Verdict(False, repr(self), 0.0, f"{problem}: give the complete answer")

    def __repr__(self) -> str:
        return "not_truncated()"


def not_truncated(finish_reasons: Sequence[str] = _LENGTH_REASONS) -> _NotTruncated:
    """Fail a reply the provider cut (``finish_reason`` ``length``) or that stops mid-number,
    mid-sentence, or inside a ``<<calculation>>`` or code block."""
    return _NotTruncated(tuple(r.lower() for r in finish_reasons))


#: Refusals open the reply; matched in its first few hundred characters only.
DEFAULT_REFUSALS = (
    r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:no|')t|won't|will not|am unable|'m unable|am not able)",
    r"\bI (?:can(?:no|')t|won't|will not|am unable to|'m unable to|am not able to) "
    r"(?:help|assist|comply|provide|answer|do that|fulfil|fulfill|support|create|generate|engage)",
    r"\bas an AI(?: language model)?,? I (?:can(?:no|')t|don't|do not|am not able|'m not able)",
    r"\bI must (?:decline|refuse)\b",
    r"\bI(?:'m| am) not (?:able|allowed|permitted) to (?:help|assist|provide|answer)",
)
_REFUSAL_WINDOW = 300


@dataclass(frozen=True, slots=True, repr=False)
class _Forbidden:
    """Fail when ``pattern`` occurs (in the first ``window`` characters, if set)."""

    pattern: re.Pattern[str]
    label: str
    problem: str  # feedback, "{match}" is the text found
    window: int | None = None
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        text = candidate.completion.text.lstrip()
        match = self.pattern.search(text if self.window is None else text[: self.window])
        if match is None:
            return Verdict(True, repr(self))
        return Verdict(False, repr(self), 0.0, self.problem.format(match=repr(match.group(0))))

    def __repr__(self) -> str:
        return f"{self.label}()"


def _any_of(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def no_refusal(patterns: Sequence[str] = DEFAULT_REFUSALS, *, window: int = _REFUSAL_WINDOW) -> _Forbidden:
    """Fail a reply that opens by refusing ("I'm sorry, but I can't help with that")."""
    return _Forbidden(_any_of(patterns), "no_refusal", "the reply refuses ({match}): answer the task", window)


#: Signs that a reply approximates, guesses or contradicts itself instead of solving.
DEFAULT_HEDGES = (
    r"≈",
    r"\bapprox(?:imately|\.)",
    r"\bround(?:ed|ing)? (?:it |this |that |the \w+ )?(?:up|down|off|to)\b",
    r"\bnot possible\b",
    r"\bimpossible\b",
    r"\bdoes(?:n't| not) make sense\b",
    r"\bI(?:'m| am) not (?:sure|certain)\b",
    r"\bthere (?:is|seems to be) (?:a|an) (?:mistake|error|inconsistency)\b",
    r"\bnot enough information\b",
)


def no_hedging(patterns: Sequence[str] = DEFAULT_HEDGES) -> _Forbidden:
    """Fail a reply that approximates or doubts itself ("≈", "approximately", "not possible").

    Meant for tasks with exact answers (math word problems); leave it out for prose.
    """
    return _Forbidden(_any_of(patterns), "no_hedging", "the reply hedges ({match}): solve exactly")


@dataclass(frozen=True, slots=True, repr=False)
class _LengthBetween:
    minimum: int
    maximum: int | None
    unit: Literal["chars", "words"]
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        text = candidate.completion.text.strip()
        size = len(text.split()) if self.unit == "words" else len(text)
        if size < self.minimum:
            return Verdict(
                False,
                repr(self),
                0.0,
                f"the reply is too short ({size} {self.unit}, at least {self.minimum})",
            )
        if self.maximum is not None and size > self.maximum:
            return Verdict(
                False, repr(self), 0.0, f"the reply is too long ({size} {self.unit}, at most {self.maximum})"
            )
        return Verdict(True, repr(self))

    def __repr__(self) -> str:
        return f"length_between({self.minimum}, {self.maximum}, unit={self.unit!r})"


def length_between(
    minimum: int = 1, maximum: int | None = None, *, unit: Literal["chars", "words"] = "chars"
) -> _LengthBetween:
    """Pass when the stripped reply has between ``minimum`` and ``maximum`` characters (or words)."""
    if minimum < 0 or (maximum is not None and maximum < minimum):
        raise ConfigError(f"length_between: need 0 <= minimum <= maximum, got {minimum}, {maximum}")
    if unit not in ("chars", "words"):
        raise ConfigError(f"length_between: unit must be 'chars' or 'words', got {unit!r}")
    return _LengthBetween(minimum, maximum, unit)


@dataclass(frozen=True, slots=True, repr=False)
class _UsesPromptNumbers:
    min_share: float
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        given = set(numbers_in(candidate.prompt))
        if not given:
            return Verdict(True, repr(self))
        said = set(numbers_in(candidate.completion.text))
        # a percentage may be used as a fraction ("50%" -> 0.5)
        unused = sorted(n for n in given if n not in said and n / 100 not in said)
        share = 1.0 - len(unused) / len(given)
        if share >= self.min_share:
            return Verdict(True, repr(self), share)
        shown = ", ".join(_number_text(n) for n in unused[:5])
        return Verdict(False, repr(self), share, f"unused given numbers: {shown}")

    def __repr__(self) -> str:
        return f"uses_prompt_numbers(min_share={self.min_share:g})"


def uses_prompt_numbers(min_share: float = 1.0) -> _UsesPromptNumbers:
    """Fail a reply that ignores quantities the prompt gives (share of them used below ``min_share``).

    A word-problem heuristic: a solution that never mentions a given number
    usually skipped a step.  Puzzles with distractor numbers will trip it.
    """
    if not 0.0 <= min_share <= 1.0:
        raise ConfigError(f"uses_prompt_numbers: min_share must be in [0, 1], got {min_share}")
    return _UsesPromptNumbers(min_share)
