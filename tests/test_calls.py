"""FunctionCallContract: parsing tool calls and Python-style call lists, and schema checks."""

from __future__ import annotations

import pytest

from cascade.errors import SchemaError
from cascade.types import Completion, ToolCall, ToolSpec, Usage
from validators.calls import FunctionCallContract, NoCallsFound, parse_call_list

SPEC = ToolSpec(
    "weather.get",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
     "required": ["city"], "additionalProperties": False},
)  # fmt: skip


def _text(text: str) -> Completion:
    return Completion(text, Usage(0, 0), "m")


def test_parses_a_list_of_dotted_calls_with_literals() -> None:
    calls = parse_call_list("[weather.get(city='Oslo', days=2), weather.get(city=\"Rome\", coords=(1.5, 2))]")
    assert [c.name for c in calls] == ["weather.get", "weather.get"]
    assert calls[1].arguments == {"city": "Rome", "coords": [1.5, 2]}  # tuples become JSON arrays


@pytest.mark.parametrize(
    "text",
    [
        "```python\nweather.get(city='Oslo')\n```",
        "Here is the call:\n```\n[weather.get(city='Oslo')]\n```\nDone.",
        r"[weather.get(city='Oslo')]",
    ],
)
def test_accepts_fenced_and_markdown_escaped_calls(text: str) -> None:
    assert FunctionCallContract([SPEC]).check_sync(_text(text)).passed


def test_markdown_escaped_underscores_are_unescaped() -> None:
    spec = ToolSpec("get_weather", "", {"type": "object"})
    assert FunctionCallContract([spec]).check_sync(_text(r"[get\_weather(city='Oslo')]")).passed


@pytest.mark.parametrize(
    ("text", "feedback"),
    [
        ("I cannot help with that.", "syntax error"),
        ("[weather.get('Oslo')]", "positional"),
        ("[weather.get(city=name)]", "not a literal"),
        ("[]", "empty list"),
        ("[('weather.get', {'city': 'Oslo'})]", "expected a function call"),
    ],
)
def test_unparseable_replies_get_actionable_feedback(text: str, feedback: str) -> None:
    result = FunctionCallContract([SPEC]).check_sync(_text(text))
    assert not result.passed
    assert feedback in result.feedback


def test_unknown_function_and_bad_arguments_fail() -> None:
    contract = FunctionCallContract([SPEC])
    unknown = contract.check_sync(_text("[weather.set(city='Oslo')]"))
    assert not unknown.passed and "unknown function(s) weather.set" in unknown.feedback
    bad = contract.check_sync(_text("[weather.get(city='Oslo', days='two')]"))
    assert not bad.passed and "days" in bad.feedback and "integer" in bad.feedback
    missing = contract.check_sync(_text("[weather.get(days=2)]"))
    assert not missing.passed and "'city' is a required property" in missing.feedback


def test_tool_calls_map_api_safe_names_back() -> None:
    contract = FunctionCallContract([SPEC])
    result = contract.check_sync(
        Completion("", Usage(0, 0), "m", tool_calls=(ToolCall("weather_get", '{"city": "Oslo"}'),))
    )
    assert result.passed
    assert result.value == [{"name": "weather.get", "arguments": {"city": "Oslo"}}]


def test_max_calls_and_non_object_arguments() -> None:
    contract = FunctionCallContract([SPEC], max_calls=1)
    assert not contract.check_sync(_text("[weather.get(city='A'), weather.get(city='B')]")).passed
    args_list = Completion("", Usage(0, 0), "m", tool_calls=(ToolCall("weather_get", "[1]"),))
    assert "JSON object" in contract.check_sync(args_list).feedback


def test_prepare_offers_api_safe_tool_names() -> None:
    from cascade.types import Message, Request

    request = FunctionCallContract([SPEC]).prepare(Request(messages=(Message("user", "hi"),)))
    assert [t.name for t in request.tools] == ["weather_get"]


def test_bad_function_schema_is_rejected_at_build() -> None:
    with pytest.raises(SchemaError, match=r"weather\.get"):
        FunctionCallContract([ToolSpec("weather.get", "", {"type": "objekt"})])
    with pytest.raises(SchemaError):
        FunctionCallContract([])


def test_parse_call_list_raises_typed_error() -> None:
    with pytest.raises(NoCallsFound):
        parse_call_list("print(")
