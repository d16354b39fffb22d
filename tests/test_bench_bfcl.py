"""`cascade bench bfcl` on a hand-made folder in BFCL's layout, checked against hand computation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade.bench.bfcl import bfcl_schema
from cascade.cli import main

FUNCTION = {
    "name": "geo.distance",
    "description": "Distance between two cities.",
    "parameters": {
        "type": "dict",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "km": {"type": "float"}},
        "required": ["a", "b"],
    },
}


def _lines(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _call(name: str, **args: object) -> dict[str, str]:
    return {name: json.dumps(args)}


@pytest.fixture
def bfcl_folder(tmp_path: Path) -> Path:
    root = tmp_path / "bfcl"
    stem = "gorilla_openfunctions_v1_test_simple"
    _lines(root / "data" / f"{stem}.json",
           [{"id": f"simple_{i}", "question": f"question {i}", "function": FUNCTION} for i in range(3)])  # fmt: skip
    cheap = [
        _call("geo_distance", a="Oslo", b="Rome"),  # valid, and right
        _call("geo_route", a="Oslo"),  # unknown function: the gate rejects it
        _call("geo_distance", a="Oslo", b="Paris"),  # valid but wrong: a false pass
    ]
    _lines(root / "result" / "cheap-FC" / f"{stem}_result.json",
           [{"id": f"simple_{i}", "result": [c], "input_token_count": 100, "output_token_count": 10,
             "latency": 0.5} for i, c in enumerate(cheap)])  # fmt: skip
    _lines(root / "result" / "big-FC" / f"{stem}_result.json",
           [{"id": f"simple_{i}", "result": [_call("geo_distance", a="Oslo", b="Rome")],
             "input_token_count": 100, "output_token_count": 20, "latency": 1.0} for i in range(3)])  # fmt: skip
    # The leaderboard's verdicts: `id` is the failed item's 1-based line.
    _lines(root / "score" / "cheap-FC" / "simple_score.json",
           [{"accuracy": 1 / 3}, {"id": 2, "valid": False}, {"id": 3, "valid": False}])  # fmt: skip
    _lines(root / "score" / "big-FC" / "simple_score.json", [{"accuracy": 1.0}])
    (root / "prices.json").write_text(
        json.dumps({"cheap": {"input": 1.0, "output": 2.0}, "big": {"input": 10.0, "output": 30.0}})
    )
    return root


def test_bench_figures_match_hand_computation(
    bfcl_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["bench", "bfcl", "--data", str(bfcl_folder), "--out", str(out)]) == 0
    report = json.loads((out / "bfcl-function-calling.json").read_text())
    systems = {s["name"]: s for s in report["systems"]}
    cheap_call, big_call = (100 * 1.0 + 10 * 2.0) / 1e6, (100 * 10.0 + 20 * 30.0) / 1e6

    assert systems["cheap-FC"]["quality"] == pytest.approx(1 / 3)
    assert systems["cheap-FC"]["cost_usd"] == pytest.approx(3 * cheap_call)
    assert systems["big-FC"]["quality"] == pytest.approx(1.0)
    assert systems["big-FC"]["cost_usd"] == pytest.approx(3 * big_call)

    cascade = systems["cascade (all 2 tiers)"]
    # item 0: cheap accepted (right); item 1: escalated to big (right); item 2: cheap accepted (wrong).
    assert cascade["quality"] == pytest.approx(2 / 3)
    assert cascade["cost_usd"] == pytest.approx(3 * cheap_call + big_call)
    assert cascade["cost_ratio"] == pytest.approx((3 * cheap_call + big_call) / (3 * big_call))
    tiers = {t["tier"]: t for t in cascade["tiers"]}
    assert (tiers["cheap-FC"]["reached"], tiers["cheap-FC"]["escalated"]) == (3, 1)
    assert tiers["cheap-FC"]["escalation_rate"] == pytest.approx(1 / 3)
    assert (tiers["big-FC"]["reached"], tiers["big-FC"]["accepted"]) == (1, 1)
    assert report["reference"] == "big-FC"
    assert (out / "bfcl-function-calling.png").stat().st_size > 0
    assert "cascade (all 2 tiers)" in capsys.readouterr().out


def test_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "bfcl", "--data", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unpriced_model_names_the_model(
    bfcl_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bfcl_folder / "prices.json").write_text(json.dumps({"cheap": {"input": 1.0, "output": 2.0}}))
    assert main(["bench", "bfcl", "--data", str(bfcl_folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "big-FC" in err and "--prices" in err


def test_bfcl_dialect_becomes_json_schema() -> None:
    schema = bfcl_schema(FUNCTION["parameters"])
    assert schema["type"] == "object"
    assert schema["properties"]["km"] == {"type": "number"}
    assert bfcl_schema({"type": "tuple", "items": {"type": "float"}}) == {
        "type": "array",
        "items": {"type": "number"},
    }
    assert bfcl_schema({"type": "any", "description": "x"}) == {"description": "x"}


def test_one_model_per_calling_mode_still_makes_one_ladder(bfcl_folder: Path, tmp_path: Path) -> None:
    # Rename the big function-calling model into a plain-text one: no mode has two models now.
    (bfcl_folder / "result" / "big-FC").rename(bfcl_folder / "result" / "big")
    (bfcl_folder / "score" / "big-FC").rename(bfcl_folder / "score" / "big")
    out = tmp_path / "out"
    assert main(["bench", "bfcl", "--data", str(bfcl_folder), "--out", str(out)]) == 0
    report = json.loads((out / "bfcl-all.json").read_text())
    assert [s["name"] for s in report["systems"]][:2] == ["cheap-FC", "big"]


def test_a_model_without_scores_is_left_out_and_said_so(
    bfcl_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bfcl_folder / "result" / "unscored-FC").mkdir()
    assert main(["bench", "bfcl", "--data", str(bfcl_folder), "--out", str(tmp_path / "o")]) == 0
    assert "left out (no result or score for every item): unscored-FC" in capsys.readouterr().out
