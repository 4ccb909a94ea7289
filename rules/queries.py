"""Reading incidents as the API and the command line show them (api.md, Incidents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from rules.journal import Conn

STATUSES: Final = ("open", "acknowledged", "resolved")
LIST_COLUMNS: Final = (
    "id, kind, tid, severity, status, title, opened_at, acknowledged_at, resolved_at,"
    " complaints, operations_affected, money_at_risk_minor, parent_id, is_group, silenced"
)


def jsonable(value: Any) -> Any:
    """Datetimes as RFC 3339 strings; everything else as it is."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def list_incidents(
    conn: Conn,
    *,
    status: str | None = None,
    tid: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Incidents, newest first. Raises ValueError for an unknown status or a bad limit."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: must be one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 10_000:
        raise ValueError("limit: must be between 1 and 10000")
    rows = conn.execute(
        f"SELECT {LIST_COLUMNS} FROM incidents"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
        " AND (%(tid)s::text IS NULL OR tid = %(tid)s)"
        " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
        " ORDER BY opened_at DESC, id DESC LIMIT %(limit)s",
        {"status": status, "tid": tid, "kind": kind, "limit": limit},
    ).fetchall()
    return [dict(r) for r in rows]


def incident_detail(conn: Conn, incident_id: int) -> dict[str, Any] | None:
    """One incident with its evidence (events, operations, complaints, states), its log and,
    for a group, its children. None if there is no such incident."""
    row = conn.execute(
        f"SELECT {LIST_COLUMNS}, rule, region, acknowledged_by, resolved_by, resolve_note,"
        " last_fault_at, cleared_at, reopen_count, detected_at, details"
        " FROM incidents WHERE id = %s",
        (incident_id,),
    ).fetchone()
    if row is None:
        return None
    out: dict[str, Any] = dict(row)
    evidence = conn.execute(
        "SELECT kind, ref, ts, summary FROM incident_evidence WHERE incident_id = %s"
        " ORDER BY ts, kind, ref",
        (incident_id,),
    ).fetchall()
    groups = {"events": "event", "operations": "operation", "complaints": "complaint"}
    out["evidence"] = {
        name: [dict(e) for e in evidence if e["kind"] == kind] for name, kind in groups.items()
    }
    out["evidence"]["states"] = [dict(e) for e in evidence if e["kind"] not in groups.values()]
    out["log"] = [
        dict(r)
        for r in conn.execute(
            "SELECT at, action, actor, note FROM incident_log WHERE incident_id = %s ORDER BY id",
            (incident_id,),
        )
    ]
    if row["is_group"]:
        out["children"] = [
            dict(r)
            for r in conn.execute(
                f"SELECT {LIST_COLUMNS} FROM incidents WHERE parent_id = %s ORDER BY tid",
                (incident_id,),
            )
        ]
    return out
