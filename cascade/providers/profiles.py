"""Capability profiles of OpenAI-compatible servers.

Servers that speak the chat-completions protocol differ in how they take
structured output: OpenAI wants ``response_format`` ``json_schema``, the
llama.cpp server a ``json_object`` with a ``schema`` (it answers
``json_schema`` with HTTP 500), Ollama a ``format`` field, and many servers
nothing at all.  A :class:`Profile` says which, and whether the server takes
tool calls, streams, and reports usage.  A tier picks one by name
(``tier.profile``); the default is ``openai`` for the OpenAI API itself and
``prompt`` (no server-side constraint) for any other ``base_url``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cascade.errors import ConfigError
from cascade.tiers import Tier
from cascade.types import JSONSchema, Message, Request

__all__ = [
    "Profile",
    "Shaped",
    "Structured",
    "StructuredOutput",
    "get_profile",
    "is_strict_compatible",
    "profile_for",
    "register_profile",
    "registered_profiles",
    "schema_instruction",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Structured:
    """How one server is asked for JSON matching a schema.

    ``params`` go to ``chat.completions.create`` as keywords, ``extra_body``
    into the JSON body as-is, and ``instruction`` (when set) is appended to
    the last user message.
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    instruction: str = ""


#: Turns a request's JSON schema and schema name into what the server needs.
StructuredOutput = Callable[[JSONSchema, str], Structured]


@dataclass(frozen=True, slots=True)
class Shaped:
    """A request shaped for one profile: messages to send and call arguments."""

    messages: tuple[Message, ...]
    params: Mapping[str, Any]
    extra_body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Profile:
    """What an OpenAI-compatible server can do, and how to ask it for JSON.

    ``usage`` means the server reports token usage, and takes
    ``stream_options.include_usage`` when streaming (without it, counts are
    estimated and flagged); ``max_tokens_param`` is the name the server takes
    the output cap under.
    """

    name: str
    structured: StructuredOutput
    tools: bool = True
    streaming: bool = True
    usage: bool = True
    max_tokens_param: str = "max_tokens"
    description: str = ""

    def shape(self, request: Request) -> Shaped:
        """The messages and create() arguments for ``request`` on this server."""
        if request.tools and not self.tools:
            raise ConfigError(
                f"profile {self.name!r} does not declare tool calls; give the tier a profile that "
                f"does ({', '.join(n for n, p in _PROFILES.items() if p.tools)})"
            )
        if request.json_schema is None:
            return Shaped(request.messages, _EMPTY, _EMPTY)
        shaped = self.structured(request.json_schema, request.schema_name)
        messages = request.messages
        if shaped.instruction:
            messages = _with_instruction(messages, shaped.instruction)
        return Shaped(messages, shaped.params, shaped.extra_body)


# -- structured-output styles -----------------------------------------------------------


def schema_instruction(schema: JSONSchema) -> str:
    """The instruction a server without native structured output gets instead."""
    return (
        "Reply with only a JSON value that matches this JSON schema, with no prose and no code fences:\n"
        + json.dumps(schema, separators=(",", ":"), sort_keys=True)
    )


def _openai_json_schema(schema: JSONSchema, name: str) -> Structured:
    strict = is_strict_compatible(schema)
    spec = {"name": name, "schema": dict(schema), "strict": strict}
    return Structured(params={"response_format": {"type": "json_schema", "json_schema": spec}})


def _llamacpp_json_object(schema: JSONSchema, name: str) -> Structured:
    return Structured(params={"response_format": {"type": "json_object", "schema": dict(schema)}})


def _ollama_format(schema: JSONSchema, name: str) -> Structured:
    # Ollama's /v1 layer turns a json_schema response_format into its native ``format`` (0.5+);
    # the body's own ``format`` serves builds and proxies that read the native field.
    spec = {"name": name, "schema": dict(schema), "strict": False}
    return Structured(
        params={"response_format": {"type": "json_schema", "json_schema": spec}},
        extra_body={"format": dict(schema)},
    )


def _json_mode(schema: JSONSchema, name: str) -> Structured:
    # JSON mode does not see the schema, and OpenAI-style servers insist the word JSON is in the prompt.
    return Structured(
        params={"response_format": {"type": "json_object"}}, instruction=schema_instruction(schema)
    )


def _prompt_only(schema: JSONSchema, name: str) -> Structured:
    return Structured(instruction=schema_instruction(schema))


def _plain(schema: JSONSchema, name: str) -> Structured:
    # Nothing on the wire and nothing added: the prompt itself shows the format.  Small local
    # models (SmolLM2-135M) echo an appended JSON schema back instead of answering.
    return Structured()


def _with_instruction(messages: tuple[Message, ...], instruction: str) -> tuple[Message, ...]:
    # Appended to the last user turn rather than sent as a system message: some local chat
    # templates reject a system role, and the instruction is then the last thing the model reads.
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            changed = Message("user", f"{messages[i].content}\n\n{instruction}")
            return (*messages[:i], changed, *messages[i + 1 :])
    return (*messages, Message("user", instruction))


# -- OpenAI strict mode -----------------------------------------------------------------

#: Keywords OpenAI's strict structured outputs refuse; a schema using any of them goes non-strict.
_STRICT_UNSUPPORTED = frozenset(
    {"allOf", "oneOf", "not", "if", "then", "else", "patternProperties", "dependentRequired",
     "dependentSchemas", "unevaluatedProperties", "propertyNames"}
)  # fmt: skip


def is_strict_compatible(schema: JSONSchema) -> bool:
    """True when OpenAI's ``strict`` mode accepts ``schema`` unchanged.

    Strict mode needs an object at the root, ``additionalProperties: false``
    and every property listed in ``required`` on every object; anything else
    is sent with ``strict: false`` rather than silently rewritten.
    """
    if schema.get("type") != "object":
        return False
    return all(_strict_node(node) for node in _subschemas(schema))


def _strict_node(node: Mapping[str, Any]) -> bool:
    if _STRICT_UNSUPPORTED & node.keys():
        return False
    is_object = node.get("type") == "object" or "properties" in node
    if not is_object:
        return True
    properties = node.get("properties") or {}
    return node.get("additionalProperties") is False and set(node.get("required") or ()) == set(properties)


def _subschemas(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    children: list[Any] = []
    for key in ("properties", "$defs", "definitions"):
        children.extend((node.get(key) or {}).values())
    for key in ("items", "additionalProperties"):
        children.append(node.get(key))
    for key in ("anyOf", "prefixItems"):
        children.extend(node.get(key) or ())
    for child in children:
        if isinstance(child, Mapping):
            yield from _subschemas(child)


# -- the registry -------------------------------------------------------------------------

_PROFILES: dict[str, Profile] = {}


def register_profile(profile: Profile) -> None:
    """Make ``profile`` selectable by its name (``Tier(profile=...)``); replaces one of that name."""
    _PROFILES[profile.name] = profile


def registered_profiles() -> list[str]:
    return sorted(_PROFILES)


def get_profile(name: str) -> Profile:
    try:
        return _PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown server profile {name!r}; known profiles: {', '.join(registered_profiles())}"
        ) from None


def profile_for(tier: Tier) -> Profile:
    """The tier's profile: named by ``tier.profile``, else by whether it has a ``base_url``."""
    if tier.profile:
        return get_profile(tier.profile)
    return get_profile("openai" if tier.base_url is None else "prompt")


for _profile in (
    Profile(
        "openai", _openai_json_schema, max_tokens_param="max_completion_tokens",
        description="OpenAI API: response_format json_schema, strict when the schema allows it",
    ),
    Profile(
        "llamacpp", _llamacpp_json_object,
        description="llama.cpp server / llama-cpp-python: response_format json_object with a schema (grammar)",
    ),
    Profile(
        "ollama", _ollama_format,
        description="Ollama: json_schema response_format (non-strict) and the schema in the body's format field",
    ),
    Profile(
        "json_object", _json_mode,
        description="servers with plain JSON mode (Groq, Together, ...): json_object plus the schema in the prompt",
    ),
    Profile(
        "prompt", _prompt_only, tools=False, usage=False,
        description="any chat-completions server: no constraint, the schema goes in the prompt",
    ),
    Profile(
        "plain", _plain, tools=False, usage=True,
        description="any chat-completions server: no constraint and no added instruction",
    ),
):  # fmt: skip
    register_profile(_profile)
