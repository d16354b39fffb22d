"""The local server manager, without the model: real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from cascade.cli import main
from cascade.errors import ConfigError
from cascade.local.model import INSTALL_HINT, MissingExtraError, find_model, require_server
from cascade.local.server import (
    LocalServer,
    LocalServerError,
    ServerConfig,
    ServerState,
    free_port,
    log_tail,
    process_alive,
)

#: Answers GET /v1/models like an OpenAI-compatible server; the port comes from argv.
DUMMY_SERVER = textwrap.dedent(
    """
    import http.server, sys
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            found = self.path == "/v1/models"
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(b'{"object": "list", "data": []}' if found else b"")
        def log_message(self, *args):
            pass
    print("dummy server up", flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """
)
#: Never listens: stands for a server stuck loading its model.
NEVER_READY = "import sys, time\nprint('loading weights...', flush=True)\ntime.sleep(600)\n"
#: Starts a grandchild in its process group and writes its pid, then serves.
WITH_CHILD = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "open(sys.argv[2], 'w').write(str(child.pid))\n" + DUMMY_SERVER
)
#: Ignores SIGTERM, so only SIGKILL stops it.
STUBBORN = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + DUMMY_SERVER


def quick(**changes: float) -> ServerConfig:
    settings = {"startup_timeout_s": 20.0, "stop_grace_s": 5.0, **changes}
    return ServerConfig(**settings)  # type: ignore[arg-type]


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


# -- ports, logs, state files ------------------------------------------------------------


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
    assert 0 < port < 65536


def test_state_file_round_trips_and_missing_file_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "server.json"
    assert ServerState.read(path) is None
    state = ServerState(1234, "http://127.0.0.1:9/v1", "m", str(tmp_path / "log"), 1.5)
    state.write(path)
    assert ServerState.read(path) == state
    assert not list(tmp_path.glob("deep/*.tmp"))


def test_garbled_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    path.write_text('{"pid": "x"')
    with pytest.raises(LocalServerError, match="cannot read the server PID file"):
        ServerState.read(path)


def test_log_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    tail = log_tail(log, lines=3)
    assert tail == "line 47\nline 48\nline 49"
    assert log_tail(tmp_path / "absent.log") == "(no server output)"


def test_process_alive_tells_a_running_process_from_a_reaped_one() -> None:
    proc = subprocess.Popen(python("pass"))
    proc.wait()
    assert process_alive(os.getpid())
    assert not process_alive(proc.pid)


def test_config_rejects_nonsense_sizes() -> None:
    with pytest.raises(ConfigError, match="n_threads"):
        ServerConfig(n_threads=0)
    with pytest.raises(ConfigError, match="startup_timeout_s"):
        ServerConfig(startup_timeout_s=0)


# -- the extra ---------------------------------------------------------------------------


def test_missing_model_package_names_the_install_command() -> None:
    with pytest.raises(MissingExtraError) as info:
        find_model("cascade-no-such-model-package")
    assert INSTALL_HINT in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_missing_server_modules_are_listed() -> None:
    with pytest.raises(MissingExtraError, match="cascade_no_such_module") as info:
        require_server(("json", "cascade_no_such_module"))
    assert INSTALL_HINT in str(info.value)


def _fake_distribution(root: Path, files: dict[str, bytes]) -> None:
    (root / "fake_model").mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    info = root / "fake_model-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-model\nVersion: 1.0\n")
    record = [f"{name},," for name in files] + ["fake_model-1.0.dist-info/METADATA,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")


def test_model_is_found_through_distribution_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_distribution(
        tmp_path, {"fake_model/__init__.py": b"raise ImportError", "fake_model/w.gguf": b"GGUF"}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = find_model("fake-model", alias="tiny")
    assert model.path == tmp_path / "fake_model" / "w.gguf"
    assert model.alias == "tiny"


def test_distribution_without_gguf_is_a_missing_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_distribution(tmp_path, {"fake_model/__init__.py": b""})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtraError, match=r"lists no \.gguf file"):
        find_model("fake-model")


def test_llama_cpp_command_passes_threads_and_context_explicitly(tmp_path: Path) -> None:
    from cascade.local.model import LocalModel

    pytest.importorskip("llama_cpp", reason="needs the [local] extra")
    config = ServerConfig(model=LocalModel(tmp_path / "m.gguf", "tiny"), n_threads=3, n_ctx=1024)
    argv = config.argv(4321)
    pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert argv[1:3] == ["-m", "llama_cpp.server"]
    assert pairs["--n_threads"] == "3" and pairs["--n_ctx"] == "1024"
    assert pairs["--host"] == "127.0.0.1" and pairs["--port"] == "4321"
    assert pairs["--model_alias"] == "tiny"


# -- starting and stopping -----------------------------------------------------------------


def test_server_is_ready_then_stopped_and_pid_file_follows(tmp_path: Path) -> None:
    state_file = tmp_path / "server.json"
    with LocalServer(quick(), command=python(DUMMY_SERVER, "{port}"), state_file=state_file) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.base_url}/models").status_code == 200
        recorded = ServerState.read(state_file)
        assert recorded is not None and recorded.pid == server.pid and recorded.base_url == server.base_url
        pid = server.pid
    assert pid is not None and not process_alive(pid)
    assert not state_file.exists()


def test_readiness_timeout_reports_the_server_output_and_kills_it(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = LocalServer(quick(startup_timeout_s=1.0), command=python(NEVER_READY), log_file=log)
    with pytest.raises(LocalServerError, match=r"did not answer .* within 1s") as info:
        server.start()
    assert "loading weights..." in str(info.value)
    assert server.pid is None  # stopped, not left behind


def test_server_that_exits_early_reports_its_exit_code_and_output() -> None:
    crash = "import sys\nsys.stderr.write('error: unknown model file\\n')\nsys.exit(3)\n"
    with pytest.raises(LocalServerError, match="exited with code 3") as info:
        LocalServer(quick(), command=python(crash)).start()
    assert "unknown model file" in str(info.value)


def test_stop_reaches_the_whole_process_group(tmp_path: Path) -> None:
    child_file = tmp_path / "child.pid"
    with LocalServer(quick(), command=python(WITH_CHILD, "{port}", str(child_file))):
        child = int(child_file.read_text())
        assert process_alive(child)
    assert exits(child)


def exits(pid: int, within_s: float = 10.0) -> bool:
    """Whether ``pid`` (not our child, so not ours to wait() for) is gone within a generous bound."""
    deadline = time.monotonic() + within_s
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sigterm_ignoring_server_is_killed_after_the_grace_period() -> None:
    server = LocalServer(quick(stop_grace_s=0.5), command=python(STUBBORN, "{port}"))
    server.start()
    pid = server.pid
    assert pid is not None
    server.stop()
    assert not process_alive(pid)
    server.stop()  # twice is fine


def test_detached_server_is_stopped_from_its_pid_file(tmp_path: Path) -> None:
    state_file = tmp_path / "server.json"
    marked = python(DUMMY_SERVER, "{port}", "llama_cpp.server")  # what `local stop` looks for
    state = LocalServer(quick(), command=marked, state_file=state_file).start().detach()
    assert process_alive(state.pid)
    assert main(["local", "status", "--state-dir", str(tmp_path)]) == 0
    assert main(["local", "stop", "--state-dir", str(tmp_path)]) == 0
    assert exits(state.pid)
    assert not state_file.exists()
    assert main(["local", "status", "--state-dir", str(tmp_path)]) == 1


def test_stop_never_signals_a_process_that_reused_the_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen(python("import time; time.sleep(600)"), start_new_session=True)
    try:
        ServerState(bystander.pid, "http://127.0.0.1:9/v1", "m", "", 0.0).write(tmp_path / "server.json")
        assert main(["local", "stop", "--state-dir", str(tmp_path)]) == 0
        assert bystander.poll() is None
        assert not (tmp_path / "server.json").exists()
    finally:
        os.killpg(bystander.pid, signal.SIGKILL)
        bystander.wait()


def test_status_removes_a_stale_pid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gone = subprocess.Popen(python("pass"))
    gone.wait()
    ServerState(gone.pid, "http://127.0.0.1:9/v1", "m", str(tmp_path / "none.log"), 0.0).write(
        tmp_path / "server.json"
    )
    assert main(["local", "status", "--state-dir", str(tmp_path)]) == 1
    assert "stale PID file" in capsys.readouterr().out
    assert not (tmp_path / "server.json").exists()
