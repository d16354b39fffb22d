"""Shared test setup: keep global logging configuration from leaking between tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    # `cascade.cli.main` configures structlog (only the CLI may); undo it after each test.
    yield
    structlog.reset_defaults()
