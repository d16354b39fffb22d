"""`cascade bench humaneval` on a hand-made folder in the humaneval-ldb format, against hand computation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cascade.cli import main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

TASKS = {
    "T/0": (
        "inc",
        "x + 1",
        "def check(candidate):\n    assert candidate(5) == 6\n    assert candidate(-1) == 0\n",
    ),
    "T/1": (
        "neg",
        "-x",
        "def check(candidate):\n    assert candidate(0) == 0\n    assert candidate(-3) == 3\n",
    ),
    "T/2": ("sq", "x * x", "def check(candidate):\n    assert candidate(3) == 9\n"),
    # This format's other benchmarks call check themselves and leave out imports the harness added.
    "T/3": (
        "half",
        "x // 2",
        "def check(candidate):\n    assert candidate(9) == math.floor(9 / 2)\n\ncheck(half)\n",
    ),
}
GIVEN = {"T/0": "assert inc(1) == 2", "T/1": "assert neg(2) == -2", "T/2": "assert sq(2) == 4",
         "T/3": "assert half(4) == 2"}  # fmt: skip
BODIES = {
    "cheap": {"T/0": "x + 1", "T/1": "x", "T/2": "x + 2", "T/3": "x"},  # T/2 passes sq(2) == 4 only
    "mid": {"T/0": "x + 1", "T/1": "-x", "T/2": "x * x", "T/3": "x // 3"},
    "strong": {"T/0": "x + 1", "T/1": "-x", "T/2": "x * x", "T/3": "math.floor(x / 2)"},  # no import
}
PRICES = {"cheap": 1.0, "mid": 10.0, "strong": 100.0}  # $ per 1M output tokens; input is free here


def _prompt(entry: str) -> str:
    return f'def {entry}(x: int) -> int:\n    """Compute {entry} of x."""\n'


def _solution(entry: str, body: str) -> str:
    return f"def {entry}(x: int) -> int:\n    return {body}\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "humaneval-like"
    root.mkdir()
    problems = [{"task_id": tid, "prompt": _prompt(e), "entry_point": e, "test": t, "canonical_solution": ""}
                for tid, (e, _, t) in TASKS.items()]  # fmt: skip
    (root / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    for model, bodies in BODIES.items():
        (root / model).mkdir()
        rows = [
            {"task_id": tid, "prompt": _prompt(TASKS[tid][0]), "entry_point": TASKS[tid][0],
             "given_tests": [GIVEN[tid]], "test": TASKS[tid][2], "solution": _solution(TASKS[tid][0], body),
             "is_solved": None}
            for tid, body in bodies.items()
        ]  # fmt: skip
        (root / model / "seed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    prices = {m: {"input": 0.0, "output": p, "context_window": 8192} for m, p in PRICES.items()}
    (root / "prices.json").write_text(json.dumps(prices))
    return root


def _cost(model: str, task_ids: list[str]) -> float:
    tokens = sum(-(-len(_solution(TASKS[t][0], BODIES[model][t])) // 4) for t in task_ids)  # 4 chars/token
    return tokens * PRICES[model] / 1_000_000


def test_figures_match_a_hand_computation(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["bench", "humaneval", "--data", str(folder), "--out", str(out), "--no-mypy"])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "humaneval.json").read_text())
    assert (out / "humaneval.png").stat().st_size > 0
    systems = {s["name"]: s for s in report["systems"]}
    every = list(TASKS)
    # Hidden tests: cheap solves T/0; mid T/0-T/2; strong all four (T/3 needs the added `import math`).
    assert systems["cheap"]["quality"] == pytest.approx(1 / 4)
    assert systems["mid"]["quality"] == pytest.approx(3 / 4)
    assert systems["strong"]["quality"] == pytest.approx(1.0)
    # The gate passes cheap on T/0 and on T/2, whose hidden test it fails.
    assert systems["cheap"]["extra"]["gate_false_passes"] == 1
    assert systems["cheap"]["extra"]["gate_false_pass_rate"] == pytest.approx(1 / 2)
    # Cascade: T/0 cheap, T/1 mid, T/2 cheap (a false pass), T/3 strong.
    cascade = systems["cascade"]
    assert cascade["quality"] == pytest.approx(3 / 4)
    assert cascade["extra"]["gate_false_passes"] == 1
    expected_cost = _cost("cheap", every) + _cost("mid", ["T/1", "T/3"]) + _cost("strong", ["T/3"])
    assert cascade["cost_usd"] == pytest.approx(expected_cost)
    assert systems["strong"]["cost_usd"] == pytest.approx(_cost("strong", every))
    assert cascade["cost_ratio"] == pytest.approx(expected_cost / _cost("strong", every))
    escalation = {t["tier"]: (t["reached"], t["accepted"], t["escalated"]) for t in cascade["tiers"]}
    assert escalation == {"cheap": (4, 2, 2), "mid": (2, 1, 1), "strong": (1, 1, 0)}
    assert report["reference"] == "strong"
    assert "cascade pass rate 0.750" in printed


def test_a_folder_without_recordings_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    code = main(["bench", "humaneval", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "seed.jsonl" in capsys.readouterr().err
