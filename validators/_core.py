"""Validator building blocks: verdict helpers and the all/any combinators.

A validator is a private callable class with a public factory function and a
readable ``__repr__`` (the attrs style).  Each has a ``cost`` hint: combinators
run cheaper validators first and ``all_of`` stops at the first failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cascade.protocols import Validator
from cascade.types import Candidate, Verdict

__all__ = ["all_of", "any_of", "cost_of", "predicate", "process_wide", "run_all"]

T = TypeVar("T")

#: Cost hints; lower runs first.
CHEAP = 1
MODERATE = 10
EXPENSIVE = 100


def cost_of(validator: Validator) -> int:
    return int(getattr(validator, "cost", MODERATE))


def run_all(validators: Sequence[Validator], candidate: Candidate) -> tuple[Verdict, ...]:
    """Run cheapest first, stop at the first failure; return the verdicts that ran."""
    verdicts: list[Verdict] = []
    for validator in sorted(validators, key=cost_of):
        try:
            verdict = validator(candidate)
        except Exception as exc:  # a validator bug fails this output, never the whole request
            verdict = Verdict(
                False, repr(validator), 0.0, f"the check raised {type(exc).__name__}: {exc}"[:300]
            )
        verdicts.append(verdict)
        if not verdict.passed:
            break
    return tuple(verdicts)


@dataclass(frozen=True, slots=True, repr=False)
class _AllOf:
    validators: tuple[Validator, ...]

    @property
    def cost(self) -> int:
        return sum(cost_of(v) for v in self.validators)

    def __call__(self, candidate: Candidate) -> Verdict:
        verdicts = run_all(self.validators, candidate)
        failed = [v for v in verdicts if not v.passed]
        if failed:
            first = failed[0]
            return Verdict(False, repr(self), first.score, first.feedback)
        scores = [v.score or 0.0 for v in verdicts]
        return Verdict(True, repr(self), min(scores) if scores else 1.0)

    def __repr__(self) -> str:
        return f"all_of({', '.join(map(repr, self.validators))})"


@dataclass(frozen=True, slots=True, repr=False)
class _AnyOf:
    validators: tuple[Validator, ...]

    @property
    def cost(self) -> int:
        return min((cost_of(v) for v in self.validators), default=0)

    def __call__(self, candidate: Candidate) -> Verdict:
        feedback: list[str] = []
        best = 0.0
        for validator in sorted(self.validators, key=cost_of):
            verdict = validator(candidate)
            if verdict.passed:
                return Verdict(True, repr(self), verdict.score)
            best = max(best, verdict.score or 0.0)
            if verdict.feedback:
                feedback.append(verdict.feedback)
        return Verdict(False, repr(self), best, "none of the alternatives held: " + "; ".join(feedback))

    def __repr__(self) -> str:
        return f"any_of({', '.join(map(repr, self.validators))})"


def all_of(*validators: Validator) -> Validator:
    """Pass when every validator passes; cheapest first, stopping at the first failure."""
    return _AllOf(tuple(validators))


def any_of(*validators: Validator) -> Validator:
    """Pass when at least one validator passes; cheapest first, stopping at the first pass."""
    return _AnyOf(tuple(validators))


@dataclass(frozen=True, slots=True, repr=False)
class _Predicate:
    func: Callable[[Candidate], bool]
    label: str
    message: str
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        try:
            ok = bool(self.func(candidate))
        except Exception as exc:  # a check that cannot read the answer has not passed it
            return Verdict(
                False, self.label, feedback=f"{self.message} (the check raised {type(exc).__name__})"
            )
        return Verdict(ok, self.label, feedback="" if ok else self.message)

    def __repr__(self) -> str:
        return f"predicate({self.label!r})"


def predicate(func: Callable[[Candidate], bool], label: str, message: str, cost: int = CHEAP) -> Validator:
    """Wrap a boolean function of the candidate; ``message`` is the feedback on failure."""
    return _Predicate(func, label, message, cost)


def process_wide(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter that builds ``factory()`` once, on first use, under a lock (warm pools contracts share)."""
    lock = threading.Lock()
    built: list[T] = []

    def get() -> T:
        with lock:
            if not built:
                built.append(factory())
            return built[0]

    get.__doc__ = f"The process-wide {getattr(factory, '__name__', 'instance')} that contracts share unless given their own."
    return get
