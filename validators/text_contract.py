"""A free-text contract: cheap validators first, then (optionally) a judge.

The validators run cheapest first and stop at the first failure, so a reply
that is cut off or gets its arithmetic wrong never costs a judge call.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any

from cascade.errors import ConfigError
from cascade.protocols import CheckContext, Validator
from cascade.types import Candidate, CheckResult, Completion, Message, Request, Verdict
from validators._core import run_all
from validators.judge import JudgeContract

__all__ = ["TextContract"]


class TextContract:
    """The answer is free text that passes ``validators`` (and then ``judge``, if given).

    ``instructions`` are appended to the last user message (say what format the
    validators expect); ``extract`` turns an accepted reply into the result's
    value (default: the text).  Replies from ``trusted_models`` are accepted
    unchecked: list the top tier there when its answer is the last resort anyway,
    so a format slip on the strongest model does not send back a weaker answer.

    >>> from validators.text import final_answer, not_truncated
    >>> TextContract([not_truncated(), final_answer()], name="math").name
    'math'
    """

    def __init__(
        self,
        validators: Sequence[Validator] = (),
        *,
        judge: JudgeContract | None = None,
        name: str = "text",
        instructions: str | None = None,
        extract: Callable[[str], Any] | None = None,
        trusted_models: Collection[str] = (),
    ) -> None:
        if not validators and judge is None:
            raise ConfigError("a TextContract needs at least one validator or a judge")
        for validator in validators:
            if not callable(validator):
                raise ConfigError(f"not a validator (not callable): {validator!r}")
        self.validators = tuple(validators)
        self.judge = judge
        self.instructions = instructions
        self.extract = extract
        self.trusted_models = frozenset(trusted_models)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def prepare(self, request: Request) -> Request:
        if not self.instructions:
            return request
        messages = list(request.messages)
        for i in range(len(messages) - 1, -1, -1):
            if messages[i].role == "user":
                messages[i] = Message("user", f"{messages[i].content}\n\n{self.instructions}")
                return replace(request, messages=tuple(messages))
        return replace(request, messages=(*messages, Message("user", self.instructions)))

    async def check(self, completion: Completion, ctx: CheckContext) -> CheckResult:
        result = self.check_sync(completion, ctx.prompt)
        trusted = completion.model in self.trusted_models
        if self.judge is None or trusted or (result.verdicts and not result.passed):
            return result
        verdict = await self.judge.judge(Candidate(ctx.prompt, completion), ctx)
        verdicts = (*result.verdicts, verdict)
        return CheckResult(verdicts, self._value(completion) if verdict.passed else None)

    def check_sync(self, completion: Completion, prompt: str = "") -> CheckResult:
        """The validators alone, without an engine (no judge): for tests and offline scoring."""
        if completion.model in self.trusted_models:
            return CheckResult((Verdict(True, f"trusted model {completion.model}"),), self._value(completion))
        verdicts = run_all(self.validators, Candidate(prompt, completion))
        passed = all(v.passed for v in verdicts)
        return CheckResult(verdicts, self._value(completion) if passed else None)

    def _value(self, completion: Completion) -> Any:
        return self.extract(completion.text) if self.extract else completion.text

    def __repr__(self) -> str:
        judge = f", judge={self.judge!r}" if self.judge else ""
        return f"TextContract({self._name!r}, validators={list(self.validators)!r}{judge})"
