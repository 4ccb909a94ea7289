"""Current state: one ``terminal_state`` row per terminal, one ``device_state`` row per field.

Runs inside the writer's batch transaction, after the raw rows are in, on the messages that
were new (a duplicate never moves state twice). Each terminal's messages are applied in
``ts`` order (arrival order among equal stamps). Guarantees:

* Nothing rolls the device state back. A status snapshot older than the newest snapshot
  applied (``terminal_state.status_ts``) changes nothing: snapshots are full, so the newer
  one already said everything it could. A field takes a value only from a message at least
  as new as the one that last set it (``device_state.ts``) and as the newest snapshot.
* ``since`` is the event time the field entered its value; every change of value is a
  ``device_state_log`` row. A snapshot repeating a value writes nothing (``status_ts``
  records that it was seen); an event repeating one moves ``device_state.ts``.
* Terminal rows are locked in ``tid`` order (new ones created first), and device rows are
  written only under their terminal's lock, so collectors sharing the load wait for each
  other rather than deadlock.
* ``availability`` words change ``online`` in arrival order; a word that changes nothing (a
  retained repeat) is reported as a duplicate. A terminal recorded offline for missing
  heartbeats is online again when a message newer than that verdict arrives.
* Sequence gaps: a message that is the terminal's newest and whose ``seq`` skips numbers
  adds the count skipped to ``seq_gaps``; a lower ``seq`` on a newer message (a restart)
  starts counting again from it.

Rows this collector wrote last are not read back (:mod:`collector.statecache`): the lock
query returns each row's ``xmin``, and only rows someone else changed are read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Final

from psycopg.rows import tuple_row

from collector.decode import Availability, Decoded
from collector.hooks import AvailabilityChange
from collector.statecache import Entry, Field, Fields, StateCache, TerminalRow
from collector.store import Conn, copy_rows
from terminals.contract import Event, Heartbeat, Status

SERVICE_MODE: Final = "Terminal.ServiceMode"
BOOT: Final = "Terminal.Boot"
AVAILABILITY: Final = "availability"
HEARTBEAT: Final = "heartbeat"


_TERMINAL_COLUMNS: Final = tuple(f.name for f in fields(TerminalRow))
_TERMINAL_TYPES: Final = tuple(
    zip(
        _TERMINAL_COLUMNS,
        (
            "text",  # tid
            "timestamptz",  # first_seen
            "timestamptz",  # last_seen
            "timestamptz",  # last_received_at
            "int4",  # heartbeat_interval_s
            "timestamptz",  # last_heartbeat_at
            "bool",  # online
            "timestamptz",  # online_changed_at
            "text",  # offline_reason
            "bool",  # service_mode
            "timestamptz",  # service_mode_since
            "text",  # engineer
            "text",  # app
            "int8",  # last_seq
            "int8",  # seq_gaps
            "timestamptz",  # status_ts
        ),
        strict=True,
    )
)
_LOCK_TERMINALS: Final = (
    "SELECT tid, xmin::text::bigint FROM terminal_state WHERE tid = ANY(%s) ORDER BY tid FOR UPDATE"
)
#: Lock every row of the batch's terminals (in tid order) and answer only with those whose
#: version differs from the cached one, or that are not cached: usually a handful.
_LOCK_CHANGED: Final = (
    "WITH locked AS MATERIALIZED (SELECT tid, xmin::text::bigint AS xmin FROM terminal_state"
    " WHERE tid = ANY(%b::text[]) ORDER BY tid FOR UPDATE)"
    " SELECT l.tid FROM locked l"
    " LEFT JOIN unnest(%b::text[], %b::bigint[]) AS c(tid, xmin) ON c.tid = l.tid"
    " WHERE c.xmin IS DISTINCT FROM l.xmin"
)
_SELECT_TERMINALS: Final = (
    f"SELECT {', '.join(_TERMINAL_COLUMNS)} FROM terminal_state WHERE tid = ANY(%s)"
)
_UPDATE_TERMINALS: Final = (
    "UPDATE terminal_state t SET "
    + ", ".join(f"{c} = s.{c}" for c in _TERMINAL_COLUMNS if c != "tid")
    + " FROM stage_terminal_state s WHERE t.tid = s.tid"
)
_DEVICE_TYPES: Final = (
    ("tid", "text"),
    ("device", "text"),
    ("field", "text"),
    ("value", "text"),
    ("since", "timestamptz"),
    ("ts", "timestamptz"),
)
_DEVICE_LOG_TYPES: Final = (
    ("tid", "text"),
    ("device", "text"),
    ("field", "text"),
    ("value", "text"),
    ("ts", "timestamptz"),
)
_AVAILABILITY_LOG_TYPES: Final = (
    ("tid", "text"),
    ("ts", "timestamptz"),
    ("state", "text"),
    ("source", "text"),
)
_STAGING_DDL: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_terminal_state"
    " (LIKE terminal_state INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS stage_device_state"
    " (LIKE device_state INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
)


@dataclass(slots=True)
class StateResult:
    """What the state update did: the online/offline changes, and which ``availability``
    words (by position in the messages given) changed anything; the rest were repeats."""

    availability: list[AvailabilityChange] = field(default_factory=list)
    changed_words: set[int] = field(default_factory=set)
    device_changes: int = 0
    #: What to record in the state cache once the transaction has committed.
    written: dict[str, Entry] = field(default_factory=dict)


@dataclass(slots=True)
class _Writes:
    fields: dict[tuple[str, str, str], Field] = field(default_factory=dict)
    field_log: list[tuple[str, str, str, str, datetime]] = field(default_factory=list)
    availability_log: list[tuple[str, datetime, str, str]] = field(default_factory=list)


def prepare(conn: Conn) -> None:
    """Create this connection's staging tables (once per connection)."""
    with conn.transaction():
        for ddl in _STAGING_DDL:
            conn.execute(ddl)


def apply(
    conn: Conn,
    messages: Sequence[Decoded],
    received_at: datetime,
    cache: StateCache | None = None,
    offsets: Mapping[str, timedelta] | None = None,
) -> StateResult:
    """Move the current state by ``messages``: the batch's new telemetry and its
    ``availability`` words, in arrival order. ``received_at`` is the batch's wall-clock time.
    ``offsets`` are the terminals' clock offsets against the fleet (the event clock's): a
    terminal back after a heartbeat verdict is judged by its corrected time.
    After the commit, record ``result.written`` in ``cache``.
    """
    result = StateResult()
    groups: dict[str, list[tuple[int, Decoded]]] = {}
    for position, decoded in enumerate(messages):
        assert decoded.tid is not None
        groups.setdefault(decoded.tid, []).append((position, decoded))
    if not groups:
        return result
    tids = sorted(groups)
    cache = cache if cache is not None else StateCache(0)
    entries, created = _lock_terminals(conn, tids, groups, received_at, cache)
    rows = _read_rows(conn, [tid for tid, e in entries.items() if e is None])
    for tid, entry in entries.items():
        if entry is not None:
            rows[tid] = entry.row.copy()  # the cached one stays as committed
    with_changes = [tid for tid in tids if any(d.changes for _, d in groups[tid])]
    fields = _read_fields(
        conn, [t for t in with_changes if (e := entries[t]) is None or e.fields is None]
    )
    for tid in with_changes:
        entry = entries[tid]
        if entry is not None and entry.fields is not None:
            fields[tid] = dict(entry.fields)
    writes = _Writes()
    for tid in tids:
        row, new = rows[tid], tid in created
        items = groups[tid]
        in_order = sorted(items, key=_by_ts) if len(items) > 1 else items
        _apply_terminal(row, new, in_order, received_at, fields.get(tid), writes)
        offset = offsets.get(tid, timedelta(0)) if offsets else timedelta(0)
        _apply_online(row, new, items, result, writes, offset)
    xmin = _write(conn, list(rows.values()), writes)
    for tid, row in rows.items():
        entry = entries[tid]
        kept = fields.get(tid, entry.fields if entry is not None else None)
        result.written[tid] = Entry(xmin, row, kept)
    result.device_changes = len(writes.field_log)
    return result


def _by_ts(item: tuple[int, Decoded]) -> datetime:
    return item[1].ts


def _values(row: TerminalRow) -> tuple[object, ...]:
    return (
        row.tid,
        row.first_seen,
        row.last_seen,
        row.last_received_at,
        row.heartbeat_interval_s,
        row.last_heartbeat_at,
        row.online,
        row.online_changed_at,
        row.offline_reason,
        row.service_mode,
        row.service_mode_since,
        row.engineer,
        row.app,
        row.last_seq,
        row.seq_gaps,
        row.status_ts,
    )


def _lock_terminals(
    conn: Conn,
    tids: list[str],
    groups: dict[str, list[tuple[int, Decoded]]],
    received_at: datetime,
    cache: StateCache,
) -> tuple[dict[str, Entry | None], set[str]]:
    """Lock the rows of ``tids`` in tid order, creating those that do not exist yet; return
    the cache entry still valid for each (None: read it) and the tids created.

    Creating takes a second round (insert, then lock), also in tid order; two collectors
    meeting the same new terminal at the same moment can deadlock there, which the writer
    retries. (Rows of ``terminal_state`` are never deleted, so a cached terminal that the
    lock does not name is there and unchanged.)
    """
    cached = {tid: entry for tid in tids if (entry := cache.peek(tid)) is not None}
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(_LOCK_CHANGED, (tids, list(cached), [entry.xmin for entry in cached.values()]))
    changed = {r[0] for r in cur.fetchall()}
    entries: dict[str, Entry | None] = {}
    missing: list[str] = []
    for tid in tids:
        if tid in changed:
            entries[tid] = None
        elif tid in cached:
            entries[tid] = cached[tid]
        else:
            missing.append(tid)
    created: set[str] = set()
    if missing:
        firsts = [min(d.ts for _, d in groups[tid]) for tid in missing]
        cur.execute(
            "INSERT INTO terminal_state (tid, first_seen, last_seen, last_received_at,"
            " online_changed_at)"
            " SELECT tid, ts, ts, %s, ts"
            " FROM unnest(%s::text[], %s::timestamptz[]) AS u(tid, ts)"
            " ORDER BY tid ON CONFLICT (tid) DO NOTHING RETURNING tid",
            (received_at, missing, firsts),
        )
        created = {r[0] for r in cur.fetchall()}
        for tid in _lock(conn, missing):
            entries[tid] = None
    return entries, created


def _lock(conn: Conn, tids: list[str]) -> dict[str, int]:
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(_LOCK_TERMINALS, (tids,))
    return dict(cur.fetchall())


def _read_rows(conn: Conn, tids: list[str]) -> dict[str, TerminalRow]:
    if not tids:
        return {}
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(_SELECT_TERMINALS, (tids,))
    return {r[0]: TerminalRow(*r) for r in cur.fetchall()}


def _read_fields(conn: Conn, tids: list[str]) -> dict[str, Fields]:
    out: dict[str, Fields] = {tid: {} for tid in tids}
    if not tids:
        return out
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(
        "SELECT tid, device, field, value, since, ts FROM device_state WHERE tid = ANY(%s)",
        (tids,),
    )
    for tid, device, name, value, since, ts in cur.fetchall():
        out[tid][(device, name)] = Field(value, since, ts)
    return out


def _apply_terminal(
    row: TerminalRow,
    new: bool,
    items: Sequence[tuple[int, Decoded]],
    received_at: datetime,
    fields: Fields | None,
    writes: _Writes,
) -> None:
    """last_seen, sequence gaps, heartbeat, service mode, application version and device
    fields, from the terminal's telemetry in ``ts`` order."""
    newest: datetime | None = None if new else row.last_seen
    for _, decoded in items:
        message = decoded.message
        if isinstance(message, Availability):
            continue
        ts = decoded.ts
        is_newest = newest is None or ts >= newest
        if is_newest:
            newest = ts
            seq = message.seq  # type: ignore[union-attr]
            if seq is not None:
                if row.last_seq is not None and seq > row.last_seq + 1:
                    row.seq_gaps += seq - row.last_seq - 1
                row.last_seq = seq
        if isinstance(message, Heartbeat):
            if row.last_heartbeat_at is None or ts >= row.last_heartbeat_at:
                row.last_heartbeat_at = ts
                row.heartbeat_interval_s = message.interval_s
                if message.app is not None and is_newest:
                    row.app = message.app
        elif isinstance(message, Event) and message.name in (SERVICE_MODE, BOOT):
            _apply_terminal_event(row, message, ts, is_newest)
        if decoded.changes:
            assert fields is not None
            _apply_fields(row, decoded, isinstance(message, Status), fields, writes)
    if newest is not None:
        row.last_seen = newest
        row.last_received_at = received_at


def _apply_terminal_event(row: TerminalRow, event: Event, ts: datetime, is_newest: bool) -> None:
    if event.name == SERVICE_MODE:
        state = event.payload.get("state")
        if state not in ("entered", "left"):
            return
        if row.service_mode_since is not None and ts < row.service_mode_since:
            return
        row.service_mode = state == "entered"
        row.service_mode_since = ts
        engineer = event.payload.get("engineer")
        row.engineer = engineer if row.service_mode and isinstance(engineer, str) else None
    elif is_newest:
        app = event.payload.get("app")
        if isinstance(app, str):
            row.app = app


def _apply_fields(
    row: TerminalRow,
    decoded: Decoded,
    snapshot: bool,
    fields: Fields,
    writes: _Writes,
) -> None:
    ts = decoded.ts
    if row.status_ts is not None and ts < row.status_ts:
        return  # a newer full snapshot was applied: this says nothing new
    if snapshot:
        row.status_ts = ts
    tid = row.tid
    for device, name, value in decoded.changes:
        key = (device, name)
        held = fields.get(key)
        if held is None or (ts >= held.ts and value != held.value):
            held = fields[key] = Field(value, ts, ts)
            writes.field_log.append((tid, device, name, value, ts))
        elif ts < held.ts or snapshot:
            continue  # older than what set it; or a snapshot repeating it (status_ts has it)
        else:
            held = fields[key] = Field(value, held.since, ts)
        writes.fields[(tid, device, name)] = held


def _apply_online(
    row: TerminalRow,
    new: bool,
    items: Sequence[tuple[int, Decoded]],
    result: StateResult,
    writes: _Writes,
    offset: timedelta = timedelta(0),
) -> None:
    """Availability words, and telemetry resuming after a heartbeat verdict, in arrival order.
    Telemetry times are corrected by the terminal's clock ``offset`` (fleet time)."""
    # A new terminal starts online; that is news only when a word says so before any of
    # its telemetry.
    known = not new
    for position, decoded in items:
        message = decoded.message
        if isinstance(message, Availability):
            online = message.state == "online"
            if known and row.online == online:
                continue
            row.online = online
            row.online_changed_at = message.ts
            row.offline_reason = None if online else AVAILABILITY
            result.changed_words.add(position)
            source = AVAILABILITY
        else:
            if not known or row.online or row.offline_reason != HEARTBEAT:
                known = True
                continue
            corrected = decoded.ts - offset
            if corrected <= row.online_changed_at:
                continue
            row.online = True
            row.online_changed_at = corrected
            row.offline_reason = None
            source = HEARTBEAT
        known = True
        state = "online" if row.online else "offline"
        result.availability.append(
            AvailabilityChange(row.tid, state, row.online_changed_at, source)
        )
        writes.availability_log.append((row.tid, row.online_changed_at, state, source))


def _write(conn: Conn, rows: list[TerminalRow], writes: _Writes) -> int:
    """Write the rows, fields and logs; return the ``xmin`` the terminal rows now carry."""
    copy_rows(conn, "stage_terminal_state", _TERMINAL_TYPES, map(_values, rows))
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(_UPDATE_TERMINALS)
    # Every row updated now carries this transaction's id as its xmin (32 bits of it).
    cur.execute("SELECT mod(txid_current(), 4294967296)")
    row = cur.fetchone()
    assert row is not None
    xmin: int = row[0]
    if writes.fields:
        copy_rows(
            conn,
            "stage_device_state",
            _DEVICE_TYPES,
            (
                (tid, device, name, held.value, held.since, held.ts)
                for (tid, device, name), held in writes.fields.items()
            ),
        )
        conn.execute(
            "INSERT INTO device_state (tid, device, field, value, since, ts)"
            " SELECT tid, device, field, value, since, ts FROM stage_device_state"
            " ON CONFLICT (tid, device, field) DO UPDATE"
            " SET value = EXCLUDED.value, since = EXCLUDED.since, ts = EXCLUDED.ts"
        )
    if writes.field_log:
        copy_rows(conn, "device_state_log", _DEVICE_LOG_TYPES, writes.field_log)
    if writes.availability_log:
        copy_rows(conn, "availability_log", _AVAILABILITY_LOG_TYPES, writes.availability_log)
    return xmin
