"""Numbers in model prose: parsing, answer extraction and exact arithmetic.

Everything is exact (:class:`fractions.Fraction`) so a check never flags a
right answer because of float noise, and no ``eval`` ever runs: expressions
are parsed with :mod:`ast` and only + - * / ** on numbers are evaluated.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ANSWER_PATTERNS",
    "NUMBER",
    "Statement",
    "agrees",
    "answer_text",
    "arithmetic_statements",
    "evaluate",
    "extract_number",
    "leading_number",
    "numbers_in",
    "parse_number",
    "ulp",
]

_CURRENCY = "$€£¥"
_MINUS = "−–"  # unicode minus and en dash, as models write them
#: A number as written in prose: optional sign and currency, thousands groups, decimals.
NUMBER = rf"[-+{_MINUS}]?(?:[{_CURRENCY}] ?)?(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
_NUMBER_RE = re.compile(rf"^(?:{NUMBER})$")
_FRACTION_RE = re.compile(r"^(?:(?P<whole>[-+]?\d+)\s+)?(?P<num>[-+]?\d+)\s*/\s*(?P<den>\d+)$")

#: Where a final answer is stated, strongest first.  Each pattern's ``answer`` group holds it.
ANSWER_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^[ \t]*####[ \t]*(?P<answer>\S[^\n]*?)[ \t]*$", re.MULTILINE),
    re.compile(r"\\boxed\{(?P<answer>[^{}]+)\}"),
    re.compile(
        r"\b(?:final answer|the answer|answer)\s*(?:is|:|=)\s*:?\s*\**(?P<answer>[^\n]*?)\**\s*(?:$|\n)",
        re.IGNORECASE | re.MULTILINE,
    ),
)
_LEADING_NUMBER = re.compile(
    rf"^\**\s*(?P<num>(?:[-+]?\d+\s+)?[-+]?\d+\s*/\s*\d+(?![\d,.]*\d)|{NUMBER})(?P<rest>.*)$", re.DOTALL
)
_ANY_NUMBER = re.compile(rf"(?<![\w.,])(?:{NUMBER})(?![\w]|[.,]\d)")


def parse_number(text: str) -> Fraction | None:
    """The value of a number written as a model would write it, or ``None``.

    Accepts ``1,000``, ``$5.00``, ``5.`` (sentence end), ``-3``, ``−3``, ``3/4``,
    ``1 1/2``, ``10%`` (read as 10) and surrounding ``**bold**``.

    >>> parse_number("$1,234.50")
    Fraction(2469, 2)
    >>> parse_number("1,00") is None
    True
    """
    cleaned = text.strip().strip("*").strip()
    for ch in _MINUS:
        cleaned = cleaned.replace(ch, "-")
    cleaned = cleaned.removesuffix(".").removesuffix("%").strip()
    if not cleaned:
        return None
    fraction = _FRACTION_RE.match(cleaned)
    if fraction:
        den = int(fraction["den"])
        if den == 0:
            return None
        value = Fraction(int(fraction["num"]), den)
        whole = fraction["whole"]
        if whole is None:
            return value
        return int(whole) - value if whole.startswith("-") else int(whole) + value
    if not _NUMBER_RE.match(cleaned):
        return None
    return Fraction(re.sub(rf"[,\s{_CURRENCY}]", "", cleaned))


def answer_text(text: str) -> str | None:
    """The text of the last stated final answer (``#### x``, ``\\boxed{x}``, "the answer is x")."""
    for pattern in ANSWER_PATTERNS:
        found = list(pattern.finditer(text))
        if found:
            return found[-1]["answer"].strip()
    return None


def extract_number(text: str, *, fallback_last: bool = True) -> Fraction | None:
    """The numeric final answer: a stated answer's leading number, else (optionally) the last number."""
    stated = answer_text(text)
    if stated is not None:
        lead = _LEADING_NUMBER.match(stated)
        if lead:
            return parse_number(lead["num"])
    if not fallback_last:
        return None
    numbers = _ANY_NUMBER.findall(text)
    return parse_number(numbers[-1]) if numbers else None


def leading_number(text: str) -> tuple[Fraction | None, str]:
    """The number a stated answer starts with, and what follows it."""
    lead = _LEADING_NUMBER.match(text.strip())
    if not lead:
        return None, text.strip()
    return parse_number(lead["num"]), lead["rest"].strip()


def numbers_in(text: str) -> list[Fraction]:
    """Every number written in ``text``, in order."""
    values = (parse_number(n) for n in _ANY_NUMBER.findall(text))
    return [v for v in values if v is not None]


def ulp(written: str) -> Fraction:
    """One unit in the last written place: ``"2.67"`` -> 1/100, ``"1,500"`` -> 1."""
    digits = written.strip().rstrip("%").rstrip(".")
    _, dot, decimals = digits.partition(".")
    return Fraction(1, 10 ** len(decimals)) if dot else Fraction(1)


# -- exact evaluation --------------------------------------------------------------------

_MAX_EXPONENT = 64
_MAX_MAGNITUDE = Fraction(10) ** 30


class _Unverifiable(ValueError):
    """The expression is not plain arithmetic we can check."""


def evaluate(expression: str) -> Fraction | None:
    """The exact value of plain arithmetic as models write it, or ``None`` if it is not that.

    ``x``/``×``/``\\*`` multiply, ``÷`` divides, ``^`` is a power, ``n%`` is n/100,
    ``$`` and thousands commas are ignored.

    >>> evaluate("$1,500 x 2 + 50%")
    Fraction(6001, 2)
    """
    source = _normalise(expression)
    if source is None:
        return None
    try:
        tree = ast.parse(source, mode="eval")
        return _eval(tree.body)
    except (SyntaxError, _Unverifiable, ZeroDivisionError, OverflowError, ValueError, RecursionError):
        return None


def _normalise(expression: str) -> str | None:
    text = expression.strip()
    if not text or len(text) > 300:
        return None
    for ch in _MINUS:
        text = text.replace(ch, "-")
    text = text.replace("\\*", "*").replace("×", "*").replace("·", "*").replace("÷", "/")
    text = re.sub(r"(?<=[\d)])\s*[xX]\s*(?=[\d($])", "*", text)
    text = re.sub(r"(\d),(?=\d{3}(?!\d))", r"\1", text)
    text = re.sub(rf"[{_CURRENCY}]", "", text)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", text)
    text = text.replace("^", "**")
    # "12.8 / 2/5": a fraction written tight is one number next to spaced operators
    if re.search(r"\s[-+*/]\s", text):
        text = re.sub(r"(?<![\d.)])(\d+(?:\.\d+)?/\d+(?:\.\d+)?)(?![\d.(])", r"(\1)", text)
    if re.search(r"[^\d.+\-*/() ]", text):
        return None
    return text


def _eval(node: ast.expr) -> Fraction:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return Fraction(repr(node.value)) if isinstance(node.value, float) else Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        result = _binop(node.op, left, right)
        if abs(result) > _MAX_MAGNITUDE:
            raise _Unverifiable("too large to be a worked answer")
        return result
    raise _Unverifiable(ast.dump(node))


def _binop(op: ast.operator, left: Fraction, right: Fraction) -> Fraction:
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.Pow) and right.denominator == 1 and abs(right) <= _MAX_EXPONENT:
        return left ** int(right)
    raise _Unverifiable(type(op).__name__)


def agrees(computed: Fraction, written: str) -> bool:
    """Whether ``written`` states ``computed``, allowing rounding or cutting to its last place."""
    claimed = parse_number(written)
    if claimed is None:
        return True  # nothing checkable was claimed
    candidates = [claimed]
    if written.strip().rstrip(".").endswith("%"):
        candidates.append(claimed / 100)  # "1/10 = 10%"
    tolerance = ulp(written)
    for value in candidates:
        gap = abs(computed - value)
        if gap < tolerance or gap <= abs(computed) * Fraction(1, 10**9):
            return True
    return False


# -- statements in prose -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One arithmetic claim found in a reply: ``expression = result``."""

    expression: str
    result: str
    source: str  # "annotation" or "inline"

    def computed(self) -> Fraction | None:
        return evaluate(self.expression)

    def key(self) -> tuple[Fraction | None, Fraction | None]:
        return self.computed(), parse_number(self.result)

    def holds(self) -> bool | None:
        """True/False when checkable; ``None`` when the expression is not plain arithmetic."""
        value = self.computed()
        return None if value is None else agrees(value, self.result)

    def __str__(self) -> str:
        if self.source == "annotation":
            return f"<<{self.expression}={self.result}>>"
        return f"{self.expression} = {self.result}"


_ANNOTATION = re.compile(r"<<(?P<body>[^<>\n]{1,300}?=[^<>\n]{1,300}?)>>")
_TERM = rf"\(*[ \t]*(?:{NUMBER})%?[ \t]*\)*"
_OP = r"[ \t]*(?:[-+*/×÷^·−]|\\\*|(?<=[\d)%])[ \t]*[xX](?=[ \t]*[\d($]))[ \t]*"
_SIDE = rf"{_TERM}(?:{_OP}{_TERM})*"
_END = r"(?![\d,.]?\d)(?![ \t]*[\d(])(?![ \t]*/[ \t]*\d)"
_CHAIN = re.compile(
    rf"(?<![\w.,$%)/])(?<![-+*/×÷^=<][ \t])(?<![-+*/×÷^=<])"
    rf"(?P<chain>{_SIDE}{_END}(?:[ \t]*=[ \t]*{_SIDE}{_END})+)"
)
_HAS_OP = re.compile(rf"\d[ \t]*%?[ \t]*\)*{_OP}\(*[ \t]*[-+{_MINUS}]?(?:[{_CURRENCY}] ?)?\d")


def arithmetic_statements(text: str, *, annotations: bool = True, inline: bool = True) -> Iterator[Statement]:
    """Every ``<<a op b=c>>`` annotation and inline ``a op b = c`` (also chained) in ``text``."""
    seen: set[tuple[Fraction | None, Fraction | None]] = set()
    if annotations:
        for match in _ANNOTATION.finditer(text):
            for statement in _pairs(match["body"].split("="), "annotation"):
                seen.add(statement.key())
                yield statement
    if not inline:
        return
    prose = _ANNOTATION.sub(" ", text)
    for match in _CHAIN.finditer(prose):
        for statement in _pairs(match["chain"].split("="), "inline"):
            if statement.key() not in seen:  # "4 * 6 = <<4*6=24>>24" states one thing, not two
                seen.add(statement.key())
                yield statement


def _pairs(sides: list[str], source: str) -> Iterator[Statement]:
    # Only "expression = written number" is a claim: prose chains like "90 / 450 = 0.2 * 100 = 20%"
    # use "=" for "then", so two expressions in a row are not compared.
    cleaned = [side.strip() for side in sides]
    for left, right in itertools.pairwise(cleaned):
        if _HAS_OP.search(left) and not _HAS_OP.search(right) and parse_number(right) is not None:
            yield Statement(left, right, source)
