"""``cascade local serve|stop|status`` and ``cascade demo local``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cascade.errors import ConfigError
from cascade.local.model import find_model, require_server
from cascade.local.server import (
    SERVER_MODULE,
    STATE_FILE,
    LocalServer,
    ServerConfig,
    ServerState,
    command_of,
    default_state_dir,
    default_threads,
    log_tail,
    stop_process_group,
)

__all__ = ["register"]


def register(subparsers: Any) -> None:
    _register_local(subparsers)
    _register_demo(subparsers)


def _server_arguments() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=int, default=default_threads(),
                        help="llama.cpp threads (default: usable CPUs, at most 8: %(default)s)")  # fmt: skip
    common.add_argument("--ctx", type=int, default=2048, help="context size in tokens (default: %(default)s)")
    common.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    common.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for readiness")
    return common


def _state_arguments() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=None,
                        help="folder of the PID file and log (default: $CASCADE_LOCAL_DIR or ~/.cascade/local)")  # fmt: skip
    return common


def _register_local(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "local", help="run the bundled small model behind llama.cpp's OpenAI server"
    )
    commands = parser.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    state = _state_arguments()
    serve = commands.add_parser(
        "serve", parents=[_server_arguments(), state],
        help="start the server in the background and print its base_url",
    )  # fmt: skip
    serve.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops the server")
    serve.set_defaults(handler=_serve)
    stop = commands.add_parser("stop", parents=[state], help="stop the server started by `local serve`")
    stop.set_defaults(handler=_stop)
    status = commands.add_parser("status", parents=[state], help="say whether the server runs, and where")
    status.set_defaults(handler=_status)


def _state_file(args: argparse.Namespace) -> Path:
    folder: Path = args.state_dir or default_state_dir()
    return folder / STATE_FILE


def _server_config(args: argparse.Namespace) -> ServerConfig:
    require_server()
    return ServerConfig(
        model=find_model(), port=args.port, n_threads=args.threads, n_ctx=args.ctx,
        startup_timeout_s=args.startup_timeout,
    )  # fmt: skip


def _running(state_file: Path) -> ServerState | None:
    """The recorded server if it still runs; a stale PID file is removed."""
    state = ServerState.read(state_file)
    if state is not None and not state.alive():
        state_file.unlink(missing_ok=True)
        return None
    return state


def _serve(args: argparse.Namespace) -> int:
    state_file = _state_file(args)
    running = _running(state_file)
    if running is not None:
        print(f"already running (pid {running.pid}): base_url {running.base_url}", file=sys.stderr)
        print(running.base_url)
        return 0
    server = LocalServer(_server_config(args), state_file=state_file)
    if args.foreground:
        with _sigterm_exits(), server:
            _print_ready(server.base_url, server.model, server.pid)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0
    server.start()
    state = server.detach()
    _print_ready(state.base_url, state.model, state.pid)
    print(f"log: {state.log}; stop it with: cascade local stop", file=sys.stderr)
    return 0


def _print_ready(base_url: str, model: str, pid: int | None) -> None:
    print(f"local model {model!r} ready (pid {pid}); use it as a tier:", file=sys.stderr)
    print(f'  tier("{model}", base_url="{base_url}", profile="llamacpp",', file=sys.stderr)
    print("       input_per_mtok=0, output_per_mtok=0)", file=sys.stderr)
    print(base_url, flush=True)  # stdout holds only the URL, for scripts: URL=$(cascade local serve)


def _stop(args: argparse.Namespace) -> int:
    state_file = _state_file(args)
    state = ServerState.read(state_file)
    if state is None:
        print("no local server is recorded as running", file=sys.stderr)
        return 0
    command = command_of(state.pid)
    if state.alive() and command is not None and SERVER_MODULE not in command:
        # The PID was reused by an unrelated process after the server died: never signal that one.
        state_file.unlink(missing_ok=True)
        print(f"pid {state.pid} is no longer the local server ({command[:60]!r}); removed the PID file")
        return 0
    stopped = state.alive() and stop_process_group(state.pid)
    state_file.unlink(missing_ok=True)
    print(f"stopped the local server (pid {state.pid})" if stopped else "the local server had already exited")
    return 0


def _status(args: argparse.Namespace) -> int:
    state_file = _state_file(args)
    recorded = ServerState.read(state_file)
    state = _running(state_file)
    if state is None:
        note = (
            f" (removed a stale PID file; last log lines:\n{log_tail(Path(recorded.log))})"
            if recorded
            else ""
        )
        print(f"not running{note}")
        return 1
    print(f"running: pid {state.pid}, model {state.model!r}, base_url {state.base_url}, log {state.log}")
    return 0


# -- demo ---------------------------------------------------------------------------------


def _register_demo(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="live demos")
    demos = parser.add_subparsers(dest="demo", metavar="DEMO", required=True)
    local = demos.add_parser(
        "local", parents=[_server_arguments()],
        help="a two-tier cascade on the local model: unconstrained, then schema-constrained",
    )  # fmt: skip
    local.add_argument("--base-url", default=None, help="use this running server instead of starting one")
    local.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    local.add_argument("--compute-price", type=float, default=0.0, metavar="USD_PER_MTOK",
                       help="charge local tiers this $ per 1M tokens, in and out (default: 0)")  # fmt: skip
    local.add_argument(
        "--max-tokens", type=int, default=96, help="output cap per call (default: %(default)s)"
    )
    local.add_argument("--free-profile", default="plain",
                       help="profile of the unconstrained tier: plain (default) or prompt (schema in the prompt)")  # fmt: skip
    local.add_argument("--escalate-to", default=None, metavar="MODEL[@PROVIDER]",
                       help="replace tier 2 by this priced model (e.g. gpt-4o-mini; needs its API key)")  # fmt: skip
    local.add_argument("--escalate-base-url", default=None, help="base_url of the --escalate-to tier")
    local.add_argument("--escalate-profile", default=None, help="profile of the --escalate-to tier")
    local.add_argument(
        "--ledger", type=Path, default=None, help="also record the attempts in this SQLite ledger"
    )
    local.set_defaults(handler=_demo_local)


def _demo_local(args: argparse.Namespace) -> int:
    from cascade.local.demo import DemoOptions, run_demo
    from cascade.tiers import tier

    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    escalate = None
    if args.escalate_to:
        model, _, provider = args.escalate_to.partition("@")
        escalate = tier(model, provider=provider or "openai", base_url=args.escalate_base_url,
                        profile=args.escalate_profile)  # fmt: skip
    server = (
        _server_config(args)
        if args.base_url is None
        else ServerConfig(n_threads=args.threads, n_ctx=args.ctx)
    )
    options = DemoOptions(
        base_url=args.base_url, server=server, price_per_mtok=args.compute_price, max_tokens=args.max_tokens,
        limit=args.limit, free_profile=args.free_profile, escalate_to=escalate,
        ledger_path=str(args.ledger) if args.ledger else None,
    )  # fmt: skip
    with _sigterm_exits():
        results = run_demo(options)
    accepted = sum(r.accepted for r in results)
    print(f"\naccepted {accepted}/{len(results)} sentences")
    return 0


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt for the block, so ``with`` blocks stop the server."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
