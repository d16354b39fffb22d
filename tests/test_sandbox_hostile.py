"""Hostile programs: each is contained and fails the code gate.

Each program is written so that it would PASS its visible test if its attack
worked (the write, the read of a key, the connection...), so a failing gate
shows containment, and the side effects are checked from outside as well.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade.types import CheckResult
from validators._isolation import landlock_abi
from validators.code import CodeContract
from validators.sandbox import Sandbox, SandboxJob, SandboxLimits, TestSuite, TestUnit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

PLANTED = "sk-planted-0123456789abcdef"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


def gate(box: Sandbox, program: str, test: str, timeout_s: float = 2.0) -> CheckResult:
    contract = CodeContract(
        "f", tests=[test], mypy=False, limits=SandboxLimits(timeout_s=timeout_s), sandbox=box
    )
    return contract.check_sync(program)


def test_a_honest_program_passes(sandbox: Sandbox) -> None:
    result = gate(sandbox, "def f():\n    return 1\n", "assert f() == 1")
    assert result.passed, result.feedback


def test_infinite_loop_times_out(sandbox: Sandbox) -> None:
    result = gate(sandbox, "def f():\n    while True:\n        pass\n", "assert f() == 1", timeout_s=1.0)
    assert not result.passed
    assert "time limit" in result.feedback


def test_fork_bomb_is_stopped(sandbox: Sandbox) -> None:
    program = "import os\n\ndef f():\n    for _ in range(200):\n        os.fork()\n    return 1\n"
    result = gate(sandbox, program, "assert f() == 1")
    assert not result.passed
    assert "fork" in result.feedback or "time limit" in result.feedback


def test_memory_bomb_hits_the_address_space_limit(sandbox: Sandbox) -> None:
    program = "def f():\n    block = bytearray(8 * 1024 ** 3)\n    return len(block) > 0\n"
    result = gate(sandbox, program, "assert f() is True")
    assert not result.passed
    assert "MemoryError" in result.feedback


def test_write_outside_the_temp_dir_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    program = (
        f"def f():\n    with open({str(target)!r}, 'w') as out:\n        out.write('x')\n    return True\n"
    )
    result = gate(sandbox, program, "assert f() is True")
    assert not result.passed
    assert not target.exists()


def test_deleting_files_outside_the_temp_dir_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    program = f"import os, shutil\n\ndef f():\n    os.remove({str(victim)!r})\n    return True\n"
    result = gate(sandbox, program, "assert f() is True")
    assert not result.passed
    assert victim.read_text() == "keep me"


def test_writing_inside_its_own_temp_dir_is_allowed(sandbox: Sandbox) -> None:
    program = "def f():\n    open('scratch.txt', 'w').write('ok')\n    return open('scratch.txt').read()\n"
    result = gate(sandbox, program, "assert f() == 'ok'")
    assert result.passed, result.feedback


KEY_HUNTER = """
import os

def f():
    for name, value in os.environ.items():
        if value.startswith('sk-'):
            return value
    for pid in os.listdir('/proc'):
        try:
            with open(f'/proc/{pid}/environ', 'rb') as handle:
                for entry in handle.read().split(b'\\0'):
                    if entry.startswith(b'OPENAI_API_KEY='):
                        return entry.split(b'=', 1)[1].decode()
        except OSError:
            pass
    return None
"""


def test_an_api_key_in_the_parents_environment_never_reaches_the_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    with Sandbox() as fresh:  # started while the key is set
        result = gate(fresh, KEY_HUNTER, f"assert f() == {PLANTED!r}")
    assert not result.passed
    assert PLANTED not in result.feedback.replace(f"== {PLANTED!r}", "")


def test_network_connections_fail(sandbox: Sandbox) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.3)
        port = server.getsockname()[1]
        program = (
            f"import socket\n\ndef f():\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "    s.sendall(b'leak')\n    return True\n"
        )
        result = gate(sandbox, program, "assert f() is True")
        with pytest.raises(TimeoutError):
            server.accept()
    assert not result.passed


@pytest.mark.parametrize("swallow", [False, True], ids=["plain", "errors-swallowed"])
def test_100mb_of_output_is_capped_and_fails(sandbox: Sandbox, swallow: bool) -> None:
    body = "    print('x' * (100 * 1024 * 1024))\n"
    if swallow:
        body = "    try:\n        print('x' * (100 * 1024 * 1024))\n    except OSError:\n        pass\n"
    result = gate(sandbox, f"def f():\n{body}    return 1\n", "assert f() == 1")
    assert not result.passed
    assert "output cap" in result.feedback or "File too large" in result.feedback


def test_exiting_before_the_tests_run_fails(sandbox: Sandbox) -> None:
    program = "import os\nprint('all tests passed')\nos._exit(0)\n\ndef f():\n    return 0\n"
    result = gate(sandbox, program, "assert f() == 1")
    assert not result.passed
    assert "exited" in result.feedback


def test_exiting_inside_the_call_fails(sandbox: Sandbox) -> None:
    program = "import os, sys\n\ndef f():\n    print('passed')\n    sys.stdout.flush()\n    os._exit(0)\n"
    assert not gate(sandbox, program, "assert f() == 1").passed


def test_sys_exit_while_loading_fails(sandbox: Sandbox) -> None:
    result = gate(sandbox, "import sys\nsys.exit(0)\n\ndef f():\n    return 1\n", "assert f() == 1")
    assert not result.passed
    assert "SystemExit" in result.feedback


PATCHER = """
import builtins

class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __bool__(self):
        return True

builtins.AssertionError = type('NotAnAssertion', (Exception,), {})
builtins.abs = lambda value: 0
builtins.isinstance = lambda *args: True

def f():
    return AlwaysEqual()
"""


@pytest.mark.parametrize(
    "test", ["assert f() == 42", "assert abs(f() - 42) < 1", "assert f()", "assert isinstance(f(), int)"]
)
def test_patching_builtins_and_rigged_equality_do_not_pass(sandbox: Sandbox, test: str) -> None:
    assert not gate(sandbox, PATCHER, test).passed


def test_forged_verdict_frames_do_not_pass(sandbox: Sandbox) -> None:
    program = """
import json, os, struct

def f():
    fake = json.dumps({"kind": "verdict", "loaded": True, "units": [{"name": "t", "passed": True}]}).encode()
    for fd in range(256):
        try:
            os.write(fd, struct.pack('>I', len(fake)) + fake)
        except OSError:
            pass
    os._exit(0)
"""
    assert not gate(sandbox, program, "assert f() == 1").passed


def test_signalling_the_parent_fails_and_the_sandbox_survives(sandbox: Sandbox) -> None:
    program = "import os, signal\n\ndef f():\n    os.kill(os.getppid(), signal.SIGKILL)\n    os.killpg(0, signal.SIGKILL)\n    return 1\n"
    assert not gate(sandbox, program, "assert f() == 1").passed
    assert gate(sandbox, "def f():\n    return 1\n", "assert f() == 1").passed


@pytest.mark.skipif(landlock_abi() < 4, reason="needs Landlock ABI 4 (filesystem and TCP rules)")
def test_the_os_layers_contain_the_program_without_the_audit_hook(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    target = tmp_path / "escaped.txt"
    attacks = {
        "write": f"open({str(target)!r}, 'w').write('x')",
        "delete": f"__import__('os').remove({str(victim)!r})",
        "proc": "open('/proc/1/environ', 'rb').read()",
        "connect": "__import__('socket').create_connection(('127.0.0.1', 9), timeout=1)",
    }
    with Sandbox(audit_hook=False) as bare:
        for name, attack in attacks.items():
            job = SandboxJob(
                f"def f():\n    {attack}\n    return 1\n",
                "f",
                TestSuite((TestUnit(name, "assert f() == 1"),)),
            )
            result = bare.run(job)
            assert not result.passed, name
            assert result.isolation is not None and result.isolation.landlock_abi >= 4
    assert victim.read_text() == "keep"
    assert not target.exists()


def test_the_result_reports_its_isolation(sandbox: Sandbox) -> None:
    job = SandboxJob("def f():\n    return 1\n", "f", TestSuite((TestUnit("t", "assert f() == 1"),)))
    result = sandbox.run(job)
    assert result.passed
    assert result.isolation is not None and result.isolation.audit_hook
    assert result.isolation.describe()
    if os.geteuid() == 0 or result.isolation.user_ns:
        assert result.isolation.net_ns and result.isolation.pid_ns
