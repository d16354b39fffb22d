"""The sandbox's fork server and per-job supervisor (runs in its own clean interpreter).

``validators.sandbox`` starts this module in a fresh interpreter with a
scrubbed environment (so no API key is ever in its memory), it imports the
commonly used modules once, then serves jobs: each job costs a ``fork``, not
an interpreter start.

Process tree of one job::

    fork server ──fork──> supervisor (new session; owns the job's temp dir)
                             ├──fork──> judge      runs the tests; never runs candidate code
                             └──unshare + fork──> candidate (PID 1 of new user/net/PID namespaces)

The judge calls the candidate's functions over a pipe and writes the verdict
to the caller's result pipe; the candidate never holds that pipe, so it cannot
forge a verdict.  The supervisor enforces the wall-clock limit, kills the
candidate's namespace, reports how the candidate ended, and removes the temp
dir.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import shutil
import signal
import site
import socket
import struct
import sys
import tempfile
import time
from typing import Any

from validators import _isolation, _wire

__all__ = ["main", "python_paths"]

PRELOAD = (
    "typing", "math", "cmath", "re", "string", "collections", "collections.abc", "heapq", "itertools",
    "functools", "hashlib", "bisect", "random", "statistics", "fractions", "decimal", "operator", "copy",
    "json", "datetime", "dataclasses", "enum", "abc", "array", "numbers", "textwrap", "unicodedata",
    "time", "traceback", "types", "linecache", "base64", "struct", "calendar", "pprint", "io",
)  # fmt: skip
_HEADER = struct.Struct(">I")
_GRACE_S = 1.0


def python_paths() -> list[str]:
    """Directories of the Python installation and its site-packages (read-only inside the sandbox)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    paths = {os.path.realpath(p) for p in roots if p}
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(p for p in paths if os.path.exists(p))


def main(sock_fd: int) -> None:
    """Serve jobs on ``sock_fd`` until the caller closes it."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from validators import _judge, _sandbox_child  # noqa: F401 - loaded once, shared by every fork

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    _isolation.set_parent_death_signal(signal.SIGTERM)
    sock = socket.socket(fileno=sock_fd)
    system = {"python_paths": python_paths(), "landlock_abi": _isolation.landlock_abi()}
    while True:
        try:
            job, fds = _receive(sock)
        except (EOFError, OSError):
            return
        if len(fds) != 2:
            _reply(sock, {"error": "a job needs exactly two pipe ends"})
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            _close_all(fds)
            _reply(sock, {"error": f"fork failed: {exc}"})
            continue
        if pid == 0:
            sock.close()
            _child_main(job, fds, system)
        _close_all(fds)
        _reply(sock, {"pid": pid})


def _child_main(job: dict[str, Any], fds: list[int], system: dict[str, Any]) -> None:
    code = 70
    try:
        supervise(job, fds[0], fds[1], system)
        code = 0
    except BaseException:  # a supervisor must always exit, never unwind into the server loop
        pass
    finally:
        os._exit(code)


def _receive(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    header, fds, _, _ = socket.recv_fds(sock, _HEADER.size, 4)
    if not header:
        _close_all(fds)
        raise EOFError
    while len(header) < _HEADER.size:
        more = sock.recv(_HEADER.size - len(header))
        if not more:
            raise EOFError
        header += more
    (size,) = _HEADER.unpack(header)
    body = bytearray()
    while len(body) < size:
        chunk = sock.recv(min(size - len(body), 1 << 20))
        if not chunk:
            raise EOFError
        body += chunk
    import json

    if len(fds) != 2:
        _close_all(fds)
        return {}, []
    return json.loads(body), fds


def _reply(sock: socket.socket, payload: dict[str, Any]) -> None:
    import json

    body = json.dumps(payload).encode()
    sock.sendall(_HEADER.pack(len(body)) + body)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


# -- the supervisor of one job -------------------------------------------------------


def supervise(job: dict[str, Any], result_fd: int, judge_fd: int, system: dict[str, Any]) -> None:
    """Run one job: start judge and candidate, enforce the time limit, report, clean up."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    timeout = float(job["timeout_s"])
    deadline = time.monotonic() + timeout + _GRACE_S
    job_dir = tempfile.mkdtemp(prefix="cascade-sbx-", dir=job.get("tmp_dir") or None)
    work_dir = os.path.join(job_dir, "work")
    os.mkdir(work_dir, 0o700)
    output_path = os.path.join(job_dir, "output")
    to_candidate_r, to_candidate_w = os.pipe()
    to_judge_r, to_judge_w = os.pipe()
    judge_pid = os.fork()
    if judge_pid == 0:
        _run_process(lambda: _start_judge(job, judge_fd, result_fd, to_candidate_w, to_judge_r, system))
    os.close(judge_fd)
    namespaces = (
        _isolation.unshare_namespaces(network=True)
        if job.get("namespaces", True)
        else {"user": False, "pid": False, "net": False}
    )
    candidate_pid = os.fork()
    if candidate_pid == 0:
        os.close(result_fd)
        _run_process(lambda: _start_candidate(job, to_candidate_r, to_judge_w, work_dir, output_path, system))
    for fd in (to_candidate_r, to_candidate_w, to_judge_r, to_judge_w):
        os.close(fd)
    judge_status = _wait(judge_pid, deadline)
    timed_out = judge_status is None
    if timed_out:
        _kill(judge_pid)
        judge_status = _wait(judge_pid, None)
    _kill(candidate_pid)
    candidate_status = _wait(candidate_pid, None)
    output_bytes, output_head = _output_summary(output_path)
    report = {
        "kind": "status", "judge_exit": judge_status, "candidate_exit": candidate_status,
        "timed_out": timed_out, "output_bytes": output_bytes, "output_head": output_head,
        "isolation": {**namespaces, "landlock_abi": system["landlock_abi"] if job.get("landlock", True) else 0},
    }  # fmt: skip
    with contextlib.suppress(OSError):
        _wire.write_frame(result_fd, report)
    os.close(result_fd)
    _remove_tree(job_dir)


def _run_process(start: Any) -> None:
    code = 0
    try:
        start()
    except BaseException:  # a forked child must never return into its parent's code
        code = 70
    finally:
        os._exit(code)


def _start_judge(
    job: dict[str, Any], payload_fd: int, result_fd: int, to_candidate: int, from_candidate: int,
    system: dict[str, Any],
) -> None:  # fmt: skip
    from validators import _judge

    _judge.main(job, payload_fd, result_fd, to_candidate, from_candidate, system)


def _start_candidate(
    job: dict[str, Any], requests: int, replies: int, work_dir: str, output_path: str, system: dict[str, Any]
) -> None:
    from validators import _sandbox_child

    _sandbox_child.main(job, requests, replies, work_dir, output_path, system)


def _wait(pid: int, deadline: float | None) -> int | None:
    """Wait for ``pid``; its exit code (negative = signal), or None if ``deadline`` passed first."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if deadline is not None and time.monotonic() >= deadline:
            return None
        try:
            pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            time.sleep(0.002)
            continue
        try:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _output_summary(path: str) -> tuple[int, str]:
    try:
        with open(path, "rb") as handle:
            head = handle.read(2048)
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return 0, ""
    return size, head.decode("utf-8", "replace")


def _remove_tree(path: str) -> None:
    def make_writable(func: Any, target: str, _exc: Any) -> None:
        # The candidate may have taken permissions away from its own files.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)

    shutil.rmtree(path, onerror=make_writable)


if __name__ == "__main__":  # pragma: no cover - started by validators.sandbox
    main(int(sys.argv[1]))
