"""Grouping: waiting items become one message per route, event and audience.

When the oldest waiting item of a (route, event, audience) group is due, every waiting item
of that group is judged (:mod:`notify.suppress`): those to send become one message, held
ones wait for the end of their hold, dropped ones are closed with the reason. So incidents
opened together for one service group go out in one message (``group_wait``), and a regional
storm, whose terminal incidents are grouped under a parent before they are due, pages once.

A message is rendered when it is made and stored with one ``notifications`` row per target;
delivery (:mod:`notify.deliver`) never renders again, so every retry sends the same text.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from notify.message import load_views, render
from notify.routes import Routes
from notify.suppress import judge
from termwatch.db import Row
from termwatch.links import LinkSigner


@dataclass(frozen=True, slots=True)
class Made:
    """A message made by :func:`flush`."""

    message_id: int
    route: str
    event: str
    incident_ids: list[int]
    targets: list[str]


def flush(
    conn: psycopg.Connection[Row],
    routes: Routes,
    now: datetime,
    *,
    base_url: str,
    links: LinkSigner | None = None,
) -> list[Made]:
    """Make the messages due at ``now``; return them. Call inside a transaction.

    ``links`` signs the acknowledge and resolve links of each message (none without it).
    """
    items = conn.execute(
        "SELECT * FROM notify_items WHERE done_at IS NULL ORDER BY id FOR UPDATE"
    ).fetchall()
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for item in items:
        groups[(item["route"], item["event"], item["audience"])].append(item)
    made: list[Made] = []
    for (route_name, event, audience), members in groups.items():
        if min(i["due_at"] for i in members) > now:
            continue
        message = _flush_group(
            conn, routes, route_name, event, audience, members, now, base_url, links
        )
        if message is not None:
            made.append(message)
    return made


def _flush_group(
    conn: psycopg.Connection[Row],
    routes: Routes,
    route_name: str,
    event: str,
    audience: str,
    members: list[Row],
    now: datetime,
    base_url: str,
    links: LinkSigner | None,
) -> Made | None:
    route = routes.route(route_name)
    ids = sorted({int(i["incident_id"]) for i in members})
    incidents = {
        int(r["id"]): r for r in conn.execute("SELECT * FROM incidents WHERE id = ANY(%s)", (ids,))
    }
    sending: list[Row] = []
    for item in members:
        verdict = judge(conn, item, incidents.get(int(item["incident_id"])), route, now)
        if verdict.action == "send":
            sending.append(item)
        elif verdict.action == "hold":
            conn.execute(
                "UPDATE notify_items SET due_at = %s, held_reason = %s WHERE id = %s",
                (verdict.until, verdict.reason, item["id"]),
            )
        else:
            conn.execute(
                "UPDATE notify_items SET done_at = %s, outcome = %s, held_reason = NULL"
                " WHERE id = %s",
                (now, f"suppressed: {verdict.reason}", item["id"]),
            )
            if event in ("repeated", "escalated"):
                # The chase is spent: otherwise the next pass would write it again at once.
                _record_paging(conn, route_name, event, audience, [item["incident_id"]], now)
    if not sending:
        return None
    incident_ids = sorted({int(i["incident_id"]) for i in sending})
    rendered = render(
        event,
        route_name,
        load_views(conn, incident_ids),
        base_url=base_url,
        tz=route.timezone,
        now=now,
        links=links,
    )
    payload: dict[str, Any] = dict(rendered.payload, audience=audience)
    row = conn.execute(
        "INSERT INTO notify_messages"
        " (route, event, audience, incident_ids, created_at, title, body, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            route_name,
            event,
            audience,
            incident_ids,
            now,
            rendered.title,
            rendered.body,
            Jsonb(payload),
        ),
    ).fetchone()
    assert row is not None
    message_id = int(row["id"])
    targets = routes.targets_for(route, audience)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO notifications"
            " (message_id, target, target_type, status, created_at, next_attempt_at)"
            " VALUES (%s, %s, %s, 'queued', %s, %s)",
            [(message_id, t.name, t.type_label, now, now) for t in targets],
        )
    conn.execute(
        "UPDATE notify_items SET done_at = %s, outcome = 'sent', message_id = %s,"
        " held_reason = NULL WHERE id = ANY(%s)",
        (now, message_id, [i["id"] for i in sending]),
    )
    _record_paging(conn, route_name, event, audience, incident_ids, now)
    return Made(
        message_id=message_id,
        route=route_name,
        event=event,
        incident_ids=incident_ids,
        targets=[t.name for t in targets],
    )


def _record_paging(
    conn: psycopg.Connection[Row],
    route: str,
    event: str,
    audience: str,
    ids: list[int],
    now: datetime,
) -> None:
    """Keep the paging state that repeats and escalation are timed from."""
    if event == "opened":
        # A first page, or a page after a reopen: the clock of repeat and escalation restarts.
        conn.execute(
            "INSERT INTO notify_state (incident_id, route, first_paged_at, last_paged_at)"
            " SELECT unnest(%s::bigint[]), %s, %s, %s"
            " ON CONFLICT (incident_id, route) DO UPDATE SET"
            " first_paged_at = excluded.first_paged_at,"
            " last_paged_at = excluded.last_paged_at, repeats = 0, escalated_at = NULL,"
            " resolved_at = NULL, escalation_resolved_at = NULL",
            (ids, route, now, now),
        )
    elif event == "repeated":
        conn.execute(
            "UPDATE notify_state SET last_paged_at = %s, repeats = repeats + 1"
            " WHERE route = %s AND incident_id = ANY(%s)",
            (now, route, ids),
        )
    elif event == "escalated":
        conn.execute(
            "UPDATE notify_state SET escalated_at = %s WHERE route = %s AND incident_id = ANY(%s)",
            (now, route, ids),
        )
    elif event == "resolved":
        column = "escalation_resolved_at" if audience == "escalation" else "resolved_at"
        conn.execute(
            f"UPDATE notify_state SET {column} = %s WHERE route = %s AND incident_id = ANY(%s)",
            (now, route, ids),
        )
