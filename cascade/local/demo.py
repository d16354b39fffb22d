"""``cascade demo local``: a live two-tier cascade against a model on this machine.

Tier 1 is the local model with no constraint (the schema only goes in the
prompt); tier 2 is the same model with schema-constrained decoding (the
llama.cpp server's grammar), or any tier the user names.  The contract checks
more than types: the person and the date must be quoted from the sentence,
and the amount must be a sum of money the sentence states.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cascade.contracts import JsonContract
from cascade.engine import Cascade, CascadeResult
from cascade.errors import CascadeError
from cascade.ledger import InMemoryLedger, SQLiteLedger
from cascade.local.server import LocalServer, ServerConfig
from cascade.protocols import AttemptSink, Validator
from cascade.reports import build_report, format_table, tier_prices
from cascade.tiers import Tier
from cascade.types import Attempt, AttemptKind, Candidate, Message, Outcome
from validators import predicate
from validators._core import MODERATE

__all__ = [
    "SCHEMA",
    "SENTENCES",
    "DemoOptions",
    "DemoResult",
    "Throughput",
    "extraction_contract",
    "local_tiers",
    "messages_for",
    "money_figures",
    "run_batch",
    "run_demo",
    "throughput",
]

#: Written for this demo: one person, one date and one sum of money each, in varied styles.
SENTENCES: tuple[str, ...] = (
    "On 12 March 2024, Maria Lopez paid $1,250 for a new roof.",
    "Kenji Watanabe donated €300 to the library on 5 June 2023.",
    "The invoice from Priya Raman, dated 2022-11-30, totals $845.50.",
    "On January 9, 2021, Tomasz Nowak lent his brother £2,000.",
    "Amara Okafor received a refund of $72.99 on 18 August 2024.",
    "On 1 February 2020, Lucas Martin sold his bicycle for €150.",
    "Fatima Zahra paid 4,300 dollars in rent on 3 October 2023.",
    "The court ordered Daniel Brooks to pay $15,000 on 22 May 2019.",
    "On 14 July 2022, Sofia Rossi spent €64.20 on train tickets.",
    "Oliver Schmidt transferred £980 to his landlord on 28 April 2024.",
    "On 2023-02-17, Aisha Bello won a prize of $5,000.",
    "Hannah Kim bought a used piano for $2,750 on 11 September 2021.",
    "On 30 November 2022, Mateo Fernández tipped the guide €40.",
    "Grace Mensah raised $12,480 for the clinic by 31 December 2023.",
    "On March 3, 2024, Ivan Petrov paid a fine of €95.",
    "Chloe Dubois owes $310 to the dentist since 7 January 2024.",
    "On 19 June 2020, Samuel Adeyemi invested £25,000 in the bakery.",
    "Yuki Tanaka earned $1,120 from freelance work on 2 May 2023.",
    "On 8 August 2021, Elena Popescu paid €2,300 for a used car.",
    "Noah Williams spent $58 on groceries on 16 October 2024.",
    "On 27 February 2023, Leila Haddad received a grant of €18,000.",
    "Carlos Mendes was charged $420.75 for repairs on 9 December 2022.",
    "On 5 April 2019, Ingrid Larsen sold her boat for $36,500.",
    "Rahul Mehta paid a deposit of £1,500 on 21 March 2022.",
    "On September 14, 2023, Zoe Clarke donated $250 to the shelter.",
    "Ahmed Karim owes €760 in back taxes since 1 July 2021.",
    "On 12 December 2020, Emma Johansson bought a laptop for $1,399.",
    "Peter Novak paid 89 euros for concert tickets on 25 May 2024.",
    "On 6 June 2022, Lina Haddad won $7,500 in a photo contest.",
    "Victor Hugo Silva borrowed £640 from a colleague on 13 March 2023.",
    "On 29 January 2024, Nadia Rahman paid $2,100 in tuition.",
    "Thomas Becker received €1,875 in severance on 17 November 2021.",
    "On 4 October 2020, Mei Lin spent $33.40 at the pharmacy.",
    "Isabel Ortiz paid the plumber $185 on 23 February 2024.",
    "On 10 May 2023, George Adams sold 20 shares for $3,260.",
    "Olga Ivanova was awarded €9,999 in damages on 15 April 2022.",
)

SCHEMA: dict[str, Any] = {
    "title": "payment",
    "type": "object",
    "properties": {
        "person": {"type": "string", "description": "the person's full name"},
        "date": {"type": "string", "description": "the date, as written in the sentence"},
        "amount": {"type": "number", "description": "the sum of money, as a number"},
    },
    "required": ["person", "date", "amount"],
    "additionalProperties": False,
}

INSTRUCTION = "Extract the person, the date and the amount of money from the sentence as JSON."
#: One worked example: a 135M model copies a shown answer far better than it follows a schema.
EXAMPLE = (
    "On 2 May 2018, John Smith paid $99 for a chair.",
    '{"person": "John Smith", "date": "2 May 2018", "amount": 99}',
)

_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_MONEY = re.compile(
    rf"(?:[$€£]|\b(?:USD|EUR|GBP))\s?(?P<pre>{_NUMBER})"
    rf"|(?P<post>{_NUMBER})\s?(?:dollars|euros|pounds|USD|EUR|GBP)\b",
    re.IGNORECASE,
)


def messages_for(sentence: str) -> tuple[Message, ...]:
    """The chat for one sentence: the task, the worked example, then the sentence."""
    return (
        Message("system", INSTRUCTION),
        Message("user", f"Sentence: {EXAMPLE[0]}"),
        Message("assistant", EXAMPLE[1]),
        Message("user", f"Sentence: {sentence}"),
    )


def money_figures(text: str) -> set[float]:
    """Every sum of money ``text`` states with a currency sign or word ("$1,250", "89 euros")."""
    figures: set[float] = set()
    for match in _MONEY.finditer(text):
        figures.add(float((match.group("pre") or match.group("post")).replace(",", "")))
    return figures


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def _quoted(sentence: str, key: str) -> Validator:
    def check(candidate: Candidate) -> bool:
        value = candidate.value.get(key) if isinstance(candidate.value, dict) else None
        return isinstance(value, str) and bool(value.strip()) and _normalised(value) in _normalised(sentence)

    return predicate(
        check, f"{key}_in_text", f"the {key} must be copied exactly from the sentence", cost=MODERATE
    )


def _stated_amount(sentence: str) -> Validator:
    figures = money_figures(sentence)

    def check(candidate: Candidate) -> bool:
        value = candidate.value.get("amount") if isinstance(candidate.value, dict) else None
        return isinstance(value, int | float) and not isinstance(value, bool) and float(value) in figures

    return predicate(
        check, "amount_in_text", "the amount must be the sum of money the sentence states", cost=MODERATE
    )


def _has_digit(key: str) -> Validator:
    def check(candidate: Candidate) -> bool:
        value = candidate.value.get(key) if isinstance(candidate.value, dict) else None
        return isinstance(value, str) and any(ch.isdigit() for ch in value)

    return predicate(check, f"{key}_has_digit", f"the {key} must contain a day or a year", cost=MODERATE)


def extraction_contract(sentence: str) -> JsonContract[Any]:
    """The schema, plus: person and date quoted from ``sentence``, amount a sum it states."""
    return JsonContract(
        SCHEMA,
        name="payment",
        validators=(
            _quoted(sentence, "person"),
            _has_digit("date"),
            _quoted(sentence, "date"),
            _stated_amount(sentence),
        ),
    )


def local_tiers(
    base_url: str,
    model: str,
    *,
    n_ctx: int,
    price_per_mtok: float = 0.0,
    max_tokens: int = 96,
    free_profile: str = "plain",
) -> tuple[Tier, Tier]:
    """The same local model twice: unconstrained (``free_profile``), then grammar-constrained."""
    common: dict[str, Any] = {
        "provider": "openai", "model": model, "input_per_mtok": price_per_mtok,
        "output_per_mtok": price_per_mtok, "context_window": n_ctx, "temperature": 0.0,
        "max_tokens": max_tokens, "base_url": base_url,
    }  # fmt: skip
    return (
        Tier(name="local-free", profile=free_profile, **common),
        # The same small model, asked again: a note about its own failure only distracts it.
        Tier(name="local-constrained", profile="llamacpp", escalation_note=False, **common),
    )


@dataclass(frozen=True, slots=True)
class DemoResult:
    """One sentence's outcome."""

    sentence: str
    accepted: bool
    tier: str | None
    value: Any
    error: str | None = None


def run_batch(
    tiers: Sequence[Tier],
    sentences: Iterable[str],
    ledger: AttemptSink,
    *,
    timeout_s: float = 120.0,
) -> list[DemoResult]:
    """Run every sentence through the cascade in order, one at a time (a local server is serial)."""
    chosen = list(sentences)
    jobs = [(messages_for(s), extraction_contract(s)) for s in chosen]
    with Cascade(tiers, ledger=ledger, order="given", max_retries=1) as engine:
        # On this thread's own loop rather than the sync facade's: Ctrl-C then cancels the
        # in-flight call cleanly before the server is stopped.
        outcomes = asyncio.run(engine.amap(jobs, concurrency=1, deadline_s=timeout_s))
    return [_demo_result(s, outcome) for s, outcome in zip(chosen, outcomes, strict=True)]


def _demo_result(sentence: str, outcome: CascadeResult | CascadeError) -> DemoResult:
    if isinstance(outcome, CascadeError):
        return DemoResult(sentence, False, None, None, f"{type(outcome).__name__}: {outcome}")
    return DemoResult(sentence, outcome.accepted, outcome.tier, outcome.value)


@dataclass(frozen=True, slots=True)
class Throughput:
    """Output tokens of one tier's answered calls, per second of call latency.

    Latency includes prompt processing and HTTP, so both rates are floors on
    pure decoding speed.  ``median_call`` is the median of per-call rates: on a
    shared machine it shrugs off the few calls that waited for a CPU.
    """

    calls: int
    output_tokens: int
    overall: float
    median_call: float


def throughput(attempts: Iterable[Attempt]) -> dict[str, Throughput]:
    """Per tier, over calls that returned an output (errors and skips are left out)."""
    calls: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        if attempt.kind is not AttemptKind.SKIP and attempt.outcome is not Outcome.ERROR:
            calls.setdefault(attempt.tier, []).append(attempt)
    rows: dict[str, Throughput] = {}
    for tier, answered in calls.items():
        tokens = sum(a.output_tokens for a in answered)
        secs = sum(a.latency_s for a in answered)
        rates = [a.output_tokens / a.latency_s for a in answered if a.latency_s > 0]
        median = statistics.median(rates) if rates else 0.0
        rows[tier] = Throughput(len(answered), tokens, tokens / secs if secs else 0.0, median)
    return rows


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``cascade demo local`` runs; ``base_url`` uses a running server instead of starting one."""

    base_url: str | None = None
    model: str | None = None
    server: ServerConfig | None = None
    price_per_mtok: float = 0.0
    max_tokens: int = 96
    limit: int | None = None
    free_profile: str = "plain"
    escalate_to: Tier | None = None
    ledger_path: str | None = None
    timeout_s: float = 120.0


def run_demo(options: DemoOptions, out: Callable[[str], None] = print) -> list[DemoResult]:
    """Start the server (unless given one), run the batch, print the ledger's per-tier table, stop."""
    server_config = options.server or ServerConfig()
    sentences = SENTENCES[: options.limit] if options.limit else SENTENCES
    with contextlib.ExitStack() as stack:
        base_url = options.base_url
        if base_url is None:
            out(
                f"starting the local model server ({server_config.n_threads} threads, n_ctx {server_config.n_ctx})"
            )
            base_url = stack.enter_context(LocalServer(server_config)).base_url
        out(f"server: {base_url}")
        tiers: tuple[Tier, ...] = local_tiers(
            base_url, options.model or server_config.alias, n_ctx=server_config.n_ctx,
            price_per_mtok=options.price_per_mtok, max_tokens=options.max_tokens,
            free_profile=options.free_profile,
        )  # fmt: skip
        if options.escalate_to is not None:
            tiers = (tiers[0], options.escalate_to)
        this_run = InMemoryLedger()
        sink: AttemptSink = this_run
        if options.ledger_path:
            sink = _Tee((this_run, stack.enter_context(SQLiteLedger(options.ledger_path))))
        out("tiers: " + " -> ".join(f"{t.name} (profile {t.profile or 'default'})" for t in tiers) + "\n")
        results = run_batch(tiers, sentences, sink, timeout_s=options.timeout_s)
        for i, result in enumerate(results, 1):
            out(_result_line(i, result))
        attempts = this_run.attempts()
        out("")
        out(format_table(build_report(attempts, tier_prices(tiers))))
        for name, rate in throughput(attempts).items():
            out(
                f"{name}: {rate.output_tokens} output tokens in {rate.calls} calls; tokens/s "
                f"{rate.overall:.1f} overall, {rate.median_call:.1f} median per call (prompt included)"
            )
    return results


@dataclass(frozen=True, slots=True)
class _Tee:
    """Records each attempt in several sinks: this run's table, and a ledger file if asked for."""

    sinks: tuple[AttemptSink, ...]

    def record(self, attempt: Attempt) -> None:
        for sink in self.sinks:
            sink.record(attempt)


def _result_line(index: int, result: DemoResult) -> str:
    mark = "ok " if result.accepted else "-- "
    where = result.tier or "none"
    shown = json.dumps(result.value, ensure_ascii=False) if result.value is not None else result.error or ""
    return f"{index:>3} {mark}{where:<18} {shown[:100]}"
