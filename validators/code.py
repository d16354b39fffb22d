"""Code contracts: the answer is a Python program that parses, type-checks and passes its tests.

:class:`CodeContract` extracts the program from a model's reply (a fenced
block, a bare program, or a completion that continues the prompt), then runs
three gate stages, cheapest first, stopping at the first failure:

1. ``python_syntax``: the program compiles and defines the entry point;
2. ``mypy``: a warm mypy (see :mod:`validators.typecheck`) finds no errors;
3. ``tests``: the visible tests and the prompt's doctest examples pass in the
   sandbox (see :mod:`validators.sandbox`).

Each failing stage returns short feedback with line numbers of the model's
own program, written for a re-ask.  Names a program uses but never imports
(``math``, ``List``...) are imported for it, as benchmark harnesses do, and
the accepted value is the runnable program including those imports.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import re
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from cascade.errors import ConfigError
from cascade.protocols import CheckContext
from cascade.types import CheckResult, Completion, Message, Request, Verdict
from validators.sandbox import (
    Sandbox,
    SandboxJob,
    SandboxLimits,
    SandboxResult,
    TestSuite,
    TestUnit,
    default_sandbox,
)
from validators.typecheck import TypeChecker, TypeReport, default_typechecker

__all__ = [
    "DEFAULT_AUTO_IMPORTS",
    "CodeContract",
    "Program",
    "add_missing_imports",
    "assert_suite",
    "doctest_units",
    "extract_program",
    "hidden_test_suite",
]

_MODULES = ("math", "cmath", "re", "string", "collections", "heapq", "itertools", "functools", "hashlib",
            "bisect", "random", "statistics", "fractions", "decimal", "operator", "copy", "sys", "json",
            "datetime", "time", "array", "numbers", "textwrap", "unicodedata")  # fmt: skip
#: Name a program uses without importing -> the import a benchmark harness would have added.
DEFAULT_AUTO_IMPORTS: Mapping[str, str] = {
    **{name: f"from typing import {name}" for name in typing.__all__ if name[:1].isupper()},
    **{module: f"import {module}" for module in _MODULES},
}
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"^(?:def |async def |class |import |from |@|[A-Za-z_][A-Za-z0-9_]* *=)", re.M)
_MAX_FEEDBACK_ITEMS = 3


@dataclass(frozen=True, slots=True)
class Program:
    """A program found in a reply: the model's ``source``, the ``imports`` added for it, and how it was found."""

    source: str
    imports: str = ""
    how: str = "bare"

    @property
    def full(self) -> str:
        """The runnable program: the added imports (after any ``__future__`` imports), then the source."""
        return _joined(self)[0]

    def source_line(self, full_line: int) -> int | None:
        """Line of :attr:`source` for a line of :attr:`full`; None for an added import."""
        _, at, added = _joined(self)
        if full_line <= at:
            return full_line
        if full_line <= at + added:
            return None
        return full_line - added


def _joined(program: Program) -> tuple[str, int, int]:
    if not program.imports:
        return program.source, 0, 0
    lines = program.source.splitlines(keepends=True)
    at = _future_import_end(program.source)
    added = program.imports.splitlines(keepends=False)
    text = "".join(lines[:at]) + "\n".join(added) + "\n" + "".join(lines[at:])
    return text, at, len(added)


def _future_import_end(source: str) -> int:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return 0
    end = 0
    for index, node in enumerate(tree.body):
        is_docstring = index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if (isinstance(node, ast.ImportFrom) and node.module == "__future__") or is_docstring:
            end = node.end_lineno or end
        else:
            break
    return end


# -- finding the program -------------------------------------------------------------


def extract_program(text: str, entry_point: str, prompt: str | None = None) -> Program:
    """The program in a reply: a fenced block, the bare reply, or the reply continuing ``prompt``.

    Stubs the reply echoes before redefining them (the prompt's signature and
    docstring, then the real function) are blanked out, keeping line numbers.
    """
    found = _find_program(text, entry_point, prompt)
    return replace(found, source=_drop_echoed_stubs(found.source))


def _find_program(text: str, entry_point: str, prompt: str | None) -> Program:
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    for block in blocks:
        if _defines(block, entry_point):
            return Program(block, how="fenced")
    if _defines(text, entry_point):
        return Program(text, how="bare")
    if prompt and _defines(prompt + text, entry_point):
        return Program(prompt + text, how="continuation")
    trimmed = _trim_prose(text)
    if trimmed is not None and _defines(trimmed, entry_point):
        return Program(trimmed, how="trimmed")
    if blocks and prompt and _defines(prompt + blocks[0], entry_point):
        return Program(prompt + blocks[0], how="continuation")
    return Program(blocks[0] if blocks else text, how="unparsed")


def _drop_echoed_stubs(source: str) -> str:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    last = {f.name: f for f in functions}
    stubs = [f for f in functions if last[f.name] is not f and _is_stub(f)]
    if not stubs:
        return source
    lines = source.splitlines(keepends=True)
    for stub in stubs:
        first = min([stub.lineno, *(d.lineno for d in stub.decorator_list)])
        for index in range(first - 1, stub.end_lineno or stub.lineno):
            lines[index] = "\n"
    return "".join(lines)


def _is_stub(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return all(
        isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        for node in body
    )


def _trim_prose(text: str) -> str | None:
    """Drop prose before the first code-looking line and after the last line that still parses."""
    start = _CODE_START.search(text)
    if start is None:
        return None
    lines = text[start.start() :].splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end]) + "\n"
        if _parses(candidate):
            return candidate
    return None


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return name in _top_level_names(tree.body)


def _top_level_names(body: Iterable[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for field in ("body", "orelse", "finalbody"):
                names |= _top_level_names(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                names |= _top_level_names(handler.body)
    return names


# -- imports a harness would have added ------------------------------------------------


def add_missing_imports(source: str, table: Mapping[str, str] = DEFAULT_AUTO_IMPORTS) -> str:
    """Import lines for the names ``source`` uses but never binds, as listed in ``table``."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    bound, used = _bound_and_used(tree)
    missing = sorted(name for name in used - bound if name in table and not hasattr(builtins, name))
    return "\n".join(dict.fromkeys(table[name] for name in missing))


def _bound_and_used(tree: ast.AST) -> tuple[set[str], set[str]]:
    bound: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            bound.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
    return bound, used


# -- building test suites --------------------------------------------------------------


def doctest_units(prompt: str) -> tuple[TestUnit, ...]:
    """``>>>`` examples whose expected output is a Python literal, as assertions."""
    try:
        examples = doctest.DocTestParser().get_examples(prompt)
    except ValueError:
        return ()
    setup: list[str] = []
    units = []
    for example in examples:
        source = example.source.strip()
        # Read from the prompt's text, the last example's output runs into the docstring's closing quotes.
        want = "\n".join(
            line for line in example.want.splitlines() if line.strip() not in ('"""', "'''")
        ).strip()
        if not want:
            if _parses(source):
                setup.append(source)
            continue
        if not _is_expression(source) or not _is_literal(want) or source.startswith("print("):
            continue
        check = f"assert ({source}) == ({want})"
        units.append(TestUnit(f"doctest: {_clip(source)} == {_clip(want)}", "\n".join([*setup, check])))
    return tuple(units)


def _is_expression(source: str) -> bool:
    try:
        ast.parse(source, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return True


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _clip(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def assert_suite(tests: str | Sequence[str]) -> tuple[str, tuple[TestUnit, ...]]:
    """Setup code and units from visible tests: assert lines, or pytest-style source with ``test_*`` functions."""
    if not isinstance(tests, str):
        units = []
        for index, source in enumerate(tests):
            if not _parses(source):
                raise ConfigError(f"visible test #{index + 1} is not valid Python: {source[:80]!r}")
            units.append(TestUnit(_clip(source.strip().splitlines()[0] if source.strip() else ""), source))
        return "", tuple(units)
    try:
        tree = ast.parse(tests)
    except SyntaxError as exc:
        raise ConfigError(f"the visible tests are not valid Python: line {exc.lineno}: {exc.msg}") from None
    test_functions = [
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")
    ]
    if test_functions:
        return tests, tuple(TestUnit(name, f"{name}()") for name in test_functions)
    setup, units = [], []
    for node in tree.body:
        text = ast.get_source_segment(tests, node) or ast.unparse(node)
        if isinstance(node, ast.Assert):
            units.append(TestUnit(_clip(text), text))
        else:
            setup.append(text)
    return "\n".join(setup), tuple(units)


def _dedupe(units: Iterable[TestUnit]) -> tuple[TestUnit, ...]:
    seen: dict[str, TestUnit] = {}
    for unit in units:
        try:
            key = ast.dump(ast.parse(unit.source))
        except SyntaxError:
            key = unit.source
        seen.setdefault(key, unit)
    return tuple(seen.values())


def hidden_test_suite(test: str, entry_point: str, prompt: str = "") -> TestSuite:
    """A benchmark's hidden test (``def check(candidate)``) as one unit: ``check(entry_point)`` unless it calls it."""
    try:
        tree = ast.parse(test)
    except SyntaxError as exc:
        raise ConfigError(f"the hidden test is not valid Python: line {exc.lineno}: {exc.msg}") from None
    calls_check = any(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name) and node.value.func.id == "check"
        for node in tree.body
    )  # fmt: skip
    unit = TestUnit("hidden tests", test if calls_check else f"check({entry_point})")
    setup = "" if calls_check else test
    imports = add_missing_imports(f"{_prelude(prompt)}\n{test}")
    return TestSuite((unit,), setup=setup, prelude=_prelude(prompt), imports=imports)


def _prelude(prompt: str) -> str:
    return prompt if prompt and _parses(prompt) else ""


# -- the contract ----------------------------------------------------------------------


class CodeContract:
    """The answer must be a Python program defining ``entry_point`` that type-checks and passes its tests.

    >>> contract = CodeContract("add", tests=["assert add(1, 2) == 3"])
    >>> contract.name
    'code:add'
    """

    def __init__(
        self,
        entry_point: str,
        *,
        tests: str | Sequence[str] = (),
        prompt: str | None = None,
        doctests: bool = True,
        mypy: bool = True,
        mypy_flags: Sequence[str] = (),
        auto_imports: Mapping[str, str] | None = DEFAULT_AUTO_IMPORTS,
        limits: SandboxLimits | None = None,
        name: str | None = None,
        instructions: bool = True,
        sandbox: Sandbox | None = None,
        typechecker: TypeChecker | None = None,
    ) -> None:
        if not entry_point.isidentifier():
            raise ConfigError(f"entry_point must be a Python identifier, got {entry_point!r}")
        self.entry_point = entry_point
        self.prompt = prompt
        self.mypy = mypy
        self.mypy_flags = tuple(mypy_flags)
        self.auto_imports = auto_imports or {}
        self.limits = limits or SandboxLimits()
        self.instructions = instructions
        self._name = name or f"code:{entry_point}"
        self._sandbox = sandbox
        self._typechecker = typechecker
        setup, units = assert_suite(tests)
        if doctests and prompt:
            units = (*units, *doctest_units(prompt))
        units = _dedupe(units)
        imports = add_missing_imports(f"{_prelude(prompt or '')}\n{setup}\n" + "\n".join(u.source for u in units),
                                      self.auto_imports)  # fmt: skip
        self.suite = TestSuite(units, setup=setup, prelude=_prelude(prompt or ""), imports=imports)

    @property
    def name(self) -> str:
        return self._name

    def prepare(self, request: Request) -> Request:
        if not self.instructions or any(m.role == "system" for m in request.messages):
            return request
        note = (
            f"Answer with one complete, self-contained Python program in a ```python block that defines "
            f"`{self.entry_point}`, with its imports and type annotations."
        )
        return replace(request, messages=(Message("system", note), *request.messages))

    def program(self, text: str) -> Program:
        """The program this contract would check in ``text``, with the imports it lacks."""
        found = extract_program(text, self.entry_point, self.prompt)
        return replace(found, imports=add_missing_imports(found.source, self.auto_imports))

    def job(self, program: Program, suite: TestSuite | None = None) -> SandboxJob:
        """The sandbox run of ``program`` against ``suite`` (default: this contract's tests)."""
        return SandboxJob(program.source, self.entry_point, suite or self.suite, program.imports, self.limits)

    async def check(self, completion: Completion, ctx: CheckContext) -> CheckResult:
        program = self.program(completion.text)
        verdicts = [_syntax_verdict(program, self.entry_point)]
        if verdicts[-1].passed and self.mypy:
            checker = self._typechecker or default_typechecker()
            report = await checker.acheck(_for_mypy(program.full), self.mypy_flags)
            verdicts.append(_mypy_verdict(report, program))
        if verdicts[-1].passed:
            result = await (self._sandbox or default_sandbox()).arun(self.job(program))
            verdicts.append(_tests_verdict(result))
        return CheckResult(tuple(verdicts), program.full)

    def check_sync(self, completion: Completion | str, prompt: str = "") -> CheckResult:
        """The same check without an engine (runs its own event loop)."""
        import asyncio

        if isinstance(completion, str):
            from cascade.types import Usage

            completion = Completion(completion, Usage(0, 0, estimated=True), model="")
        return asyncio.run(self.check(completion, CheckContext(prompt, _no_model_calls)))

    def __repr__(self) -> str:
        return f"CodeContract({self.entry_point!r}, tests={len(self.suite.units)}, mypy={self.mypy})"


async def _no_model_calls(*_: object) -> Completion:
    raise ConfigError("a code contract makes no model calls")


# -- stage verdicts and their feedback ------------------------------------------------


def _syntax_verdict(program: Program, entry_point: str) -> Verdict:
    try:
        compile(program.source, "solution.py", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        shown = f": `{exc.text.strip()}`" if exc.text and exc.text.strip() else ""
        message = f"the program does not parse: {exc.msg} at {where}{shown}"
        if program.how == "unparsed":
            message += "; answer with the whole program in one ```python block"
        return Verdict(False, "python_syntax", 0.0, message)
    except ValueError as exc:
        return Verdict(False, "python_syntax", 0.0, f"the program cannot be compiled: {exc}")
    if not _defines(program.source, entry_point):
        return Verdict(False, "python_syntax", 0.0, f"the program must define `{entry_point}` at top level")
    return Verdict(True, "python_syntax")


_INLINE_CONFIG = re.compile(r"^(\s*#\s*)(mypy:|type:\s*ignore\b)", re.M)


def _for_mypy(source: str) -> str:
    # A program may not switch its own checking off: drop inline mypy configuration and a
    # module-wide `# type: ignore` (line numbers are kept).
    return _INLINE_CONFIG.sub(lambda m: m.group(1) + "removed:", source)


def _mypy_verdict(report: TypeReport, program: Program) -> Verdict:
    if report.crashed is not None and not report.errors:
        return Verdict(False, "mypy", 0.0, f"mypy could not check the program: {report.crashed}")
    errors = []
    for error in report.errors:
        line = program.source_line(error.line)
        if line is not None:
            errors.append(replace(error, line=line))
    if not errors:
        return Verdict(True, "mypy")
    shown = "\n".join(f"  {e}" for e in errors[:5])
    more = f"\n  (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    count = f"{len(errors)} type error{'s' if len(errors) != 1 else ''}"
    return Verdict(False, "mypy", 0.0, f"mypy found {count}:\n{shown}{more}")


def _tests_verdict(result: SandboxResult) -> Verdict:
    if result.passed:
        return Verdict(True, "tests", 1.0)
    failed = [u for u in result.units if not u.passed]
    lines = list(_failure_lines(result, failed))
    head = f"{len(failed)} of {len(result.units)} tests failed" if result.units else "the tests failed"
    body = "\n".join(f"  - {line}" for line in lines)
    return Verdict(False, "tests", result.score if result.loaded else 0.0, f"{head}:\n{body}")


def _failure_lines(result: SandboxResult, failed: Sequence[object]) -> Iterator[str]:
    if result.problem is not None:
        yield result.problem
    seen = {result.problem}
    for unit in failed[:_MAX_FEEDBACK_ITEMS]:
        detail = getattr(unit, "detail", "") or f"{getattr(unit, 'name', 'a test')} failed"
        if detail not in seen:
            seen.add(detail)
            yield detail
