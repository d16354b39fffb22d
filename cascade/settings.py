"""Process-wide settings read from the environment, in one place."""

from __future__ import annotations

import os
from pathlib import Path

from cascade.errors import ConfigError

__all__ = ["data_dir", "ledger_path"]

_REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder of recorded datasets: ``override``, else ``CASCADE_DATA_DIR``, else ``../shared/datasets``.

    The default is tried relative to the working directory first, then beside
    the repository checkout, so the CLI works from the repo root and from a
    clean clone placed next to ``shared/``.
    """
    if override is not None:
        chosen = Path(override)
    elif env := os.environ.get("CASCADE_DATA_DIR"):
        chosen = Path(env)
    else:
        candidates = [Path("../shared/datasets"), _REPO_ROOT.parent / "shared" / "datasets"]
        chosen = next((c for c in candidates if c.is_dir()), candidates[0])
    if not chosen.is_dir():
        raise ConfigError(
            f"dataset folder {str(chosen)!r} does not exist: set CASCADE_DATA_DIR or pass --data"
        )
    return chosen


def ledger_path() -> Path:
    """Default SQLite ledger: ``CASCADE_LEDGER``, else ``~/.cascade/ledger.sqlite``."""
    env = os.environ.get("CASCADE_LEDGER")
    return Path(env) if env else Path.home() / ".cascade" / "ledger.sqlite"
