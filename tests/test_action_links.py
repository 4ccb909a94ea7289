"""Signed links in alerts: a GET shows, a POST acts once as the recipient; forged or expired
links are refused. Against the real database, through the served app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from notify.message import load_views, render
from termwatch.cli import main
from termwatch.links import LinkRefused, LinkSigner
from termwatch.settings import Settings
from termwatch.web.app import create_app
from tests.test_api_fleet import NOW, Conn, add_incident, serve

KEY = "test-link-key-0123456789abcdef0123456789"
SIGNER = LinkSigner(KEY)


@pytest.fixture(scope="module")
def served(db_dsn: str) -> Iterator[str]:
    settings = Settings(database_url=db_dsn, pii_key="test-pii-key-0123456789", link_key=KEY)
    with serve(create_app(settings, clock=lambda: NOW)) as url:
        yield url


@pytest.fixture
def client(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as http:
        yield http


def status_of(db: Conn, incident_id: int) -> str:
    row = db.execute("SELECT status FROM incidents WHERE id = %s", (incident_id,)).fetchone()
    assert row is not None
    return str(row["status"])


def history(db: Conn, incident_id: int) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT action, actor FROM incident_log WHERE incident_id = %s ORDER BY id",
        (incident_id,),
    ).fetchall()
    return [(r["action"], r["actor"]) for r in rows]


def test_a_link_acknowledges_once_and_only_once_as_its_recipient(
    db: Conn, client: httpx.Client
) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out")
    token = SIGNER.make(incident, "ack", "route:atm-north", NOW)

    first = client.post(f"/a/{token}", data={"note": "on my way"})
    assert first.status_code == 200
    assert f"Incident #{incident} is acknowledged by route:atm-north" in first.text
    assert status_of(db, incident) == "acknowledged"

    again = client.post(f"/a/{token}")
    assert again.status_code == 410
    assert "already been used" in again.text
    shown = client.get(f"/a/{token}")
    assert shown.status_code == 410
    assert "already been used" in shown.text
    assert history(db, incident) == [("acknowledged", "route:atm-north")]
    row = db.execute("SELECT acknowledged_by FROM incidents WHERE id = %s", (incident,)).fetchone()
    assert row is not None
    assert row["acknowledged_by"] == "route:atm-north"


def test_a_get_shows_the_confirmation_and_changes_nothing(db: Conn, client: httpx.Client) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out")
    for action in ("ack", "resolve"):
        token = SIGNER.make(incident, action, "user:anna", NOW)
        for _ in range(2):
            page = client.get(f"/a/{token}")
            assert page.status_code == 200
            assert 'method="post"' in page.text
            assert "You act as anna" in page.text
    assert status_of(db, incident) == "open"
    assert history(db, incident) == []
    used = db.execute("SELECT count(*) AS n FROM action_links").fetchone()
    assert used is not None
    assert used["n"] == 0


def test_the_confirmation_page_reads_in_russian(db: Conn, client: httpx.Client) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out")
    token = SIGNER.make(incident, "resolve", "user:anna", NOW)
    page = client.get(f"/a/{token}", cookies={"tw_lang": "ru"})
    assert page.status_code == 200
    assert f"Решить инцидент #{incident}" in page.text
    assert "Вы действуете как anna" in page.text


def test_a_resolve_link_resolves_as_the_engineer_it_was_made_for(
    db: Conn, client: httpx.Client
) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out")
    token = SIGNER.make(incident, "resolve", "user:anna", NOW)
    done = client.post(f"/a/{token}", data={"note": "paper loaded"})
    assert done.status_code == 200
    assert status_of(db, incident) == "resolved"
    assert history(db, incident) == [("resolved", "anna")]


def test_a_forged_link_is_refused_and_changes_nothing(db: Conn, client: httpx.Client) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out")
    other = add_incident(db, "T-000043", "printer_paper_out")
    good = SIGNER.make(incident, "ack", "route:atm-north", NOW)
    payload, signature = good.split(".")
    forged_payload = SIGNER.make(other, "ack", "route:atm-north", NOW).split(".")[0]
    forgeries = [
        f"{forged_payload}.{signature}",  # another incident under this signature
        LinkSigner("another-key-" + "x" * 32).make(incident, "ack", "route:atm-north", NOW),
        f"{payload}.{signature[:-2]}AA",
        "not-a-link",
    ]
    for token in forgeries:
        for method in ("GET", "POST"):
            answer = client.request(method, f"/a/{token}")
            assert answer.status_code == 403, (method, token)
            assert "not valid" in answer.text
    assert status_of(db, incident) == "open"
    assert status_of(db, other) == "open"


def test_an_expired_link_is_refused(db: Conn, client: httpx.Client) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out")
    stale = SIGNER.make(incident, "ack", "route:atm-north", NOW - timedelta(hours=25))
    for method in ("GET", "POST"):
        answer = client.request(method, f"/a/{stale}")
        assert answer.status_code == 410
        assert "expired" in answer.text
    assert status_of(db, incident) == "open"


def test_a_link_to_an_incident_acknowledged_meanwhile_says_so_and_stays_unused(
    db: Conn, client: httpx.Client
) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out", status="acknowledged")
    token = SIGNER.make(incident, "ack", "route:atm-north", NOW)
    answer = client.post(f"/a/{token}")
    assert answer.status_code == 409
    assert "already acknowledged" in answer.text
    used = db.execute("SELECT count(*) AS n FROM action_links").fetchone()
    assert used is not None
    assert used["n"] == 0


def test_every_message_carries_signed_ack_and_resolve_links_for_its_route(db: Conn) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out")
    rendered = render(
        "opened",
        "atm-north",
        load_views(db, [incident]),
        base_url="https://tw.example",
        tz=ZoneInfo("UTC"),
        now=NOW,
        links=SIGNER,
    )
    [item] = rendered.payload["incidents"]
    for action, key in (("ack", "ack_url"), ("resolve", "resolve_url")):
        url = item[key]
        assert url.startswith("https://tw.example/a/")
        assert url in rendered.body
        link = SIGNER.verify(url.removeprefix("https://tw.example/a/"), NOW)
        assert (link.incident_id, link.action, link.recipient) == (
            incident,
            action,
            "route:atm-north",
        )
        with pytest.raises(LinkRefused, match="expired"):
            SIGNER.verify(url.removeprefix("https://tw.example/a/"), NOW + timedelta(days=2))


def test_serve_refuses_to_start_without_a_link_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TERMWATCH_LINK_KEY", raising=False)
    monkeypatch.delenv("TERMWATCH_CONFIG", raising=False)
    assert main(["serve"]) == 2
    assert "TERMWATCH_LINK_KEY is not set" in capsys.readouterr().err


def test_a_short_link_key_is_a_configuration_error() -> None:
    from termwatch.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="TERMWATCH_LINK_KEY: at least 32"):
        load_settings({"TERMWATCH_LINK_KEY": "short"})
