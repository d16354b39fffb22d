"""The `cascade` command end to end: run (single and batch) against a loopback OpenAI-format server,
report, prices, and clear one-line errors with meaningful exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from wire import WireServer, wire_server
from wire.openai_wire import chat_reply

from cascade.cli import main

SCHEMA = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}


@pytest.fixture
def server() -> Iterator[WireServer]:
    with wire_server() as running:
        yield running


@pytest.fixture
def files(tmp_path: Path, server: WireServer) -> dict[str, Path]:
    schema = tmp_path / "city.json"
    schema.write_text(json.dumps(SCHEMA))
    tiers = tmp_path / "tiers.json"
    tiers.write_text(json.dumps([
        {"model": "small", "name": "small", "base_url": server.url + "/v1", "profile": "prompt",
         "input_per_mtok": 0.1, "output_per_mtok": 0.2},
        {"model": "large", "name": "large", "base_url": server.url + "/v1", "profile": "prompt",
         "input_per_mtok": 1.0, "output_per_mtok": 2.0},
    ]))  # fmt: skip
    return {"schema": schema, "tiers": tiers, "ledger": tmp_path / "ledger.sqlite"}


def test_run_escalates_records_and_reports(
    server: WireServer, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server.queue(chat_reply("I think it is Paris."), chat_reply('{"city": "Paris"}'))
    code = main(["run", "Where is the Louvre?", "--tiers", str(files["tiers"]), "--schema", str(files["schema"]),
                 "--ledger", str(files["ledger"])])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["accepted"] and summary["tier"] == "large" and summary["value"] == {"city": "Paris"}
    assert summary["escalations"] == 1 and summary["attempts"] == 2
    assert [json.loads(r.body)["model"] for r in server.requests] == ["small", "large"]

    assert main(["report", "--ledger", str(files["ledger"])]) == 0
    report = capsys.readouterr().out
    assert "small" in report and "large" in report and "city" in report
    assert main(["report", "--ledger", str(files["ledger"]), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures  # the same report as JSON


def test_batch_runs_concurrently_and_exit_code_tells_if_all_passed(
    server: WireServer, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) for i in range(3)))
    # Three good answers on the small tier and one that never passes anywhere.
    server.queue(*[chat_reply('{"city": "Oslo"}') for _ in range(3)])
    out = tmp_path / "results.jsonl"
    code = main(["run", "--batch", str(batch), "--tiers", str(files["tiers"]), "--schema", str(files["schema"]),
                 "--output", str(out), "--concurrency", "2"])  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0 and sorted(r["id"] for r in rows) == ["q0", "q1", "q2"]
    assert all(r["accepted"] and r["tier"] == "small" for r in rows)
    assert "3/3 accepted" in capsys.readouterr().err

    server.queue(chat_reply("nope"), chat_reply("still nope"))
    batch.write_text(json.dumps({"id": "bad", "prompt": "?"}))
    assert main(["run", "--batch", str(batch), "--tiers", str(files["tiers"]), "--schema", str(files["schema"]),
                 "--output", str(out)]) == 1  # fmt: skip
    assert json.loads(out.read_text())["accepted"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "hi", "--tier", "gpt-4o-mini", "--schema", "{schema}"], "OPENAI_API_KEY"),
        (["run", "hi", "--tier", "no-such-model", "--schema", "{schema}"], "no-such-model"),
        (["run", "hi", "--tier", "gpt-4o-mini", "--schema", "{bad_schema}"], "invalid JSON schema"),
        (["run", "hi", "--tier", "gpt-4o-mini", "--schema", "{missing}"], "cannot read schema"),
        (["run", "--tier", "gpt-4o-mini", "--schema", "{schema}"], "PROMPT or --batch"),
        (["run", "--batch", "{schema}", "--tier", "gpt-4o-mini", "--schema", "{schema}"], "prompt"),
        (["report", "--ledger", "{missing}"], "no ledger"),
        (["prices", "--file", "{schema}"], "price"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(
    args: list[str], message: str, files: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "objekt"}))
    paths = {"schema": files["schema"], "bad_schema": bad, "missing": tmp_path / "missing.json"}
    assert main([a.format(**paths) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cascade: error: ") and message in err
    assert "Traceback" not in err


def test_prices_lists_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["gpt-4o-mini"]["input_per_mtok"] > 0


def test_no_command_prints_help_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "bench" in capsys.readouterr().out
