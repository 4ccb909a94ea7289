"""The web console, served on a local port: login, search, terminal card, complaint form,
incident pages, language switch, CSRF and sessions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from termwatch.settings import ApiToken, Settings
from termwatch.web.app import create_app
from termwatch.web.auth import TokenBook
from termwatch.web.session import LIFETIME_S, issue, verify
from tests.test_api import with_tokens
from tests.test_api_fleet import (
    AGENT,
    ENGINEER,
    NOW,
    Conn,
    add_terminal,
    paper_out_terminal,
    serve,
)


@pytest.fixture(scope="module")
def served(db_dsn: str) -> Iterator[str]:
    settings = with_tokens(Settings(database_url=db_dsn, pii_key="test-pii-key-0123456789"))
    with serve(create_app(settings, clock=lambda: NOW)) as url:
        yield url


def login(url: str, token: str, name: str = "Anna") -> httpx.Client:
    """A client holding a console session (and the Moscow offset, as the browser sets)."""
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    client.cookies.set("tw_tzo", "180")
    response = client.post("/login", data={"token": token, "name": name, "next": "/"})
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def agent(served: str) -> Iterator[httpx.Client]:
    client = login(served, AGENT)
    yield client
    client.close()


@pytest.fixture
def engineer(served: str) -> Iterator[httpx.Client]:
    client = login(served, ENGINEER, "Ivan")
    yield client
    client.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token on the page"
    return match[1]


def complaint_form(html: str, **changes: str) -> dict[str, str]:
    ref = re.search(r'id="c-ref" name="ref" value="([^"]+)"', html)
    assert ref
    form = {
        "csrf": csrf_of(html),
        "ref": ref[1],
        "category": "no_receipt",
        "amount": "500",
        "occurred_at": "2026-05-04T10:30",
        "customer": "+7 916 123-45-67",
        "text": "paid 500, no receipt",
    }
    form.update(changes)
    return form


def test_it_sends_a_visitor_without_a_session_to_the_login_page(served: str) -> None:
    with httpx.Client(base_url=served, follow_redirects=False) as client:
        response = client.get("/t/T-000042?amount=500")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Ft%2FT-000042%3Famount%3D500"
        page = client.get(response.headers["location"])
        assert page.status_code == 200
        assert 'name="token"' in page.text
        assert 'value="/t/T-000042?amount=500"' in page.text


def test_it_logs_in_with_a_token_into_a_signed_http_only_session(served: str) -> None:
    with httpx.Client(base_url=served, follow_redirects=False) as client:
        bad = client.post("/login", data={"token": "wrong-token-123", "next": "/"})
        assert bad.status_code == 401
        assert "This token is not valid." in bad.text
        good = client.post("/login", data={"token": AGENT, "name": "Anna", "next": "/incidents"})
        assert good.status_code == 303
        assert good.headers["location"] == "/incidents"
        cookie = good.headers["set-cookie"]
        assert "tw_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
        assert AGENT not in cookie
        home = client.get("/")
        assert home.status_code == 200
        assert "Anna · agent" in home.text


def test_it_never_redirects_a_login_off_the_site(served: str) -> None:
    with httpx.Client(base_url=served, follow_redirects=False) as client:
        response = client.post("/login", data={"token": AGENT, "next": "//evil.example/x"})
        assert response.headers["location"] == "/"


def test_it_opens_the_card_at_once_when_the_search_finds_one_terminal(
    agent: httpx.Client, db: Conn
) -> None:
    paper_out_terminal(db)
    add_terminal(db, "T-000043", name="Arbat corner", address="Arbat St 5")
    one = agent.get("/", params={"q": "Tverskaya 12"})
    assert one.status_code == 303
    assert one.headers["location"] == "/t/T-000042"
    several = agent.get("/", params={"q": "T-0000"})
    assert several.status_code == 200
    assert several.text.count('href="/t/T-0000') == 2
    none = agent.get("/", params={"q": "Nevsky"})
    assert "No terminal matches" in none.text


def test_it_shows_the_card_with_the_printer_out_of_paper_and_guidance(
    agent: httpx.Client, db: Conn
) -> None:
    incident_id = paper_out_terminal(db)
    page = agent.get("/t/T-000042")
    assert page.status_code == 200
    html = page.text
    assert "Tverskaya kiosk" in html
    assert re.search(r'id="device-printer".*?out of paper.*?since .*?4 May 2026 09:00', html, re.S)
    assert f'href="/incidents/{incident_id}"' in html
    assert "The terminal cannot print receipts now (out of paper, for 2 h)" in html
    assert html.count('class="op ') == 13
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_it_finds_the_callers_operation_by_amount_and_local_time(
    agent: httpx.Client, db: Conn
) -> None:
    paper_out_terminal(db)
    page = agent.get("/t/T-000042", params={"amount": "500", "at": "2026-05-04T10:30"})
    html = page.text
    assert html.count('class="op ') == 1
    assert 'class="op selected outcome-completedWithWarnings"' in html
    assert "4 May 2026 10:31" in html
    assert "The payment of 500.00 RUB at 10:31 went through and was credited" in html
    assert 'id="c-amount" name="amount" inputmode="decimal" value="500.00"' in html
    assert 'value="2026-05-04T10:31"' in html


def test_it_explains_a_malformed_amount_on_the_card(agent: httpx.Client, db: Conn) -> None:
    paper_out_terminal(db)
    page = agent.get("/t/T-000042", params={"amount": "five hundred"})
    assert page.status_code == 200
    assert 'aria-invalid="true"' in page.text
    assert "Amount: type roubles, such as 500 or 500.50." in page.text
    ru = agent.get("/t/T-000042", params={"amount": "пятьсот"}, cookies={"tw_lang": "ru"})
    assert "Сумма: введите рубли, например 500 или 500,50." in ru.text


def test_it_registers_a_complaint_from_the_card_and_shows_its_verdict(
    agent: httpx.Client, db: Conn
) -> None:
    incident_id = paper_out_terminal(db)
    card = agent.get("/t/T-000042").text
    form = complaint_form(card)
    posted = agent.post("/t/T-000042/complaint", data=form)
    assert posted.status_code == 303, posted.text
    assert re.fullmatch(r"/t/T-000042\?complaint=\d+", posted.headers["location"])
    result = agent.get(posted.headers["location"]).text
    assert f"Complaint {form['ref']} registered." in result
    assert "receipt not printed" in result
    assert f'href="/incidents/{incident_id}">#{incident_id}</a>' in result
    assert "<code>T-000042-op-caller</code>" in result
    assert "Register a complaint so that" not in result  # credited: no claim needed
    assert f"Already registered as {form['ref']} on 4 May 2026 11:00" in result
    assert "offer to send it electronically" in result
    drawn = re.sub(r"<svg\b.*?</svg>", "", result, flags=re.S)  # coordinates are digits too
    assert "916" not in drawn.replace("•••4567", "")
    again = agent.post("/t/T-000042/complaint", data=form)
    assert again.headers["location"] == posted.headers["location"]
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 1}
    stored = db.execute("SELECT customer_last4, received_at FROM complaints").fetchone()
    assert stored is not None
    assert (stored["customer_last4"], stored["received_at"]) == ("4567", NOW)


def test_it_tells_the_agent_a_claim_is_registered_for_cash_not_credited(
    agent: httpx.Client, db: Conn
) -> None:
    from tests.test_api_fleet import add_operation, healthy_devices, set_devices, set_state

    add_terminal(db, "T-7")
    set_state(db, "T-7")
    set_devices(db, "T-7", healthy_devices())
    add_operation(
        db,
        "T-7",
        "op-timeout",
        NOW - timedelta(minutes=12),
        amount_minor=150000,
        outcome="failed",
        steps=[
            {"step": "cashAccepted", "result": "success", "amount_minor": 150000},
            {"step": "paymentSent", "result": "timeout", "error": "hostTimeout"},
        ],
    )
    card = agent.get("/t/T-7").text
    form = complaint_form(
        card, category="cash_not_credited", amount="1500", occurred_at="2026-05-04T10:45"
    )
    posted = agent.post("/t/T-7/complaint", data=form)
    result = agent.get(posted.headers["location"]).text
    assert "money at risk" in result
    assert f"Already registered as {form['ref']}" in result
    assert "Register a complaint so that" not in result


def test_it_names_the_field_of_a_bad_complaint_on_the_form(agent: httpx.Client, db: Conn) -> None:
    paper_out_terminal(db)
    card = agent.get("/t/T-000042").text
    response = agent.post(
        "/t/T-000042/complaint", data=complaint_form(card, category="angry", text="kept")
    )
    assert response.status_code == 422
    assert "category must be one of" in response.text
    assert ">kept</textarea>" in response.text
    amount = agent.post("/t/T-000042/complaint", data=complaint_form(card, amount="lots"))
    assert amount.status_code == 422
    assert "amount_minor: an amount such as 500" in amount.text
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 0}


def test_it_refuses_a_form_without_the_sessions_csrf_token_or_from_elsewhere(
    agent: httpx.Client, db: Conn
) -> None:
    paper_out_terminal(db)
    card = agent.get("/t/T-000042").text
    form = complaint_form(card)
    stale = agent.post("/t/T-000042/complaint", data={**form, "csrf": "0" * 32})
    assert stale.status_code == 403
    foreign = agent.post(
        "/t/T-000042/complaint", data=form, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 0}


def test_it_lists_incidents_by_service_group_status_and_kind(agent: httpx.Client, db: Conn) -> None:
    from tests.test_api_fleet import add_incident

    paper_out_terminal(db)
    add_terminal(db, "K-1", service_group="kzn-east", city="Kazan")
    add_incident(db, "K-1", "cash_acceptor_jam", severity="critical", title="Shutter jammed")
    add_incident(db, "K-1", "printer_fault", status="resolved", title="Old printer fault")
    everything = agent.get("/incidents").text
    assert "Printer out of paper — T-000042" in everything
    assert "Cash acceptor jammed — K-1" in everything
    assert "Printer fault — K-1" not in everything
    kazan = agent.get("/incidents", params={"group": "kzn-east", "status": "all"}).text
    assert "Printer out of paper — T-000042" not in kazan
    assert "Printer fault — K-1" in kazan
    jams = agent.get("/incidents", params={"kind": "cash_acceptor_jam"}).text
    assert "Cash acceptor jammed — K-1" in jams
    assert "Printer out of paper — T-000042" not in jams


def test_it_lets_an_engineer_but_not_an_agent_acknowledge_and_resolve(
    agent: httpx.Client, engineer: httpx.Client, db: Conn
) -> None:
    incident_id = paper_out_terminal(db)
    as_agent = agent.get(f"/incidents/{incident_id}").text
    assert "Acknowledge" not in as_agent
    refused = agent.post(f"/incidents/{incident_id}/ack", data={"csrf": csrf_of(as_agent)})
    assert refused.status_code == 403
    page = engineer.get(f"/incidents/{incident_id}").text
    assert "Acknowledge" in page
    acked = engineer.post(
        f"/incidents/{incident_id}/ack", data={"csrf": csrf_of(page), "note": "on my way"}
    )
    assert acked.status_code == 303
    after = engineer.get(f"/incidents/{incident_id}").text
    assert "acknowledged (Ivan)" in after
    assert "on my way" in after
    resolved = engineer.post(
        f"/incidents/{incident_id}/resolve", data={"csrf": csrf_of(after), "note": "paper in"}
    )
    assert resolved.status_code == 303
    row = db.execute("SELECT status, resolved_by FROM incidents").fetchone()
    assert row == {"status": "resolved", "resolved_by": "Ivan"}
    twice = engineer.post(f"/incidents/{incident_id}/resolve", data={"csrf": csrf_of(after)})
    assert twice.status_code == 409


def test_it_switches_the_language_and_keeps_it(agent: httpx.Client, db: Conn) -> None:
    paper_out_terminal(db)
    switched = agent.get("/lang/ru", params={"next": "/t/T-000042"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/t/T-000042"
    page = agent.get("/t/T-000042").text
    assert '<html lang="ru">' in page
    assert "нет бумаги" in page
    assert "Что сказать звонящему" in page
    assert "Терминал сейчас не печатает чеки" in page


def test_it_answers_unknown_terminals_and_incidents_with_a_404_page(agent: httpx.Client) -> None:
    assert agent.get("/t/T-NOPE").status_code == 404
    assert agent.get("/t/not%20an%20id").status_code == 404
    assert agent.get("/incidents/424242").status_code == 404


def test_it_logs_out_and_forgets_the_session(agent: httpx.Client) -> None:
    home = agent.get("/").text
    response = agent.post("/logout", data={"csrf": csrf_of(home)})
    assert response.status_code == 303
    assert agent.get("/").status_code == 303


def test_a_session_is_refused_when_forged_expired_or_its_token_is_withdrawn() -> None:
    book = TokenBook([ApiToken("engineer", ENGINEER), ApiToken("agent", AGENT)])
    cookie = issue(book, ENGINEER, "Ivan", 1_000_000.0)
    assert cookie is not None
    session = verify(book, cookie, 1_000_001.0)
    assert session is not None
    assert (session.principal.role, session.principal.name) == ("engineer", "Ivan")
    assert verify(book, cookie, 1_000_000.0 + LIFETIME_S) is None
    payload, signature = cookie.split(".")
    forged_role = issue(book, AGENT, "Ivan", 1_000_000.0)
    assert forged_role is not None
    assert verify(book, f"{forged_role.split('.')[0]}.{signature}", 1_000_001.0) is None
    assert verify(book, f"{payload}.{signature[:-2]}AA", 1_000_001.0) is None
    assert verify(book, "garbage", 1_000_001.0) is None
    withdrawn = TokenBook([ApiToken("engineer", "another-engineer-token")])
    assert verify(withdrawn, cookie, 1_000_001.0) is None
    assert issue(book, "unknown-token-xyz", "x", 1_000_000.0) is None


def test_it_answers_hostile_input_without_a_server_error(agent: httpx.Client, db: Conn) -> None:
    paper_out_terminal(db)
    for path, params in [
        ("/t/T-000042", {"op": "\x00", "at": "\x00", "amount": "\x00", "window": "\x00"}),
        ("/t/T-000042", {"complaint": "99999999999999999999", "op": "x" * 500}),
        ("/", {"q": "\x00 %_\\ ' \" <script>"}),
        ("/incidents", {"group": "\x00", "kind": "\x00", "status": "\x00"}),
        ("/lang/xx", {"next": "https://evil.example"}),
    ]:
        response = agent.get(path, params=params)
        assert response.status_code in (200, 303, 404), (path, response.status_code)
        assert "<script>" not in response.text
    card = agent.get("/t/T-000042").text
    nul = agent.post("/t/T-000042/complaint", data=complaint_form(card, ref="CRM\x00-1"))
    assert nul.status_code == 422
    assert "NUL" in nul.text
    with httpx.Client(base_url=str(agent.base_url), follow_redirects=False) as client:
        odd = client.post("/login", data={"token": AGENT, "name": "An\x00na\n", "next": "/"})
        assert odd.status_code == 303
        assert "Anna · agent" in client.get("/").text
