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
from termwatch.settings import Settings
from termwatch.web import incident_read, read
from termwatch.web.http import ApiError
from termwatch.web.models import ComplaintResult, IncidentDetail, Silence, SilenceIn

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
        into the future.
        """
        with self._pool.connection() as conn:
            if not confirmed:
                self._refuse_repeat(conn, complaint, op_id)
            result = self._intake.submit(conn, complaint, min(complaint.received_at, now))
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

    def create_silence(self, body: SilenceIn, actor: str, now: datetime) -> Silence:
        """A new silence from ``now``; 422 naming the field the rule engine refuses."""
        ends_at = body.ends_at or now + timedelta(seconds=body.duration_s or 0)
        with self._pool.connection() as conn:
            try:
                silence_id = silences.create(
                    conn,
                    tid=body.tid,
                    region=body.region,
                    kind=body.kind,
                    ends_at=ends_at,
                    created_by=actor,
                    comment=body.comment,
                    now=now,
                )
            except ValueError as exc:
                raise _refused(exc, {"created_by": "by"}) from None
            row = conn.execute(
                f"SELECT {', '.join(Silence.__struct_fields__)} FROM silences WHERE id = %s",
                (silence_id,),
            ).fetchone()
        assert row is not None  # committed just above; silences are never deleted
        return Silence(**row)

    def list_silences(self, now: datetime) -> list[Silence]:
        """Silences in force at ``now``, ending soonest first."""
        with self._pool.connection() as conn:
            rows = silences.list_active(conn, now)
        return [Silence(**{name: row[name] for name in Silence.__struct_fields__}) for row in rows]

    def expire_silence(self, silence_id: int, now: datetime) -> None:
        """End a silence now; 404 when it is unknown or no longer in force."""
        with self._pool.connection() as conn:
            if not silences.expire(conn, silence_id, now):
                raise ApiError(404, f"no active silence {silence_id}")


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
