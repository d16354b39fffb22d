"""``cascade bench mtbench``: a judge-gated cascade on MT-Bench, with the judge's cost counted.

The cheap tier's answer goes to a :class:`~validators.judge.JudgeContract`
whose judge tier is served by the recorded GPT-4 judgment of that very answer
(a replayed judge call): the score is parsed from the judgment text by the
judge's own ``mtbench`` verdict parser, and the call is costed from the
judge's recorded input (``user_prompt``) and the judgment's length at the
judge model's price.  Below the threshold the request escalates to the strong
tier, whose answer is shipped unjudged.  Every threshold from 1 to 10 is run.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade.bench.common import emit, open_ledger, price_table, tiers_for
from cascade.bench.replay import BenchItem, run_cascade_bench, single_tier_result
from cascade.bench.report import BenchReport, SystemResult
from cascade.errors import ConfigError
from cascade.jsonl import read_jsonl
from cascade.pricing import PriceTable
from cascade.protocols import AttemptSink
from cascade.providers.replay import Recording, ReplayStore
from cascade.settings import data_dir
from cascade.tiers import Tier
from cascade.tokens import estimate_tokens
from validators.judge import JudgeContract

__all__ = [
    "MtBenchData",
    "add_arguments",
    "answer_from_judge_input",
    "judge_item_id",
    "load",
    "run",
    "run_bench",
]

DATASET = "mtbench-routellm"
THRESHOLDS = tuple(range(1, 11))
RUBRIC = (
    "Helpfulness, relevance, accuracy, depth, creativity and level of detail of the answer to the "
    "user's last question (for math and reasoning: correctness first)."
)
_SINGLE = re.compile(
    r"\[The Start of Assistant's Answer\]\n(?P<answer>.*?)\n\[The End of Assistant's Answer\]", re.DOTALL
)
_MULTI = re.compile(
    r".*### Assistant A:\n(?P<answer>.*?)\s*<\|The End of Assistant A's Conversation with User\|>", re.DOTALL
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Replay MT-Bench answers through a cheap -> strong cascade gated by the recorded GPT-4 judge, "
        "for every threshold 1..10, judge calls costed."
    )
    parser.add_argument("--models", default=None,
                        help="cheap,strong model names as in judgements.jsonl (default: the cheapest and the "
                             "priciest model there)")  # fmt: skip
    parser.add_argument("--judge-model", default="gpt-4-1106-preview",
                        help="price the replayed judge calls as this model (default: gpt-4-1106-preview)")  # fmt: skip
    parser.add_argument("--prices", type=Path, default=None,
                        help="JSON price file (model -> input/output $ per 1M) merged over the built-in table "
                             "and the dataset's prices.json")  # fmt: skip


@dataclass(frozen=True, slots=True)
class MtBenchData:
    root: Path
    items: tuple[tuple[str, str], ...]  # (item id, what the user asks in that turn)
    models: tuple[str, ...]
    store: ReplayStore
    judgments: Mapping[tuple[str, str], Recording]  # (item id, model) -> the recorded judge call
    scores: Mapping[tuple[str, str], float]  # (item id, model) -> judge score; for scoring only
    unextracted: int  # answers not found in the judge input (costed from the whole input)

    def quality(self, item_id: str, model: str) -> float:
        return self.scores[(item_id, model)]


def judge_item_id(item_id: str, model: str) -> str:
    """Where the recorded judgment of ``model``'s answer to ``item_id`` is kept in the store."""
    return f"judge:{item_id}:{model}"


def answer_from_judge_input(user_prompt: str) -> str | None:
    """The graded answer inside an MT-Bench judge prompt (the last assistant turn), or ``None``."""
    for pattern in (_SINGLE, _MULTI):
        match = pattern.search(user_prompt)
        if match:
            return match["answer"].strip()
    return None


def _judgement_rows(root: Path) -> list[dict[str, Any]]:
    rows = list(read_jsonl(root / "judgements.jsonl"))
    needed = {"question_id", "model", "turn", "user_prompt", "judgment", "score"}
    for number, row in enumerate(rows, 1):
        missing = needed - row.keys()
        if missing:
            raise ConfigError(f"{root / 'judgements.jsonl'}:{number}: missing {sorted(missing)}")
    return rows


def load(root: Path, *, limit: int | None = None) -> MtBenchData:
    """Read ``questions.jsonl`` and ``judgements.jsonl``; ``limit`` keeps the first N questions."""
    if not root.is_dir():
        raise ConfigError(
            f"MT-Bench folder {str(root)!r} does not exist: pass --data or set CASCADE_DATA_DIR"
        )
    questions = {
        str(q["question_id"]): [str(t) for t in q.get("turns", [])]
        for q in read_jsonl(root / "questions.jsonl")
    }
    rows = _judgement_rows(root)
    kept = list(dict.fromkeys(str(r["question_id"]) for r in rows if str(r["question_id"]) in questions))[
        :limit
    ]
    models = tuple(sorted({str(r["model"]) for r in rows}))
    answers = {
        (str(r["question_id"]), int(r["turn"]), str(r["model"])): answer_from_judge_input(
            str(r["user_prompt"])
        )
        for r in rows
    }
    store, judgments, scores = ReplayStore(), {}, {}
    unextracted = 0
    keep = set(kept)
    for row in rows:
        qid, turn, model = str(row["question_id"]), int(row["turn"]), str(row["model"])
        if qid not in keep:
            continue
        item_id = f"{qid}-t{turn}"
        answer = answers[(qid, turn, model)]
        unextracted += answer is None
        context = _conversation(questions[qid], turn, lambda t, q=qid, m=model: answers.get((q, t, m)) or "")
        store.add(
            model,
            item_id,
            Recording(answer or str(row["user_prompt"]), input_tokens=estimate_tokens(context)),
        )
        judgment = str(row["judgment"])
        judgments[(item_id, model)] = Recording(
            judgment, input_tokens=estimate_tokens(str(row["user_prompt"]))
        )
        scores[(item_id, model)] = float(row["score"])
    items = tuple(
        (f"{qid}-t{turn}", questions[qid][turn - 1])
        for qid in kept
        for turn in range(1, len(questions[qid]) + 1)
        if all((f"{qid}-t{turn}", m) in scores for m in models)
    )
    return MtBenchData(root, items, models, store, judgments, scores, unextracted)


def _conversation(turns: Sequence[str], turn: int, answer_of: Any) -> str:
    """What the model read for ``turn``: earlier questions and its own earlier answers, then the question."""
    parts: list[str] = []
    for earlier in range(1, turn):
        parts += [turns[earlier - 1], answer_of(earlier)]
    parts.append(turns[turn - 1] if turn <= len(turns) else "")
    return "\n".join(parts)


def judge_tier(model: str, prices: PriceTable) -> Tier:
    (priced,) = tiers_for([model], prices)
    return Tier(f"judge ({model})", "replay", model, priced.input_per_mtok, priced.output_per_mtok,
                priced.context_window)  # fmt: skip


def run_bench(
    data: MtBenchData, cheap: Tier, strong: Tier, judge: Tier, *, ledger: AttemptSink | None = None
) -> BenchReport:
    """Both single tiers and one judge-gated cascade per threshold."""
    for (item_id, model), recording in data.judgments.items():
        data.store.add(judge.model, judge_item_id(item_id, model), recording)
    plain = [BenchItem(i, q, _contract(i, 1, cheap, strong, judge)) for i, q in data.items]
    singles = [single_tier_result(t, plain, data.store, data.quality) for t in (cheap, strong)]
    systems: list[SystemResult] = list(singles)
    for threshold in THRESHOLDS:
        items = [BenchItem(i, q, _contract(i, threshold, cheap, strong, judge)) for i, q in data.items]
        row, _ = run_cascade_bench(
            f"judge gate >= {threshold}", [cheap, strong], items, data.store, data.quality,
            judge_tiers=[judge], ledger=ledger,
        )  # fmt: skip
        judge_cost = next(t.cost_usd for t in row.tiers if t.tier == judge.name)
        systems.append(_with_extra(row, threshold=threshold, judge_cost_usd=judge_cost))
    report = BenchReport("mtbench", str(data.root), "MT score", tuple(systems), strong.name)
    return BenchReport(report.suite, report.data, report.quality_label, report.systems, report.reference,
                       _notes(report, data, cheap, strong, judge))  # fmt: skip


def _contract(item_id: str, threshold: int, cheap: Tier, strong: Tier, judge: Tier) -> JudgeContract:
    return JudgeContract(
        RUBRIC, judge, threshold=threshold, verdict_format="mtbench", trusted_models={strong.model},
        item_id=judge_item_id(item_id, cheap.model), name="mtbench judge",
    )  # fmt: skip


def _with_extra(row: SystemResult, **extra: Any) -> SystemResult:
    return SystemResult(row.name, row.kind, row.items, row.quality, row.cost_usd, row.estimated_cost_share,
                        row.tiers, {**row.extra, **extra})  # fmt: skip


def _notes(report: BenchReport, data: MtBenchData, cheap: Tier, strong: Tier, judge: Tier) -> tuple[str, ...]:
    cheap_row, strong_row = report.system(cheap.name), report.system(strong.name)
    notes = [
        f"{len(data.items)} items (question x turn); MT score = the recorded GPT-4 grade (1-10) of the answer shipped",
        f"the gate is the same recorded grade, replayed as a judge call on {judge.name} and parsed by "
        "JudgeContract's mtbench verdict parser; judge input = the recorded user_prompt",
        "gate and score are the same recorded grade, so this judge is an oracle: a live judge call would be "
        "noisier, and the high-threshold scores (above the strong model alone) are optimistic",
        "tokens estimated at 4 characters per token (no tokenizer installed)",
    ]
    if data.unextracted:
        notes.append(
            f"{data.unextracted} answers not found in their judge input: costed from the whole input"
        )
    dearer = []
    for row in report.systems[2:]:
        threshold, judge_cost = row.extra["threshold"], row.extra["judge_cost_usd"]
        saved = strong_row.cost_usd - (row.cost_usd - judge_cost)
        verdict = "costs more than it saves" if judge_cost > saved else "saves more than it costs"
        notes.append(
            f"threshold {threshold:>2}: judge ${judge_cost:.3f} vs ${saved:.3f} saved before judging "
            f"-> the judge {verdict}; total {report.cost_ratio(row.name):.2f}x {strong.name}, "
            f"score {row.quality:.2f} ({cheap.name} alone {cheap_row.quality:.2f}, {strong.name} {strong_row.quality:.2f})"
        )
        if row.cost_usd > strong_row.cost_usd:
            dearer.append(str(threshold))
    if dearer:
        notes.append(
            f"at thresholds {', '.join(dearer)} the judge-gated cascade costs more than {strong.name} alone"
        )
    return tuple(notes)


def run(args: argparse.Namespace) -> int:
    root = args.data if args.data is not None else data_dir() / DATASET
    data = load(root, limit=args.limit)
    if not data.items:
        raise ConfigError(f"{str(root)!r}: no question has a judgment for every model")
    prices = price_table(root, args.prices)
    if args.models:
        names = [m.strip() for m in args.models.split(",") if m.strip()]
    else:
        by_price = tiers_for(data.models, prices)
        names = [
            min(by_price, key=lambda t: t.expected_cost()).model,
            max(by_price, key=lambda t: t.expected_cost()).model,
        ]
    if len(names) != 2 or any(n not in data.models for n in names) or names[0] == names[1]:
        raise ConfigError(f"--models needs cheap,strong from {list(data.models)}; got {names}")
    cheap, strong = tiers_for(names, prices)
    judge = judge_tier(args.judge_model, prices)
    ledger = open_ledger(args.ledger)
    try:
        report = run_bench(data, cheap, strong, judge, ledger=ledger)
    finally:
        if ledger is not None:
            ledger.close()
    return emit(report, args.out)
