"""The candidate process: loads the untrusted program and answers the judge's calls.

Everything security-relevant happens before the program runs: file
descriptors are closed, stdout/stderr go to a size-capped file, the working
directory is a fresh temp dir, the environment is emptied, Landlock and
rlimits are applied, and an audit hook refuses process, signal, socket and
out-of-tree file operations (a second layer for kernels without Landlock or
namespaces).  Nothing this process says is trusted by the judge: it only
returns plain values, as any program could.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import signal
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

from validators import _isolation, _wire

__all__ = ["main"]

_REQUESTS_FD = 3
_REPLIES_FD = 4
_MAX_NAMES = 500
_DENIED_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
    "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "socket.__new__", "os.startfile",
    "sys.settrace", "sys.setprofile", "os.setuid", "os.setgid", "os.chroot",
})  # fmt: skip
_PATH_EVENTS = frozenset({
    "os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
    "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copytree", "os.mkfifo", "os.mknod",
})  # fmt: skip


def main(
    job: dict[str, Any], requests: int, replies: int, work_dir: str, output_path: str, system: dict[str, Any]
) -> None:
    _isolation.set_parent_death_signal(signal.SIGKILL)
    _redirect_fds(requests, replies, output_path)
    os.chdir(work_dir)
    os.environ.clear()
    os.environ.update({"HOME": work_dir, "TMPDIR": work_dir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = work_dir  # type: ignore[attr-defined]
    landlocked = 0
    if job.get("landlock", True):
        landlocked = _isolation.landlock(
            read_only=[*system["python_paths"], "/usr/share/zoneinfo", "/dev/urandom", "/dev/zero"],
            read_write=[work_dir, os.devnull],
        )
    if not landlocked:
        # Without Landlock, root is only kept out of the rest of the machine by its uid.
        with contextlib.suppress(OSError):
            _isolation.drop_root()
    timeout = float(job["timeout_s"])
    _isolation.apply_rlimits(
        _isolation.Limits(
            cpu_s=math.ceil(timeout) + 1,
            memory_bytes=int(job["memory_mb"]) * 1024 * 1024,
            file_bytes=int(job["max_output_bytes"]),
            processes=int(job.get("nproc", 1)),
        )
    )
    if job.get("audit", True):
        sys.addaudithook(_audit_hook(os.path.realpath(work_dir)))
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    _serve(str(job["program"]), str(job.get("imports", "")))


def _redirect_fds(requests: int, replies: int, output_path: str) -> None:
    output = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    # Move the two pipes to fixed numbers above stdio, then close everything else.
    requests_copy, replies_copy = os.dup(requests), os.dup(replies)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.dup2(requests_copy, _REQUESTS_FD)
    os.dup2(replies_copy, _REPLIES_FD)
    os.closerange(_REPLIES_FD + 1, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536)


def _audit_hook(work_dir: str) -> Callable[[str, tuple[Any, ...]], None]:
    realpath, join, getcwd, fsdecode = os.path.realpath, os.path.join, os.getcwd, os.fsdecode
    inside = work_dir + os.sep

    def allowed_write(path: Any) -> bool:
        if isinstance(path, int):
            return True
        try:
            text = fsdecode(path)
            full = realpath(join(getcwd(), text))
        except Exception:  # an unreadable path is a denied path
            return False
        return full == work_dir or full.startswith(inside) or full == "/dev/null"

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _DENIED_EVENTS or event.startswith("ctypes."):
            raise PermissionError(f"the sandbox does not allow {event}")
        if event == "open" and args:
            path, mode, flags = (*args, None, None)[:3]
            text = path if isinstance(path, str) else ""
            if text.startswith(("/proc", "/sys")):
                raise PermissionError(f"the sandbox does not allow reading {text}")
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)
            )
            if writing and not allowed_write(path):
                raise PermissionError(f"the sandbox only allows writing inside its temp dir, not {path!r}")
        elif event in _PATH_EVENTS and args:
            for path in args[:2]:
                if isinstance(path, str | bytes | os.PathLike) and not allowed_write(path):
                    raise PermissionError(f"the sandbox does not allow {event} outside its temp dir")

    return hook


def _serve(program: str, imports: str) -> None:
    module = types.ModuleType("solution")
    module.__file__ = "solution.py"
    sys.modules["solution"] = module
    lines = program.splitlines()
    try:
        if imports:
            exec(compile(imports, "<imports>", "exec", dont_inherit=True), module.__dict__)
        exec(compile(program, "solution.py", "exec", dont_inherit=True), module.__dict__)
    except BaseException as exc:  # whatever the program raises while loading is its failure
        _wire.write_frame(_REPLIES_FD, {"load_error": _describe(exc, lines)})
        return
    _wire.write_frame(_REPLIES_FD, {"loaded": _exports(module.__dict__)})
    while True:
        try:
            request = _wire.read_frame(_REQUESTS_FD, None)
        except _wire.FrameError:
            return
        _wire.write_frame(_REPLIES_FD, _handle(module.__dict__, request, lines))


def _exports(namespace: dict[str, Any]) -> dict[str, Any]:
    callables: list[str] = []
    values: dict[str, Any] = {}
    for name, value in list(namespace.items())[: _MAX_NAMES * 4]:
        if name.startswith("__") or isinstance(value, types.ModuleType):
            continue
        if callable(value):
            callables.append(name)
        elif len(values) < _MAX_NAMES:
            with contextlib.suppress(Exception):
                encoded = _wire.encode(value)
                if not (isinstance(encoded, dict) and encoded.get("#") == "o"):
                    values[name] = encoded
    return {"callables": callables[:_MAX_NAMES], "values": values}


def _handle(namespace: dict[str, Any], request: Any, lines: list[str]) -> dict[str, Any]:
    try:
        name = str(request["call"])
        args = _wire.decode(request["args"])
        kwargs = _wire.decode(request["kwargs"])
    except Exception as exc:  # a malformed request is answered, not fatal
        return {"error": f"bad request: {exc}"}
    func = namespace.get(name)
    if not callable(func):
        return {"error": f"the program does not define a function named {name!r}"}
    try:
        result = func(*args, **kwargs)
    except BaseException as exc:  # any exception is the candidate's answer
        return {"raised": _describe(exc, lines)}
    try:
        return {"value": _wire.encode(result), "args_after": [_after(a) for a in args]}
    except BaseException as exc:  # a result that cannot be sent is reported as such
        return {"error": f"the result could not be transferred: {type(exc).__name__}: {_text(exc)}"}


def _after(arg: Any) -> Any:
    # Tests may check that a function sorted or filled a list in place: send mutable args back.
    return _wire.encode(arg) if type(arg) in (list, dict, set, bytearray) else None


def _describe(exc: BaseException, lines: list[str]) -> dict[str, Any]:
    where = []
    with contextlib.suppress(Exception):
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == "solution.py" and frame.lineno:
                text = lines[frame.lineno - 1].strip() if 0 < frame.lineno <= len(lines) else ""
                where.append([frame.lineno, frame.name, text[:160]])
    if isinstance(exc, SyntaxError) and exc.filename == "solution.py" and exc.lineno:
        where.append([exc.lineno, "<module>", (exc.text or "").strip()[:160]])
    base = next(
        (k.__name__ for k in type(exc).__mro__ if getattr(builtins, k.__name__, None) is k), "Exception"
    )
    return {"type": type(exc).__name__[:80], "builtin": base, "message": _text(exc), "where": where[-3:]}


def _text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # a hostile __str__ may raise anything
        text = "<unprintable>"
    return text if len(text) <= 300 else text[:297] + "..."
