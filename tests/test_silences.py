"""Silences: matching incidents are recorded but not paged, until the silence ends."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest

from rules import silences
from rules.engine import RuleEngine
from termwatch.db import Row
from tests.rules_support import Fleet, at, batch, incidents, log_actions

Conn = psycopg.Connection[Row]


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    fleet.register("T1", region="North")
    fleet.register("T2", region="South")
    return fleet


def paper_out(fleet: Fleet, tid: str, seconds: float) -> object:
    return fleet.status(tid, at(seconds), {"printer": {"paper": "out"}})


def test_it_records_a_silenced_incident_without_paging_it(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    silences.create(db, tid="T1", ends_at=at(3600), created_by="ops", now=at(0))
    engine.after_commit(batch(at(10), paper_out(fleet, "T1", 10), paper_out(fleet, "T2", 10)))
    by_tid = {r["tid"]: r for r in incidents(db)}
    assert by_tid["T1"]["silenced"] is True
    assert by_tid["T2"]["silenced"] is False


@pytest.mark.parametrize(
    ("matcher", "silenced_tids"),
    [
        ({"region": "North"}, {"T1"}),
        ({"kind": "printer_paper_out"}, {"T1", "T2"}),
        ({"kind": "printer_jam"}, set()),
        ({"region": "North", "kind": "printer_jam"}, set()),
    ],
)
def test_it_matches_silences_by_region_and_kind(
    db: Conn,
    fleet: Fleet,
    engine: RuleEngine,
    matcher: dict[str, str],
    silenced_tids: set[str],
) -> None:
    silences.create(
        db,
        tid=matcher.get("tid"),
        region=matcher.get("region"),
        kind=matcher.get("kind"),
        ends_at=at(3600),
        created_by="ops",
        now=at(0),
    )
    engine.after_commit(batch(at(10), paper_out(fleet, "T1", 10), paper_out(fleet, "T2", 10)))
    assert {r["tid"] for r in incidents(db) if r["silenced"]} == silenced_tids


def test_it_unsilences_open_incidents_when_the_silence_runs_out(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    silences.create(db, tid="T1", ends_at=at(600), created_by="ops", now=at(0))
    engine.after_commit(batch(at(10), paper_out(fleet, "T1", 10)))
    engine.tick(at(599))
    assert incidents(db, kind="printer_paper_out")[0]["silenced"] is True
    engine.tick(at(601))
    [incident] = incidents(db, kind="printer_paper_out")
    assert incident["silenced"] is False
    assert log_actions(db, incident["id"]) == ["opened", "unsilenced"]
    assert silences.list_active(db, at(601)) == []


def test_it_silences_incidents_already_open_when_the_silence_is_created(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(10), paper_out(fleet, "T1", 10)))
    silences.create(db, region="North", ends_at=at(600), created_by="ops", now=at(20))
    [incident] = incidents(db)
    assert incident["silenced"] is True
    assert log_actions(db, incident["id"]) == ["opened", "silenced"]


def test_an_expired_silence_unsilences_only_what_no_other_silence_covers(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    first = silences.create(db, tid="T1", ends_at=at(600), created_by="ops", now=at(0))
    silences.create(db, kind="printer_paper_out", ends_at=at(300), created_by="ops", now=at(0))
    engine.after_commit(batch(at(10), paper_out(fleet, "T1", 10), paper_out(fleet, "T2", 10)))
    assert silences.expire(db, first, at(100)) is True
    assert all(r["silenced"] for r in incidents(db))  # the kind silence still covers both
    assert silences.expire(db, first, at(101)) is False
    engine.tick(at(301))
    assert not any(r["silenced"] for r in incidents(db, kind="printer_paper_out"))


def test_it_lists_active_silences(db: Conn) -> None:
    sid = silences.create(
        db, tid="T1", ends_at=at(600), created_by="ops", comment="paper on order", now=at(0)
    )
    [active] = silences.list_active(db, at(1))
    assert (active["id"], active["tid"], active["comment"]) == (sid, "T1", "paper on order")
    assert silences.list_active(db, at(600)) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "at least one matcher"),
        ({"tid": "bad tid!"}, "tid:"),
        ({"tid": "T1", "ends_at": at(-1)}, "ends_at: must be in the future"),
        ({"tid": "T1", "ends_at": at(0) + timedelta(days=91)}, "at most 90 days"),
        ({"tid": "T1", "ends_at": datetime(2026, 5, 5)}, "time zone"),
        ({"region": "  "}, "region: must not be empty"),
    ],
)
def test_it_refuses_a_bad_silence(db: Conn, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"ends_at": at(600), "created_by": "ops", "now": at(0)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        silences.create(db, **args)  # type: ignore[arg-type]
    assert db.execute("SELECT count(*) AS n FROM silences").fetchone() == {"n": 0}
