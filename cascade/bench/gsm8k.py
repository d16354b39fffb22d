"""``cascade bench gsm8k``: grade-school math, cheap model first, free-text validators as the gate.

Replays a RouteLLM-style CSV (``prompt``, then per model ``M_response`` and a
True/False ``M_correct`` or ``M`` column) through the real engine.  The gate
reads only the question and the reply; the correctness columns only score
the run.  Several gates are run side by side, each adding one family of
checks, so the table shows what each family buys.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cascade.bench.common import emit, open_ledger, price_table, tiers_for
from cascade.bench.replay import BenchItem, run_cascade_bench, single_tier_result
from cascade.bench.report import BenchReport, SystemResult
from cascade.errors import ConfigError
from cascade.protocols import AttemptSink, Validator
from cascade.providers.replay import Recording, ReplayStore
from cascade.settings import data_dir
from cascade.tiers import Tier, order_by_cost
from validators.text import (
    arithmetic_consistent,
    final_answer,
    no_hedging,
    no_refusal,
    not_truncated,
    uses_prompt_numbers,
)
from validators.text_contract import TextContract

__all__ = [
    "GATES",
    "Gsm8kData",
    "add_arguments",
    "gates",
    "load",
    "run",
    "run_bench",
]

DATASET = "gsm8k-routellm"
FILE = "responses.csv"
_RESPONSE = "_response"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Replay recorded GSM8K answers through a cheap-first cascade gated only by free-text validators "
        "(answer format, truncation, arithmetic re-check, hedging, use of the given numbers)."
    )
    parser.add_argument("--models", default=None,
                        help="comma-separated models (CSV column prefixes), cheapest first; default: every "
                             "model in the file, ordered by price")  # fmt: skip
    parser.add_argument("--prices", type=Path, default=None,
                        help="JSON price file (model -> input/output $ per 1M) merged over the built-in table "
                             "and the dataset's prices.json")  # fmt: skip
    parser.add_argument("--integer-answers", action=argparse.BooleanOptionalAction, default=True,
                        help="require a whole-number final answer (GSM8K's answers all are; default on)")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Gsm8kData:
    source: Path
    questions: tuple[tuple[str, str], ...]  # (item id, question)
    models: tuple[str, ...]
    store: ReplayStore
    correct: Mapping[tuple[str, str], bool]  # (item id, model) -> right; for scoring only

    def quality(self, item_id: str, model: str) -> float:
        return 1.0 if self.correct[(item_id, model)] else 0.0

    def oracle(self, models: Sequence[str]) -> float:
        """Share of items at least one of ``models`` got right: the ceiling of any router."""
        hits = sum(any(self.correct[(i, m)] for m in models) for i, _ in self.questions)
        return hits / len(self.questions) if self.questions else 0.0


def _csv_path(path: Path) -> Path:
    if path.is_dir():
        candidates = [path / FILE] if (path / FILE).exists() else sorted(path.glob("*.csv"))
        if len(candidates) != 1:
            raise ConfigError(f"{str(path)!r}: expected {FILE} or exactly one .csv file in the folder")
        return candidates[0]
    if not path.exists():
        raise ConfigError(f"GSM8K data {str(path)!r} does not exist: pass --data or set CASCADE_DATA_DIR")
    return path


def load(path: Path, *, limit: int | None = None) -> Gsm8kData:
    """Read a RouteLLM-format CSV (a file, or a folder holding one)."""
    source = _csv_path(path)
    try:
        with source.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = [row for _, row in zip(range(limit if limit is not None else 10**9), reader, strict=False)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read GSM8K CSV {str(source)!r}: {exc}") from None
    models = tuple(c[: -len(_RESPONSE)] for c in header if c.endswith(_RESPONSE))
    if "prompt" not in header or not models:
        raise ConfigError(
            f"{str(source)!r}: needs a 'prompt' column and at least one '<model>_response' column"
        )
    labels = {m: _label_column(header, m, source) for m in models}
    store = ReplayStore()
    correct: dict[tuple[str, str], bool] = {}
    questions = []
    for index, row in enumerate(rows):
        item_id = str(index)
        questions.append((item_id, row["prompt"]))
        for model in models:
            store.add(model, item_id, Recording(text=row[f"{model}{_RESPONSE}"] or ""))
            correct[(item_id, model)] = _truth(row[labels[model]], source, index)
    return Gsm8kData(source, tuple(questions), models, store, correct)


def _label_column(header: Sequence[str], model: str, source: Path) -> str:
    for column in (f"{model}_correct", model):
        if column in header:
            return column
    raise ConfigError(
        f"{str(source)!r}: no correctness column for {model!r} ('{model}_correct' or '{model}')"
    )


def _truth(value: str | None, source: Path, index: int) -> bool:
    text = (value or "").strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ConfigError(f"{str(source)!r} row {index + 2}: expected True/False, got {value!r}")


#: Gates, each adding one family of checks to the one before.
GATES: tuple[tuple[str, Callable[[bool], list[Validator]]], ...] = (
    ("format", lambda integer: [not_truncated(), no_refusal(), final_answer(integer=integer)]),
    ("+arithmetic", lambda integer: [*GATES[0][1](integer), arithmetic_consistent()]),
    ("+hedging", lambda integer: [*GATES[1][1](integer), no_hedging()]),
    ("+given numbers", lambda integer: [*GATES[2][1](integer), uses_prompt_numbers()]),
)


def gates(integer: bool, trusted: Sequence[str] = ()) -> list[tuple[str, TextContract]]:
    """The gates; ``trusted`` models (the top tier) are shipped unchecked, as a last resort."""
    return [
        (name, TextContract(build(integer), name=f"gsm8k {name}", trusted_models=trusted))
        for name, build in GATES
    ]


def run_bench(
    data: Gsm8kData, tiers: Sequence[Tier], *, integer: bool = True, ledger: AttemptSink | None = None
) -> BenchReport:
    """Single tiers, then one cascade (cheapest -> priciest) per gate."""
    ordered = list(order_by_cost(tiers, 100))
    singles = [single_tier_result(t, _items(data, None), data.store, data.quality) for t in ordered]
    systems: list[SystemResult] = list(singles)
    top = [ordered[-1].model]
    for name, contract in gates(integer, top):
        row, _ = run_cascade_bench(
            f"cascade gate: {name}", ordered, _items(data, contract), data.store, data.quality, ledger=ledger
        )
        systems.append(row)
    reference = ordered[-1].name
    last = repr(gates(integer, top)[-1][1])
    notes = (
        f"{len(data.questions)} items; accuracy from the <model>_correct columns, which no validator reads",
        "tokens estimated at 4 characters per token (no tokenizer installed): input = the question only",
        f"oracle (either model right): {data.oracle([t.model for t in ordered]):.3f}",
        f"the last gate is {last}",
    )
    return BenchReport("gsm8k", str(data.source), "accuracy", tuple(systems), reference, notes)


def _items(data: Gsm8kData, contract: TextContract | None) -> list[BenchItem]:
    # single_tier_result never checks a contract; any TextContract serves to build its requests.
    chosen = contract or gates(False)[0][1]
    return [BenchItem(item_id, question, chosen) for item_id, question in data.questions]


def run(args: argparse.Namespace) -> int:
    path = args.data if args.data is not None else data_dir() / DATASET
    data = load(path, limit=args.limit)
    if not data.questions:
        raise ConfigError(f"{str(data.source)!r} has no rows")
    prices = price_table(data.source, args.prices)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(data.models)
    unknown = [m for m in models if m not in data.models]
    if unknown or len(models) < 2:
        raise ConfigError(f"--models needs two or more of {list(data.models)}; got {models}")
    ledger = open_ledger(args.ledger)
    try:
        tiers = tiers_for(models, prices)
        report = run_bench(data, tiers, integer=args.integer_answers, ledger=ledger)
    finally:
        if ledger is not None:
            ledger.close()
    return emit(report, args.out)
