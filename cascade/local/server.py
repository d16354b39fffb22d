"""Start, find and stop a local OpenAI-compatible model server.

:class:`LocalServer` runs ``python -m llama_cpp.server`` on 127.0.0.1 on a
free port, in its own process group (so stopping it also stops anything it
spawned), with its output in a log file (a pipe nobody reads would fill up
and stall the server).  It waits until ``/v1/models`` answers, and stops with
SIGTERM, then SIGKILL after a grace period.

A :class:`ServerState` file (JSON: pid, base_url, log) lets one command start
a server in the background and another find or stop it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import structlog

from cascade.errors import CascadeError, ConfigError
from cascade.local.model import DEFAULT_ALIAS, LocalModel, find_model, require_server

__all__ = [
    "HOST",
    "LocalServer",
    "LocalServerError",
    "ServerConfig",
    "ServerState",
    "command_of",
    "default_state_dir",
    "default_threads",
    "free_port",
    "log_tail",
    "stop_process_group",
]

log = structlog.get_logger("cascade")

HOST = "127.0.0.1"
SERVER_MODULE = "llama_cpp.server"
STATE_FILE = "server.json"
LOG_FILE = "server.log"


class LocalServerError(CascadeError):
    """The local server did not start, did not become ready, or cannot be found."""


def default_threads() -> int:
    """CPUs this process may use, at most 8 (llama.cpp's own default here would be 1)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))


def default_state_dir() -> Path:
    """``CASCADE_LOCAL_DIR``, else ``~/.cascade/local``: where the PID file and log live."""
    env = os.environ.get("CASCADE_LOCAL_DIR")
    return Path(env) if env else Path.home() / ".cascade" / "local"


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path | None, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    if path is None or not path.is_file():
        return "(no server output)"
    text = path.read_text(errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:]) or "(no server output)"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to run the llama.cpp server; ``n_threads`` and ``n_ctx`` are always passed explicitly."""

    model: LocalModel | None = None
    port: int = 0  # 0: pick a free port
    n_threads: int = field(default_factory=default_threads)
    n_ctx: int = 2048
    startup_timeout_s: float = 120.0
    stop_grace_s: float = 10.0

    def __post_init__(self) -> None:
        if self.n_threads < 1 or self.n_ctx < 64:
            raise ConfigError(f"n_threads must be >= 1 and n_ctx >= 64, got {self.n_threads}, {self.n_ctx}")
        if self.startup_timeout_s <= 0 or self.stop_grace_s < 0:
            raise ConfigError("startup_timeout_s must be positive and stop_grace_s not negative")

    @property
    def alias(self) -> str:
        return self.model.alias if self.model is not None else DEFAULT_ALIAS

    def argv(self, port: int) -> list[str]:
        """The llama.cpp server command line (finds the bundled model if none was given)."""
        require_server()
        model = self.model or find_model()
        return [
            sys.executable, "-m", SERVER_MODULE,
            "--model", str(model.path), "--model_alias", model.alias,
            "--host", HOST, "--port", str(port),
            "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads),
            "--n_ctx", str(self.n_ctx),
        ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the PID file records about a running server."""

    pid: int
    base_url: str
    model: str
    log: str
    started_at: float

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)  # readers never see half a file

    @classmethod
    def read(cls, path: Path) -> ServerState | None:
        """The recorded state, or ``None`` when there is no file; a garbled file is an error."""
        try:
            raw = json.loads(path.read_text())
            return cls(
                pid=int(raw["pid"]), base_url=str(raw["base_url"]), model=str(raw["model"]),
                log=str(raw["log"]), started_at=float(raw["started_at"]),
            )  # fmt: skip
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LocalServerError(f"cannot read the server PID file {str(path)!r}: {exc}") from None

    def alive(self) -> bool:
        return process_alive(self.pid)


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state letter follows the parenthesised command name, which may itself hold spaces.
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def command_of(pid: int) -> str | None:
    """The command line of ``pid`` where the OS shows it (Linux ``/proc``), else ``None``."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def stop_process_group(pid: int, grace_s: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``grace_s``; True if it was running."""
    if not _signal_group(pid, signal.SIGTERM):
        if proc is not None:
            proc.wait()  # it died on its own: reap it
        return False
    if not _wait_gone(pid, grace_s, proc):
        log.warning("local_server_kill", pid=pid, grace_s=grace_s)
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, 5.0, proc)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, timeout_s: float, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None:  # our own child: wait() also reaps it
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout_s
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


class LocalServer:
    """A llama.cpp server process for the length of a ``with`` block.

    >>> with LocalServer() as server:  # doctest: +SKIP
    ...     print(server.base_url)
    http://127.0.0.1:41789/v1

    ``command`` runs another OpenAI-compatible server instead; ``{port}`` in
    it is replaced by the chosen port.  ``state_file`` records the PID so
    ``cascade local stop`` can find a server left running with :meth:`detach`.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        command: Sequence[str] | None = None,
        state_file: Path | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.command = tuple(command) if command is not None else None
        self.state_file = state_file
        self.log_file = log_file
        self.port: int | None = None
        self.state: ServerState | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._auto_log: Path | None = None

    @property
    def base_url(self) -> str:
        """The URL to put in a tier's ``base_url`` (ends in ``/v1``)."""
        if self.port is None:
            raise LocalServerError("the local server has not been started")
        return f"http://{HOST}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def model(self) -> str:
        return self.config.alias

    def start(self) -> LocalServer:
        """Start the server and wait until it answers; raises :class:`LocalServerError` if it cannot."""
        if self._proc is not None:
            raise LocalServerError(f"this server is already running (pid {self._proc.pid})")
        self.port = self.config.port or free_port()
        argv = self._argv(self.port)
        log_path = self._log_path()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as out:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        log.info("local_server_starting", pid=self._proc.pid, port=self.port, log=str(log_path))
        try:
            self._wait_ready(self._proc, log_path)
        except BaseException:
            self.stop()  # includes Ctrl-C while the model loads
            raise
        self.state = ServerState(self._proc.pid, self.base_url, self.model, str(log_path), time.time())
        if self.state_file is not None:
            self.state.write(self.state_file)
        return self

    def stop(self) -> None:
        """Stop the server and everything in its process group; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process_group(proc.pid, self.config.stop_grace_s, proc)
        if self.state_file is not None and self.state is not None and self.state.pid == proc.pid:
            self.state_file.unlink(missing_ok=True)
        if self._auto_log is not None:
            self._auto_log.unlink(missing_ok=True)
        log.info("local_server_stopped", pid=proc.pid)

    def detach(self) -> ServerState:
        """Leave the server running after this object is gone; returns what the PID file holds."""
        if self._proc is None or self.state is None:
            raise LocalServerError("the local server has not been started")
        proc, self._proc = self._proc, None
        proc.returncode = 0  # we will not wait() for it: keep Popen from warning about that
        return self.state

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _argv(self, port: int) -> list[str]:
        if self.command is None:
            return self.config.argv(port)
        return [part.replace("{port}", str(port)) for part in self.command]

    def _log_path(self) -> Path:
        if self.log_file is not None:
            return self.log_file
        if self.state_file is not None:
            return self.state_file.parent / LOG_FILE
        # A throwaway server (a with block) keeps its log only while it runs.
        self._auto_log = Path(tempfile.gettempdir()) / f"cascade-local-{os.getpid()}-{self.port}.log"
        return self._auto_log

    def _wait_ready(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        url = f"{self.base_url}/models"
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = proc.poll()
                if code is not None:
                    raise LocalServerError(
                        f"the local server exited with code {code} before it was ready; "
                        f"its output ends with:\n{log_tail(log_path)}"
                    )
                if _answers(client, url):
                    log.info("local_server_ready", url=self.base_url)
                    return
                if time.monotonic() >= deadline:
                    raise LocalServerError(
                        f"the local server did not answer {url} within {self.config.startup_timeout_s:g}s; "
                        f"its output ends with:\n{log_tail(log_path)}"
                    )
                time.sleep(0.2)


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False
