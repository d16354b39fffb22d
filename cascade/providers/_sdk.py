"""Pieces shared by the SDK-backed providers: status mapping, keys, options, clients.

Each provider still translates its SDK's exceptions in one function of its
own (``_translate``); this module only holds what that function and the
providers' setup have in common.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Generic, Protocol, TypeVar

from cascade.errors import (
    AuthError,
    BadRequestError,
    ConnectionFailed,
    MalformedResponse,
    MissingKeyError,
    ProviderError,
    RateLimitError,
    ServerError,
    TimeoutError_,
)
from cascade.tiers import Tier

__all__ = [
    "PerLoop",
    "ProviderOptions",
    "SdkErrors",
    "body_detail",
    "error_for_status",
    "read_key",
    "redact",
    "retry_after",
    "translate",
]


class _Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)

#: Tier options the provider itself reads; every other option goes into the request body as-is.
_RESERVED_OPTIONS = frozenset({"stream", "timeout"})
_DETAIL_LIMIT = 300
#: Error types a server may send as an event inside a 200 stream (Anthropic's names), as statuses.
_IN_STREAM_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    """A tier's ``options`` split into what the provider reads and what the server gets."""

    stream: bool
    timeout: float | None
    extra_body: Mapping[str, Any]

    @classmethod
    def of(cls, tier: Tier) -> ProviderOptions:
        options = tier.options
        timeout = options.get("timeout")
        extra = {k: v for k, v in options.items() if k not in _RESERVED_OPTIONS}
        return cls(bool(options.get("stream", False)), float(timeout) if timeout else None, extra)

    def call_timeout(self, deadline: float | None) -> float | None:
        """The tighter of the tier's timeout and what is left of the engine's deadline."""
        given = [t for t in (self.timeout, deadline) if t is not None]
        return min(given) if given else None


def read_key(provider: str, env_var: str, *, required: bool) -> str | None:
    """The key in ``env_var``; a missing required key raises :class:`MissingKeyError` naming it."""
    key = os.environ.get(env_var, "").strip()
    if not key and required:
        raise MissingKeyError(provider, env_var)
    return key or None


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked: some servers echo the key they rejected."""
    if not secret or len(secret) < 4:
        return text
    return text.replace(secret, "***")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` seconds or date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def body_detail(body: object) -> str:
    """The server's own explanation from an error body, short."""
    while isinstance(body, Mapping) and isinstance(body.get("error"), Mapping | str):
        body = body["error"]
    if isinstance(body, Mapping):
        found = body.get("message") or body.get("detail")
        body = found if found is not None else body
    text = body if isinstance(body, str) else "" if body is None else json.dumps(body, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


@dataclass(frozen=True, slots=True)
class SdkErrors:
    """An SDK's exception classes, by what they mean (the OpenAI and Anthropic SDKs share a shape)."""

    #: Every error the SDK raises on purpose.
    base: type[Exception]
    #: An HTTP error status; has ``status_code``, ``body`` and ``response.headers``.
    status: type[Exception]
    #: The server could not be reached.
    connection: type[Exception]
    #: The call timed out (a subclass of ``connection`` in both SDKs, so tested first).
    timeout: type[Exception]

    @classmethod
    def of(cls, sdk: ModuleType, base: type[Exception]) -> SdkErrors:
        """The classes of an SDK module that names them as OpenAI's and Anthropic's do."""
        return cls(base, sdk.APIStatusError, sdk.APIConnectionError, sdk.APITimeoutError)

    @property
    def caught(self) -> tuple[type[Exception], ...]:
        # ValueError: the SDKs let a JSON decode error of a 200 body through untranslated.
        return (self.base, ValueError)


def translate(
    exc: Exception, errors: SdkErrors, *, provider: str, tier: Tier, secret: str | None
) -> ProviderError:
    """The cascade error for an exception an SDK raised."""
    where: dict[str, Any] = {"provider": provider, "tier": tier.name}
    if isinstance(exc, errors.status):
        status: int = getattr(exc, "status_code", 0)
        body = getattr(exc, "body", None)
        if status < 400:  # an error event inside a 200 stream: its type says what went wrong
            status = _IN_STREAM_STATUS.get(_error_type(body), 502)
        headers: Mapping[str, str] = getattr(getattr(exc, "response", None), "headers", {})
        return error_for_status(status, body, headers, provider=provider, tier=tier,
                                secret=secret)  # fmt: skip
    target = tier.base_url or f"the {provider} API"
    if isinstance(exc, errors.timeout):
        return TimeoutError_(f"{target} did not answer in time", **where)
    if isinstance(exc, errors.connection):
        cause = exc.__cause__ or exc
        return ConnectionFailed(redact(f"could not reach {target}: {cause}", secret), **where)
    return MalformedResponse(
        redact(f"the server's answer could not be read: {type(exc).__name__}: {exc}", secret), **where
    )


def _error_type(body: object) -> str:
    while isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    kind = body.get("type") if isinstance(body, Mapping) else None
    return kind if isinstance(kind, str) else ""


def error_for_status(
    status: int, body: object, headers: Mapping[str, str], *, provider: str, tier: Tier, secret: str | None
) -> ProviderError:
    """The cascade error for an HTTP error status."""
    detail = redact(body_detail(body), secret) or "no detail"
    where: dict[str, Any] = {"provider": provider, "tier": tier.name, "status": status}
    if status == 429:
        return RateLimitError(f"rate limited: {detail}", retry_after=retry_after(headers), **where)
    if status == 408:
        return TimeoutError_(f"the server timed out: {detail}", **where)
    if status >= 500:
        return ServerError(f"server error: {detail}", **where)
    if status in (401, 403):
        return AuthError(f"the server refused the API key: {detail}", **where)
    if status == 404:
        where_to = f" at {tier.base_url}" if tier.base_url else ""
        return BadRequestError(
            f"not found: the server{where_to} has no model {tier.model!r} or the base_url is wrong: {detail}",
            **where,
        )
    return BadRequestError(f"the server rejected the request: {detail}", **where)


class PerLoop(Generic[C]):
    """One SDK client per event loop: an HTTP pool must not outlive the loop it was made on.

    The engine's sync facade keeps one loop for its life, so in practice a
    provider builds one client; code that calls ``asyncio.run`` repeatedly
    gets a fresh client per loop instead of a pool bound to a closed loop.
    """

    def __init__(self, factory: Callable[[], C]) -> None:
        self._factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._value: C | None = None

    def get(self) -> C:
        loop = asyncio.get_running_loop()
        if self._value is None or self._loop is not loop:
            self._value = self._factory()
            self._loop = loop
        return self._value

    def current(self) -> C | None:
        return self._value

    async def aclose(self) -> None:
        """Close the current client's HTTP pool (call it on the loop that uses the client)."""
        if self._value is not None:
            await self._value.close()
            self._value = self._loop = None
