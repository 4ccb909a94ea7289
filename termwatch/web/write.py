"""The write side of the API: complaints, acknowledge/resolve, silences.

Thin adapters over the rule engine's own functions (:mod:`rules.intake`,
:mod:`rules.lifecycle`, :mod:`rules.silences`), each run in one transaction of its own; the
rule engine decides, the database arbitrates, this module only translates their errors to
HTTP (404, 409) and their results to API models.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from psycopg_pool import ConnectionPool

from rules import correlation, lifecycle, pii, silences
from rules.intake import ComplaintIntake
from terminals.contract import Complaint
from termwatch.db import Row
from termwatch.links import Link, LinkRefused
from termwatch.settings import Settings
from termwatch.web import incident_read, read
from termwatch.web.http import ApiError
from termwatch.web.models import (
    ComplaintResult,
    IncidentDetail,
    Silence,
    SilenceIn,
    SilencePreview,
    SilencePreviewIn,
)

Pool = ConnectionPool[psycopg.Connection[Row]]


class RepeatedComplaint(ApiError):
    """409: the complaint's operation already has complaints ``refs``."""

    def __init__(self, op_id: str, refs: list[str]) -> None:
        super().__init__(
            409,
            f"operation {op_id} already has a complaint ({', '.join(refs)});"
            " send confirm_repeat=true to register another",
            field="confirm_repeat",
        )
        self.op_id = op_id
        self.refs = refs


class Writer:
    """Performs the API's changes on ``pool``; safe to share between threads."""

    def __init__(self, settings: Settings, pool: Pool) -> None:
        self._pool = pool
        self._key = settings.pii_key
        self._intake = ComplaintIntake(settings)

    def submit_complaint(
        self,
        complaint: Complaint,
        now: datetime,
        actor: str | None = None,
        *,
        confirmed: bool = False,
        op_id: str | None = None,
    ) -> ComplaintResult:
        """Store and correlate a complaint; a known ``ref`` returns its first result.

        A new complaint about an operation that already has one is refused with a 409
        naming the registered references, unless ``confirmed``: the agent says the caller
        reports something new. The operations checked are ``op_id`` (the one the agent
        picked on the card) and the one correlation would match (its
        :func:`rules.correlation.best_operation`, read before the complaint is stored); a
        complaint without a terminal id is not checked.

        The intake counts the complaint in ``termwatch_messages_total`` (stored or duplicate)
        and settles a race between two posts of one ``ref`` by the unique key. As on the
        MQTT path, the rules run at the complaint's ``received_at`` (event time), but never
        later than ``now``: a CRM whose clock runs ahead cannot move an incident's times
        into the future. ``actor``, who registered it, is kept in ``submitted_by`` (the first
        registration's).
        """
        with self._pool.connection() as conn:
            if not confirmed:
                self._refuse_repeat(conn, complaint, op_id)
            result = self._intake.submit(conn, complaint, min(complaint.received_at, now))
            if actor and result.created:
                conn.execute(
                    "UPDATE complaints SET submitted_by = %s"
                    " WHERE id = %s AND submitted_by IS NULL",
                    (actor[:128], result.id),
                )
                conn.commit()
        return ComplaintResult(
            id=result.id,
            ref=result.ref,
            tid=result.tid,
            matched_op_id=result.matched_op_id,
            incident_id=result.incident_id,
            verdict=result.verdict,
            created=result.created,
        )

    def _refuse_repeat(self, conn: read.Conn, complaint: Complaint, picked: str | None) -> None:
        if complaint.tid is None:
            return
        if conn.execute("SELECT 1 FROM complaints WHERE ref = %s", (complaint.ref,)).fetchone():
            return  # a repeated post of one complaint: the intake answers with its result
        last4, _ = pii.protect(complaint.customer or "", self._key)
        match = correlation.best_operation(
            conn,
            complaint.tid,
            category=complaint.category,
            occurred_at=complaint.occurred_at,
            amount_minor=complaint.amount_minor,
            customer_last4=last4,
        )
        ops = [op for op in (picked, match.op.op_id if match else None) if op is not None]
        rows = conn.execute(
            "SELECT ref, matched_op_id FROM complaints WHERE tid = %s AND matched_op_id = ANY(%s)"
            " ORDER BY received_at LIMIT 5",
            (complaint.tid, ops),
        ).fetchall()
        conn.rollback()  # only read: end the transaction before the intake opens its own
        if rows:
            raise RepeatedComplaint(rows[0]["matched_op_id"], [r["ref"] for r in rows])

    def acknowledge(
        self, incident_id: int, actor: str, note: str | None, now: datetime
    ) -> IncidentDetail:
        """Acknowledge an open incident; 404 when unknown, 409 when not open."""
        with self._pool.connection() as conn:
            try:
                lifecycle.acknowledge(conn, incident_id, actor, note, now)
            except lifecycle.IncidentNotFound:
                raise ApiError(404, f"no incident {incident_id}") from None
            except lifecycle.InvalidTransition as exc:
                raise ApiError(409, str(exc)) from None
            except ValueError as exc:
                raise _refused(exc, {"actor": "by"}) from None
            return _detail(conn, incident_id)

    def resolve(
        self, incident_id: int, actor: str, note: str | None, now: datetime
    ) -> IncidentDetail:
        """Resolve an unresolved incident; 404 when unknown, 409 when already resolved."""
        with self._pool.connection() as conn:
            try:
                lifecycle.resolve(conn, incident_id, actor, note, now)
            except lifecycle.IncidentNotFound:
                raise ApiError(404, f"no incident {incident_id}") from None
            except lifecycle.InvalidTransition as exc:
                raise ApiError(409, str(exc)) from None
            except ValueError as exc:
                raise _refused(exc, {"actor": "by"}) from None
            return _detail(conn, incident_id)

    def act_by_link(self, link: Link, note: str | None, now: datetime) -> str | None:
        """Do what a verified ``link`` allows, as its recipient, and record the link as used,
        in one transaction. Returns None when done, or the incident's status when the
        change no longer applies (then the link stays unused).

        Raises :class:`LinkRefused` (``used``) when the link acted before, ApiError 404 when
        the incident is gone, 422 for a bad note.
        """
        change = lifecycle.acknowledge if link.action == "ack" else lifecycle.resolve
        with self._pool.connection() as conn:
            try:
                with conn.transaction():
                    found = conn.execute(
                        "SELECT status FROM incidents WHERE id = %s", (link.incident_id,)
                    ).fetchone()
                    if found is None:
                        raise ApiError(404, "not found")
                    used = conn.execute(
                        "INSERT INTO action_links"
                        " (link_id, incident_id, action, recipient, used_at, expires_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (link_id) DO NOTHING RETURNING link_id",
                        (link.id, link.incident_id, link.action, link.recipient, now,
                         link.expires_at),
                    ).fetchone()  # fmt: skip
                    if used is None:
                        raise LinkRefused("used", "this link has already been used")
                    change(conn, link.incident_id, link.actor, note, now)
            except lifecycle.InvalidTransition as exc:
                return exc.status
            except ValueError as exc:
                if isinstance(exc, LinkRefused):
                    raise
                raise _refused(exc, {}) from None
        return None

    def link_used_at(self, link: Link) -> datetime | None:
        """When ``link`` was used, or None if it has not been."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT used_at FROM action_links WHERE link_id = %s", (link.id,)
            ).fetchone()
            conn.commit()
        return row["used_at"] if row is not None else None

    def create_silence(self, body: SilenceIn, actor: str, now: datetime) -> Silence:
        """A new silence from ``now``, with the warnings of :func:`rules.silences.warnings`;
        422 naming the field the rule engine refuses (an unknown kind, a bad regex...)."""
        ends_at = body.ends_at or now + timedelta(seconds=body.duration_s or 0)
        with self._pool.connection() as conn:
            try:
                found = _matchers(body)
                silence_id = silences.create(
                    conn,
                    matchers=found,
                    ends_at=ends_at,
                    created_by=actor,
                    comment=body.comment,
                    now=now,
                )
            except ValueError as exc:
                raise _refused(exc, {"created_by": "by"}) from None
            warned = silences.warnings(conn, found)
            rows = [r for r in silences.list_active(conn, now) if r["id"] == silence_id]
            conn.commit()
        assert rows  # committed just above, in force from now
        return _silence(rows[0], warned)

    def preview_silence(self, body: SilencePreviewIn) -> SilencePreview:
        """The open incidents the matchers of ``body`` match, and the warnings; 422 when a
        matcher is refused."""
        with self._pool.connection() as conn:
            try:
                found = _matchers(body)
            except ValueError as exc:
                raise _refused(exc, {}) from None
            ids = [int(r["id"]) for r in silences.preview(conn, found)]
            warned = silences.warnings(conn, found)
            rows = conn.execute(
                f"SELECT {read.INCIDENT_COLUMNS} FROM incidents i"
                " LEFT JOIN terminals t ON t.tid = i.tid WHERE i.id = ANY(%s)"
                " ORDER BY i.opened_at, i.id",
                (ids,),
            ).fetchall()
            matched = [read.incident_from(r) for r in rows]
            conn.commit()
        return SilencePreview(matchers=[str(m) for m in found], matches=matched, warnings=warned)

    def list_silences(self, now: datetime) -> list[Silence]:
        """Silences in force at ``now``, ending soonest first."""
        with self._pool.connection() as conn:
            rows = silences.list_active(conn, now)
        return [_silence(row, []) for row in rows]

    def expire_silence(self, silence_id: int, now: datetime) -> None:
        """End a silence now; 404 when it is unknown or no longer in force."""
        with self._pool.connection() as conn:
            if not silences.expire(conn, silence_id, now):
                raise ApiError(404, f"no active silence {silence_id}")


def _matchers(body: SilenceIn | SilencePreviewIn) -> list[silences.Matcher]:
    """The checked matchers of a silence body; raises ValueError naming the field."""
    given = [silences.matcher(m.label, m.op, m.value) for m in body.matchers or ()]
    return silences.matchers_of(tid=body.tid, region=body.region, kind=body.kind, matchers=given)


def _silence(row: dict[str, object], warned: list[str]) -> Silence:
    values = {name: row[name] for name in Silence.__struct_fields__ if name in row}
    return Silence(**values, warnings=warned)  # type: ignore[arg-type]


def _detail(conn: read.Conn, incident_id: int) -> IncidentDetail:
    found = incident_read.incident_detail(conn, incident_id)
    if found is None:
        raise ApiError(404, f"no incident {incident_id}")
    return found


def _refused(exc: ValueError, renamed: dict[str, str]) -> ApiError:
    """A 422 for a value the rule engine refused; its message starts with the field name
    (``"note: at most 2000 characters"``), which is renamed to the API's word for it."""
    message = str(exc)
    field, sep, _ = message.partition(":")
    if not sep or not field.isidentifier():
        return ApiError(422, message, field=None)
    return ApiError(422, message, field=renamed.get(field, field))
