"""The judge process: runs the tests, calling the candidate's functions over a pipe.

The judge never executes candidate code.  The tests see a proxy for each of
the program's functions; a call sends plain arguments to the candidate
process and gets back a plain value (or the exception it raised), so every
``assert`` is evaluated here, on plain data, with this process's untouched
builtins.  What the candidate can do is exactly what any program can do:
return values.  Exiting early, patching builtins, returning objects with a
rigged ``__eq__``, printing "passed" or signalling a parent cannot turn a
failing test into a passing one.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import signal
import sys
import time
import traceback
import types
from typing import Any

from validators import _isolation, _wire

__all__ = ["main"]

_DETAIL_CHARS = 400
_REPR_CHARS = 160


class _Stop(BaseException):
    """No more calls can be made: the candidate died, or time ran out."""


class CandidateError(Exception):
    """The program raised an exception that has no builtin equivalent here."""


class _Link:
    """The pipe pair to the candidate process, with the job's deadline."""

    def __init__(self, to_candidate: int, from_candidate: int, deadline: float) -> None:
        self.to_candidate = to_candidate
        self.from_candidate = from_candidate
        self.deadline = deadline
        self.calls: list[str] = []
        self.stopped: str | None = None

    def receive(self, what: str) -> Any:
        if self.stopped is not None:
            raise _Stop(self.stopped)
        try:
            return _wire.read_frame(self.from_candidate, self.deadline)
        except _wire.FrameError as exc:
            timed_out = str(exc) == "timed out"
            self.stopped = (
                f"{what} did not finish within the time limit"
                if timed_out
                else f"the program exited or crashed during {what}"
            )
            raise _Stop(self.stopped) from None

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        shown = _call_text(name, args, kwargs)
        self.calls.append(shown)
        try:
            request = {"call": name, "args": _wire.encode(list(args)), "kwargs": _wire.encode(kwargs)}
        except ValueError as exc:
            raise TypeError(f"cannot pass the arguments of {shown} to the program: {exc}") from None
        if self.stopped is not None:
            raise _Stop(self.stopped)
        try:
            _wire.write_frame(self.to_candidate, request)
        except OSError:
            self.stopped = f"the program exited or crashed before {shown}"
            raise _Stop(self.stopped) from None
        reply = self.receive(shown)
        return self._result(shown, reply, args)

    def _result(self, shown: str, reply: Any, args: tuple[Any, ...]) -> Any:
        if not isinstance(reply, dict):
            raise CandidateError(f"{shown}: malformed reply from the program")
        if "raised" in reply:
            raise _exception_from(shown, reply["raised"])
        if "error" in reply:
            raise CandidateError(f"{shown}: {str(reply['error'])[:_DETAIL_CHARS]}")
        try:
            value = _wire.decode(reply.get("value"))
            _copy_back(args, reply.get("args_after"))
        except Exception as exc:  # an undecodable reply is the program's failure
            raise CandidateError(f"{shown}: the program's reply could not be read: {exc}") from None
        self.calls[-1] = f"{shown} returned {_short(value)}"
        return value


def _copy_back(args: tuple[Any, ...], after: Any) -> None:
    if not isinstance(after, list) or len(after) != len(args):
        return
    for original, encoded in zip(args, after, strict=True):
        if encoded is None or type(original) not in (list, dict, set, bytearray):
            continue
        updated = _wire.decode(encoded)
        if type(updated) is not type(original) or updated == original:
            continue
        if isinstance(original, list | bytearray):
            original[:] = updated
        else:
            original.clear()
            original.update(updated)


def _exception_from(shown: str, raised: Any) -> BaseException:
    if not isinstance(raised, dict):
        return CandidateError(f"{shown} raised an exception")
    name = str(raised.get("type", "Exception"))[:80]
    message = str(raised.get("message", ""))[:_DETAIL_CHARS]
    base = getattr(builtins, str(raised.get("builtin", "")), None)
    exc_type: type[Exception] = (
        base if isinstance(base, type) and issubclass(base, Exception) else CandidateError
    )
    exc = exc_type(message if name == exc_type.__name__ else f"{name}: {message}")
    # The feedback names the call and the program's own line, not this process's traceback.
    exc.cascade_detail = f"{shown} raised {name}: {message}{_where_text(raised.get('where'))}"  # type: ignore[attr-defined]
    return exc


def _where_text(where: Any) -> str:
    spots = []
    for entry in where[-2:] if isinstance(where, list) else []:
        if isinstance(entry, list) and len(entry) == 3:
            line, func, text = entry
            spots.append(f"line {line} in {func}: {str(text)[:100]}")
    return f" ({'; '.join(spots)})" if spots else ""


class _Proxy:
    """Stands in for one of the program's functions inside the tests."""

    __slots__ = ("__name__", "_link")

    def __init__(self, link: _Link, name: str) -> None:
        self._link = link
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._link.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__} of the program under test>"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_CHARS else text[: _REPR_CHARS - 3] + "..."


def _call_text(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    text = f"{name}({', '.join(parts)})"
    return text if len(text) <= 2 * _REPR_CHARS else text[: 2 * _REPR_CHARS - 4] + "...)"


# -- the judge's process ---------------------------------------------------------------


def main(
    job: dict[str, Any], payload_fd: int, result_fd: int, to_candidate: int, from_candidate: int,
    system: dict[str, Any],
) -> None:  # fmt: skip
    _isolation.set_parent_death_signal(signal.SIGKILL)
    _isolation.set_dumpable(False)  # peers cannot ptrace this process or read its memory
    _close_other_fds({0, 1, 2, payload_fd, result_fd, to_candidate, from_candidate})
    started = time.monotonic()
    payload = _wire.read_frame(payload_fd, started + 5.0)
    os.close(payload_fd)
    if job.get("landlock", True):
        _isolation.landlock(read_only=[*system["python_paths"], "/usr/share/zoneinfo"], read_write=[])
    timeout = float(job["timeout_s"])
    _isolation.apply_rlimits(
        _isolation.Limits(
            cpu_s=math.ceil(timeout) + 2,
            memory_bytes=int(job["memory_mb"]) * 1024 * 1024,
            file_bytes=0,
            processes=None,
        )
    )
    deadline = started + timeout
    link = _Link(to_candidate, from_candidate, deadline)
    verdict = run(payload, link)
    verdict["nonce"] = payload.get("nonce")
    _wire.write_frame(result_fd, verdict)


def _close_other_fds(keep: set[int]) -> None:
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = list(range(3, 256))
    for fd in open_fds:
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def run(payload: dict[str, Any], link: _Link) -> dict[str, Any]:
    """Load the candidate, set up the test namespace, run every unit; the verdict as plain data."""
    units = [(str(u["name"]), str(u["source"])) for u in payload.get("units", [])]
    namespace: dict[str, Any] = {"__name__": "__cascade_tests__", "__builtins__": builtins}
    notes: list[str] = []
    _exec_quietly(payload.get("preamble", ""), namespace, "<test imports>", notes)
    _exec_quietly(payload.get("prelude", ""), namespace, "<prompt>", notes)
    try:
        hello = link.receive("loading the program")
    except _Stop as stop:
        return _all_failed(units, str(stop), loaded=False)
    if not isinstance(hello, dict) or "loaded" not in hello:
        error = hello.get("load_error") if isinstance(hello, dict) else None
        return _all_failed(units, _load_error_text(error), loaded=False)
    _install(namespace, hello["loaded"], link, str(payload.get("entry_point", "")), payload)
    setup_error = _run_source(str(payload.get("setup", "")), namespace, "<setup>", link)
    if setup_error is not None:
        return _all_failed(units, f"the test setup failed: {setup_error}", loaded=True)
    results = []
    for name, source in units:
        if link.stopped is not None:
            results.append({"name": name, "passed": False, "detail": f"not run: {link.stopped}"})
            continue
        link.calls.clear()
        error = _run_source(source, namespace, "<test>", link)
        results.append({"name": name, "passed": error is None, "detail": error or ""})
    return {"kind": "verdict", "loaded": True, "load_error": None, "units": results, "notes": notes}


def _exec_quietly(source: str, namespace: dict[str, Any], filename: str, notes: list[str]) -> None:
    if not source:
        return
    try:
        exec(compile(source, filename, "exec", dont_inherit=True), namespace)
    except BaseException as exc:  # trusted text that fails to run is noted, not fatal
        notes.append(f"{filename} did not run: {type(exc).__name__}: {exc}")


def _install(
    namespace: dict[str, Any], loaded: Any, link: _Link, entry: str, payload: dict[str, Any]
) -> None:
    callables = loaded.get("callables", []) if isinstance(loaded, dict) else []
    values = loaded.get("values", {}) if isinstance(loaded, dict) else {}
    exported: dict[str, Any] = {}
    for name in callables if isinstance(callables, list) else []:
        if isinstance(name, str) and name.isidentifier():
            exported[name] = _Proxy(link, name)
    for name, encoded in values.items() if isinstance(values, dict) else []:
        if isinstance(name, str) and name.isidentifier():
            with contextlib.suppress(Exception):
                exported[name] = _wire.decode(encoded)
    for name, value in exported.items():
        # Helpers the prompt defined stay the prompt's; the entry point is always the program's.
        if name == entry or name not in namespace:
            namespace[name] = value
    if entry and entry not in exported:
        namespace[entry] = _Proxy(link, entry)
    for module_name in payload.get("module_names", ["solution"]):
        module = types.ModuleType(str(module_name))
        module.__dict__.update(exported)
        if entry:
            module.__dict__[entry] = namespace[entry]
        sys.modules[str(module_name)] = module


def _run_source(source: str, namespace: dict[str, Any], filename: str, link: _Link) -> str | None:
    """Run test code; None when it passed, else a short description of the first failure."""
    if not source.strip():
        return None
    try:
        exec(compile(source, filename, "exec", dont_inherit=True), namespace)
    except _Stop as stop:
        return str(stop)
    except BaseException as exc:  # every failure of a test is reported, whatever it is
        return _failure_text(exc, source, filename, link)
    return None


def _failure_text(exc: BaseException, source: str, filename: str, link: _Link) -> str:
    line = _failing_line(exc, source, filename)
    detail = getattr(exc, "cascade_detail", None)
    if detail is not None:
        text = str(detail)
    elif isinstance(exc, AssertionError):
        message = f" ({exc})" if str(exc) else ""
        text = f"{line or 'assertion'} failed{message}"
        if link.calls:
            text += f": {link.calls[-1]}"
    else:
        text = f"{type(exc).__name__}: {exc}" + (f" at `{line}`" if line else "")
        if link.calls:
            text += f" (last call: {link.calls[-1]})"
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _failing_line(exc: BaseException, source: str, filename: str) -> str:
    lines = source.splitlines()
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == filename and frame.lineno and 0 < frame.lineno <= len(lines):
            return lines[frame.lineno - 1].strip()[:200]
    return ""


def _load_error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return "the program could not be loaded"
    where = _where_text(error.get("where"))
    return f"loading the program raised {error.get('type')}: {error.get('message')}{where}"


def _all_failed(units: list[tuple[str, str]], reason: str, *, loaded: bool) -> dict[str, Any]:
    return {
        "kind": "verdict", "loaded": loaded, "load_error": None if loaded else reason,
        "units": [{"name": name, "passed": False, "detail": reason} for name, _ in units], "notes": [],
    }  # fmt: skip
