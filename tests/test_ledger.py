"""SQLiteLedger and InMemoryLedger: round trips, migrations, durability, scrubbing, threads, the engine."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from cascade import Cascade, JsonContract
from cascade.ledger import (
    MIGRATIONS,
    REDACTED,
    InMemoryLedger,
    LedgerError,
    SQLiteLedger,
    env_secrets,
    migrate,
    scrub,
)
from cascade.protocols import AttemptSink
from cascade.providers.scripted import ScriptedProvider
from cascade.reports import load_report
from cascade.tiers import Tier
from cascade.types import Attempt, AttemptKind, Outcome, Verdict

REPO = Path(__file__).resolve().parent.parent


def attempt(request_id: str = "r1", seq: int = 0, **changes: object) -> Attempt:
    fields: dict[str, object] = {
        "request_id": request_id, "seq": seq, "contract": "person", "tier": "small", "model": "m-small",
        "kind": AttemptKind.FIRST, "outcome": Outcome.ACCEPTED, "input_tokens": 120, "output_tokens": 30,
        "cost_usd": 0.000123, "latency_s": 0.75, "started_at": 1_700_000_000.5,
    }  # fmt: skip
    fields.update(changes)
    return Attempt(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    rows = [
        attempt(
            verdicts=(Verdict(True, "parses_as_json"), Verdict(False, "in_range", 0.25, "age must be < 150")),
            tokens_estimated=True,
            prompt="Extract the person.",
            response='{"age": 200}',
            extra={"finish_reason": "stop", "nested": {"a": [1, 2]}},
            outcome=Outcome.REJECTED,
        ),
        attempt(seq=1, kind=AttemptKind.RETRY, outcome=Outcome.ERROR, error="[openai/small] boom (HTTP 500)"),
        attempt(seq=2, tier="big", kind=AttemptKind.SKIP, outcome=Outcome.SKIPPED, error="context: too big"),
        attempt(seq=3, tier="judge", kind=AttemptKind.JUDGE, outcome=Outcome.JUDGED),
    ]
    with SQLiteLedger(tmp_path / "ledger.sqlite") as ledger:
        for row in rows:
            ledger.record(row)
        assert ledger.attempts() == rows
        assert len(ledger) == 4
    with SQLiteLedger(tmp_path / "ledger.sqlite") as reopened:
        assert list(reopened) == rows


def test_default_path_comes_from_settings_and_parent_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "deep" / "er" / "ledger.sqlite"
    monkeypatch.setenv("CASCADE_LEDGER", str(target))
    with SQLiteLedger() as ledger:
        ledger.record(attempt())
        assert ledger.path == target
    assert target.is_file()


def test_filters_and_batched_iteration(tmp_path: Path) -> None:
    with SQLiteLedger(tmp_path / "l.sqlite") as ledger:
        rows = [attempt(f"r{i % 2}", i, tier="big" if i == 3 else "small") for i in range(5)]
        for row in rows:
            ledger.record(row)
        assert list(ledger.iter_attempts(batch_size=2)) == rows
        assert ledger.attempts(request_id="r1") == [rows[1], rows[3]]
        assert ledger.attempts(request_id="r1", tier="small") == [rows[1]]
        assert ledger.attempts(contract="other") == []
        assert ledger.attempts(since=4_000_000_000.0) == []  # recorded_at is now, not in 2096
        assert len(ledger.attempts(since=0.0)) == 5


def test_wal_mode_and_rows_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with SQLiteLedger(path) as ledger:
        other = sqlite3.connect(path)
        try:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            ledger.record(attempt(verdicts=(Verdict(True, "v"),)))
            assert other.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1
            assert other.execute("SELECT validator FROM verdicts").fetchall() == [("v",)]
        finally:
            other.close()


def test_records_survive_a_process_that_dies_without_closing(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    script = textwrap.dedent(
        f"""
        import os
        from cascade.ledger import SQLiteLedger
        from cascade.types import Attempt, AttemptKind, Outcome, Verdict
        ledger = SQLiteLedger({str(path)!r})
        for seq in range(3):
            ledger.record(Attempt("r1", seq, "c", "small", "m", AttemptKind.FIRST, Outcome.REJECTED,
                                  verdicts=(Verdict(False, "v", feedback=f"bad {{seq}}"),)))
        os._exit(1)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    with SQLiteLedger(path) as ledger:
        rows = ledger.attempts()
    assert [a.seq for a in rows] == [0, 1, 2]
    assert [a.verdicts[0].feedback for a in rows] == ["bad 0", "bad 1", "bad 2"]


def test_concurrent_records_from_threads_are_all_kept(tmp_path: Path) -> None:
    with SQLiteLedger(tmp_path / "l.sqlite") as ledger:

        def writer(worker: int) -> None:
            for seq in range(40):
                ledger.record(attempt(f"w{worker}", seq, verdicts=(Verdict(True, f"v{seq}"),)))
                if seq % 10 == 0:
                    ledger.attempts(request_id=f"w{worker}")  # reads interleave with other threads' writes

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rows = ledger.attempts()
    assert len(rows) == 240
    assert {(a.request_id, a.seq) for a in rows} == {(f"w{w}", s) for w in range(6) for s in range(40)}
    assert all(a.verdicts == (Verdict(True, f"v{a.seq}"),) for a in rows)


# -- migrations ------------------------------------------------------------------------


def _versions(path: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT version, name FROM _migrations ORDER BY version").fetchall()
    finally:
        conn.close()


def test_migrations_apply_once_and_reopening_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with SQLiteLedger(path) as ledger:
        ledger.record(attempt())
        assert ledger.schema_version() == len(MIGRATIONS)
    expected = [(i + 1, name) for i, (name, _) in enumerate(MIGRATIONS)]
    assert _versions(path) == expected
    with SQLiteLedger(path) as again:
        assert len(again) == 1
    assert _versions(path) == expected
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(conn) == []
    finally:
        conn.close()


def test_an_old_version_ledger_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, MIGRATIONS[:1]) == ["attempts"]
    conn.execute(
        "INSERT INTO attempts (request_id, seq, contract, tier, model, kind, outcome, recorded_at) "
        "VALUES ('old', 0, 'c', 'small', 'm', 'first', 'accepted', 1.0)"
    )
    conn.close()
    with SQLiteLedger(path) as ledger:
        assert ledger.schema_version() == len(MIGRATIONS)
        ledger.record(attempt("new", verdicts=(Verdict(False, "v", 0.5, "no"),)))
        old, new = ledger.attempts()
    assert (old.request_id, old.kind, old.outcome, old.verdicts, old.extra) == (
        "old", AttemptKind.FIRST, Outcome.ACCEPTED, (), {}
    )  # fmt: skip
    assert new.verdicts == (Verdict(False, "v", 0.5, "no"),)
    conn = sqlite3.connect(path)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert {"attempts_request", "attempts_contract_tier", "attempts_recorded"} <= indexes


def test_a_ledger_from_a_newer_cascade_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    SQLiteLedger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _migrations VALUES (?, 'future', 0)", (len(MIGRATIONS) + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="newer than this cascade knows"):
        SQLiteLedger(path)


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not sqlite " * 200)
    with pytest.raises(LedgerError, match=r"cannot open the ledger .*notes\.txt"):
        SQLiteLedger(path)


def test_a_closed_ledger_refuses_to_record(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "l.sqlite")
    ledger.close()
    ledger.close()  # twice is fine
    with pytest.raises(LedgerError, match="is closed"):
        ledger.record(attempt())


# -- scrubbing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: sk-proj-AbCdEf0123456789xyzXYZ", "sk-proj-AbCdEf0123456789xyzXYZ"),
        ("key sk-ant-api03-Zz9_Yy8-Xx7Ww6Vv5Uu4 rejected", "sk-ant-api03-Zz9_Yy8-Xx7Ww6Vv5Uu4"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9.abc.def"),
        ('{"api_key": "s3cr3t-value-123"}', "s3cr3t-value-123"),
        ("x-api-key: abcdEFGH12345678", "abcdEFGH12345678"),
        ("google key AIzaSyA1234567890abcdefghijklmnopqrstu", "AIzaSyA1234567890abcdefghijklmnopqrstu"),
        ("hf_abcdefghijklmnopqrstuvwxyz1234 leaked", "hf_abcdefghijklmnopqrstuvwxyz1234"),
    ],
)
def test_scrub_redacts_key_shapes(text: str, secret: str) -> None:
    cleaned = scrub(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text", ["Use sk-learn for this.", "the bearer of bad news", "api_key is required", "task-ask-1"]
)
def test_scrub_leaves_ordinary_text_alone(text: str) -> None:
    assert scrub(text) == text


def test_env_secrets_are_redacted_whatever_their_shape() -> None:
    env = {"ACME_API_KEY": "plain-words-are-secret", "HF_TOKEN": "short", "HOME": "/home/someone-long"}
    assert env_secrets(env) == ("plain-words-are-secret",)
    assert scrub("x plain-words-are-secret y", env_secrets(env)) == f"x {REDACTED} y"


def test_no_key_reaches_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-secret-in-any-shape")
    keys = ["sk-ant-api03-SECRETSECRETSECRET", "BearerTokenValue0123456789", "acme-secret-in-any-shape"]
    path = tmp_path / "l.sqlite"
    row = attempt(
        outcome=Outcome.ERROR, error=f"[anthropic] invalid x-api-key {keys[0]} (HTTP 401)",
        prompt=f"headers: Authorization: Bearer {keys[1]}", response=f"echo {keys[2]}",
        verdicts=(Verdict(False, "judge", feedback=f"saw {keys[0]}"),), extra={"header": f"Bearer {keys[1]}"},
    )  # fmt: skip
    with SQLiteLedger(path) as ledger:
        ledger.record(row)
        (back,) = ledger.attempts()
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for key in keys:
        assert key.encode() not in raw
        assert key not in repr(back)
    assert back.error == f"[anthropic] invalid x-api-key {REDACTED} (HTTP 401)"
    assert back.prompt == f"headers: Authorization: Bearer {REDACTED}"
    assert back.extra == {"header": f"Bearer {REDACTED}"}


# -- in memory -------------------------------------------------------------------------


def test_in_memory_ledger_records_filters_and_clears() -> None:
    ledger = InMemoryLedger([attempt("r0")])
    sink: AttemptSink = ledger
    sink.record(attempt("r1", tier="big"))
    assert len(ledger) == 2
    assert [a.request_id for a in ledger] == ["r0", "r1"]
    assert ledger.attempts(tier="big") == [attempt("r1", tier="big")]
    assert ledger.attempts(request_id="r0", contract="nope") == []
    ledger.clear()
    assert ledger.attempts() == []


# -- with the engine -------------------------------------------------------------------

SMALL = Tier("small", "scripted", "m-small", input_per_mtok=1.0, output_per_mtok=2.0, reasks=1)
BIG = Tier("big", "scripted", "m-big", input_per_mtok=10.0, output_per_mtok=30.0)
PERSON = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


def test_engine_writes_every_attempt_and_report_reads_them(tmp_path: Path) -> None:
    provider = ScriptedProvider(
        {
            "small": ["nope", '{"name": "a"}', '{"x": 1}', "still no", '{"name": "c"}'],
            "big": ['{"name": "b"}'],
        }
    )
    path = tmp_path / "ledger.sqlite"
    contract = JsonContract(PERSON, name="person")
    with SQLiteLedger(path) as ledger, Cascade(
        [SMALL, BIG], providers={"scripted": provider}, ledger=ledger, order="given", store_text=True
    ) as engine:  # fmt: skip
        results = [
            engine.run(f"Who? my key is sk-ant-api03-DoNotStoreMe{i}xx", contract, request_id=f"r{i}")
            for i in (1, 2, 3)
        ]
    assert [r.tier for r in results] == ["small", "big", "small"]
    in_memory = [a for r in results for a in r.attempts]
    with SQLiteLedger(path) as ledger:
        stored = ledger.attempts()
    assert len(stored) == len(in_memory) == 6
    assert [(a.request_id, a.seq, a.tier, a.kind, a.outcome) for a in stored] == [
        (a.request_id, a.seq, a.tier, a.kind, a.outcome) for a in in_memory
    ]
    assert [a.verdicts for a in stored] == [a.verdicts for a in in_memory]
    assert all("DoNotStoreMe" not in (a.prompt or "") and REDACTED in (a.prompt or "") for a in stored)
    assert "DoNotStoreMe" in (in_memory[0].prompt or "")  # only the ledger scrubs
    assert stored[1].response == '{"name": "a"}'

    report = load_report(path, tiers=[SMALL, BIG])
    small, big = report.tiers
    assert (small.tier, small.calls, small.accepted, small.reasks, small.first_pass, small.escalated) == (
        "small", 5, 2, 2, 1, 1
    )  # fmt: skip
    assert (big.tier, big.calls, big.accepted, big.reached, big.first_tier_requests) == ("big", 1, 1, 1, 0)
    assert report.total.accepted == 3
    assert report.total.cost_usd == pytest.approx(sum(r.cost_usd for r in results))
    assert report.total.estimated_token_share == 1.0  # the scripted provider estimates its tokens
