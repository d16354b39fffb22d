"""Warm mypy: a small pool of long-lived mypy processes with private caches.

``python -m mypy f.py`` spends about a second starting Python, importing mypy
and loading the standard library's stubs.  A :class:`TypeChecker` pays that
once per worker (:meth:`TypeChecker.start` warms every worker on the
commonly imported modules), after which one check costs tens of
milliseconds.  Workers run in clean interpreters with a scrubbed environment
and their own working directory, so no project ``mypy.ini`` or API key
reaches them; mypy only reads the program, it never runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cascade.errors import ConfigError
from validators._boot import boot_source
from validators._core import process_wide

__all__ = ["DEFAULT_FLAGS", "TypeChecker", "TypeError_", "TypeReport", "default_typechecker"]

#: Flags every check gets: report only the program's own errors, tolerate untyped libraries.
DEFAULT_FLAGS: tuple[str, ...] = (
    "--ignore-missing-imports",
    "--follow-imports=silent",
    "--no-error-summary",
    "--show-column-numbers",
    "--hide-error-context",
    "--no-color-output",
    "--no-pretty",
)
_WARMUP = "\n".join(
    f"import {m}" for m in ("math", "re", "string", "collections", "heapq", "itertools", "functools",
                            "hashlib", "bisect", "random", "statistics", "fractions", "decimal", "operator",
                            "copy", "json", "datetime", "dataclasses", "enum", "typing")
)  # fmt: skip
_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<sev>error|note): (?P<msg>.*)$")
_BOOT = boot_source("_mypy_worker")


@dataclass(frozen=True, slots=True)
class TypeError_:  # noqa: N801 - the trailing _ keeps it apart from the builtin
    """One mypy error: line and column in the checked source, message, error code."""

    line: int
    column: int
    message: str
    code: str = ""

    def __str__(self) -> str:
        code = f"  [{self.code}]" if self.code else ""
        return f"line {self.line}: {self.message}{code}"


@dataclass(frozen=True, slots=True)
class TypeReport:
    """mypy's verdict on one program; ``crashed`` holds mypy's own failure, if any."""

    ok: bool
    errors: tuple[TypeError_, ...]
    crashed: str | None = None


class TypeChecker:
    """A pool of warm mypy workers; thread-safe."""

    def __init__(self, *, workers: int | None = None) -> None:
        import os

        self.size = max(1, workers or min(2, os.cpu_count() or 1))
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start and warm every worker now (otherwise they start on first use)."""
        with self._lock:
            missing = self.size - len(self._all)
            fresh = [_Worker.spawn() for _ in range(missing)]
            self._all.extend(fresh)
        threads = [threading.Thread(target=w.warm) for w in fresh]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for worker in fresh:
            self._idle.put(worker)

    def check(self, source: str, flags: Sequence[str] = ()) -> TypeReport:
        """Type-check ``source`` (as module ``solution``) with ``DEFAULT_FLAGS`` plus ``flags``."""
        worker = self._acquire()
        try:
            raw = worker.request(source, [*DEFAULT_FLAGS, *flags])
        except (OSError, EOFError, ValueError) as exc:
            worker.close()
            with self._lock:
                self._all.remove(worker)
            return TypeReport(False, (), f"mypy worker failed: {exc}")
        self._idle.put(worker)
        return _parse(raw)

    async def acheck(self, source: str, flags: Sequence[str] = ()) -> TypeReport:
        return await asyncio.to_thread(self.check, source, flags)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()

    def _acquire(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise ConfigError("this type checker is closed")
            spawn = self._idle.empty() and len(self._all) < self.size
            if spawn:
                worker = _Worker.spawn()
                self._all.append(worker)
        if spawn:
            return worker
        return self._idle.get()


def _parse(raw: dict[str, object]) -> TypeReport:
    status = raw.get("status")
    errors = []
    for line in str(raw.get("stdout", "")).splitlines():
        match = _LINE.match(line)
        if match is None or match["sev"] != "error":
            continue
        message = match["msg"]
        code = ""
        if message.endswith("]") and "  [" in message:
            message, _, code = message.rpartition("  [")
            code = code[:-1]
        errors.append(TypeError_(int(match["line"]), int(match["col"] or 0), message.strip(), code))
    if status not in (0, 1) or (status == 1 and not errors):
        detail = (str(raw.get("stderr", "")) or str(raw.get("stdout", ""))).strip()
        return TypeReport(False, tuple(errors), f"mypy failed (status {status}): {detail[:300]}")
    return TypeReport(not errors, tuple(errors))


class _Worker:
    def __init__(self, process: subprocess.Popen[str], home: str) -> None:
        self.process = process
        self.home = home
        self._finalizer = weakref.finalize(self, _stop, process, home)

    @classmethod
    def spawn(cls) -> _Worker:
        home = tempfile.mkdtemp(prefix="cascade-mypy-")
        root = str(Path(__file__).resolve().parent)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home}
        process = subprocess.Popen(
            [sys.executable, "-E", "-s", "-c", _BOOT, root, home], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=home, text=True, bufsize=1,
        )  # fmt: skip
        return cls(process, home)

    def warm(self) -> None:
        with contextlib.suppress(OSError, EOFError, ValueError):
            self.request(_WARMUP, list(DEFAULT_FLAGS))

    def request(self, source: str, flags: list[str]) -> dict[str, object]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise EOFError("mypy worker has no pipes")
        stdin.write(json.dumps({"source": source, "flags": flags}) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise EOFError("mypy worker exited")
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise ValueError("malformed reply from the mypy worker")
        return reply

    def close(self) -> None:
        self._finalizer()


def _stop(process: subprocess.Popen[str], home: str) -> None:
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
    shutil.rmtree(home, ignore_errors=True)


default_typechecker = process_wide(TypeChecker)
