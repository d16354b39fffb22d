"""cascade: contract-checked LLM cascades that try the cheapest tier first.

>>> from cascade import Cascade, JsonContract, tier
"""

from typing import TYPE_CHECKING, Any

from cascade.engine import Cascade, CascadeResult
from cascade.errors import (
    BudgetExceeded,
    CascadeError,
    CascadeFailed,
    ConfigError,
    DeadlineExceeded,
    LedgerError,
    MissingKeyError,
    PromptTooLargeError,
    ProviderError,
    SchemaError,
    UnknownModelError,
)
from cascade.ledger import InMemoryLedger, SQLiteLedger
from cascade.pricing import PriceTable
from cascade.providers import register_provider
from cascade.tiers import Tier, tier
from cascade.types import Attempt, AttemptKind, Completion, Message, Outcome, Usage, Verdict

__all__ = [
    "Attempt",
    "AttemptKind",
    "BudgetExceeded",
    "Cascade",
    "CascadeError",
    "CascadeFailed",
    "CascadeResult",
    "Completion",
    "ConfigError",
    "DeadlineExceeded",
    "InMemoryLedger",
    "JsonContract",
    "LedgerError",
    "Message",
    "MissingKeyError",
    "Outcome",
    "PriceTable",
    "PromptTooLargeError",
    "ProviderError",
    "SQLiteLedger",
    "SchemaError",
    "Tier",
    "UnknownModelError",
    "Usage",
    "Verdict",
    "register_provider",
    "tier",
]

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cascade.contracts import JsonContract


def __getattr__(name: str) -> Any:
    # cascade.contracts builds on the validators package, which imports
    # cascade.protocols: importing it lazily lets either package be imported first.
    if name == "JsonContract":
        from cascade.contracts import JsonContract

        return JsonContract
    raise AttributeError(f"module 'cascade' has no attribute {name!r}")
