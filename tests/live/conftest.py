"""Live tests against a real llama.cpp server running the bundled model.

CI (``.ci/live.sh``) starts one with ``cascade local serve`` and passes its
URL in ``CASCADE_LIVE_BASE_URL``; without it, the session starts its own.
Without the ``[local]`` extra the tests skip, unless ``CASCADE_LIVE_REQUIRED=1``
makes that a failure (so CI can never pass by skipping).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from cascade.local.demo import local_tiers
from cascade.local.model import DEFAULT_ALIAS, MissingExtraError, find_model, require_server
from cascade.local.server import LocalServer, ServerConfig
from cascade.tiers import Tier

#: Context size the session's server runs with; tiers use it as their context window.
N_CTX = 2048
#: Room for the whole object: a truncated answer would fail for a reason that is not the model's.
ROOM = 200

TierPair = Callable[..., tuple[Tier, Tier]]


def _require_extra() -> None:
    try:
        require_server()
        find_model()
    except MissingExtraError as exc:
        if os.environ.get("CASCADE_LIVE_REQUIRED") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def live_base_url() -> Iterator[str]:
    """The base_url of a running llama.cpp server (``.../v1``)."""
    given = os.environ.get("CASCADE_LIVE_BASE_URL")
    if given:
        yield given.rstrip("/")
        return
    _require_extra()
    with LocalServer(ServerConfig(n_ctx=N_CTX)) as server:
        yield server.base_url


@pytest.fixture
def own_server() -> Iterator[LocalServer]:
    """A second server this test may kill."""
    _require_extra()
    with LocalServer(ServerConfig(n_ctx=N_CTX, n_threads=1)) as server:
        yield server


@pytest.fixture
def make_tiers() -> TierPair:
    """``make_tiers(base_url, **changes)``: the demo's (unconstrained, constrained) tiers."""

    def build(base_url: str, **changes: Any) -> tuple[Tier, Tier]:
        free, constrained = local_tiers(base_url, DEFAULT_ALIAS, n_ctx=N_CTX, max_tokens=ROOM)
        return replace(free, **changes), replace(constrained, **changes)

    return build
