"""``cascade run``: one prompt, or a JSONL batch with concurrency and a progress bar.

Tiers come from ``--tier MODEL[@PROVIDER]`` (prices from the price table) or
from ``--tiers FILE``, a JSON list of :class:`~cascade.tiers.Tier` fields, for
servers the price table doesn't know (a local llama.cpp or vLLM server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from cascade.contracts import JsonContract
from cascade.engine import Cascade, CascadeResult
from cascade.errors import CascadeError, ConfigError
from cascade.jsonl import read_jsonl
from cascade.tiers import Tier, tier

__all__ = ["load_tiers", "register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="send one prompt (or a JSONL batch) through a live cascade with a JSON-schema contract",
        description="Exit code: 0 when every output was accepted, 1 when some were not, 2 on a usage error.",
    )
    parser.add_argument("prompt", nargs="?", help="the prompt text, or - to read it from stdin")
    parser.add_argument("--batch", type=Path, default=None,
                        help='JSONL file of {"prompt": ..., "id": ...} lines, run concurrently')  # fmt: skip
    parser.add_argument(
        "--output", type=Path, default=None, help="write batch results here as JSONL (default: stdout)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="batch requests in flight at once")
    parser.add_argument("--tier", action="append", default=[], metavar="MODEL[@PROVIDER]",
                        help="a tier from the price table; repeat; cheapest is tried first")  # fmt: skip
    parser.add_argument("--tiers", type=Path, default=None, help="JSON file: a list of tier objects")
    parser.add_argument("--schema", type=Path, required=True, help="JSON schema file the answer must meet")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible server for every --tier")
    parser.add_argument("--profile", default=None, help="structured-output profile of that server")
    parser.add_argument("--budget", type=float, default=None, help="$ cap per request")
    parser.add_argument(
        "--deadline", type=float, default=None, help="seconds per request, all tiers included"
    )
    parser.add_argument("--ledger", type=Path, default=None, help="SQLite ledger to record every attempt in")
    parser.add_argument("--store-text", action="store_true", help="keep prompts and responses in the ledger")
    parser.set_defaults(handler=_run)


def load_tiers(path: Path) -> list[Tier]:
    """Tiers from a JSON list of objects with :class:`Tier`'s fields (prices may come from the table)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read tiers file {str(path)!r}: {exc}") from None
    if not isinstance(raw, list) or not all(isinstance(t, dict) and "model" in t for t in raw):
        raise ConfigError(f"{str(path)!r} must hold a JSON list of objects, each with a 'model'")
    tiers = []
    for entry in raw:
        fields = dict(entry)
        model = fields.pop("model")
        try:
            tiers.append(tier(model, **fields))
        except TypeError as exc:
            raise ConfigError(f"{str(path)!r}: bad tier {entry!r}: {exc}") from None
    return tiers


def _tiers(args: argparse.Namespace) -> list[Tier]:
    tiers = load_tiers(args.tiers) if args.tiers is not None else []
    for spec in args.tier:
        model, _, provider = spec.partition("@")
        tiers.append(tier(model, provider=provider or "openai", base_url=args.base_url, profile=args.profile))
    if not tiers:
        raise ConfigError("give at least one --tier MODEL[@PROVIDER] or a --tiers FILE")
    return tiers


def _contract(path: Path) -> JsonContract[Any]:
    try:
        schema = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read schema {str(path)!r}: {exc}") from None
    return JsonContract(schema, name=path.stem)


def _run(args: argparse.Namespace) -> int:
    if (args.prompt is None) == (args.batch is None):
        raise ConfigError("give either a PROMPT or --batch FILE")
    contract = _contract(args.schema)
    ledger = _open_ledger(args.ledger)
    try:
        with Cascade(_tiers(args), ledger=ledger, budget_usd=args.budget, deadline_s=args.deadline,
                     best_effort=True, store_text=args.store_text) as engine:  # fmt: skip
            if args.batch is None:
                prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
                summary = _summary(engine.run(prompt, contract))
                print(json.dumps(summary, indent=2, default=str))
                return 0 if summary["accepted"] else 1
            jobs = _read_batch(args.batch)
            return asyncio.run(_run_batch(engine, contract, jobs, args))
    finally:
        if ledger is not None:
            ledger.close()


def _read_batch(path: Path) -> list[tuple[str, str]]:
    jobs = []
    for number, row in enumerate(read_jsonl(path, required=("prompt",)), start=1):
        if not isinstance(row["prompt"], str):
            raise ConfigError(f'{path}: row {number}: "prompt" must be a string')
        jobs.append((str(row.get("id", number)), row["prompt"]))
    return jobs


async def _run_batch(
    engine: Cascade, contract: JsonContract[Any], jobs: Sequence[tuple[str, str]], args: argparse.Namespace
) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    limiter = asyncio.Semaphore(max(1, args.concurrency))
    out: TextIO = args.output.open("w") if args.output is not None else sys.stdout
    accepted = 0

    async def one(job_id: str, prompt: str) -> dict[str, Any]:
        async with limiter:
            try:
                return {"id": job_id, **_summary(await engine.arun(prompt, contract))}
            except CascadeError as exc:
                return {"id": job_id, "accepted": False, "error": f"{type(exc).__name__}: {exc}"}

    columns = (TextColumn("[bold]cascade run"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, transient=True, console=_stderr_console()) as progress:
            task = progress.add_task("run", total=len(jobs))
            for finished in asyncio.as_completed([one(i, p) for i, p in jobs]):
                row = await finished
                accepted += bool(row["accepted"])
                out.write(json.dumps(row, default=str) + "\n")
                progress.advance(task)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{accepted}/{len(jobs)} accepted", file=sys.stderr)
    return 0 if accepted == len(jobs) else 1


def _summary(result: CascadeResult) -> dict[str, Any]:
    value = result.value if isinstance(result.value, Mapping | list) else result.text
    return {
        "accepted": result.accepted, "tier": result.tier, "value": value,
        "cost_usd": round(result.cost_usd, 8), "attempts": len(result.attempts),
        "escalations": result.escalations, "feedback": [v.feedback for v in result.verdicts if not v.passed],
    }  # fmt: skip


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _open_ledger(path: Path | None) -> Any:
    if path is None:
        return None
    from cascade.ledger import SQLiteLedger

    return SQLiteLedger(path)
