"""Warm code gate vs a naive cold subprocess, on the same candidates, in one run.

Warm: :class:`validators.code.CodeContract` with a started fork-server
sandbox and warm mypy workers (their one-off start-up is printed apart).
Cold: per candidate, a fresh directory, ``python -m mypy f.py`` then
``python -m pytest f.py`` (the program plus its visible tests as test
functions), each a new interpreter with no mypy cache.  Generated code is
untrusted, so the cold commands also run in user/network namespaces under
Landlock and rlimits (a few milliseconds; they do not change the picture).

Candidates are recorded HumanEval programs from ``$CASCADE_DATA_DIR/humaneval-ldb``.

    python benchmarks/code_gate.py [--n 30] [--data PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cascade.settings import data_dir
from cascade.types import Completion, Usage
from validators import _isolation
from validators.code import CodeContract
from validators.sandbox import Sandbox
from validators.typecheck import TypeChecker

MODELS = ("starcoder", "codellama", "gpt-3.5-turbo-0613", "gpt-4-1106-preview")


def candidates(folder: Path, n: int) -> list[dict[str, Any]]:
    """``n`` recorded programs, taking the models in turn."""
    rows = {m: [json.loads(line) for line in (folder / m / "seed.jsonl").open()] for m in MODELS}
    by_id = {m: {r["task_id"]: r for r in rs} for m, rs in rows.items()}
    ids = [r["task_id"] for r in rows[MODELS[0]]]
    return [by_id[MODELS[i % len(MODELS)]][ids[i % len(ids)]] for i in range(n)]


def contract_for(row: dict[str, Any], sandbox: Sandbox, checker: TypeChecker) -> CodeContract:
    return CodeContract(row["entry_point"], tests=row["given_tests"], prompt=row["prompt"], sandbox=sandbox,
                        typechecker=checker)  # fmt: skip


def warm(rows: list[dict[str, Any]]) -> tuple[float, list[float], float, list[bool]]:
    sandbox, checker = Sandbox(), TypeChecker()
    started = time.perf_counter()
    sandbox.start()
    checker.start()
    contract_for(rows[0], sandbox, checker).check_sync(rows[0]["solution"])  # first fork
    startup = time.perf_counter() - started
    latencies, verdicts = [], []
    try:
        for row in rows:
            t0 = time.perf_counter()
            verdicts.append(contract_for(row, sandbox, checker).check_sync(row["solution"]).passed)
            latencies.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        asyncio.run(_batch(rows, sandbox, checker))
        batch = (time.perf_counter() - t0) / len(rows)
    finally:
        sandbox.close()
        checker.close()
    return startup, latencies, batch, verdicts


async def _batch(rows: list[dict[str, Any]], sandbox: Sandbox, checker: TypeChecker) -> None:
    from cascade.protocols import CheckContext

    async def no_calls(*_: object) -> Completion:
        raise RuntimeError("no model calls")

    await asyncio.gather(*(
        contract_for(r, sandbox, checker).check(Completion(r["solution"], Usage(0, 0), model=""),
                                                CheckContext("", no_calls))
        for r in rows
    ))  # fmt: skip


def cold_file(row: dict[str, Any]) -> str:
    program = contract_for(row, Sandbox(), TypeChecker()).program(row["solution"]).full
    tests = "".join(
        f"\n\ndef test_visible_{i}():\n" + "".join(f"    {line}\n" for line in t.splitlines())
        for i, t in enumerate(row["given_tests"])
    )
    return program + tests


def _isolate(work: str) -> None:
    _isolation.unshare_namespaces(network=True, pid=False)
    # Read anywhere (mypy and pytest look around), write only the work dir, no network.
    _isolation.landlock(read_only=["/"], read_write=[work, "/dev/null"], executable=["/"])
    _isolation.apply_rlimits(
        _isolation.Limits(cpu_s=60, memory_bytes=16 << 30, file_bytes=50 << 20, processes=None)
    )


def cold(rows: list[dict[str, Any]]) -> tuple[list[float], list[bool]]:
    latencies, verdicts = [], []
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for row in rows:
        with tempfile.TemporaryDirectory(prefix="cold-gate-") as work:
            Path(work, "f.py").write_text(cold_file(row))
            t0 = time.perf_counter()
            ok = True
            for tool in ("mypy", "pytest"):
                args = [sys.executable, "-m", tool, "f.py"] + (
                    ["-q", "-p", "no:cacheprovider"] if tool == "pytest" else []
                )
                done = subprocess.run(args, cwd=work, env={**env, "HOME": work}, capture_output=True, timeout=120,
                                      preexec_fn=lambda w=work: _isolate(w))  # type: ignore[misc]  # fmt: skip
                if done.returncode != 0:
                    ok = False
                    break
            latencies.append(time.perf_counter() - t0)
            verdicts.append(ok)
    return latencies, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=30, help="candidates (default 30)")
    parser.add_argument("--data", type=Path, default=None, help="humaneval-ldb folder")
    args = parser.parse_args()
    folder = args.data or data_dir() / "humaneval-ldb"
    rows = candidates(folder, args.n)
    startup, warm_lat, warm_batch, warm_ok = warm(rows)
    cold_lat, cold_ok = cold(rows)
    warm_median, cold_median = statistics.median(warm_lat), statistics.median(cold_lat)
    print(f"{len(rows)} recorded HumanEval candidates, {os.cpu_count()} cores")
    print(f"warm gate start-up (once): {startup:.2f} s")
    print(f"warm gate, one at a time: median {warm_median:.3f} s/candidate (p90 {_p90(warm_lat):.3f} s)")
    print(f"warm gate, batch in parallel: {warm_batch:.3f} s/candidate")
    print(f"cold mypy + pytest:       median {cold_median:.3f} s/candidate (p90 {_p90(cold_lat):.3f} s)")
    print(f"speed-up (median, one at a time): {cold_median / warm_median:.1f}x")
    agree = sum(1 for a, b in zip(warm_ok, cold_ok, strict=True) if a == b)
    print(
        f"verdicts agree on {agree}/{len(rows)} (mypy flags differ: the warm gate tolerates untyped imports)"
    )
    return 0


def _p90(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.9) - 1)]


if __name__ == "__main__":
    sys.exit(main())
