"""Bodies in the OpenAI chat-completions wire format, as a server would send them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wire import SSE, Reply

__all__ = ["chat_chunks", "chat_completion", "chat_reply", "error_reply", "stream_reply"]


def chat_completion(
    text: str | None = "",
    *,
    model: str = "served-model",
    usage: tuple[int, int] | None = (11, 7),
    tool_calls: Sequence[tuple[str, Any]] = (),
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A ``chat.completion`` object; ``tool_calls`` are (name, arguments) pairs."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
            for i, (name, args) in enumerate(tool_calls)
        ]  # fmt: skip
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return body


def chat_reply(text: str | None = "", **kwargs: Any) -> Reply:
    return Reply(body=chat_completion(text, **kwargs))


def _chunk(model: str, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
            "choices": choices}  # fmt: skip


def chat_chunks(
    pieces: Sequence[str],
    *,
    model: str = "served-model",
    usage: tuple[int, int] | None = (11, 7),
    tool_call: tuple[str, Sequence[str]] | None = None,
) -> list[SSE]:
    """Server-sent events of a streamed completion, ending with ``[DONE]``."""
    events = [SSE(_chunk(model, {"role": "assistant", "content": ""}))]
    events += [SSE(_chunk(model, {"content": piece})) for piece in pieces]
    if tool_call is not None:
        name, arg_pieces = tool_call
        first = {"index": 0, "id": "call_0", "type": "function", "function": {"name": name, "arguments": ""}}
        events.append(SSE(_chunk(model, {"tool_calls": [first]})))
        events += [
            SSE(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            for piece in arg_pieces
        ]
    events.append(SSE(_chunk(model, {}, "tool_calls" if tool_call else "stop")))
    if usage is not None:
        tail = _chunk(model, None)
        tail["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
        events.append(SSE(tail))
    events.append(SSE("[DONE]"))
    return events


def stream_reply(pieces: Sequence[str], **kwargs: Any) -> Reply:
    return Reply(events=chat_chunks(pieces, **kwargs))


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return Reply(status=status, body=body, headers=headers or {})
