"""CodeContract: program extraction, the gate's stages and their feedback, and re-asks through the engine."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from cascade import Cascade, tier
from cascade.errors import ConfigError
from cascade.providers.scripted import ScriptedProvider
from cascade.types import AttemptKind
from validators.code import (
    CodeContract,
    add_missing_imports,
    assert_suite,
    doctest_units,
    extract_program,
    hidden_test_suite,
)
from validators.sandbox import Sandbox, SandboxJob, SandboxLimits, TestSuite, TestUnit
from validators.typecheck import TypeChecker

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

PROMPT = '''from typing import List


def add(xs: List[int], k: int) -> List[int]:
    """Add k to every element.
    >>> add([1, 2], 1)
    [2, 3]
    >>> add([], 5)
    []
    """
'''
GOOD_BODY = "    return [x + k for x in xs]\n"
GOOD = PROMPT + GOOD_BODY


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


@pytest.fixture(scope="module")
def checker() -> Iterator[TypeChecker]:
    checker = TypeChecker(workers=1)
    yield checker
    checker.close()


def contract(sandbox: Sandbox, checker: TypeChecker, **options: object) -> CodeContract:
    defaults: dict[str, object] = {"tests": ["assert add([0], 2) == [2]"], "prompt": PROMPT}
    return CodeContract("add", sandbox=sandbox, typechecker=checker, **{**defaults, **options})  # type: ignore[arg-type]


# -- extraction ----------------------------------------------------------------------


def test_a_fenced_block_inside_prose_is_the_program() -> None:
    reply = f"Sure! Here it is:\n\n```python\n{GOOD}```\n\nThis adds k to each item."
    program = extract_program(reply, "add", PROMPT)
    assert program.how == "fenced" and program.source == GOOD


def test_a_bare_program_and_a_continuation_of_the_prompt() -> None:
    assert extract_program(GOOD, "add", PROMPT).how == "bare"
    continued = extract_program(GOOD_BODY, "add", PROMPT)
    assert continued.how == "continuation" and continued.source == GOOD


def test_prose_around_an_unfenced_program_is_trimmed() -> None:
    reply = f"Here is my solution:\n{GOOD}\nHope this helps!"
    program = extract_program(reply, "add", None)
    assert program.how == "trimmed" and "Hope" not in program.source


def test_a_stub_echoed_before_the_real_definition_is_blanked_keeping_lines() -> None:
    reply = PROMPT + "\n\n" + GOOD
    program = extract_program(reply, "add", PROMPT)
    assert program.source.count("def add") == 1
    assert len(program.source.splitlines()) == len(reply.splitlines())


def test_missing_imports_are_added_and_line_numbers_map_back() -> None:
    source = "def f(xs: List[float]) -> float:\n    return math.fsum(xs)\n"
    assert add_missing_imports(source).splitlines() == ["from typing import List", "import math"]
    assert add_missing_imports("import math\nx = math.pi\n") == ""
    contract = CodeContract("f", mypy=False)
    program = contract.program(source)
    assert program.full.startswith("from typing import List\nimport math\n")
    assert program.source_line(3) == 1 and program.source_line(1) is None


def test_doctests_and_visible_tests_become_units() -> None:
    units = doctest_units(PROMPT)
    assert [u.source for u in units] == ["assert (add([1, 2], 1)) == ([2, 3])", "assert (add([], 5)) == ([])"]
    setup, listed = assert_suite("import math\nassert f(1) == 2\nassert f(2) == 3\n")
    assert setup == "import math" and len(listed) == 2
    setup, pytest_style = assert_suite("def test_one():\n    assert f(1) == 2\n")
    assert [u.source for u in pytest_style] == ["test_one()"] and "def test_one" in setup
    with pytest.raises(ConfigError, match="not valid Python"):
        assert_suite(["assert f(1) =="])


def test_the_hidden_test_suite_calls_check_once() -> None:
    suite = hidden_test_suite("def check(candidate):\n    assert candidate(1) == 2\n", "f")
    assert suite.units[0].source == "check(f)"
    already = hidden_test_suite("def check(candidate):\n    pass\ncheck(f)\n", "f")
    assert already.setup == "" and "check(f)" in already.units[0].source


# -- the gate ------------------------------------------------------------------------


def test_a_correct_program_passes_every_stage(sandbox: Sandbox, checker: TypeChecker) -> None:
    result = contract(sandbox, checker).check_sync(f"```python\n{GOOD}```")
    assert result.passed, result.feedback
    assert [v.validator for v in result.verdicts] == ["python_syntax", "mypy", "tests"]
    assert result.value == GOOD


def test_syntax_errors_stop_the_gate_with_a_line_number(sandbox: Sandbox, checker: TypeChecker) -> None:
    result = contract(sandbox, checker).check_sync("def add(xs, k):\n    return [x + k for x in xs\n")
    assert [v.validator for v in result.verdicts] == ["python_syntax"]
    assert "line 2" in result.feedback


def test_a_missing_entry_point_is_reported(sandbox: Sandbox, checker: TypeChecker) -> None:
    result = contract(sandbox, checker, prompt=None).check_sync("def plus(xs, k):\n    return xs\n")
    assert not result.passed and "must define `add`" in result.feedback


def test_mypy_feedback_names_the_programs_own_line(sandbox: Sandbox, checker: TypeChecker) -> None:
    program = "def add(xs: List[int], k: int) -> List[int]:\n    total: int = 'none'\n    return xs\n"
    result = contract(sandbox, checker, prompt=None).check_sync(program)
    assert [v.validator for v in result.verdicts] == ["python_syntax", "mypy"]
    assert "line 2:" in result.feedback and "[assignment]" in result.feedback


def test_mypy_cannot_be_switched_off_from_inside_the_program(sandbox: Sandbox, checker: TypeChecker) -> None:
    program = "# mypy: ignore-errors\n# type: ignore\ndef add(xs: list[int], k: int) -> list[int]:\n    return 'x'\n"
    result = contract(sandbox, checker, prompt=None).check_sync(program)
    assert not result.passed and "line 4" in result.feedback


def test_test_failures_say_what_the_call_returned(sandbox: Sandbox, checker: TypeChecker) -> None:
    result = contract(sandbox, checker).check_sync(PROMPT + "    return [x + k + 1 for x in xs]\n")
    assert not result.passed
    assert "2 of 3 tests failed" in result.feedback  # add([], 5) == [] still holds
    assert "add([0], 2) returned [3]" in result.feedback


def test_exceptions_are_reported_with_the_programs_line(sandbox: Sandbox, checker: TypeChecker) -> None:
    result = contract(sandbox, checker, mypy=False).check_sync(PROMPT + "    return [x / 0 for x in xs]\n")
    assert "ZeroDivisionError" in result.feedback
    assert "line 11 in" in result.feedback


def test_in_place_mutation_and_expected_exceptions_behave_like_python(
    sandbox: Sandbox, checker: TypeChecker
) -> None:
    program = (
        "def fill(xs: list[int]) -> None:\n    if not xs:\n        raise ValueError('empty')\n    xs.sort()\n"
    )
    tests = [
        "xs = [3, 1, 2]\nfill(xs)\nassert xs == [1, 2, 3]",
        "try:\n    fill([])\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError('no error')",
    ]
    gate = CodeContract("fill", tests=tests, sandbox=sandbox, typechecker=checker)
    result = gate.check_sync(program)
    assert result.passed, result.feedback


def test_limits_and_entry_point_are_validated() -> None:
    with pytest.raises(ConfigError):
        CodeContract("not an identifier")
    with pytest.raises(ConfigError):
        SandboxLimits(timeout_s=0)


def test_a_sandbox_job_runs_pytest_style_tests_importing_the_solution(sandbox: Sandbox) -> None:
    suite = TestSuite(
        (TestUnit("test_one", "test_one()"),),
        setup="from solution import double\n\ndef test_one():\n    assert double(4) == 8\n",
    )
    result = sandbox.run(SandboxJob("def double(x):\n    return 2 * x\n", "double", suite))
    assert result.passed, result


# -- through the engine ----------------------------------------------------------------


def test_the_engine_reasks_with_the_feedback_and_accepts_the_fix(
    sandbox: Sandbox, checker: TypeChecker
) -> None:
    broken = "```python\n" + PROMPT + "    return xs\n```"
    fixed = "```python\n" + GOOD + "```"
    provider = ScriptedProvider({"small": [broken, fixed]})
    small = tier("gpt-4o-mini", provider="scripted", name="small", reasks=1)
    with Cascade([small], providers={"scripted": provider}) as engine:
        result = engine.run(PROMPT, contract(sandbox, checker))
    assert result.accepted and result.value == GOOD
    assert [a.kind for a in result.attempts] == [AttemptKind.FIRST, AttemptKind.REASK]
    reask = provider.requests[1][1]
    assert "add([0], 2) returned [0]" in reask.messages[-1].content
    assert reask.messages[0].role == "system" and "`add`" in reask.messages[0].content
