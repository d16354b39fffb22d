"""``cascade demo local`` end to end against the live server."""

from __future__ import annotations

import pytest

from cascade.cli import main

pytestmark = pytest.mark.live


def test_demo_prints_the_per_tier_table(live_base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "local", "--base-url", live_base_url, "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "Per tier" in out and "local-free" in out
    assert "tokens/s" in out
    assert out.rstrip().splitlines()[-1].startswith("accepted ") and out.rstrip().endswith("/3 sentences")
