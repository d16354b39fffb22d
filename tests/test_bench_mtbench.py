"""`cascade bench mtbench` on a hand-made folder in the RouteLLM MT-Bench layout, against hand computation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade.bench.mtbench import answer_from_judge_input
from cascade.cli import main

PRICES = {
    "cheap": {"input": 1.0, "output": 1.0},
    "big": {"input": 10.0, "output": 30.0},
    "judge-4": {"input": 20.0, "output": 60.0},
}
QUESTIONS = {1: ["Name a colour."], 2: ["Write a haiku about rain.", "Now make it rhyme."]}
# (question id, turn, model) -> (answer, score)
ANSWERS = {
    (1, 1, "cheap"): ("Blue.", 9),
    (1, 1, "big"): ("Blue, like the sky.", 10),
    (2, 1, "cheap"): ("Rain falls down.", 4),
    (2, 1, "big"): ("Soft rain on the roof / ...", 8),
    (2, 2, "cheap"): ("Rain again, my friend.", 6),
    (2, 2, "big"): ("Rain in vain / again.", 9),
}
ITEMS = [(1, 1), (2, 1), (2, 2)]


def _single(question: str, answer: str) -> str:
    return (
        f"[Instruction]\nPlease act as an impartial judge.\n\n[Question]\n{question}\n\n"
        f"[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
    )


def _multi(q1: str, a1: str, q2: str, a2: str) -> str:
    return (
        "<|The Start of Assistant A's Conversation with User|>\n\n"
        f"### User:\n{q1}\n\n### Assistant A:\n{a1}\n\n### User:\n{q2}\n\n### Assistant A:\n{a2}\n\n"
        "<|The End of Assistant A's Conversation with User|>"
    )


def _user_prompt(qid: int, turn: int, model: str) -> str:
    if turn == 1:
        return _single(QUESTIONS[qid][0], ANSWERS[(qid, 1, model)][0])
    return _multi(
        QUESTIONS[qid][0], ANSWERS[(qid, 1, model)][0], QUESTIONS[qid][1], ANSWERS[(qid, 2, model)][0]
    )


def _judgment(score: int) -> str:
    return f"The answer is adequate for its purpose. Rating: [[{score}]]"


def _tokens(text: str) -> int:
    return -(-len(text) // 4)  # the documented estimate: 4 characters per token, rounded up


def _cost(model: str, input_text: str, output_text: str) -> float:
    price = PRICES[model]
    return (_tokens(input_text) * price["input"] + _tokens(output_text) * price["output"]) / 1e6


def _answer_cost(qid: int, turn: int, model: str) -> float:
    # turn 2 reads the first question, the model's own first answer, then the second question
    context = (
        [QUESTIONS[qid][0]]
        if turn == 1
        else [QUESTIONS[qid][0], ANSWERS[(qid, 1, model)][0], QUESTIONS[qid][1]]
    )
    return _cost(model, "\n".join(context), ANSWERS[(qid, turn, model)][0])


def _judge_cost(qid: int, turn: int, model: str) -> float:
    return _cost("judge-4", _user_prompt(qid, turn, model), _judgment(ANSWERS[(qid, turn, model)][1]))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "datasets" / "mt-mini"
    root.mkdir(parents=True)
    (tmp_path / "datasets" / "prices.json").write_text(json.dumps(PRICES))
    (root / "questions.jsonl").write_text(
        "".join(
            json.dumps({"question_id": q, "category": "writing", "turns": t}) + "\n"
            for q, t in QUESTIONS.items()
        )
    )
    rows = [
        {"question_id": qid, "model": model, "judge": ["gpt-4", "single-v1"], "turn": turn,
         "user_prompt": _user_prompt(qid, turn, model), "judgment": _judgment(score), "score": score}
        for (qid, turn, model), (_, score) in ANSWERS.items()
    ]  # fmt: skip
    (root / "judgements.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_answers_are_read_from_the_judge_input() -> None:
    assert answer_from_judge_input(_single("Q?", "A line.\nAnother.")) == "A line.\nAnother."
    assert answer_from_judge_input(_multi("Q1", "A1", "Q2", "A2")) == "A2"
    assert answer_from_judge_input("no markers") is None


def test_bench_matches_hand_computation(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["bench", "mtbench", "--data", str(folder), "--out", str(out), "--models", "cheap,big"]
    assert main([*args, "--judge-model", "judge-4"]) == 0
    report = json.loads((out / "mtbench.json").read_text())
    assert (out / "mtbench.png").stat().st_size > 0
    systems = {s["name"]: s for s in report["systems"]}
    cheap_cost = sum(_answer_cost(q, t, "cheap") for q, t in ITEMS)
    big_cost = sum(_answer_cost(q, t, "big") for q, t in ITEMS)
    judge_cost = sum(_judge_cost(q, t, "cheap") for q, t in ITEMS)  # only the cheap answers are judged
    assert systems["cheap"]["quality"] == pytest.approx((9 + 4 + 6) / 3)
    assert systems["cheap"]["cost_usd"] == pytest.approx(cheap_cost)
    assert systems["big"]["quality"] == pytest.approx((10 + 8 + 9) / 3)
    assert systems["big"]["cost_usd"] == pytest.approx(big_cost)
    for threshold in range(1, 11):
        row = systems[f"judge gate >= {threshold}"]
        shipped, escalated_cost = [], 0.0
        for qid, turn in ITEMS:
            cheap_score = ANSWERS[(qid, turn, "cheap")][1]
            if cheap_score >= threshold:
                shipped.append(cheap_score)
            else:
                shipped.append(ANSWERS[(qid, turn, "big")][1])
                escalated_cost += _answer_cost(qid, turn, "big")
        assert row["quality"] == pytest.approx(sum(shipped) / 3), threshold
        assert row["extra"]["judge_cost_usd"] == pytest.approx(judge_cost), threshold
        assert row["cost_usd"] == pytest.approx(cheap_cost + judge_cost + escalated_cost), threshold
    table = capsys.readouterr().out
    # the judge (at twice the strong model's price) reads more than the strong model writes here
    assert "the judge costs more than it saves" in table
    assert "costs more than big alone" in table


def test_malformed_recorded_judgment_escalates(folder: Path, tmp_path: Path) -> None:
    path = folder / "judgements.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if (row["question_id"], row["turn"], row["model"]) == (1, 1, "cheap"):
            row["judgment"] = "Great answer, I'd give it a nine."  # no [[rating]]: a failed verdict
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert (
        main(["bench", "mtbench", "--data", str(folder), "--out", str(out), "--judge-model", "judge-4"]) == 0
    )
    systems = {s["name"]: s for s in json.loads((out / "mtbench.json").read_text())["systems"]}
    assert systems["judge gate >= 1"]["quality"] == pytest.approx((10 + 4 + 6) / 3)


def test_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "mtbench", "--data", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
