"""The Anthropic provider: the Messages API through the official SDK.

Structured output is a forced tool call: the request's schema becomes the
input schema of a tool named after it, and ``tool_choice`` makes the model
call it, so the answer arrives as a :class:`~cascade.types.ToolCall` whose
arguments a :class:`~cascade.JsonContract` parses.  The SDK never retries
(retries are policy) and its errors are translated in :func:`_translate` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anthropic
from anthropic import AsyncAnthropic
from anthropic.types import Message as AnthropicMessage
from anthropic.types import TextBlock, ToolUseBlock

from cascade.errors import MalformedResponse, ProviderError
from cascade.providers._sdk import PerLoop, ProviderOptions, SdkErrors, read_key, translate
from cascade.tiers import Tier
from cascade.tokens import estimate_tokens
from cascade.types import Completion, JSONSchema, Request, ToolCall, Usage

__all__ = ["AnthropicProvider"]

NAME = "anthropic"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
#: A tool's input must be an object: any other schema is wrapped under this key and unwrapped after.
WRAP_KEY = "value"
_ANSWER_TOOL_DESCRIPTION = "Give your answer by calling this tool: its input is the answer."

_ERRORS = SdkErrors.of(anthropic, anthropic.AnthropicError)


class AnthropicProvider:
    """Calls ``messages.create`` through the official SDK, one client per provider."""

    def __init__(self, tier: Tier) -> None:
        self.tier = tier
        self._key = read_key(NAME, tier.api_key_env or DEFAULT_KEY_ENV, required=True)
        self._clients = PerLoop(self._new_client)

    def _new_client(self) -> AsyncAnthropic:
        timeout = ProviderOptions.of(self.tier).timeout
        return AsyncAnthropic(
            api_key=self._key,
            base_url=self.tier.base_url,
            max_retries=0,
            timeout=timeout if timeout is not None else anthropic.NOT_GIVEN,
        )

    async def complete(self, tier: Tier, request: Request, *, timeout: float | None = None) -> Completion:
        options = ProviderOptions.of(tier)
        params = _params(tier, request, options)
        call_timeout = options.call_timeout(timeout)
        if call_timeout is not None:
            params["timeout"] = call_timeout
        client = self._clients.get()
        try:
            if options.stream:
                message = await _streamed(client, params, tier)
            else:
                message = await client.messages.create(**params)
        except _ERRORS.caught as exc:
            raise _translate(exc, tier, self._key) from None
        return _completion(message, tier, request)

    async def aclose(self) -> None:
        """Close the HTTP pool of the current client."""
        await self._clients.aclose()


def _translate(exc: Exception, tier: Tier, key: str | None) -> ProviderError:
    """The one place Anthropic SDK errors become cascade errors."""
    return translate(exc, _ERRORS, provider=NAME, tier=tier, secret=key)


def _params(tier: Tier, request: Request, options: ProviderOptions) -> dict[str, Any]:
    # The Messages API takes the system prompt apart from the turns.
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    params: dict[str, Any] = {
        "model": tier.model,
        "max_tokens": request.max_tokens or tier.output_allowance(),
        "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
    }
    if system:
        params["system"] = system
    tools = [{"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
             for t in request.tools]  # fmt: skip
    if request.json_schema is not None:
        answer = {"name": request.schema_name, "description": _ANSWER_TOOL_DESCRIPTION,
                  "input_schema": _input_schema(request.json_schema)}  # fmt: skip
        tools.insert(0, answer)
        params["tool_choice"] = {"type": "tool", "name": request.schema_name}
    if tools:
        params["tools"] = tools
    # The SDK no longer names temperature as a parameter; the API still takes it in the body.
    extra_body = dict(options.extra_body)
    temperature = request.temperature if request.temperature is not None else tier.temperature
    if temperature is not None:
        extra_body["temperature"] = temperature
    if extra_body:
        params["extra_body"] = extra_body
    return params


def _wraps(schema: JSONSchema) -> bool:
    return schema.get("type") != "object"


def _input_schema(schema: JSONSchema) -> dict[str, Any]:
    if _wraps(schema):
        return {"type": "object", "properties": {WRAP_KEY: dict(schema)}, "required": [WRAP_KEY]}
    return dict(schema)


async def _streamed(client: AsyncAnthropic, params: Mapping[str, Any], tier: Tier) -> AnthropicMessage:
    """Read a streamed answer to the end; the SDK puts the message together."""
    async with client.messages.stream(**params) as stream:
        started = False
        async for event in stream:
            started = started or event.type == "message_start"
        if not started:
            raise MalformedResponse("the stream never started a message", provider=NAME, tier=tier.name)
        return await stream.get_final_message()


def _completion(message: object, tier: Tier, request: Request) -> Completion:
    # The SDK builds responses without validation, so "required" fields may be missing.
    if not isinstance(message, AnthropicMessage) or message.content is None:
        shown = str(message)[:80]
        raise MalformedResponse(
            f"the server's answer is not a message: {shown!r}", provider=NAME, tier=tier.name
        )
    texts = [block.text for block in message.content if isinstance(block, TextBlock)]
    calls = [_tool_call(block, request) for block in message.content if isinstance(block, ToolUseBlock)]
    # The forced answer tool goes first: a JSON contract reads the first tool call.
    if request.json_schema is not None:
        calls.sort(key=lambda call: call.name != request.schema_name)
    text = "".join(texts)
    usage = _usage(message.usage)
    if usage is None:
        said = text + "".join(c.arguments for c in calls)
        usage = Usage(estimate_tokens(request.prompt_text), estimate_tokens(said), estimated=True)
    return Completion(
        text=text, usage=usage, model=message.model or tier.model, tool_calls=tuple(calls),
        finish_reason=message.stop_reason,
    )  # fmt: skip


def _tool_call(block: ToolUseBlock, request: Request) -> ToolCall:
    value: object = block.input
    if request.json_schema is not None and block.name == request.schema_name and _wraps(request.json_schema):
        value = block.input.get(WRAP_KEY) if isinstance(block.input, Mapping) else None
    return ToolCall(block.name, json.dumps(value))


def _usage(usage: object) -> Usage | None:
    input_tokens = getattr(usage, "input_tokens", None)
    output_tokens = getattr(usage, "output_tokens", None)
    if not isinstance(input_tokens, int) or not isinstance(output_tokens, int):
        return None
    # Cached prompt tokens are reported apart from input_tokens; counting them at the full input
    # price overstates the cost of a cache hit rather than hiding tokens that were sent.
    cached = (getattr(usage, "cache_creation_input_tokens", None) or 0) + (
        getattr(usage, "cache_read_input_tokens", None) or 0
    )
    return Usage(input_tokens + cached, output_tokens)
