"""Reading incidents for the API and console: the list, filtered, and one incident with
its evidence. Indexed like everything in :mod:`termwatch.web.read`: one walk of
``incidents_status_opened`` (or ``incidents_tid_opened``) per status, evidence by incident
id, operations and events by their terminal's keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from termwatch.web.models import (
    INCIDENT_STATUSES,
    Evidence,
    EvidenceEvent,
    EvidenceItem,
    Incident,
    IncidentDetail,
    LogEntry,
)
from termwatch.web.privacy import mask_digits
from termwatch.web.read import (
    COMPLAINT_COLUMNS,
    INCIDENT_COLUMNS,
    OP_COLUMNS,
    Conn,
    complaint_from,
    incident_from,
    operation_from,
)


def incidents(
    conn: Conn,
    *,
    statuses: Sequence[str] = (),
    tid: str | None = None,
    kind: str | None = None,
    service_group: str | None = None,
    limit: int = 100,
) -> list[Incident]:
    """Incidents matching every filter given (no ``statuses``: any), newest first, at most
    ``limit``.

    One index walk per status, newest first (``incidents_status_opened``, or
    ``incidents_tid_opened`` for one terminal), each stopping at ``limit``: the resolved
    history is never sorted whole.
    """
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if tid is not None:
        where.append("i.tid = %(tid)s")
        params["tid"] = tid
    if kind is not None:
        where.append("i.kind = %(kind)s")
        params["kind"] = kind
    if service_group is not None:
        where.append("t.service_group = %(group)s")
        params["group"] = service_group
    parts = []
    for n, status in enumerate(statuses or INCIDENT_STATUSES):
        params[f"s{n}"] = status
        clause = " AND ".join([f"i.status = %(s{n})s", *where])
        parts.append(
            f"(SELECT {INCIDENT_COLUMNS} FROM incidents i"
            f" LEFT JOIN terminals t ON t.tid = i.tid WHERE {clause}"
            " ORDER BY i.opened_at DESC, i.id DESC LIMIT %(limit)s)"
        )
    rows = conn.execute(
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) found"
        " ORDER BY opened_at DESC, id DESC LIMIT %(limit)s",
        params,
    ).fetchall()
    return [incident_from(r) for r in rows]


def incident(conn: Conn, incident_id: int) -> Incident | None:
    row = conn.execute(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents i LEFT JOIN terminals t ON t.tid = i.tid"
        " WHERE i.id = %s",
        (incident_id,),
    ).fetchone()
    return incident_from(row) if row else None


def incident_detail(conn: Conn, incident_id: int) -> IncidentDetail | None:
    """An incident with its evidence (events, operations, complaints) and its log."""
    row = conn.execute(
        f"SELECT {INCIDENT_COLUMNS}, i.resolve_note FROM incidents i"
        " LEFT JOIN terminals t ON t.tid = i.tid WHERE i.id = %s",
        (incident_id,),
    ).fetchone()
    if row is None:
        return None
    tid = row["tid"]
    items = conn.execute(
        "SELECT kind, ref, ts, summary FROM incident_evidence WHERE incident_id = %s"
        " ORDER BY ts, kind, ref LIMIT 500",
        (incident_id,),
    ).fetchall()
    event_refs = [r["ref"] for r in items if r["kind"] == "event"]
    op_refs = [r["ref"] for r in items if r["kind"] == "operation"]
    found_events = {
        r["msg_id"]: r
        for r in conn.execute(
            "SELECT msg_id, device, name FROM events WHERE tid = %s AND msg_id = ANY(%s)",
            (tid, event_refs),
        ).fetchall()
    }
    events = [
        EvidenceEvent(
            msg_id=r["ref"],
            ts=r["ts"],
            device=found_events.get(r["ref"], {}).get("device"),
            name=found_events.get(r["ref"], {}).get("name"),
            summary=r["summary"],
        )
        for r in items
        if r["kind"] == "event"
    ]
    ops = [
        operation_from(r)
        for r in conn.execute(
            f"SELECT DISTINCT ON (op_id) {OP_COLUMNS} FROM operations"
            " WHERE tid = %s AND op_id = ANY(%s) ORDER BY op_id, ts DESC",
            (tid, op_refs),
        ).fetchall()
    ]
    ops.sort(key=lambda o: o.ts)
    complaint_refs = [r["ref"] for r in items if r["kind"] == "complaint"]
    complaints = [
        complaint_from(r)
        for r in conn.execute(
            f"SELECT {COMPLAINT_COLUMNS} FROM complaints"
            " WHERE incident_id = %s OR ref = ANY(%s) ORDER BY received_at LIMIT 200",
            (incident_id, complaint_refs),
        ).fetchall()
    ]
    log = [
        LogEntry(at=r["at"], action=r["action"], actor=r["actor"], note=mask_digits(r["note"]))
        for r in conn.execute(
            "SELECT at, action, actor, note FROM incident_log WHERE incident_id = %s"
            " ORDER BY at, id",
            (incident_id,),
        ).fetchall()
    ]
    base = incident_from(row)
    return IncidentDetail(
        **{f: getattr(base, f) for f in base.__struct_fields__},
        resolve_note=mask_digits(row["resolve_note"]),
        evidence=Evidence(
            events=events,
            operations=ops,
            complaints=complaints,
            items=[
                EvidenceItem(
                    kind=r["kind"],
                    ref=r["ref"],
                    ts=r["ts"],
                    summary=mask_digits(r["summary"]) or "",
                )
                for r in items
            ],
        ),
        log=log,
    )
