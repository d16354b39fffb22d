"""A loopback HTTP server that speaks a provider's wire format from a script.

Tests queue :class:`Reply` objects (a JSON body, a raw body, a stream of
server-sent events, an error status, a delay, a dropped connection) and read
back every request the SDK sent.  The server binds 127.0.0.1 on a free port
and runs on a daemon thread; nothing in the SDKs is patched.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["SSE", "Recorded", "Reply", "WireServer", "closed_port_url", "wire_server"]


@dataclass(frozen=True)
class SSE:
    """One server-sent event: ``data`` is JSON-encoded unless it is already a string."""

    data: Any
    event: str | None = None

    def encode(self) -> bytes:
        data = self.data if isinstance(self.data, str) else json.dumps(self.data)
        head = f"event: {self.event}\n" if self.event else ""
        return f"{head}data: {data}\n\n".encode()


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request.

    ``body`` may be a JSON-able value, ``str`` or ``bytes``; ``events`` makes
    the reply a ``text/event-stream``; ``delay_s`` waits before answering;
    ``drop`` closes the connection without any answer.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    events: Sequence[SSE] | None = None
    delay_s: float = 0.0
    drop: bool = False

    def payload(self) -> tuple[bytes, str]:
        if self.events is not None:
            return b"".join(e.encode() for e in self.events), "text/event-stream"
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain"
        return json.dumps(self.body).encode(), "application/json"


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        return lowered.get(name.lower())


class WireServer:
    """Answers requests from a queue of replies and records each request."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # A short poll keeps shutdown quick: serve_forever checks for it once per poll.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="wire-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    def last(self) -> Recorded:
        assert self.requests, "the server received no request"
        return self.requests[-1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next_reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if self._replies:
                return self._replies.popleft()
        return Reply(status=599, body={"error": {"message": "the wire script has no reply left"}})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                recorded = Recorded("POST", self.path, dict(self.headers.items()), body)
                server._answer(self, server._next_reply(recorded))

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet; requests are recorded instead

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.delay_s and self._stopping.wait(reply.delay_s):
            return
        if reply.drop:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        payload, content_type = reply.payload()
        try:
            handler.send_response(reply.status)
            if not any(name.lower() == "content-type" for name in reply.headers):
                handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing left to say


@contextmanager
def wire_server() -> Iterator[WireServer]:
    """A started server, stopped on exit."""
    server = WireServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
