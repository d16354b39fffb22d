"""Figures over a sequence of attempts, shared by the ledger CLI and the benches.

Definitions (every rate is ``None`` where its denominator is zero):

* **calls**: attempts that called a model (every kind but ``skip``), errors included.
* **pass rate**: accepted / checked, where checked = calls that returned an output
  (outcome ``accepted`` or ``rejected``).
* **first-pass yield** of a tier: of the requests whose first tier tried (first
  non-skip, non-judge call) was this one, the share accepted on that very call.
  Per contract, the denominator is every request.
* **escalation rate** of a tier: of the requests that called it, the share not
  accepted there that went on to a later tier (called or skipped).
* **$ per accepted**: a tier's spend / its accepted outputs; per contract, all
  spend (judges included) / accepted requests.
* **latency p50/p95**: nearest-rank percentiles (always an observed value): of
  call latencies per tier, of per-request model time (sum of its attempts'
  latencies, backoff waits excluded) per contract.
* Judge calls (kind ``judge``) are their own rows (``judge=True``) and count
  toward their contract's cost.
* **Counterfactual "every request on tier X"** (per contract): requests that
  called X cost what they actually spent on X; every other request is
  estimated as X's price for its first recorded input tokens plus X's mean
  output tokens in that contract.  Requests with no recorded input tokens are
  left out of both sides (``unpriced``).  ``ratio`` = the cascade's actual
  spend on the covered requests (judges included) / the counterfactual.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cascade import settings
from cascade.errors import UnknownModelError
from cascade.ledger import LedgerError, SQLiteLedger
from cascade.pricing import ModelPrice, PriceTable
from cascade.tiers import Tier
from cascade.types import Attempt, AttemptKind, Outcome

__all__ = [
    "PERCENTILE_METHOD",
    "ContractRow",
    "Counterfactual",
    "Report",
    "Table",
    "TierRow",
    "build_report",
    "format_table",
    "load_report",
    "percentile",
    "tables",
    "tier_prices",
    "to_json",
]

PERCENTILE_METHOD = "nearest-rank"
_CHECKED = (Outcome.ACCEPTED, Outcome.REJECTED)


@dataclass(frozen=True, slots=True)
class TierRow:
    """One (contract, tier) pair; ``judge`` rows hold the judge calls made on that tier."""

    contract: str
    tier: str
    model: str
    judge: bool
    calls: int
    checked: int
    accepted: int
    pass_rate: float | None
    reached: int
    first_tier_requests: int
    first_pass: int
    first_pass_yield: float | None
    escalated: int
    escalation_rate: float | None
    reasks: int
    retries: int
    errors: int
    skips: int
    input_tokens: int
    output_tokens: int
    estimated_token_share: float | None
    cost_usd: float
    cost_per_accepted: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None


@dataclass(frozen=True, slots=True)
class ContractRow:
    """Totals of one contract (``contract == "*"`` for all of them)."""

    contract: str
    requests: int
    accepted: int
    acceptance_rate: float | None
    first_pass: int
    first_pass_yield: float | None
    calls: int
    judge_calls: int
    reasks: int
    retries: int
    errors: int
    skips: int
    input_tokens: int
    output_tokens: int
    estimated_token_share: float | None
    cost_usd: float
    judge_cost_usd: float
    cost_per_accepted: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None


@dataclass(frozen=True, slots=True)
class Counterfactual:
    """What the contract's requests would have cost on ``tier`` alone; ``cost_usd`` is None when unknown."""

    contract: str
    tier: str
    requests: int
    measured: int
    estimated: int
    unpriced: int
    mean_output_tokens: float | None
    price_source: str | None
    cost_usd: float | None
    actual_cost_usd: float
    ratio: float | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    tiers: tuple[TierRow, ...]
    contracts: tuple[ContractRow, ...]
    total: ContractRow
    counterfactuals: tuple[Counterfactual, ...]
    percentile_method: str = PERCENTILE_METHOD


@dataclass(frozen=True, slots=True)
class _Request:
    """One request's attempts (in ``seq`` order) and the facts every figure is built from."""

    contract: str
    attempts: tuple[Attempt, ...]
    path: tuple[str, ...]  # non-judge tiers in the order first met, skips included
    called: frozenset[str]  # non-judge tiers that got a call
    accepted_tier: str | None
    first_tier: str | None
    first_pass: bool
    first_input_tokens: int | None

    def escalated_from(self, tier: str) -> bool:
        return tier in self.called and tier != self.accepted_tier and self.path[-1] != tier

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)


# -- building ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): the smallest value with q% at or below it."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile q must be in (0, 100], got {q}")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) / 100)) - 1]


def tier_prices(tiers: Iterable[Tier] | Mapping[str, Tier]) -> dict[str, ModelPrice]:
    """Tier name -> price, for :func:`build_report`."""
    values = tiers.values() if isinstance(tiers, Mapping) else tiers
    return {t.name: t.price for t in values}


def build_report(
    attempts: Iterable[Attempt],
    prices: Mapping[str, ModelPrice] | None = None,
    *,
    price_table: PriceTable | None = None,
) -> Report:
    """Every figure of the module docstring.

    ``prices`` (tier name -> price) feeds the counterfactuals; a tier missing
    from it is looked up by model in ``price_table`` when one is given.
    """
    requests = _requests(attempts)
    contracts = list(dict.fromkeys(r.contract for r in requests))
    by_contract = {c: [r for r in requests if r.contract == c] for c in contracts}
    tier_rows: list[TierRow] = []
    counterfactuals: list[Counterfactual] = []
    for contract, reqs in by_contract.items():
        tier_rows.extend(_tier_rows(contract, reqs))
        for name in _ordered_tiers(reqs):
            price, source = _price_for(name, reqs, prices or {}, price_table)
            counterfactuals.append(_counterfactual(contract, name, reqs, price, source))
    return Report(
        tiers=tuple(tier_rows),
        contracts=tuple(_contract_row(c, reqs) for c, reqs in by_contract.items()),
        total=_contract_row("*", requests),
        counterfactuals=tuple(counterfactuals),
    )


def load_report(
    path: str | os.PathLike[str] | None = None,
    tiers: Iterable[Tier] | Mapping[str, Tier] | None = None,
    *,
    since: float | None = None,
    price_table: PriceTable | None = None,
) -> Report:
    """Report on a SQLite ledger (default: the settings' ledger path).

    Counterfactual prices come from ``tiers`` and, for tiers not given, from
    ``price_table`` (default: the built-in table) by model name.
    """
    with _open_existing(path) as ledger:
        attempts = ledger.attempts(since=since)
    prices = tier_prices(tiers) if tiers is not None else None
    return build_report(attempts, prices, price_table=price_table or PriceTable.builtin())


def _open_existing(path: str | os.PathLike[str] | None) -> SQLiteLedger:
    # Opening a missing path would create an empty ledger and report nothing: say so instead.
    resolved = Path(path) if path is not None else settings.ledger_path()
    if not resolved.is_file():
        raise LedgerError(f"no ledger at {str(resolved)!r}: run a cascade with a SQLiteLedger first")
    return SQLiteLedger(resolved)


def _requests(attempts: Iterable[Attempt]) -> list[_Request]:
    grouped: dict[tuple[str, str], list[Attempt]] = {}
    for attempt in attempts:
        grouped.setdefault((attempt.contract, attempt.request_id), []).append(attempt)
    return [_request(contract, sorted(rows, key=lambda a: a.seq)) for (contract, _), rows in grouped.items()]


def _request(contract: str, attempts: list[Attempt]) -> _Request:
    path = [a for a in attempts if not a.kind.is_side_call]
    calls = [a for a in path if a.kind is not AttemptKind.SKIP]
    accepted = next((a.tier for a in calls if a.outcome is Outcome.ACCEPTED), None)
    first_tokens = next((a.input_tokens for a in calls if a.input_tokens > 0), None)
    return _Request(
        contract=contract,
        attempts=tuple(attempts),
        path=tuple(dict.fromkeys(a.tier for a in path)),
        called=frozenset(a.tier for a in calls),
        accepted_tier=accepted,
        first_tier=calls[0].tier if calls else None,
        first_pass=bool(calls) and calls[0].outcome is Outcome.ACCEPTED,
        first_input_tokens=first_tokens,
    )


def _ordered_tiers(requests: Sequence[_Request]) -> list[str]:
    """Cascade tiers by their mean position in requests' paths (ties: first met)."""
    positions: dict[str, list[int]] = {}
    for request in requests:
        for index, name in enumerate(request.path):
            positions.setdefault(name, []).append(index)
    first_met = list(positions)
    return sorted(first_met, key=lambda n: (sum(positions[n]) / len(positions[n]), first_met.index(n)))


def _tier_rows(contract: str, requests: Sequence[_Request]) -> list[TierRow]:
    judged: dict[str, list[Attempt]] = {}
    for request in requests:
        for attempt in request.attempts:
            if attempt.kind.is_side_call:
                judged.setdefault(attempt.tier, []).append(attempt)
    rows = []
    for name in _ordered_tiers(requests):
        attempts = [a for r in requests for a in r.attempts if a.tier == name and not a.kind.is_side_call]
        rows.append(_tier_row(contract, name, attempts, requests))
    rows.extend(_judge_row(contract, name, attempts) for name, attempts in judged.items())
    return rows


def _tier_row(contract: str, name: str, attempts: list[Attempt], requests: Sequence[_Request]) -> TierRow:
    counts = _counts(attempts)
    checked = sum(a.outcome in _CHECKED for a in attempts)
    accepted = sum(a.outcome is Outcome.ACCEPTED for a in attempts)
    reached = [r for r in requests if name in r.called]
    first = [r for r in requests if r.first_tier == name]
    first_pass = sum(r.first_pass for r in first)
    escalated = sum(r.escalated_from(name) for r in reached)
    return TierRow(
        contract=contract, tier=name, model=attempts[-1].model, judge=False, checked=checked,
        accepted=accepted, pass_rate=_ratio(accepted, checked), reached=len(reached),
        first_tier_requests=len(first), first_pass=first_pass, first_pass_yield=_ratio(first_pass, len(first)),
        escalated=escalated, escalation_rate=_ratio(escalated, len(reached)),
        cost_per_accepted=_ratio(counts["cost_usd"], accepted), **counts,
    )  # fmt: skip


def _judge_row(contract: str, name: str, attempts: list[Attempt]) -> TierRow:
    return TierRow(
        contract=contract, tier=name, model=attempts[-1].model, judge=True, checked=0, accepted=0,
        pass_rate=None, reached=len({a.request_id for a in attempts}), first_tier_requests=0, first_pass=0,
        first_pass_yield=None, escalated=0, escalation_rate=None, cost_per_accepted=None, **_counts(attempts),
    )  # fmt: skip


def _counts(attempts: Sequence[Attempt]) -> dict[str, Any]:
    """The figures tier and contract rows share, keyed by their field names."""
    calls = [a for a in attempts if a.kind is not AttemptKind.SKIP]
    tokens = sum(a.input_tokens + a.output_tokens for a in attempts)
    estimated = sum(a.input_tokens + a.output_tokens for a in attempts if a.tokens_estimated)
    latencies = [a.latency_s for a in calls]
    return {
        "calls": len(calls),
        "reasks": sum(a.kind is AttemptKind.REASK for a in attempts),
        "retries": sum(a.kind is AttemptKind.RETRY for a in attempts),
        "errors": sum(a.outcome is Outcome.ERROR for a in attempts),
        "skips": sum(a.kind is AttemptKind.SKIP for a in attempts),
        "input_tokens": sum(a.input_tokens for a in attempts),
        "output_tokens": sum(a.output_tokens for a in attempts),
        "estimated_token_share": _ratio(estimated, tokens),
        "cost_usd": sum(a.cost_usd for a in attempts),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
    }


def _contract_row(contract: str, requests: Sequence[_Request]) -> ContractRow:
    attempts = [a for r in requests for a in r.attempts]
    judges = [a for a in attempts if a.kind.is_side_call]
    counts = _counts(attempts)
    accepted = sum(r.accepted_tier is not None for r in requests)
    first_pass = sum(r.first_pass for r in requests)
    model_time = [sum(a.latency_s for a in r.attempts) for r in requests]
    counts.update(latency_p50_s=percentile(model_time, 50), latency_p95_s=percentile(model_time, 95))
    return ContractRow(
        contract=contract, requests=len(requests), accepted=accepted,
        acceptance_rate=_ratio(accepted, len(requests)), first_pass=first_pass,
        first_pass_yield=_ratio(first_pass, len(requests)),
        judge_calls=len(judges),
        judge_cost_usd=sum(a.cost_usd for a in judges),
        cost_per_accepted=_ratio(counts["cost_usd"], accepted), **counts,
    )  # fmt: skip


def _price_for(
    name: str, requests: Sequence[_Request], prices: Mapping[str, ModelPrice], table: PriceTable | None
) -> tuple[ModelPrice | None, str | None]:
    if name in prices:
        return prices[name], "given"
    if table is None:
        return None, None
    models = [a.model for r in requests for a in r.attempts if a.tier == name]
    try:
        return table.lookup(models[-1]), "price table"
    except UnknownModelError:
        return None, None


def _counterfactual(
    contract: str, name: str, requests: Sequence[_Request], price: ModelPrice | None, source: str | None
) -> Counterfactual:
    on_tier = [
        a
        for r in requests
        for a in r.attempts
        if a.tier == name and not a.kind.is_side_call and a.kind is not AttemptKind.SKIP
    ]
    outputs = [a.output_tokens for a in on_tier if a.outcome in _CHECKED]
    mean_out = sum(outputs) / len(outputs) if outputs else None
    measured = [r for r in requests if name in r.called]
    others = [r for r in requests if name not in r.called and r.first_input_tokens is not None]
    covered = [*measured, *others]
    cost: float | None = sum(a.cost_usd for a in on_tier)
    note = ""
    if others and price is None:
        cost, note = None, "no price for this tier: pass its Tier"
    elif others and mean_out is None:
        cost, note = None, "no completed call on this tier to take an output length from"
    elif others and price is not None and mean_out is not None:
        cost = (cost or 0.0) + sum(
            (r.first_input_tokens or 0) * price.input_per_mtok / 1e6 + mean_out * price.output_per_mtok / 1e6
            for r in others
        )
    actual = sum(r.cost_usd for r in covered)
    return Counterfactual(
        contract=contract, tier=name, requests=len(requests), measured=len(measured), estimated=len(others),
        unpriced=len(requests) - len(covered), mean_output_tokens=mean_out, price_source=source,
        cost_usd=cost, actual_cost_usd=actual, ratio=_ratio(actual, cost) if cost else None, note=note,
    )  # fmt: skip


def _ratio(part: float, whole: float | None) -> float | None:
    return part / whole if whole else None


# -- output ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """A titled grid of formatted cells, for plain text here or a rich table in the CLI."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def to_json(report: Report) -> dict[str, Any]:
    """The report as JSON-ready dicts (field names as in the row classes)."""
    return {
        "percentile_method": report.percentile_method,
        "tiers": [asdict(row) for row in report.tiers],
        "contracts": [asdict(row) for row in report.contracts],
        "total": asdict(report.total),
        "counterfactuals": [asdict(row) for row in report.counterfactuals],
    }


_TIER_HEADERS = (
    "contract", "tier", "calls", "accepted", "pass", "FPY", "escalated", "reasks", "retries", "errors",
    "skips", "tokens in/out", "est", "$ total", "$/accepted", "p50", "p95",
)  # fmt: skip
_CONTRACT_HEADERS = (
    "contract", "requests", "accepted", "FPY", "calls", "judge calls", "errors", "tokens in/out", "est",
    "$ total", "$ judges", "$/accepted", "p50", "p95",
)  # fmt: skip
_COUNTERFACTUAL_HEADERS = (
    "contract", "every request on", "measured", "estimated", "unpriced", "$ counterfactual", "$ cascade",
    "cascade / it", "note",
)  # fmt: skip


def tables(report: Report) -> tuple[Table, ...]:
    """The three tables :func:`format_table` prints, with cells already formatted."""
    return (
        Table(
            "Per tier (latency: nearest-rank percentiles of calls)",
            _TIER_HEADERS,
            tuple(_tier_cells(r) for r in report.tiers),
        ),
        Table(
            "Per contract (latency: per-request model time)",
            _CONTRACT_HEADERS,
            tuple(_contract_cells(c) for c in (*report.contracts, report.total)),
        ),
        Table(
            "Counterfactual: every request on one tier",
            _COUNTERFACTUAL_HEADERS,
            tuple(_counterfactual_cells(f) for f in report.counterfactuals),
        ),
    )


def _tier_cells(r: TierRow) -> tuple[str, ...]:
    return (
        r.contract, f"{r.tier} (judge)" if r.judge else r.tier, str(r.calls), str(r.accepted),
        _pct(r.pass_rate), _pct(r.first_pass_yield), _pct(r.escalation_rate), str(r.reasks),
        str(r.retries), str(r.errors), str(r.skips), f"{r.input_tokens}/{r.output_tokens}",
        _pct(r.estimated_token_share), _usd(r.cost_usd), _usd(r.cost_per_accepted),
        _secs(r.latency_p50_s), _secs(r.latency_p95_s),
    )  # fmt: skip


def _contract_cells(c: ContractRow) -> tuple[str, ...]:
    return (
        c.contract, str(c.requests), f"{c.accepted} ({_pct(c.acceptance_rate)})", _pct(c.first_pass_yield),
        str(c.calls), str(c.judge_calls), str(c.errors), f"{c.input_tokens}/{c.output_tokens}",
        _pct(c.estimated_token_share), _usd(c.cost_usd), _usd(c.judge_cost_usd), _usd(c.cost_per_accepted),
        _secs(c.latency_p50_s), _secs(c.latency_p95_s),
    )  # fmt: skip


def _counterfactual_cells(f: Counterfactual) -> tuple[str, ...]:
    ratio = "—" if f.ratio is None else f"{f.ratio:.3f}"
    return (
        f.contract, f.tier, str(f.measured), str(f.estimated), str(f.unpriced), _usd(f.cost_usd),
        _usd(f.actual_cost_usd), ratio, f.note,
    )  # fmt: skip


def format_table(report: Report) -> str:
    """Plain-text tables, numbers right-aligned."""
    if report.total.requests == 0:
        return "The ledger holds no attempts."
    return "\n\n".join(_render(table) for table in tables(report)) + "\n"


def _render(table: Table) -> str:
    columns = list(zip(table.headers, *table.rows, strict=True))
    widths = [max(len(cell) for cell in column) for column in columns]
    numeric = [bool(table.rows) and all(_numeric(cell) for cell in column[1:]) for column in columns]

    def line(cells: Sequence[str]) -> str:
        aligned = (
            cell.rjust(w) if right else cell.ljust(w)
            for cell, w, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(aligned).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([table.title, line(table.headers), rule, *(line(r) for r in table.rows)])


def _numeric(cell: str) -> bool:
    return cell[:1].isdigit() or cell[:1] in ("$", "—")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.6f}"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}s"
