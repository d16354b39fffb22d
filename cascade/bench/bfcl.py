"""``cascade bench bfcl``: function-call extraction on the Berkeley Function Calling Leaderboard.

Replays real recorded outputs (a folder in the layout of
``shared/datasets/bfcl-2024-08``: ``data/``, ``result/<model>/``,
``score/<model>/``) through the real engine.  The gate is a
:class:`~validators.calls.FunctionCallContract` built from each item's
function schemas, so it sees only what a deployment sees: the question, the
offered functions and the model's reply.  The leaderboard's own per-item
verdicts (``score/``) are read only to score quality.

Models are grouped into ladders by how they answered (``-FC``: through a
function-calling API; otherwise: plain text), each ordered by price.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator, Mapping, Sequence
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
from cascade.tiers import Tier, order_by_cost
from cascade.types import ToolCall, ToolSpec
from validators.calls import FunctionCallContract

__all__ = ["BfclData", "add_arguments", "bfcl_schema", "load", "run", "run_ladder"]

DATASET = "bfcl-2024-08"
_DATA_FILE = re.compile(r"^(?P<stem>.+_test_(?P<category>.+))\.json$")
#: BFCL's dialect of JSON Schema type names -> JSON Schema (None: any value).
_TYPES: Mapping[str, str | None] = {
    "dict": "object", "float": "number", "tuple": "array", "any": None, "integer": "integer",
    "string": "string", "boolean": "boolean", "array": "array", "object": "object", "number": "number",
    "null": "null",
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Replay BFCL recorded function calls through the cascade; --limit N keeps the first N items "
        "of each category."
    )
    parser.add_argument("--models", default=None,
                        help="comma-separated models (result/ folder names) for one ladder; default: "
                             "one ladder per calling mode (-FC vs text), ordered by price")  # fmt: skip
    parser.add_argument("--prices", type=Path, default=None,
                        help="JSON price file (model -> input/output $ per 1M) merged over the built-in table")  # fmt: skip


def bfcl_schema(node: Any) -> Any:
    """Translate BFCL's schema dialect (``dict``, ``float``, ``tuple``, ``any``) into JSON Schema."""
    if isinstance(node, list):
        return [bfcl_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, str):
            if value not in _TYPES:
                raise ConfigError(f"unknown BFCL schema type {value!r}")
            mapped = _TYPES[value]
            if mapped is not None:
                out["type"] = mapped
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: bfcl_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = bfcl_schema(value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class _Item:
    item_id: str
    category: str
    line: int  # 1-based line in its data file: how score/ names failures
    question: str
    functions: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class BfclData:
    """A BFCL folder, loaded: items, recorded outputs and the leaderboard's verdicts."""

    root: Path
    items: tuple[_Item, ...]
    store: ReplayStore
    #: model -> item ids the leaderboard marked failed; only models scored on every item.
    failures: Mapping[str, frozenset[str]]
    prices: PriceTable
    #: Models left out because they lack a result or a score for some item.
    skipped: tuple[str, ...] = ()

    def quality(self, item_id: str, model: str) -> float:
        return 0.0 if item_id in self.failures[model] else 1.0

    @property
    def models(self) -> list[str]:
        return sorted(self.failures)


def load(root: Path, *, limit: int | None = None, prices: PriceTable | None = None) -> BfclData:
    data_folder = root / "data"
    if not data_folder.is_dir():
        raise ConfigError(f"{str(root)!r} is not a BFCL folder: it has no data/ subfolder")
    items: list[_Item] = []
    stems: dict[str, str] = {}
    for path in sorted(data_folder.glob("*.json")):
        match = _DATA_FILE.match(path.name)
        if match is None:
            continue
        stems[match["category"]] = match["stem"]
        items.extend(_read_items(path, match["category"], limit))
    if not items:
        raise ConfigError(f"no BFCL items under {str(data_folder)!r}")
    store = ReplayStore()
    failures: dict[str, frozenset[str]] = {}
    skipped: list[str] = []
    wanted = {i.item_id for i in items}
    for model_dir in sorted(p for p in (root / "result").glob("*") if p.is_dir()):
        recorded = _read_results(model_dir, stems)
        failed = _read_failures(root / "score" / model_dir.name, stems, items)
        if failed is None or not wanted <= recorded.keys():
            skipped.append(model_dir.name)  # not recorded and scored on every item: can't be compared
            continue
        store.extend(model_dir.name, ((i, recorded[i]) for i in wanted))
        failures[model_dir.name] = failed
    if len(failures) < 2:
        raise ConfigError(f"{str(root)!r} needs results and scores for at least two models")
    return BfclData(root, tuple(items), store, failures, prices or price_table(root), tuple(skipped))


def _read_items(path: Path, category: str, limit: int | None) -> Iterator[_Item]:
    for line_no, row in enumerate(read_jsonl(path), start=1):
        if limit is not None and line_no > limit:
            return
        functions = row["function"] if isinstance(row["function"], list) else [row["function"]]
        question = row["question"] if isinstance(row["question"], str) else json.dumps(row["question"])
        yield _Item(str(row["id"]), category, line_no, question, tuple(functions))


def _read_results(model_dir: Path, stems: Mapping[str, str]) -> dict[str, Recording]:
    recorded: dict[str, Recording] = {}
    for stem in stems.values():
        path = model_dir / f"{stem}_result.json"
        if path.exists():
            for row in read_jsonl(path):
                recorded[str(row["id"])] = _recording(row)
    return recorded


def _recording(row: Mapping[str, Any]) -> Recording:
    result = row.get("result")
    text, calls = "", tuple[ToolCall, ...]()
    if isinstance(result, list) and all(isinstance(c, dict) and len(c) == 1 for c in result):
        calls = tuple(
            ToolCall(name, args if isinstance(args, str) else json.dumps(args))
            for call in result
            for name, args in call.items()
        )
    else:
        text = result if isinstance(result, str) else json.dumps(result)
    return Recording(
        text=text, tool_calls=calls, input_tokens=_int(row.get("input_token_count")),
        output_tokens=_int(row.get("output_token_count")), latency_s=_float(row.get("latency")),
    )  # fmt: skip


def _read_failures(
    score_dir: Path, stems: Mapping[str, str], items: Sequence[_Item]
) -> frozenset[str] | None:
    by_line = {(i.category, i.line): i.item_id for i in items}
    failed: set[str] = set()
    for category in stems:
        path = score_dir / f"{category}_score.json"
        if not path.exists():
            return None
        for row in list(read_jsonl(path))[1:]:  # the first line is the summary
            item_id = by_line.get((category, int(row["id"])))
            if item_id is not None:
                failed.add(item_id)
    return frozenset(failed)


def item_contract(item: _Item) -> FunctionCallContract:
    tools = [
        ToolSpec(str(f["name"]), str(f.get("description", "")), bfcl_schema(f.get("parameters", {})))
        for f in item.functions
    ]
    # A deployment knows whether it allows parallel calls; BFCL's non-parallel categories ask for one.
    max_calls = None if "parallel" in item.category else 1
    return FunctionCallContract(tools, name=f"bfcl_{item.category}", max_calls=max_calls)


def _prompt(item: _Item) -> str:
    return f"{item.question}\n\nFunctions:\n{json.dumps(list(item.functions))}"


def ladders(data: BfclData, models_arg: str | None) -> dict[str, list[str]]:
    if models_arg:
        chosen = [m.strip() for m in models_arg.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in data.failures]
        if unknown:
            raise ConfigError(f"unknown or unscored model(s) {unknown}; available: {data.models}")
        return {"custom": chosen}
    groups = {
        "function-calling": [m for m in data.models if m.endswith("-FC")],
        "text": [m for m in data.models if not m.endswith("-FC")],
    }
    ladders = {name: models for name, models in groups.items() if len(models) >= 2}
    # A folder with one model per calling mode still makes one ladder of everything, by price.
    return ladders or {"all": list(data.models)}


def run_ladder(
    data: BfclData, ladder: str, tiers: Sequence[Tier], ledger: AttemptSink | None = None
) -> BenchReport:
    """Every single tier, the full cascade cheapest first, and cheapest -> priciest."""
    items = [BenchItem(i.item_id, _prompt(i), item_contract(i)) for i in data.items]
    ordered = list(order_by_cost(tiers, _mean_input_tokens(data, tiers[0])))
    singles = [single_tier_result(t, items, data.store, data.quality) for t in ordered]
    systems: list[SystemResult] = list(singles)
    full, _ = run_cascade_bench(
        f"cascade (all {len(ordered)} tiers)", ordered, items, data.store, data.quality, ledger=ledger
    )
    systems.append(full)
    if len(ordered) > 2:
        pair = [ordered[0], ordered[-1]]
        two, _ = run_cascade_bench(
            "cascade (cheapest > priciest)", pair, items, data.store, data.quality, ledger=ledger
        )
        systems.append(two)
    best = max(singles, key=lambda s: (s.quality, -s.cost_usd))
    notes: tuple[str, ...] = (
        f"ladder: {ladder}; {len(items)} items; quality = share the leaderboard's AST checker passed",
        "cascade tiers, cheapest first: " + " > ".join(t.name for t in ordered),
        f"reference = best single model by quality ({best.name})",
    )
    if data.skipped:
        notes += (f"left out (no result or score for every item): {', '.join(data.skipped)}",)
    return BenchReport(f"bfcl-{ladder}", str(data.root), "accuracy", tuple(systems), best.name, notes)


def _mean_input_tokens(data: BfclData, tier: Tier) -> int:
    counts = [data.store.get(tier.model, i.item_id).input_tokens or 0 for i in data.items]
    return max(1, sum(counts) // max(1, len(counts)))


def run(args: argparse.Namespace) -> int:
    root = args.data if args.data is not None else data_dir() / DATASET
    if not root.exists():
        raise ConfigError(f"BFCL folder {str(root)!r} does not exist: pass --data or set CASCADE_DATA_DIR")
    data = load(root, limit=args.limit, prices=price_table(root, args.prices))
    ledger = open_ledger(args.ledger)
    try:
        for ladder, models in ladders(data, args.models).items():
            report = run_ladder(data, ladder, tiers_for(models, data.prices), ledger)
            emit(report, args.out)
    finally:
        if ledger is not None:
            ledger.close()
    return 0


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
