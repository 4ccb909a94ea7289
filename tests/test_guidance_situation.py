"""Guidance from the caller's situation: the picked operation, the complaints already on it,
the incident that explains it (or the honest "nothing on our side"), and a second complaint
on the same operation refused without a clear confirmation (API 409, console checkbox)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from termwatch.settings import Settings
from termwatch.web.app import create_app
from tests.test_api import with_tokens
from tests.test_api_fleet import (
    AGENT,
    NOW,
    Conn,
    add_incident,
    add_operation,
    add_terminal,
    healthy_devices,
    serve,
    set_devices,
    set_state,
)
from tests.test_api_guidance import card_of
from tests.test_console import complaint_form, login

#: The caller's failed 8,900-rouble payment at 10:40 Moscow time: cash taken, host timeout.
TIMEOUT_STEPS: list[dict[str, Any]] = [
    {"step": "cashAccepted", "result": "success", "amount_minor": 890000},
    {"step": "paymentSent", "result": "timeout", "error": "hostTimeout"},
]


def host_timeout_terminal(db: Conn, *, jammed_printer: bool = True) -> None:
    add_terminal(db, "T-000034", name="Kiosk", address="Baumana St 5", city="Kazan")
    set_state(db, "T-000034")
    set_devices(db, "T-000034", healthy_devices())
    add_operation(
        db,
        "T-000034",
        "op-8900",
        NOW - timedelta(minutes=20),
        amount_minor=890000,
        outcome="failed",
        steps=TIMEOUT_STEPS,
    )
    if jammed_printer:
        add_incident(db, "T-000034", "printer_jam", title="Printer jammed")


@pytest.fixture
def api(settings: Settings, db: Conn) -> Iterator[httpx.Client]:
    with (
        serve(create_app(with_tokens(settings), clock=lambda: NOW)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def complaint(ref: str) -> dict[str, object]:
    return {
        "ref": ref,
        "received_at": "2026-05-04T10:55:00+03:00",
        "channel": "phone",
        "category": "cash_not_credited",
        "tid": "T-000034",
        "occurred_at": "2026-05-04T10:40:00+03:00",
        "amount_minor": 890000,
        "currency": "RUB",
    }


def post(client: httpx.Client, body: dict[str, object], **params: str) -> httpx.Response:
    return client.post(
        "/api/v1/complaints",
        headers={"Authorization": f"Bearer {AGENT}"},
        json=body,
        params=params,
    )


def test_it_names_no_unrelated_incident_and_says_nothing_explains_a_host_timeout(
    db: Conn,
) -> None:
    host_timeout_terminal(db)
    card = card_of(db, "T-000034", op_id="op-8900")
    lines = card.guidance_lines
    assert lines[0].startswith("Cash of 8,900.00 RUB was accepted at 10:40")
    assert "the payment host did not answer" in lines[0]
    assert "Register a complaint" in lines[0]
    assert lines[1] == (
        "Nothing on our side explains it: the terminal reported no fault at that time."
    )
    assert lines[2] == "Other problems at this terminal now: Printer jammed — T-000034."
    assert not any("Engineers know" in line for line in lines)
    assert not any("working normally" in line for line in lines)


def test_it_names_the_incident_whose_evidence_the_operation_is(db: Conn) -> None:
    host_timeout_terminal(db, jammed_printer=False)
    incident = add_incident(
        db, "T-000034", "payment_failures", severity="critical", title="Payments failing",
        opened_at=NOW - timedelta(minutes=15),
    )  # fmt: skip
    db.execute(
        "INSERT INTO incident_evidence (incident_id, kind, ref, ts, summary)"
        " VALUES (%s, 'operation', 'op-8900', %s, 'timeout')",
        (incident, NOW - timedelta(minutes=20)),
    )
    ru = card_of(db, "T-000034", op_id="op-8900", lang="ru")
    assert ru.guidance_lines[1] == (
        f"Это объясняет инцидент №{incident} (Платежи не проходят — T-000034, статус: открыт)"
        " с 10:45: инженеры о нём знают."
    )


def test_it_tells_what_to_ask_the_caller_before_an_operation_is_picked(db: Conn) -> None:
    host_timeout_terminal(db, jammed_printer=False)
    en = card_of(db, "T-000034")
    ru = card_of(db, "T-000034", lang="ru")
    assert en.guidance_lines == [
        "The terminal is working normally.",
        "Ask the caller for the amount, about what time they paid and the last 4 digits of"
        " the phone or account, then find the payment under Operations.",
    ]
    assert ru.guidance_lines[1].startswith("Спросите у звонящего сумму")


def test_it_says_the_operation_is_already_registered_and_refuses_a_second_claim(
    api: httpx.Client, db: Conn
) -> None:
    host_timeout_terminal(db)
    first = post(api, complaint("CRM-1"))
    assert first.status_code == 201, first.text
    assert first.json()["matched_op_id"] == "op-8900"

    card = card_of(db, "T-000034", op_id="op-8900")
    assert card.guidance_lines[0].endswith("(the payment host did not answer).")
    assert "Register a complaint" not in " ".join(card.guidance_lines)
    assert card.guidance_lines[1] == (
        "Already registered as CRM-1 on 4 May 2026 10:55, verdict: cash accepted, payment not"
        " sent: money at risk (8,900.00 RUB, operation op-8900 at 10:40). Do not register it"
        " again; the review is under way."
    )
    ru = card_of(db, "T-000034", op_id="op-8900", lang="ru")
    assert ru.guidance_lines[1].startswith(
        "Уже зарегистрирована жалоба CRM-1 от 04.05.2026 10:55, заключение: наличные приняты,"
        " платёж не отправлен: деньги под угрозой (8\u00a0900,00\u00a0₽"
    )

    second = post(api, complaint("CRM-2"))
    assert second.status_code == 409
    assert second.json()["field"] == "confirm_repeat"
    assert "CRM-1" in second.json()["error"]
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 1}
    assert post(api, complaint("CRM-1")).status_code == 200  # the same ref: its result
    assert post(api, complaint("CRM-2"), confirm_repeat="maybe").status_code == 422
    confirmed = post(api, complaint("CRM-2"), confirm_repeat="true")
    assert confirmed.status_code == 201, confirmed.text
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 2}


def test_the_console_stops_a_second_registration_until_the_agent_confirms(
    settings: Settings, db: Conn
) -> None:
    host_timeout_terminal(db)
    with serve(create_app(with_tokens(settings), clock=lambda: NOW)) as url:
        agent = login(url, AGENT)
        fields = {"category": "cash_not_credited", "amount": "8900", "customer": "",
                  "occurred_at": "2026-05-04T10:40"}  # fmt: skip
        page = agent.get("/t/T-000034", params={"op": "op-8900"}).text
        assert 'id="c-confirm"' not in page
        first = agent.post("/t/T-000034/complaint", data=complaint_form(page, **fields))
        assert first.status_code == 303

        page = agent.get("/t/T-000034", params={"op": "op-8900"}).text
        assert 'id="repeat-warning"' in page
        assert 'id="c-confirm"' in page
        form = complaint_form(page, **fields)
        refused = agent.post("/t/T-000034/complaint", data=form)
        assert refused.status_code == 409
        assert re.search(
            r'id="complaint-error">Operation op-8900 already has a complaint', refused.text
        )
        assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 1}

        agent.cookies.set("tw_lang", "ru")
        refused_ru = agent.post("/t/T-000034/complaint", data=form)
        assert "По операции op-8900 уже есть жалоба" in refused_ru.text

        confirmed = agent.post("/t/T-000034/complaint", data={**form, "confirm_repeat": "yes"})
        assert confirmed.status_code == 303
        assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 2}
        agent.close()
