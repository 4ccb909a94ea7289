"""Silences, in the words of Alertmanager: matchers, a creator, a comment, a start and an end.

A matcher is a label, an operator and a value: labels ``kind``, ``tid``, ``region``,
``service_group`` and ``severity`` of an incident; operators ``=``, ``!=``, ``=~`` and
``!~`` (a regular expression matches the whole value, as in Alertmanager). A label an
incident does not have (the service group of a regional parent) reads as the empty value.
A silence matches an incident when all its matchers do, and at least one of them must not
match the empty value, so a silence never mutes everything by accident.

A silence always has an end. Incidents it matches are still opened and recorded, with
``silenced`` true, and are not paged. When a silence is created, matching open incidents are
silenced (a ``silenced`` log row); when it ends or is expired, incidents no other silence
covers are unsilenced (an ``unsilenced`` log row, so the notifier pages what is still open).
Times are event times, like every time the rules use.

Checked when made: an unknown kind or severity, a malformed regular expression or a
matcher on an unknown label is refused (ValueError naming it, with the known values);
terminals, regions and service groups the registry does not know are only warned about
(:func:`warnings`), since a silence may be set up before a terminal is installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from psycopg.types.json import Jsonb

from rules.journal import Conn, log_action
from terminals.kinds import INCIDENT_KINDS
from termwatch.settings import TID_RE

MAX_DURATION: Final = timedelta(days=90)
LABELS: Final = ("kind", "tid", "region", "service_group", "severity")
OPERATORS: Final = ("=~", "!~", "!=", "=")  # longest first, for parsing
SEVERITIES: Final = ("critical", "major", "minor")
MAX_VALUE: Final = 200
_MATCHER_TEXT: Final = re.compile(r"\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)(.*)", re.DOTALL)
_ACTIVE_SQL: Final = "expired_at IS NULL AND starts_at <= %(now)s AND ends_at > %(now)s"
_OPEN_INCIDENTS: Final = (
    "SELECT i.id, i.tid, i.kind, i.severity, i.status, i.title, i.silenced, i.opened_at,"
    " coalesce(i.region, t.region) AS region, t.service_group"
    " FROM incidents i LEFT JOIN terminals t ON t.tid = i.tid WHERE i.status <> 'resolved'"
)


@dataclass(frozen=True, slots=True)
class Matcher:
    """``label op value``; build with :func:`matcher` or :func:`parse_matcher` (checked)."""

    label: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"

    @property
    def regex(self) -> re.Pattern[str] | None:
        return re.compile(self.value) if self.op in ("=~", "!~") else None

    def matches(self, labels: Mapping[str, object]) -> bool:
        """Whether this matcher holds for an incident's ``labels`` (missing reads as "")."""
        raw = labels.get(self.label)
        value = "" if raw is None else str(raw)
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        pattern = self.regex
        assert pattern is not None
        found = pattern.fullmatch(value) is not None
        return found if self.op == "=~" else not found

    def as_json(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op, "value": self.value}


def matcher(label: str, op: str, value: str) -> Matcher:
    """A checked matcher. Raises ValueError naming the label: unknown label or operator,
    unknown kind or severity (with the known ones), a bad regular expression."""
    label = label.strip()
    if label not in LABELS:
        raise ValueError(f"matcher: unknown label {label!r} (labels: {', '.join(LABELS)})")
    if op not in OPERATORS:
        raise ValueError(f"{label}: unknown operator {op!r} (operators: = != =~ !~)")
    value = value.strip()
    if len(value) > MAX_VALUE:
        raise ValueError(f"{label}: at most {MAX_VALUE} characters")
    found = Matcher(label, op, value)
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"{label}: not a regular expression: {exc}") from None
        known = {"kind": INCIDENT_KINDS, "severity": SEVERITIES}.get(label)
        if known is not None and not any(pattern.fullmatch(k) for k in known):
            raise ValueError(
                f"{label}: {value!r} matches no known {label} (known: {', '.join(known)})"
            )
        return found
    if not value and op == "=":
        raise ValueError(f"{label}: must not be empty")
    if label == "kind" and value not in INCIDENT_KINDS:
        raise ValueError(f"kind: unknown kind {value!r} (known: {', '.join(INCIDENT_KINDS)})")
    if label == "severity" and value not in SEVERITIES:
        raise ValueError(f"severity: unknown severity {value!r} (known: {', '.join(SEVERITIES)})")
    if label == "tid" and op == "=" and not TID_RE.match(value):
        raise ValueError("tid: letters, digits, _ and - only, 1 to 32 characters")
    return found


def parse_matcher(text: str) -> Matcher:
    """``severity=~major|critical`` -> a checked :class:`Matcher`; raises ValueError."""
    found = _MATCHER_TEXT.fullmatch(text)
    if found:
        return matcher(found[1], found[2], found[3])
    raise ValueError(
        f"matcher: {text!r} is not label OP value (labels: {', '.join(LABELS)};"
        " operators: = != =~ !~)"
    )


def _from_row(row: Mapping[str, Any]) -> list[Matcher]:
    """A stored silence's matchers; a row with none (written by an older version) matches
    on its ``tid``, ``region`` and ``kind`` columns."""
    items: Iterable[Mapping[str, Any]] = row["matchers"] or []
    found = [Matcher(str(m["label"]), str(m["op"]), str(m["value"])) for m in items]
    if not found:
        found = [Matcher(k, "=", str(row[k])) for k in ("tid", "region", "kind") if row[k]]
    return found


def _clean(value: str | None, name: str, max_len: int = 128) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError(f"{name}: must not be empty")
    if len(value) > max_len:
        raise ValueError(f"{name}: at most {max_len} characters")
    return value


def matchers_of(
    *,
    tid: str | None = None,
    region: str | None = None,
    kind: str | None = None,
    matchers: Sequence[Matcher] = (),
) -> list[Matcher]:
    """The matchers of a silence given as fields (equality) and as matchers, checked.

    Raises ValueError when there are none, or all of them match the empty value.
    """
    found: list[Matcher] = []
    tid = _clean(tid, "tid", 32)
    if tid is not None:
        found.append(matcher("tid", "=", tid))
    region = _clean(region, "region")
    if region is not None:
        found.append(matcher("region", "=", region))
    kind = _clean(kind, "kind", 64)
    if kind is not None:
        found.append(matcher("kind", "=", kind))
    found.extend(matcher(m.label, m.op, m.value) for m in matchers)
    if not found:
        raise ValueError(
            "a silence needs at least one matcher: tid, region or kind, or --matcher on"
            f" {', '.join(LABELS)}"
        )
    if all(m.matches({}) for m in found):
        raise ValueError("matchers: at least one must not match an empty value (it would mute all)")
    return found


def warnings(conn: Conn, matchers: Sequence[Matcher]) -> list[str]:
    """What the registry does not know in ``matchers``: terminals, regions, service groups."""
    out: list[str] = []
    columns = {"tid": "tid", "region": "region", "service_group": "service_group"}
    for m in matchers:
        column = columns.get(m.label)
        if column is None or m.op in ("!=", "!~"):
            continue
        values = [
            str(r["v"])
            for r in conn.execute(
                f"SELECT DISTINCT {column} AS v FROM terminals WHERE {column} IS NOT NULL"
            )
        ]
        if m.op == "=" and m.value not in values:
            out.append(f"{m.label}: no terminal in the registry has {m.label} {m.value!r}")
        elif m.op == "=~" and not any(m.matches({m.label: v}) for v in values):
            out.append(f"{m.label}: {m.value!r} matches no {m.label} in the registry")
    return out


def _labels(row: Mapping[str, Any]) -> dict[str, object]:
    return {label: row.get(label) for label in LABELS}


def preview(conn: Conn, matchers: Sequence[Matcher]) -> list[dict[str, Any]]:
    """The open (unresolved) incidents that ``matchers`` match, oldest first."""
    rows = conn.execute(_OPEN_INCIDENTS + " ORDER BY i.opened_at, i.id").fetchall()
    return [dict(r) for r in rows if all(m.matches(_labels(r)) for m in matchers)]


def create(
    conn: Conn,
    *,
    tid: str | None = None,
    region: str | None = None,
    kind: str | None = None,
    matchers: Sequence[Matcher] = (),
    ends_at: datetime,
    created_by: str,
    comment: str = "",
    now: datetime,
) -> int:
    """Create a silence from ``now`` to ``ends_at``; return its id.

    ``tid``, ``region`` and ``kind`` are equality matchers; ``matchers`` adds any others.
    Raises ValueError (naming the field) when no matcher is given, a matcher is refused
    (see :func:`matcher`), ``ends_at`` is not in the future, or the silence would last more
    than 90 days.
    """
    found = matchers_of(tid=tid, region=region, kind=kind, matchers=matchers)
    if ends_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("ends_at: must carry a time zone")
    if ends_at <= now:
        raise ValueError("ends_at: must be in the future")
    if ends_at - now > MAX_DURATION:
        raise ValueError(f"ends_at: a silence lasts at most {MAX_DURATION.days} days")
    by = _clean(created_by, "created_by")
    if comment and len(comment) > 1000:
        raise ValueError("comment: at most 1000 characters")
    equal = {m.label: m.value for m in found if m.op == "="}
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO silences (tid, region, kind, matchers, starts_at, ends_at, created_by,"
            " comment) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                equal.get("tid"),
                equal.get("region"),
                equal.get("kind"),
                Jsonb([m.as_json() for m in found]),
                now,
                ends_at,
                by,
                comment,
            ),
        ).fetchone()
        assert row is not None
        silence_id = int(row["id"])
        ids = [r["id"] for r in preview(conn, found) if not r["silenced"]]
        muted = conn.execute(
            "UPDATE incidents SET silenced = true, updated_at = now()"
            " WHERE id = ANY(%s) AND status <> 'resolved' AND NOT silenced RETURNING id",
            (ids,),
        ).fetchall()
        for incident in muted:
            log_action(conn, incident["id"], now, "silenced", by or "", f"silence #{silence_id}")
    return silence_id


def list_active(conn: Conn, now: datetime) -> list[dict[str, Any]]:
    """Silences in force at ``now``, soonest to end first; ``matchers`` as text."""
    rows = conn.execute(
        "SELECT id, tid, region, kind, matchers, starts_at, ends_at, created_by, comment,"
        f" created_at FROM silences WHERE {_ACTIVE_SQL} ORDER BY ends_at, id",
        {"now": now},
    ).fetchall()
    out = []
    for r in rows:
        item = dict(r)
        item["matchers"] = [str(m) for m in _from_row(r)]
        out.append(item)
    return out


def _active_matchers(conn: Conn, now: datetime) -> list[list[Matcher]]:
    rows = conn.execute(
        f"SELECT tid, region, kind, matchers FROM silences WHERE {_ACTIVE_SQL}", {"now": now}
    )
    return [_from_row(r) for r in rows]


def _covered(active: list[list[Matcher]], labels: Mapping[str, object]) -> bool:
    return any(all(m.matches(labels) for m in group) for group in active)


def expire(conn: Conn, silence_id: int, now: datetime) -> bool:
    """End a silence now. Returns False if it does not exist or had already ended."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE silences SET expired_at = %s WHERE id = %s AND expired_at IS NULL"
            " AND ends_at > %s RETURNING id",
            (now, silence_id, now),
        ).fetchone()
        if row is None:
            return False
        unsilence_uncovered(conn, now, actor="silences", note=f"silence #{silence_id} expired")
    return True


def matches(
    conn: Conn,
    *,
    tid: str | None,
    region: str | None,
    kind: str,
    now: datetime,
    severity: str | None = None,
    service_group: str | None = None,
) -> bool:
    """Whether a silence in force at ``now`` covers an incident with these labels.

    The service group is read from the registry when not given.
    """
    active = _active_matchers(conn, now)
    if not active:
        return False
    if service_group is None and tid is not None:
        row = conn.execute("SELECT service_group FROM terminals WHERE tid = %s", (tid,)).fetchone()
        service_group = row["service_group"] if row is not None else None
    labels = {
        "tid": tid,
        "region": region,
        "kind": kind,
        "severity": severity,
        "service_group": service_group,
    }
    return _covered(active, labels)


def next_end(conn: Conn, now: datetime) -> datetime | None:
    """When the next silence in force after ``now`` runs out, or None if none is."""
    row = conn.execute(
        "SELECT min(ends_at) AS at FROM silences WHERE expired_at IS NULL AND ends_at > %s",
        (now,),
    ).fetchone()
    return row["at"] if row is not None else None


def unsilence_uncovered(conn: Conn, now: datetime, *, actor: str, note: str) -> list[int]:
    """Unsilence open incidents that no silence covers any more; return their ids."""
    active = _active_matchers(conn, now)
    rows = conn.execute(_OPEN_INCIDENTS + " AND i.silenced").fetchall()
    ids = [int(r["id"]) for r in rows if not _covered(active, _labels(r))]
    if not ids:
        return []
    done = conn.execute(
        "UPDATE incidents SET silenced = false, updated_at = now()"
        " WHERE id = ANY(%s) AND silenced AND status <> 'resolved' RETURNING id",
        (ids,),
    ).fetchall()
    for row in done:
        log_action(conn, row["id"], now, "unsilenced", actor, note)
    return [int(r["id"]) for r in done]
