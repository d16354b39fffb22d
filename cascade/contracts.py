"""Output contracts for structured extraction.

A :class:`JsonContract` is built from a JSON schema or a pydantic model.  It
asks providers for native structured output, finds JSON in whatever comes
back (tool call, bare, fenced, or inside prose), then runs its validators
cheapest first, stopping at the first failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar, overload

import pydantic

from cascade.errors import SchemaError
from cascade.protocols import CheckContext, Validator
from cascade.types import Candidate, CheckResult, Completion, Request, Verdict
from validators._core import run_all
from validators.json import NoJSONFound, compile_schema, json_from_completion, matches_model, matches_schema

__all__ = ["JsonContract"]

M = TypeVar("M", bound=pydantic.BaseModel)
V = TypeVar("V")


class JsonContract(Generic[V]):
    """The answer must be JSON matching a schema (or a pydantic model, returning its instance).

    >>> contract = JsonContract({"type": "object", "required": ["name"]}, name="person")
    >>> contract.name
    'person'
    """

    @overload
    def __init__(
        self: JsonContract[M], schema: type[M], *, name: str | None = ..., validators: Sequence[Validator] = ...,
        native: bool = ...,
    ) -> None: ...  # fmt: skip

    @overload
    def __init__(
        self: JsonContract[Any], schema: Mapping[str, Any], *, name: str | None = ...,
        validators: Sequence[Validator] = ..., native: bool = ...,
    ) -> None: ...  # fmt: skip

    def __init__(
        self,
        schema: type[pydantic.BaseModel] | Mapping[str, Any],
        *,
        name: str | None = None,
        validators: Sequence[Validator] = (),
        native: bool = True,
    ) -> None:
        self._model: type[pydantic.BaseModel] | None = None
        if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
            self._model = schema
            json_schema: Mapping[str, Any] = schema.model_json_schema()
            default_name = schema.__name__
            checks: list[Validator] = [matches_model(schema)]
        elif isinstance(schema, Mapping):
            json_schema = schema
            default_name = str(schema.get("title", "json"))
            checks = [matches_schema(schema)]
        else:
            raise SchemaError(f"JsonContract takes a JSON schema dict or a pydantic model, got {schema!r}")
        compile_schema(json_schema)  # a bad schema fails here, when the contract is built
        self.schema = json_schema
        self._name = name or default_name
        self.validators: tuple[Validator, ...] = (*checks, *validators)
        self.native = native

    @property
    def name(self) -> str:
        return self._name

    def prepare(self, request: Request) -> Request:
        if not self.native:
            return request
        return replace(request, json_schema=self.schema, schema_name=_schema_name(self._name))

    async def check(self, completion: Completion, ctx: CheckContext) -> CheckResult:
        return self.check_sync(completion, ctx.prompt)

    def check_sync(self, completion: Completion, prompt: str = "") -> CheckResult:
        """The same check without an engine: handy for tests and offline scoring."""
        try:
            value = json_from_completion(completion)
        except NoJSONFound as exc:
            return CheckResult((Verdict(False, "parses_as_json", 0.0, str(exc)),))
        candidate = Candidate(prompt, completion, value)
        # The schema gates first, so your validators only ever see a value of the declared shape.
        shape = run_all(self.validators[:1], candidate)
        extra = run_all(self.validators[1:], candidate) if shape[0].passed else ()
        verdicts = (Verdict(True, "parses_as_json"), *shape, *extra)
        if not all(v.passed for v in verdicts):
            return CheckResult(verdicts, value)
        parsed = self._model.model_validate(value) if self._model is not None else value
        return CheckResult(verdicts, parsed)

    def __repr__(self) -> str:
        return f"JsonContract({self._name!r}, validators={list(self.validators)!r})"


def _schema_name(name: str) -> str:
    # OpenAI and Anthropic accept [a-zA-Z0-9_-]{1,64} for schema and tool names.
    cleaned = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in name)
    return cleaned[:64] or "output"
