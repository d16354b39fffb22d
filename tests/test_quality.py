"""Project conventions as tests: strict typing, lint, formatting and exported names."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cascade
import validators

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_mypy_strict_passes_on_the_packages() -> None:
    result = _run(sys.executable, "-m", "mypy", "--strict", "cascade", "validators")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the [dev] extra")
def test_ruff_lint_and_format_are_clean() -> None:
    lint = _run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout


def _modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [m.name for m in pkgutil.walk_packages(path, prefix) if not m.name.split(".")[-1].startswith("_")]


@pytest.mark.parametrize("module_name", _modules(cascade) + _modules(validators))
def test_every_public_module_exports_what_it_lists(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:  # an optional extra (llama-cpp) that is not installed
        pytest.skip(f"optional dependency missing: {exc.name}")
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ lists missing names {missing}"


def test_validators_import_only_the_engine_protocol_and_value_types() -> None:
    allowed = {"cascade.types", "cascade.errors", "cascade.protocols"}
    offenders = []
    for path in (ROOT / "validators").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("from cascade", "import cascade")):
                target = stripped.split()[1]
                if target not in allowed:
                    offenders.append(f"{path.name}: {stripped}")
    assert not offenders, offenders
