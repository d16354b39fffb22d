"""Server capability profiles: selection, the registry, strict-mode checks, request shaping."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from wire import WireServer, wire_server
from wire.openai_wire import chat_reply

from cascade import Tier
from cascade.errors import ConfigError
from cascade.providers import profiles
from cascade.providers.openai import OpenAIProvider
from cascade.providers.profiles import (
    Profile,
    Structured,
    get_profile,
    is_strict_compatible,
    profile_for,
    register_profile,
    registered_profiles,
)
from cascade.types import JSONSchema, Message, Request, ToolSpec

STRICT = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name", "tags"],
    "additionalProperties": False,
}


def a_tier(**settings: Any) -> Tier:
    return Tier("t", "openai", "m", 0, 0, **settings)


@pytest.fixture
def private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles registered by a test vanish after it."""
    monkeypatch.setattr(profiles, "_PROFILES", dict(profiles._PROFILES))


@pytest.fixture
def server() -> Iterator[WireServer]:
    with wire_server() as running:
        yield running


# -- selection and the registry ----------------------------------------------------------------


def test_the_builtin_profiles_are_registered() -> None:
    assert {"openai", "llamacpp", "ollama", "json_object", "prompt"} <= set(registered_profiles())


def test_openai_is_the_default_without_a_base_url_and_prompt_with_one() -> None:
    assert profile_for(a_tier()).name == "openai"
    assert profile_for(a_tier(base_url="http://127.0.0.1:8080/v1")).name == "prompt"


def test_a_named_profile_wins_over_the_default() -> None:
    assert profile_for(a_tier(base_url="http://127.0.0.1:8080/v1", profile="llamacpp")).name == "llamacpp"
    assert profile_for(a_tier(profile="prompt")).name == "prompt"


def test_an_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        get_profile("lmstudio")
    message = str(caught.value)
    assert "'lmstudio'" in message
    assert all(name in message for name in ("json_object", "llamacpp", "ollama", "openai", "prompt"))


def test_profiles_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile("openai").tools = False  # type: ignore[misc]


def _guided_json(schema: JSONSchema, name: str) -> Structured:
    return Structured(extra_body={"guided_json": dict(schema)})


@pytest.mark.usefixtures("private_registry")
async def test_a_registered_profile_shapes_real_requests(server: WireServer) -> None:
    register_profile(Profile("vllm", _guided_json, description="vLLM guided decoding"))
    tier = Tier("v", "openai", "qwen", 0, 0, base_url=f"{server.url}/v1", profile="vllm")
    server.queue(chat_reply('{"name": "x", "tags": []}'))
    request = Request(messages=(Message("user", "go"),), json_schema=STRICT, schema_name="item")
    await OpenAIProvider(tier).complete(tier, request)
    body = server.last().json()
    assert body["guided_json"] == STRICT and "response_format" not in body
    assert "vllm" in registered_profiles()


# -- OpenAI strict mode ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        (STRICT, True),
        ({**STRICT, "additionalProperties": True}, False),
        ({k: v for k, v in STRICT.items() if k != "additionalProperties"}, False),
        ({**STRICT, "required": ["name"]}, False),
        ({"type": "array", "items": {"type": "string"}}, False),
        ({**STRICT, "properties": {"name": {"type": "string"}, "tags": {"type": "object", "properties": {
            "a": {"type": "string"}}, "required": ["a"]}}}, False),
        ({**STRICT, "properties": {"name": {"oneOf": [{"type": "string"}, {"type": "null"}]},
                                   "tags": {"type": "string"}}}, False),
        ({**STRICT, "properties": {"name": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                                   "tags": {"$ref": "#/$defs/T"}},
          "$defs": {"T": {"type": "object", "properties": {"x": {"type": "integer"}}}}}, False),
        ({**STRICT, "properties": {"name": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                                   "tags": {"$ref": "#/$defs/T"}},
          "$defs": {"T": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"],
                          "additionalProperties": False}}}, True),
    ],
    ids=["strict", "open-object", "no-additional-properties", "optional-field", "array-root", "loose-nested",
         "one-of", "loose-def", "strict-def"],
)  # fmt: skip
def test_strict_mode_is_used_only_where_openai_accepts_it(schema: JSONSchema, strict: bool) -> None:
    assert is_strict_compatible(schema) is strict


class Loose(pydantic.BaseModel):
    name: str
    age: int = 0


class Closed(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str
    age: int


def test_pydantic_schemas_are_strict_only_when_closed_and_fully_required() -> None:
    assert is_strict_compatible(Closed.model_json_schema()) is True
    assert is_strict_compatible(Loose.model_json_schema()) is False


def test_the_openai_profile_marks_strictness_in_the_response_format() -> None:
    openai = get_profile("openai")
    for schema, strict in ((STRICT, True), (Loose.model_json_schema(), False)):
        shaped = openai.shape(
            Request(messages=(Message("user", "x"),), json_schema=schema, schema_name="out")
        )
        spec = shaped.params["response_format"]["json_schema"]
        assert spec == {"name": "out", "schema": schema, "strict": strict}


# -- shaping -----------------------------------------------------------------------------------


def test_the_prompt_profile_appends_the_schema_to_the_last_user_turn() -> None:
    turns = (
        Message("system", "sys"),
        Message("user", "first"),
        Message("assistant", "a"),
        Message("user", "last"),
    )
    shaped = get_profile("prompt").shape(Request(messages=turns, json_schema=STRICT))
    assert [m.role for m in shaped.messages] == ["system", "user", "assistant", "user"]
    assert shaped.messages[:3] == turns[:3]
    assert shaped.messages[3].content.startswith("last\n\nReply with only a JSON value")
    assert '"required":["name","tags"]' in shaped.messages[3].content
    assert not shaped.params and not shaped.extra_body


def test_an_instruction_without_a_user_turn_becomes_one() -> None:
    shaped = get_profile("json_object").shape(
        Request(messages=(Message("system", "sys"),), json_schema=STRICT)
    )
    assert [m.role for m in shaped.messages] == ["system", "user"]
    assert shaped.params == {"response_format": {"type": "json_object"}}


def test_constrained_profiles_leave_the_messages_alone() -> None:
    request = Request(messages=(Message("user", "hi"),), json_schema=STRICT)
    for name in ("openai", "llamacpp", "ollama"):
        assert get_profile(name).shape(request).messages == request.messages
    assert get_profile("llamacpp").shape(request).params == {
        "response_format": {"type": "json_object", "schema": STRICT}}  # fmt: skip
    assert get_profile("ollama").shape(request).extra_body == {"format": STRICT}


def test_without_a_schema_nothing_is_added() -> None:
    request = Request(messages=(Message("user", "hi"),))
    for name in registered_profiles():
        shaped = get_profile(name).shape(request)
        assert shaped.messages == request.messages and not shaped.params and not shaped.extra_body


def test_tools_on_a_profile_without_them_are_a_config_error_naming_alternatives() -> None:
    tool = ToolSpec("f", "d", {"type": "object"})
    with pytest.raises(ConfigError, match=r"'prompt' does not declare tool calls.*llamacpp"):
        get_profile("prompt").shape(Request(messages=(Message("user", "hi"),), tools=(tool,)))
    assert get_profile("llamacpp").shape(Request(messages=(Message("user", "hi"),), tools=(tool,)))


def test_the_output_cap_goes_under_each_servers_own_name() -> None:
    assert get_profile("openai").max_tokens_param == "max_completion_tokens"
    assert {get_profile(n).max_tokens_param for n in ("llamacpp", "ollama", "json_object", "prompt")} == {
        "max_tokens"}  # fmt: skip
