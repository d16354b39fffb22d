"""The ``cascade`` command.

Subcommands register themselves from small modules (a registry, not a chain
of ifs): ``bench`` runs offline suites, ``report`` reads a ledger, ``run``
sends one prompt through a live cascade, ``prices`` lists the price table,
and ``local``/``demo`` come from :mod:`cascade.local.cli` when present.

This is the only place that configures logging: the library itself only
logs through ``structlog.get_logger("cascade")``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from cascade.errors import CascadeError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

#: Modules whose ``register(subparsers)`` adds commands; optional ones may be absent.
COMMAND_MODULES = ("cascade.cli_commands", "cascade.cli_run", "cascade.local.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cascade", description="Contract-checked LLM cascades: cheapest tier first, escalate on failure."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        module.register(subparsers)
    return parser


def configure_logging(verbosity: int) -> None:
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Resolve sys.stderr per logger, not once: it may be replaced (tests, daemons).
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except CascadeError as exc:
        print(f"cascade: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cascade: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def print_json(payload: object, path: Path | None = None) -> None:
    text = json.dumps(payload, indent=2, default=str)
    if path is None:
        print(text)
    else:
        path.write_text(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
