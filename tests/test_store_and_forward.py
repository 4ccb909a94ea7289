"""A terminal back from a gap flushes what it queued: what happened inside the gap is
recorded at its own times, the offline incident resolves, nothing is paged as new."""

from __future__ import annotations

import psycopg

from rules.engine import RuleEngine
from termwatch.db import Row
from tests.rules_support import HEALTHY, Fleet, at, batch, incidents, log_actions

Conn = psycopg.Connection[Row]


def test_a_fault_inside_the_gap_is_recorded_resolved_and_offline_resolves(
    db: Conn, engine: RuleEngine
) -> None:
    fleet = Fleet(db)
    fleet.register("T1")
    engine.after_commit(
        batch(at(0), fleet.status("T1", at(0), HEALTHY), fleet.heartbeat("T1", at(0)))
    )
    engine.tick(at(400))  # three heartbeats missed: offline
    [offline] = incidents(db, kind="terminal_offline")
    # Back at 1200 s: the queue comes, oldest first, in two batches.
    queued = [fleet.heartbeat("T1", at(s)) for s in (60, 120, 180)]
    out = fleet.status("T1", at(200), {"printer": {"device": "online", "paper": "out"}})
    engine.after_commit(batch(at(1200), *queued, out))
    full = fleet.status("T1", at(500), {"printer": {"device": "online", "paper": "full"}})
    engine.after_commit(batch(at(1201), full, fleet.heartbeat("T1", at(1200))))
    engine.tick(at(1300))
    [paper] = incidents(db, kind="printer_paper_out")
    assert paper["opened_at"] == at(200)
    assert paper["cleared_at"] == at(500)
    assert paper["status"] == "resolved"
    evidence = db.execute(
        "SELECT kind FROM incident_evidence WHERE incident_id = %s", (paper["id"],)
    ).fetchall()
    assert evidence
    [offline] = incidents(db, kind="terminal_offline")
    assert offline["status"] == "resolved"
    assert log_actions(db, paper["id"])[-1] == "resolved"
