"""The one exception tree of cascade.

Every error the engine raises on purpose is a ``CascadeError``; SDK and
transport errors are translated into this tree in exactly one place per
provider (``_translate`` in each provider module)::

    CascadeError
    ├── ConfigError                 bad tiers, unknown provider, unreadable price file
    │   ├── SchemaError             a JSON schema that is not a valid schema
    │   ├── UnknownModelError       a model with no price and no explicit price
    │   └── MissingKeyError         .env_var names the variable to set
    ├── ProviderError               .provider, .tier, .status
    │   ├── TransientError          worth retrying on the same tier
    │   │   ├── RateLimitError      .retry_after (seconds or None)
    │   │   ├── ServerError         5xx
    │   │   ├── TimeoutError_       the call timed out
    │   │   └── ConnectionFailed    could not reach the server
    │   └── PermanentError          retrying the same call will not help
    │       ├── AuthError           401/403
    │       ├── BadRequestError     400/404/422, unknown model on the server
    │       └── MalformedResponse   the server answered something we cannot read
    ├── ReplayMissError             a replay provider has no recording for the item
    ├── LedgerError                 the ledger file cannot be opened, migrated, read or written
    ├── PromptTooLargeError         no tier's context window holds the prompt
    └── CascadeFailed               every tier tried, none accepted; .attempts
        ├── BudgetExceeded          the next call could cross the $ cap
        └── DeadlineExceeded        the cascade ran out of time
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cascade.types import Attempt

__all__ = [
    "AuthError",
    "BadRequestError",
    "BudgetExceeded",
    "CascadeError",
    "CascadeFailed",
    "ConfigError",
    "ConnectionFailed",
    "DeadlineExceeded",
    "LedgerError",
    "MalformedResponse",
    "MissingKeyError",
    "PermanentError",
    "PromptTooLargeError",
    "ProviderError",
    "RateLimitError",
    "ReplayMissError",
    "SchemaError",
    "ServerError",
    "TimeoutError_",
    "TransientError",
    "UnknownModelError",
]


class CascadeError(Exception):
    """Base of every error cascade raises on purpose."""


class ConfigError(CascadeError):
    """The configuration cannot work: fix it before calling again."""


class SchemaError(ConfigError):
    """A JSON schema (or a pydantic model's schema) is not valid."""


class UnknownModelError(ConfigError):
    def __init__(self, model: str, known: Sequence[str] = ()) -> None:
        self.model = model
        hint = f"; known models: {', '.join(sorted(known)[:12])}" if known else ""
        super().__init__(
            f"no price for model {model!r}: add it to a price file or give the tier "
            f"input_per_mtok/output_per_mtok{hint}"
        )


class MissingKeyError(ConfigError):
    def __init__(self, provider: str, env_var: str) -> None:
        self.provider = provider
        self.env_var = env_var
        super().__init__(f"provider {provider!r} needs an API key: set the {env_var} environment variable")


class ProviderError(CascadeError):
    """A provider call failed; ``status`` is the HTTP status when there was one."""

    def __init__(
        self, message: str, *, provider: str = "", tier: str = "", status: int | None = None
    ) -> None:
        self.provider = provider
        self.tier = tier
        self.status = status
        where = f"[{provider}{'/' + tier if tier else ''}] " if provider else ""
        code = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{where}{message}{code}")


class TransientError(ProviderError):
    """Worth retrying on the same tier after a backoff."""


class RateLimitError(TransientError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ServerError(TransientError):
    pass


class TimeoutError_(TransientError):  # noqa: N801 - the trailing _ keeps it apart from the builtin
    pass


class ConnectionFailed(TransientError):
    pass


class PermanentError(ProviderError):
    """Retrying the same call will not help; the engine fails over or raises."""


class AuthError(PermanentError):
    pass


class BadRequestError(PermanentError):
    pass


class MalformedResponse(PermanentError):
    pass


class ReplayMissError(CascadeError):
    def __init__(self, model: str, item_id: str | None) -> None:
        self.model = model
        self.item_id = item_id
        super().__init__(f"replay has no recorded output of {model!r} for item {item_id!r}")


class PromptTooLargeError(CascadeError):
    def __init__(self, prompt_tokens: int, windows: dict[str, int]) -> None:
        self.prompt_tokens = prompt_tokens
        self.windows = windows
        listed = ", ".join(f"{k}={v}" for k, v in windows.items())
        super().__init__(
            f"the prompt needs about {prompt_tokens} tokens plus output, "
            f"more than any tier's context window holds ({listed})"
        )


class CascadeFailed(CascadeError):
    """No tier produced an accepted output; ``attempts`` holds every call made."""

    def __init__(self, message: str, attempts: Sequence[Attempt] = ()) -> None:
        self.attempts = tuple(attempts)
        super().__init__(message)


class BudgetExceeded(CascadeFailed):
    pass


class DeadlineExceeded(CascadeFailed):
    pass


class LedgerError(CascadeError):
    """The ledger file cannot be opened, migrated, read or written."""
