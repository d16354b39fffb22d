"""Run untrusted Python against tests in an isolated, pre-started process tree.

:class:`Sandbox` talks to a fork server (``validators._forkserver``) started
once in a clean interpreter with a scrubbed environment; each job then costs a
few ``fork`` calls.  Per job the candidate program runs in its own session
and user/network/PID namespaces (where the kernel allows), under Landlock
(write access only to a temp dir, no TCP, no signals out), rlimits on CPU,
address space, processes and file size, a wall-clock timeout, and a capped
output file.  A separate judge process runs the tests and calls the
program's functions over a pipe, so the verdict comes from a process the
program never controls.  :meth:`Sandbox.run` says which isolation it got.

Threat model, honestly: the verdict cannot be forged by the program (it can
only return values, as any program can); the OS layers bound what it can
reach.  Not covered: kernel exploits, side channels, and programs that learn
visible test answers and hard-code them (that is what hidden tests are for).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.errors import ConfigError
from validators import _wire
from validators._boot import boot_source
from validators._core import process_wide

__all__ = [
    "Isolation",
    "Sandbox",
    "SandboxJob",
    "SandboxLimits",
    "SandboxResult",
    "TestSuite",
    "TestUnit",
    "UnitResult",
    "default_sandbox",
]

_HEADER = struct.Struct(">I")
_F_SETPIPE_SZ = 1031
_ANSWER_GRACE_S = 4.0
_BOOT = boot_source("_forkserver", "int(sys.argv[2])")


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-run caps.  ``nproc`` is RLIMIT_NPROC: 1 means no extra processes or threads."""

    timeout_s: float = 5.0
    memory_mb: int = 1024
    max_output_bytes: int = 1_000_000
    nproc: int = 1

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.memory_mb <= 0 or self.max_output_bytes <= 0 or self.nproc < 1:
            raise ConfigError(f"sandbox limits must be positive, got {self}")


@dataclass(frozen=True, slots=True)
class TestUnit:
    """One test: Python source that passes when it runs without raising."""

    __test__ = False  # not a pytest test class

    name: str
    source: str


@dataclass(frozen=True, slots=True)
class TestSuite:
    """What the judge runs: ``setup`` once, then each unit, in a namespace holding the program's functions.

    ``imports`` and ``prelude`` (trusted helper code, e.g. the prompt's) run
    first; names they define take precedence over the program's, except the
    entry point.  ``module_names`` are importable from the tests and expose
    the program's functions (``from solution import f``).
    """

    __test__ = False  # not a pytest test class

    units: tuple[TestUnit, ...]
    setup: str = ""
    prelude: str = ""
    imports: str = ""
    module_names: tuple[str, ...] = ("solution",)


@dataclass(frozen=True, slots=True)
class SandboxJob:
    """A program, the imports to run before it, its entry point, and the tests to judge it by."""

    program: str
    entry_point: str
    suite: TestSuite
    imports: str = ""
    limits: SandboxLimits = field(default_factory=SandboxLimits)


@dataclass(frozen=True, slots=True)
class UnitResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Isolation:
    """Which isolation layers a run really got."""

    user_ns: bool = False
    pid_ns: bool = False
    net_ns: bool = False
    landlock_abi: int = 0
    audit_hook: bool = False

    def describe(self) -> str:
        layers = [name for name, on in (("user namespace", self.user_ns), ("PID namespace", self.pid_ns),
                                        ("network namespace", self.net_ns), ("audit hook", self.audit_hook)) if on]  # fmt: skip
        if self.landlock_abi:
            layers.append(f"Landlock ABI {self.landlock_abi}")
        return ", ".join(layers) or "process limits only"


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """The judge's verdict: one result per unit; ``problem`` says why a run failed as a whole."""

    passed: bool
    units: tuple[UnitResult, ...]
    loaded: bool
    problem: str | None
    duration_s: float
    isolation: Isolation | None = None
    output_head: str = ""

    @property
    def passed_units(self) -> int:
        return sum(1 for u in self.units if u.passed)

    @property
    def score(self) -> float:
        return self.passed_units / len(self.units) if self.units else (1.0 if self.passed else 0.0)


class Sandbox:
    """A pool of isolated runs backed by one fork server; thread-safe, at most ``max_parallel`` at once."""

    def __init__(
        self,
        *,
        max_parallel: int | None = None,
        tmp_dir: str | os.PathLike[str] | None = None,
        namespaces: bool = True,
        landlock: bool = True,
        audit_hook: bool = True,
    ) -> None:
        self.max_parallel = max(1, max_parallel or os.cpu_count() or 1)
        self.tmp_dir = str(tmp_dir) if tmp_dir is not None else None
        self.options = {"namespaces": namespaces, "landlock": landlock, "audit": audit_hook}
        self._slots = threading.BoundedSemaphore(self.max_parallel)
        self._lock = threading.Lock()
        self._server: _ForkServer | None = None
        self._closed = False

    def start(self) -> None:
        """Start the fork server now (it otherwise starts on the first run)."""
        self._connection()

    def run(self, job: SandboxJob) -> SandboxResult:
        """Run ``job`` and wait for the verdict (never longer than its timeout plus a few seconds)."""
        with self._slots:
            return self._run(job)

    async def arun(self, job: SandboxJob) -> SandboxResult:
        return await asyncio.to_thread(self.run, job)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            server, self._server = self._server, None
        if server is not None:
            server.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------

    def _connection(self) -> _ForkServer:
        with self._lock:
            if self._closed:
                raise ConfigError("this sandbox is closed")
            if self._server is None or not self._server.alive():
                if self._server is not None:
                    self._server.close()
                self._server = _ForkServer.spawn()
            return self._server

    def _run(self, job: SandboxJob) -> SandboxResult:
        started = time.monotonic()
        nonce = secrets.token_hex(16)
        result_r, result_w = os.pipe()
        try:
            judge_r = _payload_pipe(_judge_payload(job, nonce))
        except BaseException:
            os.close(result_r)
            os.close(result_w)
            raise
        request = {**_limits_dict(job), "program": job.program, "imports": job.imports,
                   "tmp_dir": self.tmp_dir, **self.options}  # fmt: skip
        try:
            pid = self._submit(request, [result_w, judge_r])
        finally:
            os.close(result_w)
            os.close(judge_r)
        try:
            frames = _collect(result_r, started + job.limits.timeout_s + _ANSWER_GRACE_S)
        finally:
            os.close(result_r)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        return _result(job, nonce, frames, time.monotonic() - started, bool(self.options["audit"]))

    def _submit(self, request: dict[str, Any], fds: list[int]) -> int:
        for attempt in range(2):
            server = self._connection()
            try:
                return server.submit(request, fds)
            except (OSError, EOFError):
                if attempt:
                    raise ConfigError("the sandbox fork server stopped answering") from None
                server.close()
        raise AssertionError("unreachable")  # pragma: no cover


def _limits_dict(job: SandboxJob) -> dict[str, Any]:
    limits = job.limits
    return {"timeout_s": limits.timeout_s, "memory_mb": limits.memory_mb,
            "max_output_bytes": limits.max_output_bytes, "nproc": limits.nproc}  # fmt: skip


def _judge_payload(job: SandboxJob, nonce: str) -> dict[str, Any]:
    suite = job.suite
    return {
        "nonce": nonce, "entry_point": job.entry_point, "setup": suite.setup, "prelude": suite.prelude,
        "preamble": suite.imports, "module_names": list(suite.module_names),
        "units": [{"name": u.name, "source": u.source} for u in suite.units],
    }  # fmt: skip


def _payload_pipe(payload: dict[str, Any]) -> int:
    """A pipe already holding the judge's payload; only the judge ever reads it."""
    body = json.dumps(payload, ensure_ascii=True).encode("ascii")
    needed = len(body) + _HEADER.size
    read_end, write_end = os.pipe()
    try:
        if needed > 65536:
            try:
                fcntl.fcntl(write_end, _F_SETPIPE_SZ, needed)
            except OSError:
                raise ConfigError(f"the tests are too large for the sandbox ({len(body)} bytes)") from None
        os.write(write_end, _HEADER.pack(len(body)) + body)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return read_end


def _collect(fd: int, deadline: float) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while len(frames) < 2:
        try:
            frame = _wire.read_frame(fd, deadline, max_bytes=4 * 1024 * 1024)
        except _wire.FrameError:
            break
        if isinstance(frame, dict):
            frames.append(frame)
    return frames


def _result(
    job: SandboxJob, nonce: str, frames: list[dict[str, Any]], duration: float, audit: bool
) -> SandboxResult:
    verdict = next((f for f in frames if f.get("kind") == "verdict"), None)
    status = next((f for f in frames if f.get("kind") == "status"), {})
    isolation = _isolation(status.get("isolation"), audit)
    head = str(status.get("output_head", ""))
    expected = [u.name for u in job.suite.units]
    problem = _problem(job, nonce, verdict, status, expected)
    units: tuple[UnitResult, ...] = ()
    loaded = False
    if verdict is not None and verdict.get("nonce") == nonce:
        loaded = bool(verdict.get("loaded"))
        units = tuple(
            UnitResult(str(u.get("name")), u.get("passed") is True, str(u.get("detail", ""))[:600])
            for u in verdict.get("units", []) if isinstance(u, dict)
        )  # fmt: skip
    if [u.name for u in units] != expected and problem is None:
        problem = "the judge did not report every test"
    if problem is None and verdict is not None and not loaded:
        problem = str(verdict.get("load_error") or "the program could not be loaded")
    passed = problem is None and loaded and all(u.passed for u in units)
    return SandboxResult(passed, units, loaded, problem, duration, isolation, head)


def _problem(
    job: SandboxJob,
    nonce: str,
    verdict: dict[str, Any] | None,
    status: Mapping[str, Any],
    expected: list[str],
) -> str | None:
    if verdict is None:
        if status.get("timed_out"):
            return f"the tests did not finish within {job.limits.timeout_s:g} s"
        return "the sandbox gave no verdict (the judge process died)"
    if verdict.get("nonce") != nonce:
        return "the verdict failed verification"
    if int(status.get("output_bytes", 0) or 0) >= job.limits.max_output_bytes:
        return f"the program printed more than the {job.limits.max_output_bytes}-byte output cap"
    if status.get("candidate_exit") == -signal.SIGXCPU:
        return "the program used up its CPU time limit"
    return None


def _isolation(raw: Any, audit: bool) -> Isolation | None:
    if not isinstance(raw, dict):
        return None
    return Isolation(bool(raw.get("user")), bool(raw.get("pid")), bool(raw.get("net")),
                     int(raw.get("landlock_abi", 0) or 0), audit)  # fmt: skip


class _ForkServer:
    """The fork server process and the socket to it."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket, home: str) -> None:
        self.process = process
        self.sock = sock
        self.home = home
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _shutdown, process, sock, home)

    @classmethod
    def spawn(cls) -> _ForkServer:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        home = tempfile.mkdtemp(prefix="cascade-forkserver-")
        root = str(Path(__file__).resolve().parent)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home}
        try:
            process = subprocess.Popen(
                [sys.executable, "-E", "-s", "-B", "-c", _BOOT, root, str(theirs.fileno())],
                pass_fds=[theirs.fileno()], env=env, cwd=home, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            theirs.close()
        return cls(process, ours, home)

    def alive(self) -> bool:
        return self.process.poll() is None

    def submit(self, request: dict[str, Any], fds: list[int]) -> int:
        body = json.dumps(request).encode()
        with self._lock:
            socket.send_fds(self.sock, [_HEADER.pack(len(body))], fds)
            self.sock.sendall(body)
            (size,) = _HEADER.unpack(self._read_exact(_HEADER.size))
            reply = json.loads(self._read_exact(size))
        if "pid" not in reply:
            raise ConfigError(f"the sandbox could not start a job: {reply.get('error')}")
        return int(reply["pid"])

    def _read_exact(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError("the fork server closed the connection")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self._finalizer()


def _shutdown(process: subprocess.Popen[bytes], sock: socket.socket, home: str) -> None:
    sock.close()
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(OSError):
        os.rmdir(home)


default_sandbox = process_wide(Sandbox)
