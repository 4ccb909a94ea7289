"""Silences with Alertmanager's matchers: unknown kinds refused, unknown terminals warned
about, a preview of the open incidents a silence would match (rules, CLI, API, console)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from rules import silences
from rules.engine import RuleEngine
from termwatch.cli import main
from tests.rules_support import Fleet, at, batch, incidents
from tests.test_api_fleet import (
    AGENT,
    ENGINEER,
    NOW,
    Conn,
    add_incident,
    add_terminal,
)
from tests.test_console import csrf_of, login


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def mixed(db: Conn) -> dict[str, int]:
    """Open incidents of several severities and groups, and one resolved."""
    add_terminal(db, "T-N1", region="North", service_group="north")
    add_terminal(db, "T-N2", region="North", service_group="north")
    add_terminal(db, "T-S1", region="South", service_group="south")
    return {
        "n1_critical": add_incident(
            db, "T-N1", "cash_acceptor_jam", severity="critical", region="North"
        ),
        "n2_minor": add_incident(db, "T-N2", "printer_paper_out", severity="minor", region="North"),
        "s1_major": add_incident(db, "T-S1", "printer_jam", severity="major", region="South"),
        "n1_resolved": add_incident(
            db, "T-N1", "printer_jam", severity="major", status="resolved", region="North"
        ),
    }


def test_an_unknown_kind_is_refused_with_the_list_of_kinds(db: Conn) -> None:
    with pytest.raises(ValueError, match=r"kind: unknown kind 'printer_paper_lo' \(known: .*"):
        silences.create(
            db, kind="printer_paper_lo", ends_at=NOW + timedelta(hours=1), created_by="x", now=NOW
        )
    with pytest.raises(ValueError, match="matches no known kind"):
        silences.parse_matcher("kind=~printer_paper_lo.*")
    with pytest.raises(ValueError, match="unknown severity"):
        silences.parse_matcher("severity=urgent")
    with pytest.raises(ValueError, match="unknown label"):
        silences.parse_matcher("colour=red")
    with pytest.raises(ValueError, match="not a regular expression"):
        silences.parse_matcher("tid=~T-(")
    with pytest.raises(ValueError, match="must not match an empty value"):
        silences.matchers_of(matchers=[silences.parse_matcher("tid!=T-1")])
    assert db.execute("SELECT count(*) AS n FROM silences").fetchone() == {"n": 0}


def test_the_preview_shows_the_open_incidents_a_silence_would_match(
    db: Conn, mixed: dict[str, int]
) -> None:
    found = [
        silences.parse_matcher("severity=~major|critical"),
        silences.parse_matcher("service_group!=south"),
    ]
    assert [r["id"] for r in silences.preview(db, found)] == [mixed["n1_critical"]]
    by_region = [silences.parse_matcher("region=North")]
    assert [r["id"] for r in silences.preview(db, by_region)] == [
        mixed["n1_critical"],
        mixed["n2_minor"],
    ]
    not_paper = [silences.parse_matcher("kind!~printer_.*"), silences.parse_matcher("tid=~T-.*")]
    assert [r["id"] for r in silences.preview(db, not_paper)] == [mixed["n1_critical"]]


def test_creating_a_silence_mutes_what_the_preview_showed_and_expiring_it_unmutes(
    db: Conn, mixed: dict[str, int]
) -> None:
    found = [silences.parse_matcher("severity=~major|critical")]
    shown = {r["id"] for r in silences.preview(db, found)}
    sid = silences.create(
        db, matchers=found, ends_at=NOW + timedelta(hours=1), created_by="anna", now=NOW
    )
    muted = {r["id"] for r in db.execute("SELECT id FROM incidents WHERE silenced").fetchall()}
    assert muted == shown == {mixed["n1_critical"], mixed["s1_major"]}
    [active] = silences.list_active(db, NOW)
    assert active["matchers"] == ["severity=~major|critical"]
    assert silences.expire(db, sid, NOW + timedelta(minutes=1)) is True
    assert db.execute("SELECT count(*) AS n FROM incidents WHERE silenced").fetchone() == {"n": 0}


def test_unknown_terminals_and_groups_are_warned_about_not_refused(
    db: Conn, mixed: dict[str, int]
) -> None:
    found = [silences.parse_matcher("tid=T-999999"), silences.parse_matcher("service_group=~ea.*")]
    warned = silences.warnings(db, found)
    assert warned == [
        "tid: no terminal in the registry has tid 'T-999999'",
        "service_group: 'ea.*' matches no service_group in the registry",
    ]
    assert silences.warnings(db, [silences.parse_matcher("service_group=north")]) == []


def test_a_silence_written_with_the_old_columns_still_matches(db: Conn) -> None:
    db.execute(
        "INSERT INTO silences (tid, starts_at, ends_at, created_by) VALUES ('T1', %s, %s, 'ops')",
        (NOW - timedelta(minutes=1), NOW + timedelta(hours=1)),
    )
    assert silences.matches(db, tid="T1", region=None, kind="printer_jam", now=NOW) is True
    assert silences.matches(db, tid="T2", region=None, kind="printer_jam", now=NOW) is False
    [active] = silences.list_active(db, NOW)
    assert active["matchers"] == ["tid=T1"]


def test_the_engine_silences_a_new_incident_by_severity_and_service_group(
    db: Conn, engine: RuleEngine
) -> None:
    fleet = Fleet(db)
    fleet.register("T1", region="North")
    fleet.register("T2", region="South")
    silences.create(
        db,
        matchers=[
            silences.parse_matcher("service_group=team-north"),
            silences.parse_matcher("severity=~major|critical|minor"),
        ],
        ends_at=at(3600),
        created_by="ops",
        now=at(0),
    )
    engine.after_commit(
        batch(
            at(10),
            fleet.status("T1", at(10), {"printer": {"paper": "out"}}),
            fleet.status("T2", at(10), {"printer": {"paper": "out"}}),
        )
    )
    assert {r["tid"]: r["silenced"] for r in incidents(db)} == {"T1": True, "T2": False}


def test_the_cli_refuses_an_unknown_kind_and_previews_with_warnings(
    db: Conn,
    clean_db: str,
    mixed: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", clean_db)
    monkeypatch.delenv("TERMWATCH_CONFIG", raising=False)
    assert main(["silences", "add", "--kind", "printer_paper_lo", "--for", "1h"]) == 1
    assert "unknown kind 'printer_paper_lo'" in capsys.readouterr().err
    assert main(["silences", "add", "--tid", "T-999999", "--for", "1h", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "warning: tid: no terminal in the registry has tid 'T-999999'" in out.err
    assert "matches 0 open incident(s)" in out.out
    assert db.execute("SELECT count(*) AS n FROM silences").fetchone() == {"n": 0}
    assert main(["silences", "preview", "-m", "region=North", "-m", "severity=critical"]) == 0
    out = capsys.readouterr()
    assert "matches 1 open incident(s)" in out.out
    assert f"#{mixed['n1_critical']}" in out.out
    assert main(["silences", "add", "-m", "severity=critical", "--for", "1h", "--by", "ops"]) == 0
    assert "silence 1 until" in capsys.readouterr().out


def test_the_api_refuses_an_unknown_kind_and_previews_matches(
    db: Conn, client: httpx.Client, mixed: dict[str, int]
) -> None:
    bad = client.post(
        "/api/v1/silences",
        json={"matchers": [{"label": "kind", "op": "=", "value": "printer_paper_lo"}],
              "duration_s": 600},
        headers=auth(ENGINEER),
    )  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["field"] == "kind"
    assert "printer_paper_out" in bad.json()["error"]
    preview = client.post(
        "/api/v1/silences/preview",
        json={"region": "North", "matchers": [{"label": "tid", "op": "=~", "value": "T-X.*"}]},
        headers=auth(ENGINEER),
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["matches"] == []
    assert preview.json()["warnings"] == ["tid: 'T-X.*' matches no tid in the registry"]
    preview = client.post(
        "/api/v1/silences/preview",
        json={"matchers": [{"label": "severity", "op": "=~", "value": "major|critical"}]},
        headers=auth(ENGINEER),
    )
    assert [i["id"] for i in preview.json()["matches"]] == [
        mixed["n1_critical"],
        mixed["s1_major"],
    ]
    made = client.post(
        "/api/v1/silences",
        json={"tid": "T-999999", "duration_s": 600, "comment": "not installed yet"},
        headers=auth(ENGINEER),
    )
    assert made.status_code == 201, made.text
    assert made.json()["matchers"] == ["tid=T-999999"]
    assert made.json()["warnings"] == ["tid: no terminal in the registry has tid 'T-999999'"]
    listed = client.get("/api/v1/silences", headers=auth(ENGINEER)).json()
    assert [s["matchers"] for s in listed] == [["tid=T-999999"]]
    assert (
        client.post("/api/v1/silences/preview", json={"region": "North"}, headers=auth(AGENT))
    ).status_code == 403


def test_the_console_page_previews_creates_and_expires_silences(
    db: Conn, served: str, mixed: dict[str, int]
) -> None:
    engineer = login(served, ENGINEER, "Ivan")
    page = engineer.get("/silences")
    assert page.status_code == 200
    assert "No silence is in force." in page.text
    csrf = csrf_of(page.text)
    form = {"csrf": csrf, "matchers": "region=North\nseverity=critical", "duration": "1h"}
    preview = engineer.post("/silences", data={**form, "do": "preview"})
    assert preview.status_code == 200
    assert "Open incidents this silence would match: 1" in preview.text
    assert f"/incidents/{mixed['n1_critical']}" in preview.text
    assert db.execute("SELECT count(*) AS n FROM silences").fetchone() == {"n": 0}
    bad = engineer.post("/silences", data={**form, "matchers": "kind=printer_paper_lo"})
    assert bad.status_code == 422
    assert "unknown kind" in bad.text
    made = engineer.post("/silences", data={**form, "do": "create", "comment": "storm"})
    assert made.status_code == 303
    listed = engineer.get(made.headers["location"])
    assert "region=North" in listed.text
    assert "Ivan" in listed.text
    row = db.execute("SELECT id, created_by FROM silences").fetchone()
    assert row is not None
    assert row["created_by"] == "Ivan"
    expired = engineer.post(f"/silences/{row['id']}/expire", data={"csrf": csrf})
    assert expired.status_code == 303
    assert "No silence is in force." in engineer.get("/silences").text
    ru = engineer.get("/silences", cookies={"tw_lang": "ru"})
    assert "Правил тишины сейчас нет." in ru.text
    agent = login(served, AGENT)
    assert agent.get("/silences").status_code == 403
