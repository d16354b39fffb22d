"""Bodies in the Anthropic Messages wire format, as a server would send them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wire import SSE, Reply

__all__ = ["error_event", "error_reply", "message", "message_events", "message_reply", "stream_reply"]


def message(
    text: str | None = None,
    *,
    tool_uses: Sequence[tuple[str, Any]] = (),
    model: str = "claude-served",
    usage: dict[str, int] | None = None,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """A ``message`` object; ``tool_uses`` are (name, input) pairs."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text is not None else []
    content += [{"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": value}
                for i, (name, value) in enumerate(tool_uses)]  # fmt: skip
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_uses else "end_turn"),
        "stop_sequence": None,
        "usage": usage if usage is not None else {"input_tokens": 21, "output_tokens": 8},
    }


def message_reply(text: str | None = None, **kwargs: Any) -> Reply:
    return Reply(body=message(text, **kwargs))


def message_events(
    pieces: Sequence[str] = (),
    *,
    tool_use: tuple[str, Sequence[str]] | None = None,
    model: str = "claude-served",
    usage: tuple[int, int] = (21, 8),
) -> list[SSE]:
    """The server-sent events of a streamed message: text pieces, then an optional tool call."""
    start = message(model=model, usage={"input_tokens": usage[0], "output_tokens": 1})
    start["content"], start["stop_reason"] = [], None
    events = [SSE({"type": "message_start", "message": start}, "message_start")]
    index = 0
    if pieces:
        events.append(_block_start(index, {"type": "text", "text": ""}))
        events += [_delta(index, {"type": "text_delta", "text": p}) for p in pieces]
        events.append(SSE({"type": "content_block_stop", "index": index}, "content_block_stop"))
        index += 1
    if tool_use is not None:
        name, json_pieces = tool_use
        events.append(_block_start(index, {"type": "tool_use", "id": "toolu_0", "name": name, "input": {}}))
        events += [_delta(index, {"type": "input_json_delta", "partial_json": p}) for p in json_pieces]
        events.append(SSE({"type": "content_block_stop", "index": index}, "content_block_stop"))
    stop = "tool_use" if tool_use else "end_turn"
    events.append(SSE({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                       "usage": {"output_tokens": usage[1]}}, "message_delta"))  # fmt: skip
    events.append(SSE({"type": "message_stop"}, "message_stop"))
    return events


def _block_start(index: int, block: dict[str, Any]) -> SSE:
    return SSE({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start")


def _delta(index: int, delta: dict[str, Any]) -> SSE:
    return SSE({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")


def stream_reply(pieces: Sequence[str] = (), **kwargs: Any) -> Reply:
    return Reply(events=message_events(pieces, **kwargs))


def error_reply(status: int, kind: str, text: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body={"type": "error", "error": {"type": kind, "message": text}},
                 headers=headers or {})  # fmt: skip


def error_event(kind: str, text: str) -> SSE:
    return SSE({"type": "error", "error": {"type": kind, "message": text}}, "error")
