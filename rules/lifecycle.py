"""What people do to incidents: acknowledge and resolve. Compare-and-set, logged.

``open -> acknowledged -> resolved`` (``open -> resolved`` too). Each change is one
``UPDATE ... WHERE status = <expected>``: if another person or the rules got there first,
:class:`InvalidTransition` says what the status is now. Acting on a regional group acts on
its children as well. A manual resolution stands until new evidence of the fault arrives:
the rules do not reopen it for the state that was already known.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from rules import storms
from rules.journal import Changes, Conn, log_action

MAX_NOTE: Final = 2000


class IncidentNotFound(LookupError):
    """No incident has this id (HTTP 404)."""


class InvalidTransition(ValueError):
    """The incident's status does not allow this change (HTTP 409); ``status`` is the current
    one."""

    def __init__(self, incident_id: int, status: str, action: str) -> None:
        super().__init__(f"incident {incident_id} is {status}: cannot {action} it")
        self.incident_id = incident_id
        self.status = status


def _check(actor: str, note: str | None) -> tuple[str, str | None]:
    actor = actor.strip()
    if not actor:
        raise ValueError("actor: must not be empty")
    if note is not None:
        note = note.strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise ValueError(f"note: at most {MAX_NOTE} characters")
    return actor[:128], note


def _status(conn: Conn, incident_id: int) -> str:
    row = conn.execute("SELECT status FROM incidents WHERE id = %s", (incident_id,)).fetchone()
    if row is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    return str(row["status"])


def acknowledge(conn: Conn, incident_id: int, actor: str, note: str | None, now: datetime) -> None:
    """Mark an open incident as being handled by ``actor``.

    Raises IncidentNotFound, InvalidTransition (not open), ValueError (empty actor).
    """
    actor, note = _check(actor, note)
    with conn.transaction():
        row = conn.execute(
            "UPDATE incidents SET status = 'acknowledged', acknowledged_at = %s,"
            " acknowledged_by = %s, updated_at = now() WHERE id = %s AND status = 'open'"
            " RETURNING id, is_group",
            (now, actor, incident_id),
        ).fetchone()
        if row is None:
            raise InvalidTransition(incident_id, _status(conn, incident_id), "acknowledge")
        log_action(conn, incident_id, now, "acknowledged", actor, note)
        if row["is_group"]:
            children = conn.execute(
                "UPDATE incidents SET status = 'acknowledged', acknowledged_at = %s,"
                " acknowledged_by = %s, updated_at = now() WHERE parent_id = %s"
                " AND status = 'open' RETURNING id",
                (now, actor, incident_id),
            ).fetchall()
            for child in children:
                note = f"with group #{incident_id}"
                log_action(conn, child["id"], now, "acknowledged", actor, note)


def resolve(conn: Conn, incident_id: int, actor: str, note: str | None, now: datetime) -> None:
    """Resolve an open or acknowledged incident by hand.

    Raises IncidentNotFound, InvalidTransition (already resolved), ValueError (empty actor).
    """
    actor, note = _check(actor, note)
    changes = Changes()
    with conn.transaction():
        row = conn.execute(
            "UPDATE incidents SET status = 'resolved', resolved_at = GREATEST(%s, opened_at),"
            " resolved_by = %s, resolve_note = %s, check_at = NULL, updated_at = now()"
            " WHERE id = %s AND status <> 'resolved'"
            " RETURNING id, kind, severity, is_group, parent_id",
            (now, actor, note, incident_id),
        ).fetchone()
        if row is None:
            raise InvalidTransition(incident_id, _status(conn, incident_id), "resolve")
        log_action(conn, incident_id, now, "resolved", actor, note)
        changes.resolved.append((row["kind"], row["severity"]))
        if row["is_group"]:
            children = conn.execute(
                "UPDATE incidents SET status = 'resolved', resolved_at = GREATEST(%s, opened_at),"
                " resolved_by = %s, resolve_note = %s, check_at = NULL, updated_at = now()"
                " WHERE parent_id = %s AND status <> 'resolved' RETURNING id, kind, severity",
                (now, actor, note, incident_id),
            ).fetchall()
            for child in children:
                log_action(conn, child["id"], now, "resolved", actor, f"with group #{incident_id}")
                changes.resolved.append((child["kind"], child["severity"]))
        elif row["parent_id"] is not None:
            storms.resolve_parent_if_done(conn, row["parent_id"], now, actor, changes)
    changes.publish()
