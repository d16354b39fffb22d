"""The OpenAI provider: the OpenAI API and every server that speaks its chat-completions protocol.

One provider serves OpenAI itself, vLLM, Ollama, the llama.cpp server,
Groq, Together and OpenRouter: ``tier.base_url`` points it at the server and
``tier.profile`` (see :mod:`cascade.providers.profiles`) says how that
server takes structured output.  The SDK never retries (retries are policy)
and its errors are translated in :func:`_translate` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from cascade.errors import ConfigError, MalformedResponse, ProviderError
from cascade.providers._sdk import PerLoop, ProviderOptions, SdkErrors, read_key, translate
from cascade.providers.profiles import Profile, Shaped, profile_for
from cascade.tiers import Tier
from cascade.tokens import estimate_tokens
from cascade.types import Completion, Request, ToolCall, Usage

__all__ = ["OpenAIProvider"]

NAME = "openai"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
#: Sent to servers that need no key: the SDK refuses to build a client without one.
PLACEHOLDER_KEY = "not-needed"

_ERRORS = SdkErrors.of(openai, openai.OpenAIError)


class OpenAIProvider:
    """Calls ``chat.completions`` through the official SDK, one client per provider.

    >>> from cascade import tier
    >>> local = tier("qwen2.5-0.5b", base_url="http://127.0.0.1:8080/v1", profile="llamacpp",
    ...              input_per_mtok=0, output_per_mtok=0)
    >>> OpenAIProvider(local).profile.name
    'llamacpp'
    """

    def __init__(self, tier: Tier) -> None:
        self.tier = tier
        self.profile = profile_for(tier)
        self._key = _api_key(tier)
        self._clients = PerLoop(self._new_client)

    def _new_client(self) -> AsyncOpenAI:
        timeout = ProviderOptions.of(self.tier).timeout
        return AsyncOpenAI(
            api_key=self._key or PLACEHOLDER_KEY,
            base_url=self.tier.base_url,
            max_retries=0,
            timeout=timeout if timeout is not None else openai.NOT_GIVEN,
        )

    async def complete(self, tier: Tier, request: Request, *, timeout: float | None = None) -> Completion:
        profile = profile_for(tier)
        options = ProviderOptions.of(tier)
        shaped = profile.shape(request)
        params = _params(tier, request, profile, shaped, options)
        call_timeout = options.call_timeout(timeout)
        if call_timeout is not None:
            params["timeout"] = call_timeout
        if options.stream and not profile.streaming:
            raise ConfigError(f"tier {tier.name!r}: profile {profile.name!r} does not stream")
        client = self._clients.get()
        try:
            if options.stream:
                parts = await _streamed(client, params, profile, tier)
            else:
                parts = _parts_of(await client.chat.completions.create(**params), tier)
        except _ERRORS.caught as exc:
            raise _translate(exc, tier, self._key) from None
        return parts.completion(tier, shaped)

    async def aclose(self) -> None:
        """Close the HTTP pool of the current client."""
        await self._clients.aclose()


def _translate(exc: Exception, tier: Tier, key: str | None) -> ProviderError:
    """The one place OpenAI SDK errors become cascade errors."""
    return translate(exc, _ERRORS, provider=NAME, tier=tier, secret=key)


def _api_key(tier: Tier) -> str | None:
    # A base_url server only ever gets the key its tier names: OPENAI_API_KEY must not leak to
    # another host, and local servers need no key at all.
    if tier.base_url is not None:
        return read_key(NAME, tier.api_key_env, required=True) if tier.api_key_env else None
    return read_key(NAME, tier.api_key_env or DEFAULT_KEY_ENV, required=True)


def _params(
    tier: Tier, request: Request, profile: Profile, shaped: Shaped, options: ProviderOptions
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": tier.model,
        "messages": [{"role": m.role, "content": m.content} for m in shaped.messages],
        **shaped.params,
    }
    if request.tools:
        params["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": dict(t.parameters)}}
            for t in request.tools
        ]  # fmt: skip
    max_tokens = request.max_tokens or tier.max_tokens
    if max_tokens:
        params[profile.max_tokens_param] = max_tokens
    temperature = request.temperature if request.temperature is not None else tier.temperature
    if temperature is not None:
        params["temperature"] = temperature
    extra_body = {**options.extra_body, **shaped.extra_body}
    if extra_body:
        params["extra_body"] = extra_body
    return params


@dataclass(frozen=True, slots=True)
class _Parts:
    """What a response said, before usage is settled."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    model: str | None
    usage: tuple[int, int] | None

    def completion(self, tier: Tier, shaped: Shaped) -> Completion:
        if self.usage is not None:
            usage = Usage(*self.usage)
        else:
            said = self.text + "".join(c.name + c.arguments for c in self.tool_calls)
            prompt = "\n".join(m.content for m in shaped.messages)
            usage = Usage(estimate_tokens(prompt), estimate_tokens(said), estimated=True)
        return Completion(
            text=self.text, usage=usage, model=self.model or tier.model, tool_calls=self.tool_calls,
            finish_reason=self.finish_reason,
        )  # fmt: skip


def _usage(usage: object) -> tuple[int, int] | None:
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    completion_tokens = getattr(usage, "completion_tokens", None)
    if isinstance(prompt_tokens, int) and isinstance(completion_tokens, int):
        return prompt_tokens, completion_tokens
    return None


def _parts_of(response: object, tier: Tier) -> _Parts:
    if not isinstance(response, ChatCompletion):
        shown = str(response)[:80]
        raise MalformedResponse(f"the server's answer is not a chat completion: {shown!r}", provider=NAME,
                                tier=tier.name)  # fmt: skip
    # The SDK builds responses without validation, so "required" fields may be missing.
    message = response.choices[0].message if response.choices else None
    if message is None:
        raise MalformedResponse("the server's answer has no choices", provider=NAME, tier=tier.name)
    calls = tuple(
        ToolCall(call.function.name, call.function.arguments or "")
        for call in message.tool_calls or ()
        if call.type == "function"
    )
    return _Parts(message.content or "", calls, response.choices[0].finish_reason, response.model,
                  _usage(response.usage))  # fmt: skip


async def _streamed(client: AsyncOpenAI, params: Mapping[str, Any], profile: Profile, tier: Tier) -> _Parts:
    """Read a streamed answer to the end and put it together."""
    extra: dict[str, Any] = {"stream": True}
    if profile.usage:
        extra["stream_options"] = {"include_usage": True}
    stream = await client.chat.completions.create(**params, **extra)
    acc = _Accumulator()
    async with stream:
        async for chunk in stream:
            acc.add(chunk)
    if not acc.chunks:
        raise MalformedResponse("the stream ended without a chunk", provider=NAME, tier=tier.name)
    return acc.parts()


class _Accumulator:
    def __init__(self) -> None:
        self.chunks = 0
        self.text: list[str] = []
        self.calls: dict[int, list[str]] = {}
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage: tuple[int, int] | None = None

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.chunks += 1
        self.model = chunk.model or self.model
        self.usage = _usage(chunk.usage) or self.usage
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            self.finish_reason = choice.finish_reason or self.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            if delta.content:
                self.text.append(delta.content)
            for call in delta.tool_calls or ():
                slot = self.calls.setdefault(call.index, ["", ""])
                if call.function is not None:
                    slot[0] = slot[0] or call.function.name or ""
                    slot[1] += call.function.arguments or ""

    def parts(self) -> _Parts:
        calls = tuple(ToolCall(name, arguments) for _, (name, arguments) in sorted(self.calls.items()))
        return _Parts("".join(self.text), calls, self.finish_reason, self.model, self.usage)
