"""JSON validators: find JSON in a reply, check it against a schema or a pydantic model.

Schemas are checked once (Draft 2020-12, with format checks) and compiled
validators are cached by the schema's canonical text, so building many
contracts from the same schema costs one compilation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema
import pydantic
from jsonschema.protocols import Validator as SchemaValidator

from cascade.errors import SchemaError
from cascade.types import Candidate, Completion, Verdict
from validators._core import CHEAP, MODERATE

__all__ = [
    "NoJSONFound",
    "compile_schema",
    "extract_json",
    "json_from_completion",
    "matches_model",
    "matches_schema",
]

_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_MAX_ERRORS = 3


class NoJSONFound(ValueError):
    """The reply holds no parseable JSON value."""


def extract_json(text: str) -> Any:
    """The first JSON value in ``text``: bare, in a fenced block, or embedded in prose."""
    stripped = text.strip()
    if stripped:
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            pass
    for block in _FENCE.findall(text):
        try:
            return json.loads(block)
        except json.JSONDecodeError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
            return value
        except json.JSONDecodeError:
            continue
    raise NoJSONFound("the reply contains no JSON object or array; reply with JSON only")


def json_from_completion(completion: Completion) -> Any:
    """Provider-native tool-call arguments first, then the reply text."""
    if completion.tool_calls:
        arguments = completion.tool_calls[0].arguments
        try:
            return json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise NoJSONFound(f"the tool call's arguments are not valid JSON: {exc.msg}") from None
    return extract_json(completion.text)


def _canonical(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


@lru_cache(maxsize=512)
def _compile(canonical: str) -> SchemaValidator:
    schema = json.loads(canonical)
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise SchemaError(f"invalid JSON schema at {where}: {exc.message}") from None
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def compile_schema(schema: Mapping[str, Any]) -> SchemaValidator:
    """A cached, checked validator for ``schema``; raises :class:`SchemaError` if it is not a schema."""
    if not isinstance(schema, Mapping):
        raise SchemaError(f"a JSON schema must be an object, got {type(schema).__name__}")
    return _compile(_canonical(schema))


def _describe(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"at $ {path or '(root)'}: {error.message}"


@dataclass(frozen=True, slots=True, repr=False)
class _MatchesSchema:
    schema: Mapping[str, Any]
    validator: SchemaValidator = field(compare=False)
    cost: int = CHEAP

    def __call__(self, candidate: Candidate) -> Verdict:
        validator = self.validator
        errors = sorted(validator.iter_errors(candidate.value), key=lambda e: list(e.absolute_path))
        if not errors:
            return Verdict(True, repr(self))
        listed = "; ".join(_describe(e) for e in errors[:_MAX_ERRORS])
        more = f" (+{len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        return Verdict(False, repr(self), 0.0, f"the JSON does not match the schema: {listed}{more}")

    def __repr__(self) -> str:
        title = self.schema.get("title") or self.schema.get("type", "schema")
        return f"matches_schema({title!s})"


def matches_schema(schema: Mapping[str, Any]) -> _MatchesSchema:
    """Pass when the candidate's parsed value satisfies ``schema`` (checked now, compiled once)."""
    return _MatchesSchema(schema, compile_schema(schema))


@dataclass(frozen=True, slots=True, repr=False)
class _MatchesModel:
    model: type[pydantic.BaseModel]
    cost: int = MODERATE

    def __call__(self, candidate: Candidate) -> Verdict:
        try:
            self.model.model_validate(candidate.value)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"at {'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
                for e in exc.errors()[:_MAX_ERRORS]
            )
            return Verdict(False, repr(self), 0.0, f"the JSON does not fit {self.model.__name__}: {problems}")
        return Verdict(True, repr(self))

    def __repr__(self) -> str:
        return f"matches_model({self.model.__name__})"


def matches_model(model: type[pydantic.BaseModel]) -> _MatchesModel:
    """Pass when the candidate's parsed value validates as ``model``."""
    return _MatchesModel(model)
