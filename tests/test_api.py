"""The HTTP API against the real database: every endpoint, role and status code."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from termwatch.settings import ApiToken, Settings
from termwatch.web.app import create_app
from tests.test_api_fleet import (
    ADMIN,
    AGENT,
    ENGINEER,
    NOW,
    TOKENS,
    Conn,
    add_incident,
    add_terminal,
    paper_out_terminal,
    serve,
    set_state,
)

COMPLAINT: dict[str, Any] = {
    "ref": "CRM-2026-000123",
    "received_at": "2026-05-04T11:02:00+03:00",
    "channel": "phone",
    "category": "no_receipt",
    "tid": "T-000042",
    "occurred_at": "2026-05-04T10:30:00+03:00",
    "amount_minor": 50000,
    "currency": "RUB",
    "customer": "+79161234567",
    "text": "paid 500, no receipt",
}

#: (method, path, the lowest role allowed)
ENDPOINTS = [
    ("POST", "/api/v1/complaints", "agent"),
    ("GET", "/api/v1/incidents", "agent"),
    ("GET", "/api/v1/incidents/1", "agent"),
    ("POST", "/api/v1/incidents/1/ack", "engineer"),
    ("POST", "/api/v1/incidents/1/resolve", "engineer"),
    ("GET", "/api/v1/terminals?q=tver", "agent"),
    ("GET", "/api/v1/terminals/T-000042", "agent"),
    ("GET", "/api/v1/silences", "engineer"),
    ("POST", "/api/v1/silences", "engineer"),
    ("DELETE", "/api/v1/silences/1", "engineer"),
]
RANK = {"agent": 1, "engineer": 2, "admin": 3}


def with_tokens(settings: Settings) -> Settings:
    return settings.with_(api_tokens=tuple(ApiToken(r, t) for r, t in TOKENS.items()))


@pytest.fixture(scope="module")
def served(db_dsn: str) -> Iterator[str]:
    """The app served on a local port for this module (it opens its own pool); tests empty
    the database through the ``db`` fixture."""
    settings = with_tokens(Settings(database_url=db_dsn, pii_key="test-pii-key-0123456789"))
    with serve(create_app(settings, clock=lambda: NOW)) as url:
        yield url


@pytest.fixture
def client(served: str) -> Iterator[httpx.Client]:
    """A client of the served app; tests that read or write rows also take ``db``."""
    with httpx.Client(base_url=served, timeout=30) as http:
        yield http


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(client: httpx.Client, method: str, path: str, token: str | None, **kw: Any) -> Any:
    headers = auth(token) if token else {}
    return client.request(method, path, headers=headers, **kw)


# --- tokens and roles ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "role"), ENDPOINTS)
def test_it_refuses_a_missing_or_unknown_token_with_401(
    client: httpx.Client, method: str, path: str, role: str
) -> None:
    for headers in ({}, auth("not-a-token-at-all"), {"Authorization": "Basic abc"}):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]


@pytest.mark.parametrize(("method", "path", "role"), ENDPOINTS)
def test_it_lets_each_role_act_only_at_or_above_its_level(
    client: httpx.Client, db: Conn, method: str, path: str, role: str
) -> None:
    paper_out_terminal(db)
    for who, token in TOKENS.items():
        response = call(client, method, path, token, json={})
        if RANK[who] < RANK[role]:
            assert response.status_code == 403, (who, response.text)
            assert role in response.json()["error"]
        else:
            assert response.status_code not in (401, 403), (who, response.text)


def test_it_refuses_every_request_while_no_tokens_are_configured(
    settings: Settings, db: Conn
) -> None:
    app = create_app(settings, clock=lambda: NOW)
    with serve(app) as url, httpx.Client(base_url=url) as bare:
        response = bare.get("/api/v1/incidents", headers=auth(AGENT))
        assert response.status_code == 401
        assert bare.get("/metrics").status_code == 200


def test_it_never_echoes_a_token_in_an_answer(client: httpx.Client) -> None:
    response = client.get("/api/v1/silences", headers=auth(AGENT))
    assert response.status_code == 403
    assert AGENT not in response.text
    wrong = client.get("/api/v1/incidents", headers=auth(ENGINEER + "x"))
    assert ENGINEER not in wrong.text


# --- complaints ---------------------------------------------------------------------------


def test_it_registers_a_complaint_and_links_it_to_the_printer_incident(
    client: httpx.Client, db: Conn
) -> None:
    incident_id = paper_out_terminal(db)
    response = client.post("/api/v1/complaints", headers=auth(AGENT), json=COMPLAINT)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["ref"] == COMPLAINT["ref"]
    assert body["tid"] == "T-000042"
    assert body["matched_op_id"] == "T-000042-op-caller"
    assert body["incident_id"] == incident_id
    assert "receipt not printed" in body["verdict"]
    stored = db.execute("SELECT customer_last4, text FROM complaints").fetchone()
    assert stored == {"customer_last4": "4567", "text": "paid 500, no receipt"}


def test_it_returns_the_first_result_for_a_repeated_ref_and_adds_nothing(
    client: httpx.Client, db: Conn
) -> None:
    paper_out_terminal(db)

    def counts() -> list[Any]:
        return [
            db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
            for table in ("complaints", "incident_evidence", "incident_log")
        ] + [db.execute("SELECT complaints FROM incidents").fetchone()]

    first = client.post("/api/v1/complaints", headers=auth(AGENT), json=COMPLAINT)
    after_first = counts()
    again = client.post(
        "/api/v1/complaints",
        headers=auth(ENGINEER),
        json={**COMPLAINT, "category": "other", "amount_minor": 1},
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "created": False}
    assert counts() == after_first
    assert after_first[0] == {"n": 1}


def test_complaints_open_a_silent_fault_at_their_received_time_never_in_the_future(
    client: httpx.Client, db: Conn
) -> None:
    for tid in ("T-000050", "T-000051"):
        add_terminal(db, tid)
        set_state(db, tid)

    def post(tid: str, n: int, received: datetime) -> dict[str, Any]:
        body = {
            **COMPLAINT,
            "ref": f"CRM-{tid}-{n}",
            "tid": tid,
            "category": "cash_not_credited",
            "received_at": received.isoformat(),
            "occurred_at": (received - timedelta(minutes=20)).isoformat(),
        }
        response = client.post("/api/v1/complaints", headers=auth(AGENT), json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    # complaints of a simulated morning, posted later: the incident takes their time
    for n in (3, 2, 1):
        third = post("T-000050", n, NOW - timedelta(minutes=30 * n))
    past = db.execute(
        "SELECT id, opened_at, detected_at FROM incidents WHERE tid = 'T-000050'"
    ).fetchone()
    assert past is not None
    assert third["incident_id"] == past["id"]
    assert past["opened_at"] == past["detected_at"] == NOW - timedelta(minutes=30)

    # a CRM clock running an hour ahead of the server's (NOW): not dated in the future
    for n in (1, 2, 3):
        post("T-000051", n, NOW + timedelta(minutes=20 * n))
    ahead = db.execute("SELECT detected_at FROM incidents WHERE tid = 'T-000051'").fetchone()
    assert ahead == {"detected_at": NOW}


def test_it_finds_the_terminal_from_the_address_when_no_tid_is_given(
    client: httpx.Client, db: Conn
) -> None:
    paper_out_terminal(db)
    body = {k: v for k, v in COMPLAINT.items() if k != "tid"} | {"address": "Tverskaya St 12"}
    response = client.post("/api/v1/complaints", headers=auth(AGENT), json=body)
    assert response.status_code == 201, response.text
    assert response.json()["tid"] == "T-000042"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ref": None}, "ref"),
        ({"ref": ""}, "ref"),
        ({"category": "angry"}, "category"),
        ({"tid": None}, "tid"),
        ({"tid": "T 42"}, "tid"),
        ({"amount_minor": "500"}, "amount_minor"),
        ({"amount_minor": -1}, "amount_minor"),
        ({"received_at": "2026-05-04T11:02:00"}, "received_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"currency": "rub"}, "currency"),
        ({"text": "nul \u0000 here"}, "text"),
    ],
)
def test_it_names_the_field_of_a_bad_complaint_with_422(
    client: httpx.Client, db: Conn, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**COMPLAINT, **change}.items() if v is not None}
    before = REGISTRY.get_sample_value(
        "termwatch_messages_total", {"kind": "complaints", "outcome": "rejected"}
    )
    response = client.post("/api/v1/complaints", headers=auth(AGENT), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert field in response.json()["error"]
    after = REGISTRY.get_sample_value(
        "termwatch_messages_total", {"kind": "complaints", "outcome": "rejected"}
    )
    assert after == (before or 0) + 1
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 0}


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_it_answers_a_body_that_is_not_a_complaint_object_with_422(
    client: httpx.Client, raw: bytes
) -> None:
    response = client.post(
        "/api/v1/complaints",
        headers={**auth(AGENT), "Content-Type": "application/json"},
        content=raw,
    )
    assert response.status_code == 422
    assert response.json()["error"]


def test_it_refuses_a_body_over_64_kib_with_413(client: httpx.Client) -> None:
    big = {**COMPLAINT, "text": "x" * 70_000}
    response = client.post("/api/v1/complaints", headers=auth(AGENT), json=big)
    assert response.status_code == 413


# --- incidents ----------------------------------------------------------------------------


def test_it_lists_incidents_filtered_by_status_terminal_kind_and_group(
    client: httpx.Client, db: Conn
) -> None:
    paper = paper_out_terminal(db)
    add_terminal(db, "T-2", service_group="kzn-east", city="Kazan")
    jam = add_incident(db, "T-2", "cash_acceptor_jam", severity="critical", title="Jam")
    old = add_incident(db, "T-2", "printer_fault", status="resolved", title="Old fault",
                       opened_at=NOW - timedelta(days=3))  # fmt: skip

    def ids(query: str) -> list[int]:
        response = client.get(f"/api/v1/incidents{query}", headers=auth(AGENT))
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()]

    assert ids("") == [jam, paper, old] or ids("") == [paper, jam, old]
    assert ids("?status=open") == sorted([jam, paper], key=[jam, paper].index)
    assert ids("?status=resolved") == [old]
    assert sorted(ids("?tid=T-2")) == sorted([jam, old])
    assert ids("?kind=cash_acceptor_jam") == [jam]
    assert sorted(ids("?service_group=kzn-east")) == sorted([jam, old])
    assert ids("?service_group=msk-centre&status=open") == [paper]
    assert len(ids("?limit=1")) == 1
    first = client.get("/api/v1/incidents?kind=cash_acceptor_jam", headers=auth(AGENT)).json()[0]
    assert set(first) >= {
        "id", "kind", "tid", "severity", "status", "title", "opened_at", "acknowledged_at",
        "resolved_at", "complaints", "operations_affected", "money_at_risk_minor",
    }  # fmt: skip
    assert (first["severity"], first["status"], first["service_group"]) == (
        "critical",
        "open",
        "kzn-east",
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=closed", "status"),
        ("kind=fire", "kind"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
    ],
)
def test_it_names_a_bad_incident_filter_with_422(
    client: httpx.Client, query: str, field: str
) -> None:
    response = client.get(f"/api/v1/incidents?{query}", headers=auth(AGENT))
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_it_shows_an_incident_with_its_evidence(client: httpx.Client, db: Conn) -> None:
    incident_id = paper_out_terminal(db)
    client.post("/api/v1/complaints", headers=auth(AGENT), json=COMPLAINT)
    response = client.get(f"/api/v1/incidents/{incident_id}", headers=auth(AGENT))
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "printer_paper_out"
    assert body["complaints"] == 1
    [complaint] = body["evidence"]["complaints"]
    assert complaint["ref"] == COMPLAINT["ref"]
    assert complaint["customer_last4"] == "4567"
    assert "79161234567" not in response.text
    assert [o["op_id"] for o in body["evidence"]["operations"]] == ["T-000042-op-caller"]
    assert {i["kind"] for i in body["evidence"]["items"]} == {"complaint", "operation"}
    assert isinstance(body["log"], list)


@pytest.mark.parametrize(
    "path", ["/api/v1/incidents/999", "/api/v1/incidents/99999999999999999999"]
)
def test_it_answers_an_unknown_incident_with_404(client: httpx.Client, path: str) -> None:
    response = client.get(path, headers=auth(AGENT))
    assert response.status_code == 404
    assert response.json()["error"]


def test_it_acknowledges_then_resolves_an_incident_and_refuses_repeats_with_409(
    client: httpx.Client, db: Conn
) -> None:
    incident_id = paper_out_terminal(db)
    base = f"/api/v1/incidents/{incident_id}"
    ack = client.post(
        f"{base}/ack", headers=auth(ENGINEER), json={"note": "on my way", "by": "Ivan"}
    )
    assert ack.status_code == 200, ack.text
    assert (ack.json()["status"], ack.json()["acknowledged_by"]) == ("acknowledged", "Ivan")
    assert ack.json()["log"][-1]["note"] == "on my way"
    again = client.post(f"{base}/ack", headers=auth(ENGINEER))
    assert again.status_code == 409
    assert "acknowledged" in again.json()["error"]
    resolved = client.post(f"{base}/resolve", headers=auth(ADMIN), json={"by": "   "})
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["resolved_by"]) == ("resolved", "admin")
    assert client.post(f"{base}/resolve", headers=auth(ADMIN)).status_code == 409
    assert client.post("/api/v1/incidents/999/resolve", headers=auth(ADMIN)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"note": 5}, "note"),
        ({"by": ""}, "by"),
        ({"note": "x" * 2001}, "note"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_it_names_a_bad_acknowledgement_body_with_422(
    client: httpx.Client, db: Conn, body: dict[str, Any], field: str
) -> None:
    incident_id = paper_out_terminal(db)
    response = client.post(
        f"/api/v1/incidents/{incident_id}/ack", headers=auth(ENGINEER), json=body
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    status = db.execute("SELECT status FROM incidents WHERE id = %s", (incident_id,)).fetchone()
    assert status == {"status": "open"}


# --- terminals ----------------------------------------------------------------------------


def test_it_returns_the_terminal_card_with_devices_incidents_operations_and_guidance(
    client: httpx.Client, db: Conn
) -> None:
    incident_id = paper_out_terminal(db)
    response = client.get(
        "/api/v1/terminals/T-000042?amount_minor=50000&at=2026-05-04T10:30:00%2B03:00"
        "&tz_offset_min=180",
        headers=auth(AGENT),
    )
    assert response.status_code == 200, response.text
    card = response.json()
    assert (card["tid"], card["name"], card["address"], card["city"]) == (
        "T-000042",
        "Tverskaya kiosk",
        "Tverskaya St 12",
        "Moscow",
    )
    assert card["online"] is True
    assert card["last_seen"].startswith("2026-05-04T07:59:30")
    printer = card["devices"][0]
    assert (printer["device"], printer["state"], printer["condition"]) == (
        "printer",
        "out of paper",
        "fault",
    )
    assert printer["since"].startswith("2026-05-04T06:00:00")
    assert [i["id"] for i in card["incidents"]] == [incident_id]
    assert [o["op_id"] for o in card["operations"]] == ["T-000042-op-caller"]
    assert card["operations"][0]["failed_step"] == "receiptPrinted"
    assert card["selected_operation"]["host_ref"] == "AUTH-88231"
    assert card["guidance"].startswith("The payment of 500.00 RUB at 10:31 went through")
    assert card["language"] == "en"


def test_it_answers_in_russian_when_asked(client: httpx.Client, db: Conn) -> None:
    paper_out_terminal(db)
    response = client.get("/api/v1/terminals/T-000042?lang=ru", headers=auth(AGENT))
    assert response.json()["devices"][0]["state"] == "нет бумаги"
    assert response.json()["language"] == "ru"


def test_the_card_shows_a_wrong_clock_in_both_languages(client: httpx.Client, db: Conn) -> None:
    paper_out_terminal(db)
    card = client.get("/api/v1/terminals/T-000042", headers=auth(AGENT)).json()
    assert (card["clock_offset_s"], card["clock"]) == (None, "")
    db.execute(
        "INSERT INTO terminal_clock (tid, offset_s, measured_at)"
        " VALUES ('T-000042', 7380, '2026-05-04T08:00:00Z')"
    )
    card = client.get("/api/v1/terminals/T-000042", headers=auth(AGENT)).json()
    assert card["clock_offset_s"] == 7380.0
    assert card["clock"] == "clock 2 h 3 min ahead: receipts show a wrong time"
    ru = client.get("/api/v1/terminals/T-000042?lang=ru", headers=auth(AGENT)).json()
    assert ru["clock"].startswith("часы спешат на 2 ч")


def test_it_lists_the_latest_operations_newest_first_without_filters(
    client: httpx.Client, db: Conn
) -> None:
    paper_out_terminal(db)
    card = client.get("/api/v1/terminals/T-000042?limit=5", headers=auth(AGENT)).json()
    times = [o["ts"] for o in card["operations"]]
    assert len(times) == 5
    assert times == sorted(times, reverse=True)
    assert card["selected_operation"] is None


@pytest.mark.parametrize("tid", ["T-404", "bad%20tid", "x" * 40])
def test_it_answers_an_unknown_terminal_with_404(client: httpx.Client, tid: str) -> None:
    response = client.get(f"/api/v1/terminals/{tid}", headers=auth(AGENT))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("amount_minor=5e4", "amount_minor"),
        ("at=10:30", "at"),
        ("at=2026-05-04T10:30:00", "at"),
        ("lang=de", "lang"),
        ("window_min=100000", "window_min"),
        ("tz_offset_min=9999", "tz_offset_min"),
    ],
)
def test_it_names_a_bad_card_parameter_with_422(
    client: httpx.Client, db: Conn, query: str, field: str
) -> None:
    paper_out_terminal(db)
    response = client.get(f"/api/v1/terminals/T-000042?{query}", headers=auth(AGENT))
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_it_searches_terminals_by_id_name_address_and_city(client: httpx.Client, db: Conn) -> None:
    paper_out_terminal(db)
    add_terminal(db, "T-000043", name="Arbat corner", address="Arbat St 5")
    add_terminal(db, "K-1", name="Kazan mall", address="Baumana 1", city="Kazan")
    set_state(db, "K-1", online=False)

    def tids(q: str) -> list[str]:
        response = client.get("/api/v1/terminals", params={"q": q}, headers=auth(AGENT))
        assert response.status_code == 200, response.text
        return [hit["tid"] for hit in response.json()]

    assert tids("T-000042") == ["T-000042"]
    assert tids("t-0000") == ["T-000042", "T-000043"]
    assert tids("tverskaya 12") == ["T-000042"]
    assert tids("Tver, 12") == ["T-000042"]
    assert tids("verskaya") == ["T-000042"]
    assert tids("ARBAT") == ["T-000043"]
    assert tids("kazan") == ["K-1"]
    assert tids("moscow, arbat") == ["T-000043"]
    assert tids("K-") == ["K-1"]
    assert tids("100%") == []
    assert tids("nowhere street") == []
    hit = client.get("/api/v1/terminals?q=kazan", headers=auth(AGENT)).json()[0]
    assert (hit["city"], hit["online"]) == ("Kazan", False)


@pytest.mark.parametrize("query", ["", "?q=", "?q=%20%20", "?q=x&limit=0", f"?q={'a' * 201}"])
def test_it_names_a_missing_or_bad_search_with_422(client: httpx.Client, query: str) -> None:
    response = client.get(f"/api/v1/terminals{query}", headers=auth(AGENT))
    assert response.status_code == 422
    assert response.json()["field"] in ("q", "limit")


# --- silences -----------------------------------------------------------------------------


def test_it_creates_lists_and_expires_a_silence(client: httpx.Client, db: Conn) -> None:
    incident_id = paper_out_terminal(db)
    created = client.post(
        "/api/v1/silences",
        headers=auth(ENGINEER),
        json={"tid": "T-000042", "duration_s": 3600, "comment": "paper on order"},
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert (silence["tid"], silence["created_by"], silence["comment"]) == (
        "T-000042",
        "engineer",
        "paper on order",
    )
    assert silence["ends_at"].startswith("2026-05-04T09:00:00")
    muted = db.execute("SELECT silenced FROM incidents WHERE id = %s", (incident_id,)).fetchone()
    assert muted == {"silenced": True}
    listed = client.get("/api/v1/silences", headers=auth(ENGINEER)).json()
    assert [s["id"] for s in listed] == [silence["id"]]
    expired = client.delete(f"/api/v1/silences/{silence['id']}", headers=auth(ADMIN))
    assert expired.status_code == 200
    assert expired.json() == {"id": silence["id"], "expired": True}
    assert client.get("/api/v1/silences", headers=auth(ENGINEER)).json() == []
    gone = client.delete(f"/api/v1/silences/{silence['id']}", headers=auth(ADMIN))
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration_s": 3600}, "tid"),
        ({"tid": "T-1"}, "ends_at"),
        ({"tid": "T-1", "duration_s": 3600, "ends_at": "2026-05-05T00:00:00Z"}, "ends_at"),
        ({"tid": "T-1", "ends_at": "2026-05-01T00:00:00Z"}, "ends_at"),
        ({"tid": "T-1", "ends_at": "2026-12-01T00:00:00Z"}, "ends_at"),
        ({"kind": "fire", "duration_s": 3600}, "kind"),
        ({"region": "   ", "duration_s": 3600}, "region"),
        ({"tid": "T-1", "duration_s": 5}, "duration_s"),
    ],
)
def test_it_names_a_bad_silence_with_422(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/silences", headers=auth(ENGINEER), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


# --- the rest -----------------------------------------------------------------------------


def test_it_serves_metrics_without_a_token_and_times_requests_by_route(
    client: httpx.Client,
) -> None:
    client.get("/api/v1/incidents", headers=auth(AGENT))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "termwatch_messages_total" in response.text
    count = REGISTRY.get_sample_value(
        "termwatch_http_request_seconds_count", {"route": "/api/v1/incidents", "status": "2xx"}
    )
    assert count is not None
    assert count >= 1


def test_it_serves_its_openapi_document_without_a_token(client: httpx.Client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) >= {
        "/api/v1/complaints",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/ack",
        "/api/v1/incidents/{id}/resolve",
        "/api/v1/terminals",
        "/api/v1/terminals/{tid}",
        "/api/v1/silences",
        "/api/v1/silences/{id}",
    }
    category = document["components"]["schemas"]["Complaint"]["properties"]["category"]
    assert category["enum"][0] == "no_receipt"


def test_it_answers_an_unknown_api_path_and_method_in_json(client: httpx.Client) -> None:
    missing = client.get("/api/v1/nothing", headers=auth(AGENT))
    assert (missing.status_code, missing.json()["error"]) == (404, "Not Found")
    wrong = client.put("/api/v1/incidents", headers=auth(AGENT))
    assert wrong.status_code == 405
    assert wrong.json()["error"]


def test_it_answers_503_with_retry_after_when_the_database_connection_is_lost(
    settings: Settings, db: Conn
) -> None:
    from termwatch.db import make_pool

    pool = make_pool(settings.require_database(), min_size=1, max_size=1)
    try:
        app = create_app(with_tokens(settings), pool, clock=lambda: NOW)
        with serve(app) as url, httpx.Client(base_url=url) as test_client:
            assert test_client.get("/api/v1/incidents", headers=auth(AGENT)).status_code == 200
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = '' AND pid <> pg_backend_pid()"
                " AND datname = current_database()"
            )
            response = test_client.get("/api/v1/incidents", headers=auth(AGENT))
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert "retry" in response.json()["error"]
    finally:
        pool.close()
