"""Framing and a plain-data codec for the sandbox's pipes (stdlib only).

Values cross between the judge and the candidate process as tagged JSON:
only plain data (numbers, strings, bytes, containers of them) survives the
trip, so an object the candidate built can never reach a comparison the
judge makes.  Anything else arrives as an opaque marker.

Every decoder here reads bytes from an untrusted process: sizes are capped,
unknown tags are errors, and nothing is ever evaluated.
"""

from __future__ import annotations

import base64
import json
import os
import select
import struct
import time
from collections.abc import Iterator
from typing import Any

__all__ = [
    "FrameError",
    "Opaque",
    "decode",
    "encode",
    "read_frame",
    "write_frame",
]

_HEADER = struct.Struct(">I")
MAX_FRAME = 8 * 1024 * 1024
_MAX_NODES = 1_000_000
_MAX_DEPTH = 200
_MAX_ITEMS_FROM_ITERATOR = 100_000
_BIG_INT_BITS = 12_000  # above ~3,600 digits int<->str hits Python's digit limit


class FrameError(Exception):
    """A pipe closed, timed out, or carried something that is not a valid frame."""


class Opaque:
    """Stands in for a value that could not cross: compares equal to nothing."""

    __slots__ = ("description", "type_name")

    def __init__(self, type_name: str, description: str) -> None:
        self.type_name = type_name
        self.description = description

    def __repr__(self) -> str:
        return f"<{self.type_name} object that cannot leave the sandbox: {self.description}>"


# -- framing -------------------------------------------------------------------------


def write_frame(fd: int, payload: Any) -> None:
    """Write one length-prefixed JSON frame (a single write when it fits a pipe buffer)."""
    body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes is over the {MAX_FRAME}-byte cap")
    data = memoryview(_HEADER.pack(len(body)) + body)
    while data:
        written = os.write(fd, data)
        data = data[written:]


def read_frame(fd: int, deadline: float | None, max_bytes: int = MAX_FRAME) -> Any:
    """Read one frame; raises ``FrameError`` on EOF, a bad frame, or when ``deadline`` passes."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > max_bytes:
        raise FrameError(f"frame of {size} bytes is over the {max_bytes}-byte cap")
    body = _read_exact(fd, size, deadline)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise FrameError(f"frame is not valid JSON: {exc}") from None


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
                raise FrameError("timed out")
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise FrameError("the other side closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# -- codec ---------------------------------------------------------------------------


class _Budget:
    __slots__ = ("nodes",)

    def __init__(self) -> None:
        self.nodes = 0

    def spend(self) -> None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise ValueError("value too large to transfer")


def encode(value: Any) -> Any:
    """Plain data as tagged JSON; anything else becomes an opaque marker."""
    return _encode(value, _Budget(), 0, set())


def _encode(value: Any, budget: _Budget, depth: int, active: set[int]) -> Any:
    budget.spend()
    if depth > _MAX_DEPTH:
        raise ValueError("value nested too deeply to transfer")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is float:
        return value
    if kind is int:
        return value if value.bit_length() < _BIG_INT_BITS else {"#": "i", "v": format(value, "x")}
    scalar = _encode_scalar(value)
    if scalar is not _NOT_SCALAR:
        return scalar
    if id(value) in active:
        return {"#": "o", "type": kind.__name__, "repr": "a container that contains itself"}
    active.add(id(value))
    try:
        return _encode_container(value, budget, depth, active)
    finally:
        active.discard(id(value))


_NOT_SCALAR = object()


def _encode_scalar(value: Any) -> Any:
    # Subclasses of the plain types are reduced to their plain value with the base
    # type's own C methods, so an overridden __eq__ or __str__ never comes along.
    if isinstance(value, bool):
        return bool(int.__index__(value))
    if isinstance(value, int):
        number = int.__index__(value)
        return number if number.bit_length() < _BIG_INT_BITS else {"#": "i", "v": format(number, "x")}
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes | bytearray):
        tag = "b" if isinstance(value, bytes) else "ba"
        return {"#": tag, "v": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, complex):
        plain = complex.__complex__(value)
        return {"#": "c", "v": [plain.real, plain.imag]}
    if isinstance(value, range):
        return {"#": "r", "v": [value.start, value.stop, value.step]}
    return _NOT_SCALAR


_VIEW_TAGS = {type({}.keys()): "kv", type({}.values()): "vv", type({}.items()): "iv"}


def _encode_container(value: Any, budget: _Budget, depth: int, active: set[int]) -> Any:
    def each(items: Any) -> list[Any]:
        return [_encode(item, budget, depth + 1, active) for item in items]

    if isinstance(value, list):
        return each(list.__iter__(value))
    if isinstance(value, tuple):
        return {"#": "t", "v": each(tuple.__iter__(value))}
    if isinstance(value, frozenset):
        return {"#": "f", "v": each(frozenset.__iter__(value))}
    if isinstance(value, set):
        return {"#": "s", "v": each(set.__iter__(value))}
    if isinstance(value, dict):
        pairs = [[_encode(k, budget, depth + 1, active), _encode(v, budget, depth + 1, active)]
                 for k, v in dict.items(value)]  # fmt: skip
        return {"#": "d", "v": pairs}
    view_tag = _VIEW_TAGS.get(type(value))
    if view_tag is not None:
        return {"#": view_tag, "v": each(value)}
    if _is_iterator(value):
        items = []
        for index, item in enumerate(value):
            if index >= _MAX_ITEMS_FROM_ITERATOR:
                raise ValueError("the iterator yields too many items to transfer")
            items.append(item)
        return {"#": "it", "v": each(items)}
    return {"#": "o", "type": type(value).__name__, "repr": _safe_repr(value)}


def _is_iterator(value: Any) -> bool:
    kind = type(value)
    return kind.__module__ in ("builtins", "itertools") and hasattr(kind, "__next__")


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except BaseException as exc:  # a hostile __repr__ may raise anything
        text = f"repr() raised {type(exc).__name__}"
    return text if len(text) <= 200 else text[:197] + "..."


def decode(data: Any) -> Any:
    """The inverse of :func:`encode`; raises ``ValueError`` on anything malformed."""
    return _decode(data, _Budget(), 0)


def _decode(data: Any, budget: _Budget, depth: int) -> Any:
    budget.spend()
    if depth > _MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [_decode(item, budget, depth + 1) for item in data]
    if type(data) is not dict or type(data.get("#")) is not str:
        raise ValueError("malformed value")
    tag = data["#"]
    if tag == "o":
        return Opaque(str(data.get("type", "?"))[:80], str(data.get("repr", ""))[:200])
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown value tag {tag!r}")
    return decoder(data.get("v"), budget, depth + 1)


def _items(raw: Any, budget: _Budget, depth: int) -> Iterator[Any]:
    if type(raw) is not list:
        raise ValueError("malformed container")
    return (_decode(item, budget, depth) for item in raw)


def _decode_dict(raw: Any, budget: _Budget, depth: int) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in _items_raw(raw):
        if type(pair) is not list or len(pair) != 2:
            raise ValueError("malformed dict entry")
        out[_decode(pair[0], budget, depth)] = _decode(pair[1], budget, depth)
    return out


def _items_raw(raw: Any) -> list[Any]:
    if type(raw) is not list:
        raise ValueError("malformed container")
    return raw


def _decode_bytes(raw: Any) -> bytes:
    if type(raw) is not str:
        raise ValueError("malformed bytes")
    return base64.b64decode(raw.encode("ascii"), validate=True)


def _decode_range(raw: Any) -> range:
    if type(raw) is not list or len(raw) != 3 or any(type(x) is not int for x in raw):
        raise ValueError("malformed range")
    return range(raw[0], raw[1], raw[2])


def _decode_complex(raw: Any) -> complex:
    if type(raw) is not list or len(raw) != 2 or any(type(x) not in (int, float) for x in raw):
        raise ValueError("malformed complex")
    return complex(raw[0], raw[1])


def _decode_big_int(raw: Any) -> int:
    if type(raw) is not str or len(raw) > 1_000_000:
        raise ValueError("malformed int")
    return int(raw, 16)


_DECODERS: dict[str, Any] = {
    "t": lambda raw, b, d: tuple(_items(raw, b, d)),
    "s": lambda raw, b, d: set(_items(raw, b, d)),
    "f": lambda raw, b, d: frozenset(_items(raw, b, d)),
    "d": _decode_dict,
    "b": lambda raw, b, d: _decode_bytes(raw),
    "ba": lambda raw, b, d: bytearray(_decode_bytes(raw)),
    "c": lambda raw, b, d: _decode_complex(raw),
    "r": lambda raw, b, d: _decode_range(raw),
    "i": lambda raw, b, d: _decode_big_int(raw),
    "it": lambda raw, b, d: iter(list(_items(raw, b, d))),
    "kv": lambda raw, b, d: dict.fromkeys(_items(raw, b, d)).keys(),
    "vv": lambda raw, b, d: dict(enumerate(_items(raw, b, d))).values(),
    "iv": lambda raw, b, d: dict(_pairs(raw, b, d)).items(),
}


def _pairs(raw: Any, budget: _Budget, depth: int) -> Iterator[tuple[Any, Any]]:
    for item in _items(raw, budget, depth):
        if type(item) is not tuple or len(item) != 2:
            raise ValueError("malformed dict item")
        yield item
