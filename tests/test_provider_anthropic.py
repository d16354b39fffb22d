"""The Anthropic provider through the real SDK over real HTTP, against a loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs
from wire import Reply, WireServer, closed_port_url, wire_server
from wire.anthropic_wire import error_event, error_reply, message, message_events, message_reply, stream_reply

from cascade import Cascade, JsonContract, Tier
from cascade.errors import (
    AuthError,
    BadRequestError,
    CascadeFailed,
    ConnectionFailed,
    MalformedResponse,
    MissingKeyError,
    RateLimitError,
    ServerError,
    TimeoutError_,
)
from cascade.providers import create_provider
from cascade.providers.anthropic import AnthropicProvider
from cascade.types import Message, Request, ToolSpec

KEY = "sk-ant-test-0123456789abcdef"
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
    "required": ["name", "born"],
}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WireServer]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with wire_server() as running:
        yield running


def claude(server: WireServer, **settings: Any) -> Tier:
    return Tier("claude", "anthropic", "claude-test", 3.0, 15.0, base_url=server.url, **settings)


def conversation(**kwargs: Any) -> Request:
    turns = (Message("system", "You extract facts."), Message("system", "Answer in English."),
             Message("user", "Ada Lovelace was born in 1815."))  # fmt: skip
    return Request(messages=turns, **kwargs)


async def test_a_message_becomes_a_completion(server: WireServer) -> None:
    server.queue(message_reply("Ada, 1815.", usage={"input_tokens": 30, "output_tokens": 6}))
    tier = claude(server)
    completion = await AnthropicProvider(tier).complete(tier, conversation())
    assert completion.text == "Ada, 1815."
    assert (completion.usage.input_tokens, completion.usage.output_tokens, completion.usage.estimated) == (
        30, 6, False)  # fmt: skip
    assert completion.model == "claude-served" and completion.finish_reason == "end_turn"
    assert completion.tool_calls == ()


async def test_system_turns_go_to_the_system_parameter(server: WireServer) -> None:
    server.queue(message_reply("ok"))
    tier = claude(server, temperature=0.2, options={"top_k": 5})
    await AnthropicProvider(tier).complete(tier, conversation())
    sent = server.last()
    assert sent.path == "/v1/messages"
    assert KEY in (sent.header("x-api-key") or "") + (sent.header("Authorization") or "")
    body = sent.json()
    assert body["system"] == "You extract facts.\n\nAnswer in English."
    assert body["messages"] == [{"role": "user", "content": "Ada Lovelace was born in 1815."}]
    assert body["max_tokens"] == 1024  # the default output allowance: the API requires a cap
    assert body["temperature"] == 0.2 and body["top_k"] == 5
    assert "tools" not in body and "tool_choice" not in body and "stream" not in body


async def test_a_schema_becomes_a_forced_tool_whose_input_is_the_answer(server: WireServer) -> None:
    server.queue(message_reply(tool_uses=[("person", {"name": "Ada", "born": 1815})]))
    tier = claude(server)
    completion = await AnthropicProvider(tier).complete(
        tier, conversation(json_schema=PERSON, schema_name="person", max_tokens=200)
    )
    body = server.last().json()
    assert body["tools"][0]["name"] == "person" and body["tools"][0]["input_schema"] == PERSON
    assert body["tool_choice"] == {"type": "tool", "name": "person"}
    assert body["max_tokens"] == 200
    assert completion.tool_calls[0].name == "person"
    assert json.loads(completion.tool_calls[0].arguments) == {"name": "Ada", "born": 1815}
    assert JsonContract(PERSON).check_sync(completion).passed
    assert completion.finish_reason == "tool_use"


async def test_a_schema_that_is_not_an_object_is_wrapped_and_unwrapped(server: WireServer) -> None:
    names = {"type": "array", "items": {"type": "string"}}
    server.queue(message_reply(tool_uses=[("names", {"value": ["Ada", "Charles"]})]))
    tier = claude(server)
    completion = await AnthropicProvider(tier).complete(
        tier, conversation(json_schema=names, schema_name="names")
    )
    sent_schema = server.last().json()["tools"][0]["input_schema"]
    assert sent_schema == {"type": "object", "properties": {"value": names}, "required": ["value"]}
    assert json.loads(completion.tool_calls[0].arguments) == ["Ada", "Charles"]


async def test_offered_tools_pass_through_and_the_answer_tool_comes_first(server: WireServer) -> None:
    lookup = ToolSpec(
        "lookup", "Look a person up.", {"type": "object", "properties": {"q": {"type": "string"}}}
    )
    server.queue(
        message_reply(tool_uses=[("lookup", {"q": "Ada"}), ("person", {"name": "Ada", "born": 1815})])
    )
    tier = claude(server)
    completion = await AnthropicProvider(tier).complete(
        tier, conversation(json_schema=PERSON, schema_name="person", tools=(lookup,))
    )
    assert [t["name"] for t in server.last().json()["tools"]] == ["person", "lookup"]
    assert [c.name for c in completion.tool_calls] == ["person", "lookup"]


async def test_cached_prompt_tokens_count_as_input(server: WireServer) -> None:
    usage = {"input_tokens": 10, "output_tokens": 4, "cache_creation_input_tokens": 100,
             "cache_read_input_tokens": 50}  # fmt: skip
    server.queue(message_reply("ok", usage=usage))
    tier = claude(server)
    completion = await AnthropicProvider(tier).complete(tier, conversation())
    assert completion.usage.input_tokens == 160 and completion.usage.output_tokens == 4


async def test_missing_usage_is_estimated_and_flagged(server: WireServer) -> None:
    body = message("y" * 20)
    del body["usage"]
    server.queue(Reply(body=body))
    tier = claude(server)
    completion = await AnthropicProvider(tier).complete(tier, conversation())
    assert completion.usage.estimated is True and completion.usage.output_tokens == 5


# -- streaming ---------------------------------------------------------------------------------


async def test_a_streamed_message_is_put_together(server: WireServer) -> None:
    server.queue(stream_reply(["Ada ", "Lovelace"], usage=(40, 12)))
    tier = claude(server, options={"stream": True})
    completion = await AnthropicProvider(tier).complete(tier, conversation())
    assert server.last().json()["stream"] is True
    assert completion.text == "Ada Lovelace"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (40, 12)
    assert completion.finish_reason == "end_turn"


async def test_a_streamed_forced_tool_call_is_put_together(server: WireServer) -> None:
    server.queue(stream_reply(tool_use=("person", ['{"name": "Ada"', ', "born": 1815}'])))
    tier = claude(server, options={"stream": True})
    completion = await AnthropicProvider(tier).complete(
        tier, conversation(json_schema=PERSON, schema_name="person")
    )
    assert json.loads(completion.tool_calls[0].arguments) == {"name": "Ada", "born": 1815}


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [("overloaded_error", ServerError), ("rate_limit_error", RateLimitError),
     ("invalid_request_error", BadRequestError)],
)  # fmt: skip
async def test_an_error_event_inside_a_stream_is_translated_by_its_type(
    server: WireServer, kind: str, error_type: type[Exception]
) -> None:
    events = [*message_events(["partial"])[:3], error_event(kind, "trouble mid-stream")]
    server.queue(Reply(events=events))
    tier = claude(server, options={"stream": True})
    with pytest.raises(error_type, match="trouble mid-stream"):
        await AnthropicProvider(tier).complete(tier, conversation())


async def test_a_stream_that_never_starts_a_message_is_malformed(server: WireServer) -> None:
    server.queue(Reply(events=[]))
    tier = claude(server, options={"stream": True})
    with pytest.raises(MalformedResponse, match="never started"):
        await AnthropicProvider(tier).complete(tier, conversation())


# -- errors ------------------------------------------------------------------------------------


async def test_429_carries_retry_after(server: WireServer) -> None:
    server.queue(error_reply(429, "rate_limit_error", "too many requests", {"retry-after": "3"}))
    tier = claude(server)
    with pytest.raises(RateLimitError) as caught:
        await AnthropicProvider(tier).complete(tier, conversation())
    assert caught.value.retry_after == 3.0 and caught.value.provider == "anthropic"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "kind", "error_type", "words"),
    [
        (529, "overloaded_error", ServerError, "Overloaded"),
        (500, "api_error", ServerError, "Overloaded"),
        (401, "authentication_error", AuthError, "refused the API key"),
        (400, "invalid_request_error", BadRequestError, "rejected the request"),
        (404, "not_found_error", BadRequestError, "no model 'claude-test'"),
    ],
)
async def test_error_statuses_map_to_the_cascade_tree(
    server: WireServer, status: int, kind: str, error_type: type[Exception], words: str
) -> None:
    server.queue(error_reply(status, kind, "Overloaded"))
    tier = claude(server)
    with pytest.raises(error_type, match=words):
        await AnthropicProvider(tier).complete(tier, conversation())


@pytest.mark.parametrize(
    "reply",
    [Reply(body="<html>gateway</html>"), Reply(body={"id": "msg_1", "type": "message"}),
     Reply(body="{", headers={"Content-Type": "application/json"})],
    ids=["non-json", "no-content", "broken-json"],
)  # fmt: skip
async def test_unreadable_answers_are_malformed(server: WireServer, reply: Reply) -> None:
    server.queue(reply)
    tier = claude(server)
    with pytest.raises(MalformedResponse):
        await AnthropicProvider(tier).complete(tier, conversation())


async def test_a_slow_server_times_out(server: WireServer) -> None:
    server.queue(Reply(body=message("late"), delay_s=5))
    tier = claude(server)
    with pytest.raises(TimeoutError_):
        await AnthropicProvider(tier).complete(tier, conversation(), timeout=0.2)


async def test_a_closed_port_is_a_connection_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    tier = Tier("claude", "anthropic", "claude-test", 3.0, 15.0, base_url=closed_port_url())
    with pytest.raises(ConnectionFailed):
        await AnthropicProvider(tier).complete(tier, conversation())


# -- keys --------------------------------------------------------------------------------------


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="ANTHROPIC_API_KEY"):
        create_provider(Tier("claude", "anthropic", "claude-test", 3.0, 15.0))


async def test_a_rejected_key_is_never_shown_or_logged(server: WireServer) -> None:
    server.queue(error_reply(401, "authentication_error", f"invalid x-api-key: {KEY}"))
    tier = claude(server)
    with pytest.raises(AuthError) as caught:
        await AnthropicProvider(tier).complete(tier, conversation())
    assert KEY not in str(caught.value) and "***" in str(caught.value)
    server.queue(error_reply(401, "authentication_error", f"invalid x-api-key: {KEY}"))
    with capture_logs() as logs, pytest.raises(CascadeFailed) as failed:
        await Cascade([tier]).arun("hello", JsonContract(PERSON))
    assert any(entry["event"] == "provider_error" for entry in logs)
    assert KEY not in repr(logs) and KEY not in str(failed.value)
    assert all(KEY not in (a.error or "") for a in failed.value.attempts)


# -- end to end --------------------------------------------------------------------------------


async def test_a_cascade_gets_json_from_claude_through_the_forced_tool(server: WireServer) -> None:
    server.queue(message_reply(tool_uses=[("person", {"name": "Ada", "born": 1815})]))
    result = await Cascade([claude(server)]).arun(
        "Ada Lovelace was born in 1815.", JsonContract(PERSON, name="person")
    )
    assert result.accepted and result.value == {"name": "Ada", "born": 1815}
    assert result.attempts[0].input_tokens == 21
    assert server.last().json()["tool_choice"] == {"type": "tool", "name": "person"}
