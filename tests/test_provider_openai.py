"""The OpenAI provider through the real SDK over real HTTP, against a loopback server."""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs
from wire import Reply, WireServer, closed_port_url, wire_server
from wire.openai_wire import chat_completion, chat_reply, error_reply, stream_reply

from cascade import Cascade, JsonContract, Tier
from cascade.errors import (
    AuthError,
    BadRequestError,
    CascadeFailed,
    ConfigError,
    ConnectionFailed,
    MalformedResponse,
    MissingKeyError,
    RateLimitError,
    ServerError,
    TimeoutError_,
)
from cascade.providers import create_provider
from cascade.providers._sdk import body_detail, retry_after
from cascade.providers.openai import PLACEHOLDER_KEY, OpenAIProvider
from cascade.types import AttemptKind, Message, Outcome, Request, ToolSpec

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture
def server() -> Iterator[WireServer]:
    with wire_server() as running:
        yield running


def local_tier(server: WireServer, name: str = "local", **settings: Any) -> Tier:
    return Tier(name=name, provider="openai", model=settings.pop("model", "small-model"), input_per_mtok=0.1,
                output_per_mtok=0.2, base_url=f"{server.url}/v1", **settings)  # fmt: skip


def ask(text: str = "Who is Ada?", **kwargs: Any) -> Request:
    return Request(messages=(Message("system", "Be brief."), Message("user", text)), **kwargs)


async def test_a_completion_carries_text_usage_model_and_finish_reason(server: WireServer) -> None:
    server.queue(chat_reply("Ada Lovelace.", model="served-model", usage=(12, 3), finish_reason="length"))
    completion = await OpenAIProvider(local_tier(server)).complete(local_tier(server), ask())
    assert completion.text == "Ada Lovelace."
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (12, 3)
    assert completion.usage.estimated is False
    assert completion.model == "served-model"
    assert completion.finish_reason == "length"


async def test_the_request_maps_messages_limits_and_options(server: WireServer) -> None:
    tier = local_tier(server, temperature=0.3, max_tokens=50, options={"top_k": 40, "seed": 7, "timeout": 30})
    server.queue(chat_reply("ok"))
    await OpenAIProvider(tier).complete(tier, ask(temperature=0.0, max_tokens=20))
    sent = server.last()
    assert sent.path == "/v1/chat/completions"
    body = sent.json()
    assert body["model"] == "small-model"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who is Ada?"},
    ]
    assert body["max_tokens"] == 20 and body["temperature"] == 0.0  # the request overrides the tier
    assert body["top_k"] == 40 and body["seed"] == 7
    assert "timeout" not in body and "stream" not in body and "response_format" not in body


async def test_tier_settings_apply_when_the_request_sets_none(server: WireServer) -> None:
    tier = local_tier(server, temperature=0.3, max_tokens=50)
    server.queue(chat_reply("ok"))
    await OpenAIProvider(tier).complete(tier, ask())
    body = server.last().json()
    assert body["max_tokens"] == 50 and body["temperature"] == 0.3


@pytest.mark.parametrize(
    ("profile", "expected_format", "extra_field", "instructed"),
    [
        ("openai", {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}},
         None, False),
        ("llamacpp", {"type": "json_object", "schema": SCHEMA}, None, False),
        ("ollama", {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": False}},
         ("format", SCHEMA), False),
        ("json_object", {"type": "json_object"}, None, True),
        ("prompt", None, None, True),
    ],
)  # fmt: skip
async def test_each_profile_sends_the_schema_its_own_way(
    server: WireServer,
    profile: str,
    expected_format: dict[str, Any] | None,
    extra_field: tuple[str, Any] | None,
    instructed: bool,
) -> None:
    tier = local_tier(server, profile=profile)
    server.queue(chat_reply('{"name": "Ada", "age": 36}'))
    await OpenAIProvider(tier).complete(tier, ask(json_schema=SCHEMA, schema_name="person"))
    body = server.last().json()
    assert body.get("response_format") == expected_format
    if extra_field is not None:
        assert body[extra_field[0]] == extra_field[1]
    last_user = body["messages"][-1]["content"]
    assert ('"additionalProperties":false' in last_user) is instructed
    assert last_user.startswith("Who is Ada?")


async def test_openai_profile_goes_non_strict_for_a_schema_strict_mode_refuses(server: WireServer) -> None:
    loose = {"type": "object", "properties": {"name": {"type": "string"}, "nick": {"type": "string"}},
             "required": ["name"]}  # fmt: skip
    tier = local_tier(server, profile="openai")
    server.queue(chat_reply('{"name": "Ada"}'))
    await OpenAIProvider(tier).complete(tier, ask(json_schema=loose, schema_name="person"))
    spec = server.last().json()["response_format"]["json_schema"]
    assert spec["strict"] is False and spec["schema"] == loose


async def test_openai_profile_sends_max_completion_tokens(server: WireServer) -> None:
    tier = local_tier(server, profile="openai", max_tokens=64)
    server.queue(chat_reply("ok"))
    await OpenAIProvider(tier).complete(tier, ask())
    body = server.last().json()
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body


async def test_tools_are_offered_and_tool_calls_come_back(server: WireServer) -> None:
    tool = ToolSpec(
        "lookup", "Look a person up.", {"type": "object", "properties": {"q": {"type": "string"}}}
    )
    tier = local_tier(server, profile="llamacpp")
    server.queue(chat_reply(None, tool_calls=[("lookup", {"q": "Ada"})], finish_reason="tool_calls"))
    completion = await OpenAIProvider(tier).complete(tier, ask(tools=(tool,)))
    assert server.last().json()["tools"] == [
        {"type": "function", "function": {"name": "lookup", "description": "Look a person up.",
                                          "parameters": dict(tool.parameters)}}
    ]  # fmt: skip
    assert completion.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [("lookup", {"q": "Ada"})]
    assert completion.finish_reason == "tool_calls"


async def test_a_profile_without_tools_refuses_them_before_any_call(server: WireServer) -> None:
    tool = ToolSpec("lookup", "Look up.", {"type": "object"})
    tier = local_tier(server)  # base_url and no profile: "prompt", which declares no tools
    with pytest.raises(ConfigError, match="does not declare tool calls"):
        await OpenAIProvider(tier).complete(tier, ask(tools=(tool,)))
    assert server.requests == []


async def test_missing_usage_is_estimated_and_flagged(server: WireServer) -> None:
    tier = local_tier(server)
    server.queue(chat_reply("x" * 40, usage=None))
    completion = await OpenAIProvider(tier).complete(tier, ask())
    assert completion.usage.estimated is True
    assert completion.usage.output_tokens == 10
    assert completion.usage.input_tokens > 0


# -- streaming ---------------------------------------------------------------------------------


async def test_a_streamed_answer_is_put_together_with_its_usage(server: WireServer) -> None:
    tier = local_tier(server, profile="llamacpp", options={"stream": True})
    server.queue(stream_reply(['{"name": ', '"Ada", ', '"age": 36}'], usage=(20, 9)))
    completion = await OpenAIProvider(tier).complete(tier, ask())
    body = server.last().json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert completion.text == '{"name": "Ada", "age": 36}'
    assert (completion.usage.input_tokens, completion.usage.output_tokens, completion.usage.estimated) == (
        20, 9, False)  # fmt: skip
    assert completion.finish_reason == "stop"


async def test_a_streamed_tool_call_is_assembled_from_its_pieces(server: WireServer) -> None:
    tier = local_tier(server, profile="openai", options={"stream": True})
    server.queue(stream_reply([], tool_call=("person", ['{"name":', ' "Ada", "age"', ": 36}"])))
    completion = await OpenAIProvider(tier).complete(tier, ask())
    assert [(c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("person", {"name": "Ada", "age": 36})]  # fmt: skip
    assert completion.finish_reason == "tool_calls"


async def test_a_stream_without_usage_is_estimated_and_not_asked_for_usage(server: WireServer) -> None:
    tier = local_tier(server, profile="prompt", options={"stream": True})
    server.queue(stream_reply(["hello ", "world"], usage=None))
    completion = await OpenAIProvider(tier).complete(tier, ask())
    assert "stream_options" not in server.last().json()
    assert completion.text == "hello world" and completion.usage.estimated is True


async def test_a_stream_with_garbage_events_is_malformed(server: WireServer) -> None:
    from wire import SSE

    tier = local_tier(server, options={"stream": True})
    server.queue(Reply(events=[SSE("{not json")]))
    with pytest.raises(MalformedResponse):
        await OpenAIProvider(tier).complete(tier, ask())


async def test_an_empty_stream_is_malformed(server: WireServer) -> None:
    from wire import SSE

    tier = local_tier(server, options={"stream": True})
    server.queue(Reply(events=[SSE("[DONE]")]))
    with pytest.raises(MalformedResponse, match="without a chunk"):
        await OpenAIProvider(tier).complete(tier, ask())


# -- errors ------------------------------------------------------------------------------------


async def test_429_is_a_rate_limit_with_the_servers_retry_after(server: WireServer) -> None:
    tier = local_tier(server)
    server.queue(error_reply(429, "slow down", {"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as caught:
        await OpenAIProvider(tier).complete(tier, ask())
    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429 and caught.value.tier == "local"
    assert len(server.requests) == 1  # the SDK itself never retries


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        (500, ServerError, "server error"),
        (503, ServerError, "server error"),
        (401, AuthError, "refused the API key"),
        (403, AuthError, "refused the API key"),
        (400, BadRequestError, "context length exceeded"),
        (422, BadRequestError, "context length exceeded"),
        (404, BadRequestError, "no model 'small-model'"),
    ],
)
async def test_error_statuses_map_to_the_cascade_tree(
    server: WireServer, status: int, error_type: type[Exception], words: str
) -> None:
    tier = local_tier(server)
    server.queue(error_reply(status, "context length exceeded"))
    with pytest.raises(error_type, match=words) as caught:
        await OpenAIProvider(tier).complete(tier, ask())
    assert getattr(caught.value, "status", None) == status
    assert len(server.requests) == 1


async def test_a_plain_text_error_body_is_still_explained(server: WireServer) -> None:
    tier = local_tier(server)
    server.queue(Reply(status=502, body="upstream went away"))
    with pytest.raises(ServerError, match="upstream went away"):
        await OpenAIProvider(tier).complete(tier, ask())


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body="<html>not an API</html>"),
        Reply(body={"id": "x", "object": "chat.completion"}),
        Reply(body={"id": "x", "choices": []}),
        Reply(body='{"choices": [', headers={"Content-Type": "application/json"}),
    ],
    ids=["non-json", "no-choices", "empty-choices", "broken-json"],
)
async def test_unreadable_answers_are_malformed_responses(server: WireServer, reply: Reply) -> None:
    tier = local_tier(server)
    server.queue(reply)
    with pytest.raises(MalformedResponse):
        await OpenAIProvider(tier).complete(tier, ask())


async def test_a_slow_server_times_out(server: WireServer) -> None:
    tier = local_tier(server)
    server.queue(Reply(body=chat_completion("late"), delay_s=5))
    with pytest.raises(TimeoutError_, match="did not answer in time"):
        await OpenAIProvider(tier).complete(tier, ask(), timeout=0.2)


async def test_the_tier_timeout_option_applies_when_the_call_has_none(server: WireServer) -> None:
    tier = local_tier(server, options={"timeout": 0.2})
    server.queue(Reply(body=chat_completion("late"), delay_s=5))
    with pytest.raises(TimeoutError_):
        await OpenAIProvider(tier).complete(tier, ask())


async def test_a_closed_port_is_a_connection_failure() -> None:
    url = closed_port_url()
    tier = Tier("gone", "openai", "m", 0, 0, base_url=f"{url}/v1")
    with pytest.raises(ConnectionFailed, match=r"could not reach http://127\.0\.0\.1"):
        await OpenAIProvider(tier).complete(tier, ask())


async def test_a_dropped_connection_is_a_connection_failure(server: WireServer) -> None:
    tier = local_tier(server)
    server.queue(Reply(drop=True))
    with pytest.raises(ConnectionFailed):
        await OpenAIProvider(tier).complete(tier, ask())


# -- keys --------------------------------------------------------------------------------------


def test_the_openai_api_without_a_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="OPENAI_API_KEY") as caught:
        OpenAIProvider(Tier("gpt", "openai", "gpt-4o-mini", 0.15, 0.6))
    assert caught.value.env_var == "OPENAI_API_KEY"


def test_a_named_key_variable_that_is_unset_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    tier = Tier("groq", "openai", "llama", 0, 0, base_url="http://127.0.0.1:9/v1", api_key_env="GROQ_API_KEY")
    with pytest.raises(MissingKeyError, match="GROQ_API_KEY"):
        create_provider(tier)


async def test_a_local_server_gets_a_placeholder_never_the_openai_key(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    tier = local_tier(server)
    server.queue(chat_reply("ok"))
    await OpenAIProvider(tier).complete(tier, ask())
    assert server.last().header("Authorization") == f"Bearer {PLACEHOLDER_KEY}"


async def test_the_named_key_is_sent_and_never_logged_or_shown(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "gsk-very-secret-0123456789"
    monkeypatch.setenv("MY_SERVER_KEY", secret)
    tier = local_tier(server, api_key_env="MY_SERVER_KEY")
    server.queue(error_reply(401, f"Incorrect API key provided: {secret}"))
    with capture_logs() as logs, pytest.raises(CascadeFailed) as failed:
        await Cascade([tier]).arun("hello", JsonContract(SCHEMA))
    assert server.last().header("Authorization") == f"Bearer {secret}"
    error = failed.value.attempts[0].error or ""
    assert "refused the API key" in error and "***" in error and secret not in error
    assert secret not in str(failed.value)
    assert any(entry["event"] == "provider_error" for entry in logs) and secret not in repr(logs)


# -- the provider object -----------------------------------------------------------------------


async def test_one_client_serves_every_call_of_a_provider(server: WireServer) -> None:
    tier = local_tier(server)
    provider = OpenAIProvider(tier)
    server.queue(chat_reply("a"), chat_reply("b"))
    await provider.complete(tier, ask())
    first = provider._clients.current()
    await provider.complete(tier, ask())
    assert first is not None and provider._clients.current() is first
    await provider.aclose()


def test_a_provider_survives_a_new_event_loop_per_call(server: WireServer) -> None:
    tier = local_tier(server)
    provider = OpenAIProvider(tier)
    server.queue(chat_reply("a"), chat_reply("b"))
    texts = [asyncio.run(provider.complete(tier, ask())).text for _ in range(2)]
    assert texts == ["a", "b"]


def test_an_unknown_profile_is_a_config_error_naming_the_known_ones(server: WireServer) -> None:
    with pytest.raises(ConfigError, match=r"unknown server profile 'vllm'.*llamacpp.*ollama"):
        OpenAIProvider(local_tier(server, profile="vllm"))


# -- end to end through the engine -------------------------------------------------------------


async def test_invalid_json_on_the_cheap_tier_escalates_to_the_next(server: WireServer) -> None:
    cheap = local_tier(server, "cheap", model="tiny", profile="llamacpp")
    strong = Tier("strong", "openai", "big", 1.0, 2.0, base_url=f"{server.url}/v1", profile="llamacpp")
    server.queue(chat_reply('{"name": "Ada", "age": '), chat_reply('{"name": "Ada", "age": 36}'))
    engine = Cascade([strong, cheap])
    result = await engine.arun("Who is Ada?", JsonContract(SCHEMA, name="person"))
    assert result.accepted and result.tier == "strong" and result.value == {"name": "Ada", "age": 36}
    assert [r.json()["model"] for r in server.requests] == ["tiny", "big"]
    assert [(a.tier, a.outcome) for a in result.attempts] == [
        ("cheap", Outcome.REJECTED), ("strong", Outcome.ACCEPTED)]  # fmt: skip
    assert result.attempts[0].input_tokens == 11  # usage from the wire, not an estimate
    assert "previous attempt" in server.requests[1].json()["messages"][-1]["content"]


async def test_a_rate_limit_is_retried_on_the_same_tier(server: WireServer) -> None:
    only = local_tier(server, "only", profile="llamacpp")
    server.queue(error_reply(429, "busy", {"Retry-After": "0"}), chat_reply('{"name": "Ada", "age": 36}'))
    with structlog.testing.capture_logs():
        result = await Cascade([only]).arun("Who is Ada?", JsonContract(SCHEMA))
    assert result.accepted and result.value == {"name": "Ada", "age": 36}
    assert [(a.kind, a.outcome) for a in result.attempts] == [
        (AttemptKind.FIRST, Outcome.ERROR), (AttemptKind.RETRY, Outcome.ACCEPTED)]  # fmt: skip
    assert result.attempts[0].extra["error_type"] == "RateLimitError"
    assert len(server.requests) == 2


# -- shared plumbing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: no wait
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_milliseconds_and_dates(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert retry_after(headers) == seconds


def test_retry_after_reads_a_future_date_as_a_positive_wait() -> None:
    future = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    wait = retry_after({"Retry-After": future})
    assert wait is not None and 3000 < wait <= 3600


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"error": {"message": "bad model", "type": "x"}}, "bad model"),
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "Overloaded"),
        ({"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}, "field required"),
        ({"error": "plain string"}, "plain string"),
        ("  text\n body ", "text body"),
        (None, ""),
    ],
)
def test_error_bodies_are_explained_in_a_line(body: object, detail: str) -> None:
    assert detail in body_detail(body)
    assert "\n" not in body_detail(body)


def test_a_long_error_body_is_cut_short() -> None:
    assert len(body_detail("x" * 5000)) <= 300


async def test_the_tighter_of_tier_timeout_and_engine_deadline_applies(server: WireServer) -> None:
    tier = local_tier(server, options={"timeout": 0.2})
    server.queue(Reply(body=chat_completion("late"), delay_s=5))
    with pytest.raises(TimeoutError_):
        await OpenAIProvider(tier).complete(tier, ask(), timeout=60)
