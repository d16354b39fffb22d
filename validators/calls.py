"""Function-call contracts: the answer must call offered functions with valid arguments.

A model may answer through a provider's function-calling API (tool calls) or
in plain text as a Python-style list of calls, ``[f(a=1), pkg.g(b="x")]``.
Both are parsed into :class:`FunctionCall` values; each call must name an
offered function and its arguments must satisfy that function's JSON schema.

Function-calling APIs forbid dots in names, so clients send ``pkg.g`` as
``pkg_g``; calls are mapped back to the offered names the same way a real
client must.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cascade.errors import SchemaError
from cascade.protocols import CheckContext
from cascade.types import CheckResult, Completion, Request, ToolSpec, Verdict
from validators.json import compile_schema

__all__ = ["FunctionCall", "FunctionCallContract", "NoCallsFound", "api_safe_name", "parse_call_list"]

_FENCE = re.compile(r"```[a-zA-Z]*[ \t]*\n(.*?)```", re.DOTALL)
_MAX_PROBLEMS = 3
#: Markdown escapes chat models put in plain-text answers (``get\\_weather``).
_MARKDOWN_ESCAPE = re.compile(r"\\([_*#])")


class NoCallsFound(ValueError):
    """The reply holds no parseable function call."""


@dataclass(frozen=True, slots=True)
class FunctionCall:
    name: str
    arguments: Mapping[str, Any]


def api_safe_name(name: str) -> str:
    """The name a function-calling API accepts ([a-zA-Z0-9_-]): dots and others become ``_``."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)


def parse_call_list(text: str) -> list[FunctionCall]:
    """Parse ``[f(a=1), g.h(b=[2])]`` (or one bare call), fenced or not; literals only."""
    source = text.strip()
    fenced = _FENCE.search(source)
    if fenced:
        source = fenced.group(1).strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        unescaped = _MARKDOWN_ESCAPE.sub(r"\1", source)
        if unescaped != source:
            return parse_call_list(unescaped)
        raise NoCallsFound(
            f"the reply is not a Python-style list of calls (syntax error: {exc.msg})"
        ) from None
    body = tree.body
    nodes = body.elts if isinstance(body, ast.List | ast.Tuple) else [body]
    if not nodes:
        raise NoCallsFound("the reply is an empty list: call at least one function")
    return [_call_from_node(node) for node in nodes]


def _call_from_node(node: ast.expr) -> FunctionCall:
    if not isinstance(node, ast.Call):
        raise NoCallsFound(f"expected a function call like f(a=1), found {ast.unparse(node)[:60]!r}")
    name = _dotted_name(node.func)
    if node.args:
        raise NoCallsFound(f"{name}(...) passes positional arguments: name every argument (a=1)")
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise NoCallsFound(f"{name}(...) uses **kwargs: name every argument")
        try:
            arguments[keyword.arg] = _as_json(ast.literal_eval(keyword.value))
        except (ValueError, SyntaxError, TypeError):
            value = ast.unparse(keyword.value)[:60]
            raise NoCallsFound(f"{name}({keyword.arg}=...) is not a literal value: {value!r}") from None
    return FunctionCall(name, arguments)


def _as_json(value: Any) -> Any:
    """Python literals as their JSON counterparts (tuples and sets become arrays)."""
    if isinstance(value, tuple | list | set | frozenset):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _as_json(v) for k, v in value.items()}
    return value


def _dotted_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted_name(node.value)}.{node.attr}"
    raise NoCallsFound(f"{ast.unparse(node)[:60]!r} is not a function name")


class FunctionCallContract:
    """The answer is one or more calls to ``tools``, each with schema-valid arguments.

    >>> from cascade.types import Usage
    >>> spec = ToolSpec("geo.distance", "Distance in km", {"type": "object",
    ...     "properties": {"a": {"type": "string"}}, "required": ["a"]})
    >>> contract = FunctionCallContract([spec])
    >>> contract.check_sync(Completion('[geo.distance(a="Oslo")]', Usage(0, 0), "m")).passed
    True
    """

    def __init__(
        self, tools: Sequence[ToolSpec], *, name: str = "function_call", max_calls: int | None = None
    ):
        if not tools:
            raise SchemaError("a function-call contract needs at least one function")
        self._validators = {}
        for spec in tools:
            try:
                self._validators[spec.name] = compile_schema(spec.parameters)
            except SchemaError as exc:
                raise SchemaError(f"function {spec.name!r}: {exc}") from None
        self.tools = tuple(tools)
        self._by_name = {spec.name: spec for spec in tools}
        self._aliases = {api_safe_name(spec.name): spec.name for spec in tools}
        self._name = name
        self.max_calls = max_calls

    @property
    def name(self) -> str:
        return self._name

    def prepare(self, request: Request) -> Request:
        offered = tuple(replace(spec, name=api_safe_name(spec.name)) for spec in self.tools)
        return replace(request, tools=offered)

    async def check(self, completion: Completion, ctx: CheckContext) -> CheckResult:
        return self.check_sync(completion)

    def check_sync(self, completion: Completion) -> CheckResult:
        try:
            calls = self._calls(completion)
        except NoCallsFound as exc:
            return CheckResult((Verdict(False, "parses_as_calls", 0.0, str(exc)),))
        verdicts = [Verdict(True, "parses_as_calls"), self._names_verdict(calls)]
        if verdicts[-1].passed:
            verdicts.append(self._arguments_verdict(calls))
        value = [{"name": c.name, "arguments": dict(c.arguments)} for c in calls]
        return CheckResult(tuple(verdicts), value)

    def _calls(self, completion: Completion) -> list[FunctionCall]:
        if not completion.tool_calls:
            return parse_call_list(completion.text)
        calls = []
        for tool_call in completion.tool_calls:
            try:
                arguments = json.loads(tool_call.arguments or "{}")
            except json.JSONDecodeError as exc:
                raise NoCallsFound(f"the arguments of {tool_call.name} are not JSON: {exc.msg}") from None
            if not isinstance(arguments, dict):
                raise NoCallsFound(f"the arguments of {tool_call.name} must be a JSON object")
            calls.append(FunctionCall(self._aliases.get(tool_call.name, tool_call.name), arguments))
        return calls

    def _names_verdict(self, calls: Sequence[FunctionCall]) -> Verdict:
        if self.max_calls is not None and len(calls) > self.max_calls:
            return Verdict(
                False, "known_functions", 0.0, f"make at most {self.max_calls} call(s), not {len(calls)}"
            )
        unknown = sorted({c.name for c in calls if c.name not in self._by_name})
        if unknown:
            offered = ", ".join(self._by_name)
            return Verdict(
                False, "known_functions", 0.0, f"unknown function(s) {', '.join(unknown)}; offered: {offered}"
            )
        return Verdict(True, "known_functions")

    def _arguments_verdict(self, calls: Sequence[FunctionCall]) -> Verdict:
        problems: list[str] = []
        for call in calls:
            validator = self._validators[call.name]
            for error in sorted(
                validator.iter_errors(dict(call.arguments)), key=lambda e: list(e.absolute_path)
            ):
                where = ".".join(str(p) for p in error.absolute_path)
                problems.append(f"{call.name}({where or 'arguments'}): {error.message}")
        if problems:
            listed = "; ".join(problems[:_MAX_PROBLEMS])
            more = f" (+{len(problems) - _MAX_PROBLEMS} more)" if len(problems) > _MAX_PROBLEMS else ""
            score = 1.0 - min(1.0, len(problems) / (len(calls) * 2))
            return Verdict(False, "arguments_match_schema", score, f"invalid arguments: {listed}{more}")
        return Verdict(True, "arguments_match_schema")

    def __repr__(self) -> str:
        return f"FunctionCallContract({[t.name for t in self.tools]!r})"
