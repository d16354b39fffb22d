"""Providers, looked up by name in a registry.

A provider factory takes a :class:`~cascade.tiers.Tier` and returns a
:class:`~cascade.protocols.Provider`.  Built-in names are registered lazily so
that importing cascade never imports an SDK it does not use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from cascade.errors import ConfigError
from cascade.protocols import Provider
from cascade.tiers import Tier

__all__ = ["ProviderFactory", "create_provider", "register_provider", "registered_providers"]

ProviderFactory = Callable[[Tier], Provider]

_FACTORIES: dict[str, ProviderFactory] = {}
#: name -> "module:attribute" of a factory, imported on first use.
_BUILTINS: dict[str, str] = {
    "openai": "cascade.providers.openai:OpenAIProvider",
    "anthropic": "cascade.providers.anthropic:AnthropicProvider",
}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``factory`` serve every tier whose ``provider`` is ``name``."""
    _FACTORIES[name] = factory


def registered_providers() -> list[str]:
    return sorted({*_FACTORIES, *_BUILTINS})


def create_provider(tier: Tier) -> Provider:
    factory = _FACTORIES.get(tier.provider)
    if factory is None and tier.provider in _BUILTINS:
        module_name, _, attr = _BUILTINS[tier.provider].partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        _FACTORIES[tier.provider] = factory
    if factory is None:
        raise ConfigError(
            f"tier {tier.name!r} names unknown provider {tier.provider!r}; "
            f"known: {', '.join(registered_providers())}"
        )
    return factory(tier)
