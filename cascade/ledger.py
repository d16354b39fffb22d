"""Where attempts are kept: a SQLite ledger on disk, or a list in memory.

:class:`SQLiteLedger` commits every :meth:`~SQLiteLedger.record` on its own,
in WAL mode, so a process that dies loses nothing it already recorded and a
reader in another connection sees each row at once.  Its schema grows by an
ordered list of SQL scripts (:data:`MIGRATIONS`) noted in a ``_migrations``
table, so opening an older ledger upgrades it and reopening is a no-op.

Verdicts live in a child table (one row per validator judgement) rather than
a JSON column: "which validator rejects most on tier X" is then plain SQL, and
each feedback text goes through the same key scrubber as prompts.

Text is scrubbed before it is written: anything shaped like an API key
(``sk-...``, ``Bearer ...``, ``x-api-key: ...``) or equal to the value of a
``*_API_KEY`` environment variable becomes ``[REDACTED]``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from cascade import settings
from cascade.errors import LedgerError
from cascade.types import Attempt, AttemptKind, Outcome, Verdict

__all__ = [
    "MIGRATIONS",
    "REDACTED",
    "AttemptSource",
    "InMemoryLedger",
    "LedgerError",
    "SQLiteLedger",
    "migrate",
    "scrub",
]

REDACTED = "[REDACTED]"

#: The schema, one script per version; append new scripts, never edit shipped ones.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "attempts",
        """
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            contract TEXT NOT NULL,
            tier TEXT NOT NULL,
            model TEXT NOT NULL,
            kind TEXT NOT NULL,
            outcome TEXT NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            tokens_estimated INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            latency_s REAL NOT NULL DEFAULT 0,
            error TEXT,
            started_at REAL NOT NULL DEFAULT 0,
            prompt TEXT,
            response TEXT,
            extra TEXT NOT NULL DEFAULT '{}',
            recorded_at REAL NOT NULL
        );
        """,
    ),
    (
        "verdicts",
        """
        CREATE TABLE verdicts (
            attempt_id INTEGER NOT NULL REFERENCES attempts(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            validator TEXT NOT NULL,
            passed INTEGER NOT NULL,
            score REAL,
            feedback TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (attempt_id, position)
        );
        """,
    ),
    (
        "indexes",
        """
        CREATE INDEX attempts_request ON attempts(request_id, seq);
        CREATE INDEX attempts_contract_tier ON attempts(contract, tier);
        CREATE INDEX attempts_recorded ON attempts(recorded_at);
        """,
    ),
)

_COLUMNS = (
    "request_id", "seq", "contract", "tier", "model", "kind", "outcome", "input_tokens", "output_tokens",
    "tokens_estimated", "cost_usd", "latency_s", "error", "started_at", "prompt", "response", "extra",
)  # fmt: skip
_INSERT = (
    f"INSERT INTO attempts ({', '.join(_COLUMNS)}, recorded_at) VALUES ({', '.join('?' * len(_COLUMNS))}, ?)"
)
_INSERT_VERDICT = "INSERT INTO verdicts (attempt_id, position, validator, passed, score, feedback) VALUES (?, ?, ?, ?, ?, ?)"


class AttemptSource(Protocol):
    """Something attempts can be read back from (both ledgers)."""

    def attempts(
        self, *, request_id: str | None = None, contract: str | None = None, tier: str | None = None
    ) -> list[Attempt]: ...


# -- scrubbing -------------------------------------------------------------------------

#: Key shapes of the common providers; a match is replaced by the template (group 1 is kept).
_KEY_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(Bearer\s+)[A-Za-z0-9\-._~+/]{16,}=*"), rf"\1{REDACTED}"),
    (
        re.compile(
            r"(?i)\b((?:x-)?api[-_]?key|access[-_]?token|secret[-_]?key)"
            r"(\"?'?\s*[:=]\s*\"?'?)[A-Za-z0-9\-._~+/]{8,}"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"), REDACTED),  # OpenAI, Anthropic (sk-ant-), DeepSeek
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), REDACTED),  # Google
    (re.compile(r"\b(?:hf|gsk|xai)_[A-Za-z0-9]{20,}"), REDACTED),  # Hugging Face, Groq, xAI
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), REDACTED),  # GitHub
)
_SECRET_ENV = re.compile(r"(?:API_KEY|_TOKEN|_SECRET)$")


def env_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of ``*_API_KEY`` / ``*_TOKEN`` / ``*_SECRET`` variables, to redact whatever their shape."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if _SECRET_ENV.search(k.upper()) and len(v) >= 8}
    return tuple(sorted(values, key=len, reverse=True))


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with every key-like string and every literal in ``secrets`` replaced by ``[REDACTED]``."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _KEY_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# -- migrations ------------------------------------------------------------------------


def migrate(conn: sqlite3.Connection, migrations: Sequence[tuple[str, str]] = MIGRATIONS) -> list[str]:
    """Apply the scripts ``conn`` has not seen, in one transaction; returns the names applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``).  The
    transaction is ``IMMEDIATE`` so two processes opening a new ledger at
    once cannot both apply the same script.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM _migrations").fetchone()[0]
        if current > len(migrations):
            raise LedgerError(
                f"the ledger has schema version {current}, newer than this cascade knows "
                f"({len(migrations)}): upgrade cascade or use another ledger file"
            )
        applied: list[str] = []
        for version, (name, script) in enumerate(migrations, start=1):
            if version <= current:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations VALUES (?, ?, ?)", (version, name, time.time()))
            applied.append(name)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied


def _statements(script: str) -> Iterator[str]:
    # executescript() would commit first, so a script is run statement by statement instead.
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise ValueError(f"migration script ends in an incomplete statement: {buffer.strip()[:60]!r}")


# -- the SQLite ledger -----------------------------------------------------------------


class SQLiteLedger:
    """An :class:`~cascade.protocols.AttemptSink` writing to SQLite; safe to share between threads.

    >>> with SQLiteLedger(tmp / "ledger.sqlite") as ledger:  # doctest: +SKIP
    ...     engine = Cascade(tiers, ledger=ledger)

    ``synchronous="NORMAL"`` (the default) survives a crash of the process;
    ``"FULL"`` also survives power loss, at one fsync per attempt.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path) if path is not None else settings.ledger_path()
        self._lock = threading.Lock()
        self._secrets = env_secrets()
        with self._translate("open"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection behind a lock: the engine records from its loop thread while
            # the caller may read from another, and SQLite serialises writers anyway.
            conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        try:
            with self._translate("open"):
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={synchronous}")
                conn.execute("PRAGMA foreign_keys=ON")
                migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    # -- writing -------------------------------------------------------------------------

    def record(self, attempt: Attempt) -> None:
        """Write one attempt and its verdicts, committed before this returns."""
        row = self._row(attempt)
        verdicts = [
            (i, v.validator, int(v.passed), v.score, scrub(v.feedback, self._secrets))
            for i, v in enumerate(attempt.verdicts)
        ]
        with self._lock, self._translate("write to"):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                attempt_id = conn.execute(_INSERT, (*row, time.time())).lastrowid
                conn.executemany(_INSERT_VERDICT, [(attempt_id, *v) for v in verdicts])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _row(self, attempt: Attempt) -> tuple[Any, ...]:
        def clean(text: str | None) -> str | None:
            return None if text is None else scrub(text, self._secrets)

        extra = json.dumps(dict(attempt.extra), default=str, sort_keys=True)
        return (
            attempt.request_id, attempt.seq, attempt.contract, attempt.tier, attempt.model,
            attempt.kind.value, attempt.outcome.value, attempt.input_tokens, attempt.output_tokens,
            int(attempt.tokens_estimated), attempt.cost_usd, attempt.latency_s, clean(attempt.error),
            attempt.started_at, clean(attempt.prompt), clean(attempt.response), clean(extra),
        )  # fmt: skip

    # -- reading -------------------------------------------------------------------------

    def attempts(
        self,
        *,
        request_id: str | None = None,
        contract: str | None = None,
        tier: str | None = None,
        since: float | None = None,
    ) -> list[Attempt]:
        """Every matching attempt in the order recorded; ``since`` is a Unix time of recording."""
        return list(self.iter_attempts(request_id=request_id, contract=contract, tier=tier, since=since))

    def iter_attempts(
        self,
        *,
        request_id: str | None = None,
        contract: str | None = None,
        tier: str | None = None,
        since: float | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Attempt]:
        """Like :meth:`attempts`, reading ``batch_size`` rows at a time so a large ledger streams."""
        filters = {"request_id": request_id, "contract": contract, "tier": tier}
        where = [f"{column} = ?" for column, value in filters.items() if value is not None]
        params: list[Any] = [value for value in filters.values() if value is not None]
        if since is not None:
            where.append("recorded_at >= ?")
            params.append(since)
        clause = "".join(f" AND {w}" for w in where)
        query = f"SELECT id, {', '.join(_COLUMNS)} FROM attempts WHERE id > ?{clause} ORDER BY id LIMIT ?"
        last_id = 0
        while True:
            with self._lock, self._translate("read"):
                conn = self._connection()
                rows = conn.execute(query, (last_id, *params, batch_size)).fetchall()
                verdicts = _verdicts_of(conn, [row[0] for row in rows])
            yield from (_attempt(row, verdicts.get(row[0], ())) for row in rows)
            if len(rows) < batch_size:
                return
            last_id = rows[-1][0]

    def __iter__(self) -> Iterator[Attempt]:
        return self.iter_attempts()

    def __len__(self) -> int:
        with self._lock, self._translate("read"):
            count: int = self._connection().execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        return count

    def schema_version(self) -> int:
        with self._lock, self._translate("read"):
            version: int = self._connection().execute("SELECT MAX(version) FROM _migrations").fetchone()[0]
        return version

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> SQLiteLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteLedger({str(self.path)!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"the ledger {str(self.path)!r} is closed")
        return self._conn

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """The one place sqlite3 and file-system errors become :class:`LedgerError`."""
        try:
            yield
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot {action} the ledger {str(self.path)!r}: {exc}") from None
        except OSError as exc:
            raise LedgerError(f"cannot {action} the ledger {str(self.path)!r}: {exc.strerror}") from None


def _verdicts_of(conn: sqlite3.Connection, ids: list[int]) -> dict[int, tuple[Verdict, ...]]:
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT attempt_id, validator, passed, score, feedback FROM verdicts "
        f"WHERE attempt_id IN ({', '.join('?' * len(ids))}) ORDER BY attempt_id, position",
        ids,
    ).fetchall()
    grouped: dict[int, list[Verdict]] = {}
    for attempt_id, validator, passed, score, feedback in rows:
        grouped.setdefault(attempt_id, []).append(Verdict(bool(passed), validator, score, feedback))
    return {k: tuple(v) for k, v in grouped.items()}


def _attempt(row: Sequence[Any], verdicts: tuple[Verdict, ...]) -> Attempt:
    values = dict(zip(_COLUMNS, row[1:], strict=True))
    try:
        kind, outcome = AttemptKind(values.pop("kind")), Outcome(values.pop("outcome"))
        extra = json.loads(values.pop("extra"))
    except ValueError as exc:
        raise LedgerError(f"ledger row {row[0]} cannot be read: {exc}") from None
    values["tokens_estimated"] = bool(values["tokens_estimated"])
    return Attempt(kind=kind, outcome=outcome, extra=extra, verdicts=verdicts, **values)


# -- the in-memory ledger --------------------------------------------------------------


class InMemoryLedger:
    """A list-backed :class:`~cascade.protocols.AttemptSink` for benches and tests.

    Nothing is persisted, so nothing is scrubbed.
    """

    def __init__(self, attempts: Iterable[Attempt] = ()) -> None:
        self._lock = threading.Lock()
        self._rows = list(attempts)

    def record(self, attempt: Attempt) -> None:
        with self._lock:
            self._rows.append(attempt)

    def attempts(
        self, *, request_id: str | None = None, contract: str | None = None, tier: str | None = None
    ) -> list[Attempt]:
        with self._lock:
            rows = list(self._rows)
        return [
            a
            for a in rows
            if (request_id is None or a.request_id == request_id)
            and (contract is None or a.contract == contract)
            and (tier is None or a.tier == tier)
        ]

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def __iter__(self) -> Iterator[Attempt]:
        return iter(self.attempts())

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"InMemoryLedger({len(self)} attempts)"
