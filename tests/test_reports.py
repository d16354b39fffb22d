"""Report figures on small hand-computed attempt sequences."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cascade.ledger import LedgerError, SQLiteLedger
from cascade.pricing import ModelPrice, PriceTable
from cascade.reports import (
    PERCENTILE_METHOD,
    Report,
    build_report,
    format_table,
    load_report,
    percentile,
    tables,
    tier_prices,
    to_json,
)
from cascade.tiers import Tier
from cascade.types import Attempt, AttemptKind, Outcome

F, RA, RT, J, S = AttemptKind.FIRST, AttemptKind.REASK, AttemptKind.RETRY, AttemptKind.JUDGE, AttemptKind.SKIP
ACC, REJ, ERR, SKP, JDG = Outcome.ACCEPTED, Outcome.REJECTED, Outcome.ERROR, Outcome.SKIPPED, Outcome.JUDGED


def a(
    rid: str, seq: int, tier: str, kind: AttemptKind, outcome: Outcome, tokens: tuple[int, int] = (0, 0),
    cost: float = 0.0, latency: float = 0.0, *, estimated: bool = False, contract: str = "extract",
) -> Attempt:  # fmt: skip
    return Attempt(
        rid, seq, contract, tier, f"m-{tier}", kind, outcome, input_tokens=tokens[0], output_tokens=tokens[1],
        tokens_estimated=estimated, cost_usd=cost, latency_s=latency,
    )  # fmt: skip


#: Four requests on small -> big with a judge (figures in the tests are worked out by hand from these).
LEDGER = [
    a("r1", 0, "small", F, ACC, (100, 20), 0.001, 1.0),
    a("r2", 0, "small", F, REJ, (100, 30), 0.002, 2.0),
    a("r2", 1, "small", RA, ACC, (150, 20), 0.003, 3.0),
    a("r3", 0, "small", F, ERR, latency=0.5),
    a("r3", 1, "small", RT, REJ, (100, 40), 0.004, 1.5),
    a("r3", 2, "big", F, ACC, (110, 50), 0.05, 4.0),
    a("r4", 0, "small", S, SKP),
    a("r4", 1, "judge", J, JDG, (50, 5), 0.0005, 0.25, estimated=True),
    a("r4", 2, "big", F, REJ, (200, 60), 0.1, 5.0),
]
PRICES = {"small": ModelPrice(10.0, 20.0), "big": ModelPrice(100.0, 200.0)}


@pytest.fixture
def report() -> Report:
    return build_report(reversed(LEDGER), PRICES)  # order of rows must not matter


def test_tier_rows_in_cascade_order_with_judge_last(report: Report) -> None:
    assert [(r.contract, r.tier, r.judge) for r in report.tiers] == [
        ("extract", "small", False), ("extract", "big", False), ("extract", "judge", True)
    ]  # fmt: skip


def test_small_tier_figures(report: Report) -> None:
    small = report.tiers[0]
    assert (small.calls, small.checked, small.accepted, small.pass_rate) == (5, 4, 2, 0.5)
    assert (small.reached, small.first_tier_requests, small.first_pass) == (3, 3, 1)
    assert small.first_pass_yield == pytest.approx(1 / 3)
    assert small.escalated == 1
    assert small.escalation_rate == pytest.approx(1 / 3)
    assert (small.reasks, small.retries, small.errors, small.skips) == (1, 1, 1, 1)
    assert (small.input_tokens, small.output_tokens, small.estimated_token_share) == (450, 110, 0.0)
    assert small.cost_usd == pytest.approx(0.010)
    assert small.cost_per_accepted == pytest.approx(0.005)
    # nearest rank over [0.5, 1.0, 1.5, 2.0, 3.0]: p50 = 3rd value, p95 = 5th
    assert (small.latency_p50_s, small.latency_p95_s) == (1.5, 3.0)


def test_big_tier_and_judge_figures(report: Report) -> None:
    big, judge = report.tiers[1], report.tiers[2]
    assert (big.calls, big.accepted, big.pass_rate, big.reached) == (2, 1, 0.5, 2)
    # r4 skipped small, so big was the first tier it tried, and big rejected it.
    assert (big.first_tier_requests, big.first_pass, big.first_pass_yield) == (1, 0, 0.0)
    assert (big.escalated, big.escalation_rate) == (0, 0.0)
    assert big.cost_usd == pytest.approx(0.15)
    assert (big.latency_p50_s, big.latency_p95_s) == (4.0, 5.0)
    assert (judge.calls, judge.accepted, judge.pass_rate, judge.first_pass_yield) == (1, 0, None, None)
    assert (judge.input_tokens, judge.output_tokens, judge.estimated_token_share) == (50, 5, 1.0)
    assert (judge.cost_usd, judge.cost_per_accepted, judge.reached) == (0.0005, None, 1)


def test_contract_totals(report: Report) -> None:
    (row,) = report.contracts
    assert (row.requests, row.accepted, row.acceptance_rate, row.first_pass, row.first_pass_yield) == (
        4, 3, 0.75, 1, 0.25
    )  # fmt: skip
    assert (row.calls, row.judge_calls, row.reasks, row.retries, row.errors, row.skips) == (8, 1, 1, 1, 1, 1)
    assert (row.input_tokens, row.output_tokens) == (810, 225)
    assert row.estimated_token_share == pytest.approx(55 / 1035)
    assert row.cost_usd == pytest.approx(0.1605)
    assert row.judge_cost_usd == 0.0005
    assert row.cost_per_accepted == pytest.approx(0.1605 / 3)
    # per-request model time [1.0, 5.0, 6.0, 5.25] -> sorted [1.0, 5.0, 5.25, 6.0]
    assert (row.latency_p50_s, row.latency_p95_s) == (5.0, 6.0)
    assert report.total == replace(row, contract="*")


def test_counterfactuals(report: Report) -> None:
    small, big = report.counterfactuals
    # small: r1-r3 cost what they spent there (0.010); r4 never called small: 200 input tokens
    # (its first call) at $10/M + small's mean output (20+30+20+40)/4 = 27.5 at $20/M.
    assert (small.tier, small.measured, small.estimated, small.unpriced) == ("small", 3, 1, 0)
    assert small.mean_output_tokens == 27.5
    assert small.cost_usd == pytest.approx(0.010 + 200 * 10e-6 + 27.5 * 20e-6)
    assert small.actual_cost_usd == pytest.approx(0.1605)
    assert small.ratio == pytest.approx(0.1605 / 0.01255)
    # big: r3, r4 spent 0.15 there; r1, r2 each 100 input tokens at $100/M + 55 output at $200/M.
    assert (big.measured, big.estimated, big.mean_output_tokens, big.price_source) == (2, 2, 55.0, "given")
    assert big.cost_usd == pytest.approx(0.15 + 2 * 0.021)
    assert big.ratio == pytest.approx(0.1605 / 0.192)


def test_counterfactual_without_data_says_why() -> None:
    rows = [
        a("r1", 0, "small", F, ACC, (100, 10), 0.001),
        a("r2", 0, "small", F, ERR),  # no tokens recorded anywhere: cannot be estimated
        a("r3", 0, "small", F, REJ, (100, 10), 0.001),
        a("r3", 1, "big", F, ERR),
    ]
    no_price = {cf.tier: cf for cf in build_report(rows).counterfactuals}
    assert no_price["small"].cost_usd == pytest.approx(0.002)  # every request called small: nothing estimated
    assert no_price["small"].estimated == 0
    assert no_price["small"].ratio == pytest.approx(1.0)
    assert no_price["big"].cost_usd is None
    assert "no price" in no_price["big"].note
    assert (no_price["big"].measured, no_price["big"].estimated, no_price["big"].unpriced) == (1, 1, 1)
    priced = {cf.tier: cf for cf in build_report(rows, {"big": ModelPrice(1.0, 1.0)}).counterfactuals}
    assert priced["big"].cost_usd is None
    assert "no completed call" in priced["big"].note


def test_price_table_fills_tiers_not_given() -> None:
    rows = [a("r1", 0, "small", F, ACC, (1000, 100), 0.5), a("r2", 0, "big", F, ACC, (2000, 300), 1.0)]
    table = PriceTable({"m-small": ModelPrice(1.0, 2.0)})
    cf = {c.tier: c for c in build_report(rows, price_table=table).counterfactuals}
    assert cf["small"].price_source == "price table"
    assert cf["small"].cost_usd == pytest.approx(0.5 + (2000 * 1.0 + 100 * 2.0) / 1e6)
    assert (cf["big"].price_source, cf["big"].cost_usd) == (None, None)


def test_first_pass_needs_the_very_first_call() -> None:
    rows = [
        a("r1", 0, "small", F, ERR),
        a("r1", 1, "small", RT, ACC, (10, 1), 0.1),
        a("r2", 0, "small", F, ACC, (10, 1), 0.1),
    ]
    (row,) = build_report(rows).tiers
    assert (row.first_tier_requests, row.first_pass, row.retries, row.errors) == (2, 1, 1, 1)
    assert (row.pass_rate, row.escalated) == (1.0, 0)


def test_contracts_are_reported_apart_and_together() -> None:
    rows = [
        a("r1", 0, "small", F, ACC, (10, 5), 0.25, contract="one"),
        a("r1", 0, "small", F, REJ, (10, 5), 0.5, contract="two"),  # same request id, other contract
    ]
    report = build_report(rows)
    assert [(c.contract, c.requests, c.accepted) for c in report.contracts] == [("one", 1, 1), ("two", 1, 0)]
    assert (report.total.requests, report.total.accepted, report.total.cost_usd) == (2, 1, 0.75)
    assert [(r.contract, r.cost_per_accepted) for r in report.tiers] == [("one", 0.25), ("two", None)]


def test_percentile_is_nearest_rank() -> None:
    values = [50.0, 15.0, 40.0, 20.0, 35.0]
    assert PERCENTILE_METHOD == "nearest-rank"
    assert [percentile(values, q) for q in (5, 30, 40, 50, 100)] == [15.0, 20.0, 20.0, 35.0, 50.0]
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, 0)


def test_text_and_json_output(report: Report) -> None:
    text = format_table(report)
    assert "judge (judge)" in text
    assert "33.3%" in text  # small's first-pass yield
    assert "$0.160500" in text  # the contract's total
    assert len(tables(report)) == 3
    data = to_json(report)
    assert json.loads(json.dumps(data)) == data
    assert data["total"]["contract"] == "*"
    assert data["counterfactuals"][1]["tier"] == "big"
    assert data["percentile_method"] == "nearest-rank"
    assert format_table(build_report([])) == "The ledger holds no attempts."


def test_load_report_reads_a_ledger_and_names_a_missing_one(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger at"):
        load_report(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
    with SQLiteLedger(tmp_path / "l.sqlite") as ledger:
        for row in LEDGER:
            ledger.record(row)
    tiers = [Tier("small", "scripted", "m-small", 10.0, 20.0), Tier("big", "scripted", "m-big", 100.0, 200.0)]
    prices = tier_prices(tiers)
    assert {name: (p.input_per_mtok, p.output_per_mtok) for name, p in prices.items()} == {
        "small": (10.0, 20.0), "big": (100.0, 200.0)
    }  # fmt: skip
    assert load_report(tmp_path / "l.sqlite", {t.name: t for t in tiers}) == build_report(LEDGER, prices)
