"""`cascade bench gsm8k` on a hand-made CSV in RouteLLM's format, checked against hand computation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cascade.cli import main

PRICES = {"cheap": {"input": 1.0, "output": 2.0}, "big": {"input": 10.0, "output": 30.0}}
# (question, cheap reply, cheap right?, big reply, big right?)
ROWS = [
    ("Tom has 3 apples and buys 4 more. How many apples?", "3 + 4 = <<3+4=7>>7\n#### 7", True,
     "3 + 4 = 7 apples.", True),  # every gate accepts the cheap answer
    ("A pen costs $2. How much do 5 pens cost?", "5 * 2 = <<5*2=12>>12\n#### 12", False,
     "5 * 2 = 10 dollars.", True),  # wrong arithmetic
    ("Sam reads 10 pages a day for 3 days. How many pages?", "He reads 10 * 3 = <<10*3=3", False,
     "10 * 3 = 30 pages.", True),  # cut off
    ("Ann has 8 eggs, uses 2, then buys 5. How many eggs?", "8 - 2 = <<8-2=6>>6\n#### 6", False,
     "8 - 2 + 5 = 11 eggs.", True),  # ignores a given number
    ("Split 10 cakes among 3 kids. How many whole cakes each?", "10 / 3 ≈ 3.33, so 3 each.\n#### 3", True,
     "Each kid gets 3 whole cakes.", True),  # hedges, though right
]  # fmt: skip
# The first line of the feedback that escalates each row, per gate (None: accepted on the cheap tier).
TRUNCATED = "the reply stops inside a <<calculation>>: give the complete answer"
ARITHMETIC = "1 wrong calculation: <<5*2=12>> (it is 10)"
HEDGE = "the reply hedges ('≈'): solve exactly"
UNUSED = "unused given numbers: 5"
ESCALATIONS = {
    "format": [None, None, TRUNCATED, None, None],
    "+arithmetic": [None, ARITHMETIC, TRUNCATED, None, None],
    "+hedging": [None, ARITHMETIC, TRUNCATED, None, HEDGE],
    "+given numbers": [None, ARITHMETIC, TRUNCATED, UNUSED, HEDGE],
}
ACCURACY = {"format": 3 / 5, "+arithmetic": 4 / 5, "+hedging": 4 / 5, "+given numbers": 5 / 5}


def _tokens(text: str) -> int:
    return -(-len(text) // 4)  # the documented estimate: 4 characters per token, rounded up


def _cost(model: str, prompt: str, reply: str) -> float:
    price = PRICES[model]
    return (_tokens(prompt) * price["input"] + _tokens(reply) * price["output"]) / 1e6


def _escalated_prompt(question: str, feedback: str) -> str:
    # The engine tells the next tier what failed (cascade.policy's escalation note).
    return f"{question}\n\n(A previous attempt at this task failed: {feedback}. Avoid that mistake.)"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "datasets" / "gsm8k-mini"
    folder.mkdir(parents=True)
    (tmp_path / "datasets" / "prices.json").write_text(json.dumps(PRICES))
    with (folder / "responses.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["prompt", "gold_answer", "cheap_correct", "cheap_response", "big_correct", "big_response"]
        )
        for question, cheap, cheap_ok, big, big_ok in ROWS:
            writer.writerow([question, "hidden", cheap_ok, cheap, big_ok, big])
    return folder


def test_bench_matches_hand_computation(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["bench", "gsm8k", "--data", str(data_dir), "--out", str(out)]) == 0
    report = json.loads((out / "gsm8k.json").read_text())
    assert (out / "gsm8k.png").stat().st_size > 0
    systems = {s["name"]: s for s in report["systems"]}
    cheap_cost = sum(_cost("cheap", q, c) for q, c, _, _, _ in ROWS)
    big_cost = sum(_cost("big", q, b) for q, _, _, b, _ in ROWS)
    assert systems["cheap"]["quality"] == pytest.approx(2 / 5)
    assert systems["cheap"]["cost_usd"] == pytest.approx(cheap_cost)
    assert systems["big"]["quality"] == pytest.approx(1.0)
    assert systems["big"]["cost_usd"] == pytest.approx(big_cost)
    assert report["reference"] == "big"
    for gate, notes in ESCALATIONS.items():
        row = systems[f"cascade gate: {gate}"]
        expected = cheap_cost + sum(
            _cost("big", _escalated_prompt(q, note), b)
            for (q, _, _, b, _), note in zip(ROWS, notes, strict=True)
            if note
        )
        escalated = sum(1 for note in notes if note)
        assert row["quality"] == pytest.approx(ACCURACY[gate]), gate
        assert row["cost_usd"] == pytest.approx(expected), gate
        assert row["cost_ratio"] == pytest.approx(expected / big_cost), gate
        cheap_tier = next(t for t in row["tiers"] if t["tier"] == "cheap")
        assert (cheap_tier["reached"], cheap_tier["escalated"]) == (5, escalated), gate
    table = capsys.readouterr().out
    assert "cascade gate: +given numbers" in table and "oracle (either model right): 1.000" in table


def test_bench_runs_on_a_file_with_plain_label_columns(tmp_path: Path) -> None:
    # RouteLLM's README names the correctness column after the model itself.
    path = tmp_path / "other.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "cheap", "cheap_response", "big", "big_response"])
        writer.writerow(["1 + 1?", "True", "1 + 1 = 2\n#### 2", "True", "2"])
        writer.writerow(["2 + 2?", "False", "2 + 2 = 5\n#### 5", "True", "4"])
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES))
    out = tmp_path / "out"
    assert (
        main(
            [
                "bench",
                "gsm8k",
                "--data",
                str(path),
                "--prices",
                str(prices),
                "--out",
                str(out),
                "--limit",
                "2",
            ]
        )
        == 0
    )
    systems = {s["name"]: s for s in json.loads((out / "gsm8k.json").read_text())["systems"]}
    assert systems["cascade gate: format"]["quality"] == pytest.approx(0.5)
    assert systems["cascade gate: +arithmetic"]["quality"] == pytest.approx(1.0)


def test_bad_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nx,y\n")
    assert main(["bench", "gsm8k", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "'<model>_response'" in capsys.readouterr().err
    assert main(["bench", "gsm8k", "--data", str(tmp_path / "missing.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
