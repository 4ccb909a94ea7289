"""People's accounts: tokens kept hashed, the actor of every change taken from the
credential, revoked and rotated tokens refused; the role tokens keep working."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from termwatch.cli import main
from tests.test_api import COMPLAINT
from tests.test_api_fleet import ENGINEER, Conn, add_incident
from tests.test_console import csrf_of, login


def users(
    dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", dsn)
    monkeypatch.delenv("TERMWATCH_CONFIG", raising=False)
    code = main(["users", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def add_user(
    dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> str:
    code, out, err = users(dsn, monkeypatch, capsys, "add", name, "--role", "engineer")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert token.startswith("tw_")
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_users_add_shows_the_token_once_and_keeps_only_its_hash(
    db: Conn, clean_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = add_user(clean_db, monkeypatch, capsys, "anna")
    row = db.execute("SELECT * FROM accounts WHERE name = 'anna'").fetchone()
    assert row is not None
    assert row["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(row)
    code, out, _ = users(clean_db, monkeypatch, capsys, "list")
    assert code == 0
    assert "anna" in out
    assert "engineer" in out
    assert token not in out
    code, _, err = users(clean_db, monkeypatch, capsys, "add", "anna", "--role", "agent")
    assert code == 1
    assert "exists already" in err
    code, _, err = users(clean_db, monkeypatch, capsys, "add", "Anna Petrova", "--role", "agent")
    assert code == 1
    assert "name:" in err


def test_the_actor_in_history_is_the_accounts_name(
    db: Conn,
    clean_db: str,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = add_user(clean_db, monkeypatch, capsys, "anna")
    incident = add_incident(db, "T-000042", "printer_paper_out")
    acked = client.post(
        f"/api/v1/incidents/{incident}/ack", json={"note": "on my way"}, headers=auth(token)
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "anna"
    assert [(e["action"], e["actor"], e["note"]) for e in acked.json()["log"]] == [
        ("acknowledged", "anna", "on my way")
    ]
    impersonating = client.post(
        f"/api/v1/incidents/{incident}/resolve", json={"by": "boris"}, headers=auth(token)
    )
    assert impersonating.status_code == 422
    assert impersonating.json()["field"] == "by"
    silence = client.post(
        "/api/v1/silences", json={"tid": "T-000042", "duration_s": 600}, headers=auth(token)
    )
    assert silence.status_code == 201, silence.text
    assert silence.json()["created_by"] == "anna"
    complaint = client.post("/api/v1/complaints", json=COMPLAINT, headers=auth(token))
    assert complaint.status_code == 201, complaint.text
    row = db.execute("SELECT submitted_by FROM complaints").fetchone()
    assert row is not None
    assert row["submitted_by"] == "anna"


def test_the_role_tokens_keep_working_with_by(db: Conn, client: httpx.Client) -> None:
    incident = add_incident(db, "T-000042", "printer_paper_out")
    acked = client.post(
        f"/api/v1/incidents/{incident}/ack", json={"by": "ivan"}, headers=auth(ENGINEER)
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "ivan"


def test_a_revoked_token_is_refused_and_its_console_session_ends(
    db: Conn,
    clean_db: str,
    served: str,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = add_user(clean_db, monkeypatch, capsys, "anna")
    incident = add_incident(db, "T-000042", "printer_paper_out")
    console = login(served, token, name="Somebody else")
    page = console.get(f"/incidents/{incident}")
    assert page.status_code == 200
    assert "anna · engineer" in page.text
    assert client.get("/api/v1/incidents", headers=auth(token)).status_code == 200

    code, _, err = users(clean_db, monkeypatch, capsys, "revoke", "anna")
    assert code == 0, err
    assert client.get("/api/v1/incidents", headers=auth(token)).status_code == 401
    refused = console.post(f"/incidents/{incident}/ack", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/login")
    row = db.execute("SELECT status FROM incidents WHERE id = %s", (incident,)).fetchone()
    assert row is not None
    assert row["status"] == "open"
    code, _, err = users(clean_db, monkeypatch, capsys, "revoke", "anna")
    assert code == 1
    assert "no active account" in err


def test_rotate_replaces_the_token(
    clean_db: str,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = add_user(clean_db, monkeypatch, capsys, "anna")
    code, out, err = users(clean_db, monkeypatch, capsys, "rotate", "anna")
    assert code == 0, err
    new = out.strip().splitlines()[-1]
    assert new != old
    assert client.get("/api/v1/incidents", headers=auth(old)).status_code == 401
    assert client.get("/api/v1/incidents", headers=auth(new)).status_code == 200


def test_the_console_records_the_person_who_acknowledges(
    db: Conn,
    clean_db: str,
    served: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = add_user(clean_db, monkeypatch, capsys, "anna")
    incident = add_incident(db, "T-000042", "printer_paper_out")
    console = login(served, token)
    page = console.get(f"/incidents/{incident}")
    done = console.post(
        f"/incidents/{incident}/ack", data={"csrf": csrf_of(page.text), "note": "coming"}
    )
    assert done.status_code == 303
    row = db.execute(
        "SELECT actor, note FROM incident_log WHERE incident_id = %s", (incident,)
    ).fetchone()
    assert row is not None
    assert (row["actor"], row["note"]) == ("anna", "coming")
