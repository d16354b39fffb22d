"""Every Python example in the README runs offline and type-checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A fence opens and closes at the start of a line (CommonMark); backticks inside strings don't count.
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.DOTALL | re.MULTILINE)
#: Examples that need the [local] extra and a model server are checked by mypy only.
NEEDS_LOCAL = "cascade.local"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, tmp_path: Path) -> None:
    block = BLOCKS[index]
    if NEEDS_LOCAL in block:
        pytest.skip("needs the local model server: covered by the live tests")
    script = tmp_path / f"example_{index}.py"
    script.write_text(block)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(), capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, f"README example {index} failed:\n{block}\n{result.stderr[-3000:]}"


@pytest.mark.slow
def test_readme_examples_type_check(tmp_path: Path) -> None:
    for index, block in enumerate(BLOCKS):
        (tmp_path / f"readme_example_{index}.py").write_text(block)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *sorted(map(str, tmp_path.glob("*.py")))],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
