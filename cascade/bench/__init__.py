"""Offline benches: the real engine replayed over recorded outputs of real models.

Each suite is a module with ``add_arguments(parser)`` and ``run(args) -> int``,
listed in :data:`SUITES` and imported only when chosen.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType
from typing import Protocol, cast

__all__ = ["SUITES", "Suite", "load_suite"]

#: suite name -> (module, one-line description)
SUITES: dict[str, tuple[str, str]] = {
    "bfcl": ("cascade.bench.bfcl", "function-call extraction on BFCL recorded outputs (JSON contracts)"),
    "humaneval": ("cascade.bench.humaneval", "code generation on HumanEval recordings (sandboxed code gate)"),
    "gsm8k": ("cascade.bench.gsm8k", "grade-school math on RouteLLM recordings (free-text validators)"),
    "mtbench": ("cascade.bench.mtbench", "MT-Bench with a replayed GPT-4 judge (judge thresholds)"),
}


class Suite(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def load_suite(name: str) -> Suite:
    module: ModuleType = importlib.import_module(SUITES[name][0])
    return cast(Suite, module)
