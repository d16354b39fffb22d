"""``cascade bench humaneval``: a code-gated cascade replayed over recorded HumanEval programs.

Each task is sent to the cheapest tier first; its recorded program must pass
the code gate (:class:`validators.code.CodeContract`: parse, mypy, then the
visible tests and the prompt's doctests in the sandbox) or the task escalates.
Quality is the hidden test (``test``, then ``check(entry_point)``), run in
the same sandbox: only this module sees it, never the gate.  The folder format
is the one in ``../shared/datasets/humaneval-ldb``: ``problems.jsonl`` and one
``<model>/seed.jsonl`` per model.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cascade.bench.common import open_ledger, price_table, tiers_for
from cascade.bench.replay import BenchItem, run_cascade_bench, single_tier_result
from cascade.bench.report import BenchReport, SystemResult, format_table, write_outputs
from cascade.engine import CascadeResult
from cascade.errors import CascadeError, ConfigError
from cascade.jsonl import read_jsonl
from cascade.providers.replay import Recording, ReplayStore
from cascade.settings import data_dir
from cascade.tiers import Tier
from cascade.types import Completion, Usage
from validators.code import CodeContract, hidden_test_suite
from validators.sandbox import Sandbox, SandboxLimits
from validators.typecheck import TypeChecker

__all__ = ["HumanEvalData", "Task", "add_arguments", "load_folder", "run", "run_bench"]

DATASET = "humaneval-ldb"
QUALITY_LABEL = "pass rate"


@dataclass(frozen=True, slots=True)
class Task:
    """What a deployment sees of one problem (the hidden ``test`` is kept for scoring only)."""

    task_id: str
    prompt: str
    entry_point: str
    given_tests: tuple[str, ...]
    test: str


@dataclass(frozen=True, slots=True)
class HumanEvalData:
    folder: Path
    tasks: tuple[Task, ...]
    #: model -> task_id -> recorded row
    rows: Mapping[str, Mapping[str, Mapping[str, Any]]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tiers", default=None,
                        help="comma-separated models, cheapest first (default: every model folder, by price)")  # fmt: skip
    parser.add_argument(
        "--reference", default=None, help="model to compare cost with (default: the priciest)"
    )
    parser.add_argument("--prices", type=Path, default=None,
                        help="price file (default: prices.json in or beside the data folder)")  # fmt: skip
    parser.add_argument("--no-mypy", action="store_true", help="gate on syntax and tests only")
    parser.add_argument("--mypy-flag", action="append", default=[], metavar="FLAG",
                        help="extra mypy flag for the gate, e.g. --mypy-flag=--strict (repeatable)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per sandbox run (default 10)")


def run(args: argparse.Namespace) -> int:
    folder = args.data if args.data is not None else data_dir() / DATASET
    data = load_folder(Path(folder), limit=args.limit)
    tiers = build_tiers(data, args.tiers.split(",") if args.tiers else None, args.prices)
    ledger = open_ledger(args.ledger)
    try:
        report = run_bench(
            data, tiers, reference=args.reference, mypy=not args.no_mypy, mypy_flags=args.mypy_flag,
            timeout_s=args.timeout, ledger=ledger,
        )  # fmt: skip
    finally:
        if ledger is not None:
            ledger.close()
    print(format_table(report))
    cascade_row = report.system("cascade")
    ratio = report.cost_ratio("cascade")
    print(f"\ncascade pass rate {cascade_row.quality:.3f} at {ratio:.3f}x the cost of {report.reference} "
          f"(which passes {report.system(report.reference).quality:.3f})")  # fmt: skip
    paths = write_outputs(report, Path(args.out), stem="humaneval")
    print(f"wrote {paths['json']} and {paths['png']}")
    return 0


# -- loading ---------------------------------------------------------------------------


def load_folder(folder: Path, *, limit: int | None = None) -> HumanEvalData:
    """Read ``problems.jsonl`` (optional) and every ``<model>/seed.jsonl``; tasks all models answered."""
    if not folder.is_dir():
        raise ConfigError(f"HumanEval folder {str(folder)!r} does not exist")
    rows: dict[str, dict[str, Mapping[str, Any]]] = {}
    for seed in sorted(folder.glob("*/seed.jsonl")):
        rows[seed.parent.name] = {
            str(r["task_id"]): r for r in list(read_jsonl(seed, ("task_id", "solution")))
        }
    if not rows:
        raise ConfigError(f"{str(folder)!r} has no <model>/seed.jsonl files")
    problems_path = folder / "problems.jsonl"
    problems = (
        list(read_jsonl(problems_path, ("task_id", "prompt", "entry_point", "test")))
        if problems_path.exists()
        else []
    )
    by_id = {str(p["task_id"]): p for p in problems}
    order = list(by_id) or list(next(iter(rows.values())))
    shared = [tid for tid in order if all(tid in model_rows for model_rows in rows.values())]
    tasks = tuple(_task(tid, by_id.get(tid), rows) for tid in shared[:limit])
    if not tasks:
        raise ConfigError(f"no task in {str(folder)!r} has a recorded program from every model")
    return HumanEvalData(folder, tasks, rows)


def _task(task_id: str, problem: Mapping[str, Any] | None, rows: Mapping[str, Mapping[str, Any]]) -> Task:
    recorded = [model_rows[task_id] for model_rows in rows.values()]
    source = problem or recorded[0]
    for key in ("prompt", "entry_point", "test"):
        if key not in source:
            raise ConfigError(f"task {task_id!r} has no {key!r} (in problems.jsonl or the seed files)")
    given: Any = next((r["given_tests"] for r in recorded if r.get("given_tests")), [])
    return Task(task_id, str(source["prompt"]), str(source["entry_point"]), _given(given, task_id),
                str(source["test"]))  # fmt: skip


def _given(raw: Any, task_id: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        import ast

        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise ConfigError(f"task {task_id!r}: given_tests is not a Python list literal") from None
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise ConfigError(f"task {task_id!r}: given_tests must be a list of strings")
    return tuple(raw)


def build_tiers(data: HumanEvalData, models: Sequence[str] | None, price_file: Path | None) -> list[Tier]:
    """Replay tiers for ``models`` (default: all, cheapest first), priced from the dataset's price file."""
    chosen = list(models) if models else list(data.rows)
    unknown = [m for m in chosen if m not in data.rows]
    if unknown:
        raise ConfigError(f"no recordings for {', '.join(unknown)}; models here: {', '.join(data.rows)}")
    tiers = tiers_for(chosen, price_table(data.folder, price_file))
    return tiers if models else sorted(tiers, key=lambda t: t.expected_cost())


# -- the bench -------------------------------------------------------------------------


def run_bench(
    data: HumanEvalData,
    tiers: Sequence[Tier],
    *,
    reference: str | None = None,
    mypy: bool = True,
    mypy_flags: Sequence[str] = (),
    timeout_s: float = 5.0,
    ledger: Any = None,
) -> BenchReport:
    """Every single tier and the cascade over ``data``; quality from the hidden tests."""
    reference = reference or max(tiers, key=lambda t: t.expected_cost()).name
    if reference not in {t.name for t in tiers}:
        raise ConfigError(f"reference {reference!r} is not one of the tiers")
    limits = SandboxLimits(timeout_s=timeout_s)
    with Sandbox() as sandbox:
        checker = TypeChecker()
        try:
            if mypy:
                checker.start()
            items = [
                BenchItem(t.task_id, t.prompt, CodeContract(
                    t.entry_point, tests=t.given_tests, prompt=t.prompt, mypy=mypy, mypy_flags=mypy_flags,
                    limits=limits, sandbox=sandbox, typechecker=checker, instructions=False))
                for t in data.tasks
            ]  # fmt: skip
            store = _store(data, tiers)
            hidden = asyncio.run(_score_hidden(data, tiers, items, sandbox))
            gate = asyncio.run(_gate_all(data, tiers, items))
            quality = _quality(hidden)
            singles = [
                _with_gate(single_tier_result(t, items, store, quality), t, data, gate, hidden) for t in tiers
            ]
            cascade_row, results = run_cascade_bench("cascade", tiers, items, store, quality, ledger=ledger)
        finally:
            checker.close()
    cascade_row = _with_cascade_extra(cascade_row, items, results, hidden)
    notes = _notes(data, tiers, hidden, mypy, mypy_flags)
    return BenchReport(
        "humaneval", str(data.folder), QUALITY_LABEL, (*singles, cascade_row), reference, notes,
        columns=(("gate_false_pass_rate", "gate false-pass"),),
    )  # fmt: skip


def _store(data: HumanEvalData, tiers: Sequence[Tier]) -> ReplayStore:
    store = ReplayStore()
    for tier in tiers:
        for task in data.tasks:
            row = data.rows[tier.model][task.task_id]
            store.add(tier.model, task.task_id, _recording(row))
    return store


def _recording(row: Mapping[str, Any]) -> Recording:
    # Recorded counts where a row has them; `token_num` is 0 in the LDB files, so it is not a count.
    output = row.get("output_tokens")
    if output is None and isinstance(row.get("token_num"), int) and row["token_num"] > 0:
        output = row["token_num"]
    input_tokens = row.get("input_tokens")
    return Recording(
        text=str(row["solution"]),
        input_tokens=int(input_tokens) if isinstance(input_tokens, int) else None,
        output_tokens=int(output) if isinstance(output, int) else None,
    )


async def _score_hidden(
    data: HumanEvalData, tiers: Sequence[Tier], items: Sequence[BenchItem], sandbox: Sandbox
) -> dict[tuple[str, str], bool]:
    async def one(task: Task, item: BenchItem, model: str) -> tuple[tuple[str, str], bool]:
        contract = item.contract
        assert isinstance(contract, CodeContract)
        program = contract.program(str(data.rows[model][task.task_id]["solution"]))
        suite = hidden_test_suite(task.test, task.entry_point, task.prompt)
        result = await sandbox.arun(contract.job(program, suite))
        return (task.task_id, model), result.passed

    jobs = [one(task, item, t.model) for task, item in zip(data.tasks, items, strict=True) for t in tiers]
    return dict(await asyncio.gather(*jobs))


async def _gate_all(
    data: HumanEvalData, tiers: Sequence[Tier], items: Sequence[BenchItem]
) -> dict[tuple[str, str], bool]:
    from cascade.protocols import CheckContext

    async def no_calls(*_: object) -> Completion:
        raise ConfigError("the code gate makes no model calls")

    async def one(task: Task, item: BenchItem, model: str) -> tuple[tuple[str, str], bool]:
        text = str(data.rows[model][task.task_id]["solution"])
        completion = Completion(text, Usage(0, 0, estimated=True), model=model)
        check = await item.contract.check(completion, CheckContext(item.prompt, no_calls))
        return (task.task_id, model), check.passed

    jobs = [one(task, item, t.model) for task, item in zip(data.tasks, items, strict=True) for t in tiers]
    return dict(await asyncio.gather(*jobs))


def _quality(hidden: Mapping[tuple[str, str], bool]) -> Any:
    def quality(item_id: str, model: str) -> float:
        return 1.0 if hidden[(item_id, model)] else 0.0

    return quality


def _with_gate(
    row: SystemResult, tier: Tier, data: HumanEvalData, gate: Mapping[tuple[str, str], bool],
    hidden: Mapping[tuple[str, str], bool],
) -> SystemResult:  # fmt: skip
    keys = [(t.task_id, tier.model) for t in data.tasks]
    passed_gate = [k for k in keys if gate[k]]
    false_pass = [k for k in passed_gate if not hidden[k]]
    false_reject = [k for k in keys if not gate[k] and hidden[k]]
    extra = {
        "gate_pass_rate": _share(len(passed_gate), len(keys)),
        "gate_false_passes": len(false_pass),
        "gate_false_pass_rate": _share(len(false_pass), len(passed_gate)),
        "gate_false_rejects": len(false_reject),
        "gate_false_pass_items": [k[0] for k in false_pass],
    }
    return replace(row, extra={**row.extra, **extra})


def _with_cascade_extra(
    row: SystemResult, items: Sequence[BenchItem], results: Sequence[CascadeResult | CascadeError],
    hidden: Mapping[tuple[str, str], bool],
) -> SystemResult:  # fmt: skip
    accepted = [
        (item.item_id, r.model) for item, r in zip(items, results, strict=True)
        if isinstance(r, CascadeResult) and r.accepted and r.model is not None
    ]  # fmt: skip
    false_pass = [k for k in accepted if not hidden[k]]
    extra = {
        "gate_false_passes": len(false_pass),
        "gate_false_pass_rate": _share(len(false_pass), len(accepted)),
        "gate_false_pass_items": [k[0] for k in false_pass],
        "best_effort": len(items) - len(accepted),
    }
    return replace(row, extra={**row.extra, **extra})


def _share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def _cost_note(data: HumanEvalData, tiers: Sequence[Tier]) -> str:
    recordings = [_recording(data.rows[t.model][task.task_id]) for t in tiers for task in data.tasks]
    counted = sum(1 for r in recordings if r.input_tokens is not None and r.output_tokens is not None)
    if counted == len(recordings):
        return "cost: recorded token counts"
    return (f"cost: token counts estimated (~4 characters per token) for {len(recordings) - counted} of "
            f"{len(recordings)} calls, which have no recorded counts")  # fmt: skip


def _notes(
    data: HumanEvalData, tiers: Sequence[Tier], hidden: Mapping[tuple[str, str], bool], mypy: bool,
    mypy_flags: Iterable[str],
) -> tuple[str, ...]:  # fmt: skip
    recorded = [(k, bool(data.rows[k[1]][k[0]].get("is_solved"))) for k in hidden
                if "is_solved" in data.rows[k[1]][k[0]]]  # fmt: skip
    agree = sum(1 for k, solved in recorded if hidden[k] == solved)
    gate = (
        "syntax, "
        + (f"mypy {' '.join(mypy_flags)}".strip() + ", " if mypy else "")
        + "visible tests + doctests"
    )
    notes = [
        f"gate: {gate}; quality: hidden tests run in the same sandbox",
        _cost_note(data, tiers),
        "cascade rows ship the best-scoring output when no tier passes the gate (best effort)",
    ]
    if recorded:
        notes.append(
            f"hidden-test results agree with the recorded is_solved on {agree}/{len(recorded)} programs"
        )
    return tuple(notes)
