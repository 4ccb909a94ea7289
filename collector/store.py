"""Raw telemetry and rejected messages: COPY into staging, then an idempotent insert.

Every function here runs inside the writer's batch transaction. Rows are copied into
temporary staging tables (one per kind, emptied at every commit), then moved with
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` so that the database says which
messages were new and which were already stored (idempotent on ``(tid, msg_id)`` through
``message_ids``, and for operations on ``(tid, op_id)`` through ``operation_ids``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import count
from typing import Any, Final

import msgspec
import psycopg
from psycopg.rows import tuple_row

from collector.decode import Decoded, Rejected
from terminals.contract import Event, Heartbeat, Operation, Status
from termwatch.db import Row

Conn = psycopg.Connection[Row]
Key = tuple[str, str]

#: Staging columns and their types, per kind. JSON travels as text and is cast on insert
#: (binary COPY of jsonb would re-serialise it).
_STAGING: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "status": (
        ("tid", "text"),
        ("msg_id", "text"),
        ("ts", "timestamptz"),
        ("seq", "int8"),
        ("devices", "text"),
    ),
    "events": (
        ("tid", "text"),
        ("msg_id", "text"),
        ("ts", "timestamptz"),
        ("seq", "int8"),
        ("device", "text"),
        ("name", "text"),
        ("payload", "text"),
    ),
    "operations": (
        ("tid", "text"),
        ("msg_id", "text"),
        ("ts", "timestamptz"),
        ("seq", "int8"),
        ("op_id", "text"),
        ("kind", "text"),
        ("service", "text"),
        ("account_last4", "text"),
        ("amount_minor", "int8"),
        ("currency", "text"),
        ("outcome", "text"),
        ("started", "timestamptz"),
        ("failed_step", "text"),
        ("failed_result", "text"),
        ("failed_error", "text"),
        ("cash_accepted_minor", "int8"),
        ("money_at_risk_minor", "int8"),
        ("steps", "text"),
    ),
    "heartbeat": (
        ("tid", "text"),
        ("msg_id", "text"),
        ("ts", "timestamptz"),
        ("seq", "int8"),
        ("interval_s", "int4"),
        ("uptime_s", "int8"),
        ("app", "text"),
    ),
}
_JSON_COLUMNS: Final = frozenset({"devices", "payload", "steps"})
TABLES: Final = {
    "status": "status_snapshots",
    "events": "events",
    "operations": "operations",
    "heartbeat": "heartbeats",
}
_POSITION: Final = (("position", "int4"),)
_STAGING_DDL: Final = tuple(
    f"CREATE TEMP TABLE IF NOT EXISTS stage_{TABLES[kind]}"
    f" ({', '.join(f'{name} {type_}' for name, type_ in _POSITION + columns)})"
    " ON COMMIT DELETE ROWS"
    for kind, columns in _STAGING.items()
)
#: Insert what is new; answer with the positions of the rows that were already stored (the
#: ones RETURNING did not name). Usually none, so almost nothing travels back. A message is
#: new when its ``(tid, id)`` is new to ``message_ids`` (whatever its ``ts``), an operation
#: also when its ``(tid, op_id)`` is new to ``operation_ids`` (0007_identity.sql); the raw
#: row's own key ``(tid, msg_id, ts)`` is the one a hypertable can hold.
_FRESH: Final = (
    "fresh AS (INSERT INTO message_ids (tid, msg_id, ts)"
    " SELECT tid, msg_id, ts FROM stage_{table} ORDER BY tid, msg_id"
    " ON CONFLICT DO NOTHING RETURNING tid, msg_id, ts)"
)
_FRESH_OPS: Final = (
    ", fresh_ops AS (INSERT INTO operation_ids (tid, op_id, msg_id, ts)"
    " SELECT s.tid, s.op_id, s.msg_id, s.ts FROM stage_operations s"
    " JOIN fresh f ON f.tid = s.tid AND f.msg_id = s.msg_id AND f.ts = s.ts"
    " ORDER BY s.tid, s.op_id ON CONFLICT DO NOTHING RETURNING tid, msg_id, ts)"
)


def _insert_sql(kind: str, columns: tuple[tuple[str, str], ...]) -> str:
    table = TABLES[kind]
    fresh = "fresh_ops" if kind == "operations" else "fresh"
    values = ", ".join(f"s.{n}::jsonb" if n in _JSON_COLUMNS else f"s.{n}" for n, _ in columns)
    return (
        "WITH "
        + _FRESH.format(table=table)
        + (_FRESH_OPS if kind == "operations" else "")
        + f", inserted AS (INSERT INTO {table} ({', '.join(name for name, _ in columns)})"
        f" SELECT {values}"
        f" FROM stage_{table} s JOIN {fresh} f"
        " ON f.tid = s.tid AND f.msg_id = s.msg_id AND f.ts = s.ts"
        " ORDER BY s.tid, s.msg_id, s.ts"
        " ON CONFLICT DO NOTHING RETURNING tid, msg_id, ts)"
        f" SELECT s.position FROM stage_{table} s WHERE NOT EXISTS (SELECT FROM inserted i"
        " WHERE i.tid = s.tid AND i.msg_id = s.msg_id AND i.ts = s.ts)"
    )


_INSERT: Final = {kind: _insert_sql(kind, columns) for kind, columns in _STAGING.items()}
_NON_DIGITS = re.compile(r"\D")
_STEPS = msgspec.json.Encoder()


_REJECTED: Final = (
    ("topic", "text"),
    ("kind", "text"),
    ("tid", "text"),
    ("reason", "text"),
    ("payload_head", "bytea"),
)


def prepare(conn: Conn) -> None:
    """Create this connection's staging tables (once per connection)."""
    with conn.transaction():
        for ddl in _STAGING_DDL:
            conn.execute(ddl)


def last4(account: str | None) -> str | None:
    """The last 4 digits of an account number, never more; None when it has no digit."""
    if account is None:
        return None
    digits = _NON_DIGITS.sub("", account)
    return digits[-4:] or None


def _row(position: int, decoded: Decoded) -> tuple[Any, ...]:
    message = decoded.message
    if isinstance(message, Status):
        return (position, message.tid, message.id, message.ts, message.seq, decoded.raw_json)
    if isinstance(message, Event):
        return (
            position,
            message.tid,
            message.id,
            message.ts,
            message.seq,
            message.device,
            message.name,
            decoded.raw_json,
        )
    if isinstance(message, Operation):
        failed = message.failed_step()
        return (
            position,
            message.tid,
            message.id,
            message.ts,
            message.seq,
            message.op_id,
            message.kind,
            message.service,
            last4(message.account),
            message.amount_minor,
            message.currency,
            message.outcome,
            message.started,
            failed.step if failed else None,
            failed.result if failed else None,
            failed.error if failed else None,
            message.cash_accepted_minor(),
            message.money_at_risk_minor(),
            _STEPS.encode(message.steps).decode(),
        )
    if isinstance(message, Heartbeat):
        return (
            position,
            message.tid,
            message.id,
            message.ts,
            message.seq,
            message.interval_s,
            message.uptime_s,
            message.app,
        )
    raise TypeError(f"not a telemetry message: {type(message).__name__}")


def key(decoded: Decoded) -> Key:
    """The identity of a telemetry message: its terminal and id, whatever its ``ts``."""
    message = decoded.message
    assert isinstance(message, Status | Event | Operation | Heartbeat)
    return (message.tid, message.id)


def copy_rows(
    conn: Conn,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Binary COPY of ``rows`` into ``table``; ``columns`` are ``(name, type)`` pairs."""
    names = ", ".join(name for name, _ in columns)
    with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([type_ for _, type_ in columns])
        for row in rows:
            copy.write_row(row)


def insert_new(conn: Conn, kind: str, messages: Sequence[Decoded]) -> list[int]:
    """Insert ``messages`` (all of ``kind``, no key twice); return the positions (in
    ``messages``) of those that were already stored: the duplicates.

    Rows are inserted in key order, so two collectors inserting the same keys at once wait
    for each other instead of deadlocking.
    """
    if not messages:
        return []
    copy_rows(
        conn, f"stage_{TABLES[kind]}", _POSITION + _STAGING[kind], map(_row, count(), messages)
    )
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(_INSERT[kind])
    return [r[0] for r in cur.fetchall()]


#: What a rejected row keeps, in bytes: a prefix of the topic and of the reason, and the
#: first bytes of the payload. With the other columns a row stays under 2 KB, whatever came.
TOPIC_KEPT: Final = 256
REASON_KEPT: Final = 512
HEAD_KEPT: Final = 256
#: Rows pruned per statement, so pruning never holds a long lock or hits statement_timeout.
PRUNE_CHUNK: Final = 10_000


def prefix(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits in ``max_bytes``."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")


def insert_rejected(conn: Conn, rejected: Iterable[Rejected]) -> int:
    """Keep rejected messages with a bounded prefix of their topic and reason, and their
    first bytes; return how many."""
    rows = [
        (
            prefix(r.topic, TOPIC_KEPT),
            prefix(r.kind, 32),
            r.tid,
            prefix(r.text, REASON_KEPT),
            bytes(r.head[:HEAD_KEPT]),
        )
        for r in rejected
    ]
    copy_rows(conn, "rejected_messages", _REJECTED, rows)
    return len(rows)


def prune_rejected(conn: Conn, older_than: datetime) -> int:
    """Delete rejected messages received before ``older_than``; return how many."""
    total = 0
    while True:
        cur = conn.execute(
            "DELETE FROM rejected_messages WHERE id IN (SELECT id FROM rejected_messages"
            " WHERE received_at < %s ORDER BY received_at LIMIT %s)",
            (older_than, PRUNE_CHUNK),
        )
        total += cur.rowcount
        if cur.rowcount < PRUNE_CHUNK:
            return total
