"""The shift's start page, the regional incident page and the card's history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from termwatch.settings import Settings
from termwatch.web.app import create_app
from termwatch.web.history import history
from tests.console_shift import Shift, a_shift
from tests.test_api import with_tokens
from tests.test_api_fleet import AGENT, NOW, Conn, add_incident, serve
from tests.test_console import login
from tests.test_console_languages import visible_text


@pytest.fixture
def shift_agent(settings: Settings, db: Conn) -> Iterator[tuple[httpx.Client, Shift]]:
    shift = a_shift(db, settings)
    app = create_app(with_tokens(settings.with_(grafana_url="https://grafana.example.org/g")),
                     clock=lambda: NOW)  # fmt: skip
    with serve(app) as url:
        client = login(url, AGENT)
        yield client, shift
        client.close()


def test_the_start_page_lists_the_terminals_failing_customers_worst_first(
    shift_agent: tuple[httpx.Client, Shift],
) -> None:
    client, shift = shift_agent
    page = client.get("/").text
    assert 'id="board"' in page
    assert 'data-refresh-s="60"' in page
    rows = re.findall(r'<tr class="sev-(\w+)" data-tid="([^"]+)">', page)
    assert rows == [("critical", "T-000034"), ("major", "T-000042")]
    text = visible_text(page)
    assert "Kazan · Service group: volga-field" in text
    assert re.search(r"Money at risk\s+8,900.00 RUB", text)
    assert re.search(r"Complaints in the last hour\s+1\b", text)
    assert 'href="/t/T-000034"' in page
    assert f'href="/incidents/{shift.payments_incident}"' in page
    assert f'href="/incidents/{shift.region_incident}"' not in page  # groups are not terminals
    ru = visible_text(client.get("/", cookies={"tw_lang": "ru"}).text)
    assert "Терминалы, на которых сейчас сбои у клиентов" in ru
    assert "8\u00a0900,00\u00a0₽" in ru


def test_the_start_page_says_when_nothing_fails(settings: Settings, db: Conn) -> None:
    with serve(create_app(with_tokens(settings), clock=lambda: NOW)) as url:
        client = login(url, AGENT)
        page = client.get("/").text
        assert "No terminal has an open incident now." in page
        client.close()


def test_the_regional_page_lists_its_terminals_operations_complaints_and_advice(
    shift_agent: tuple[httpx.Client, Shift],
) -> None:
    client, shift = shift_agent
    page = client.get(f"/incidents/{shift.region_incident}").text
    text = visible_text(page)
    table = page.split('id="region-incidents"', 1)[1].split("</table>", 1)[0]
    assert f'href="/incidents/{shift.payments_incident}"' in table
    assert 'href="/t/T-000034"' in table
    assert "open" in visible_text(table)
    assert "4 May 2026 10:45" in visible_text(table)
    assert re.search(r"Service group\s+volga-field", text)
    assert "CRM-2026-000777" in text
    assert "cash accepted, payment not sent" in text
    assert "8,900.00 RUB" in text
    guidance = visible_text(page.split('id="guidance"', 1)[1].split("</section>", 1)[0])
    assert "Payments failing — region Kazan: terminals affected: 1, since 4 May 2026 10:44" in (
        guidance
    )
    assert "suggest paying a little later" in guidance
    ru = visible_text(client.get(f"/incidents/{shift.region_incident}",
                                 cookies={"tw_lang": "ru"}).text)  # fmt: skip
    assert "Что говорить звонящим из региона" in ru
    assert "Платежи не проходят — регион Kazan" in ru


def test_the_card_draws_its_last_day_and_week_and_links_grafana(
    shift_agent: tuple[httpx.Client, Shift], db: Conn
) -> None:
    client, _ = shift_agent
    db.execute(
        "INSERT INTO availability_log (tid, ts, state, source) VALUES"
        " ('T-000034', %s, 'online', 'heartbeat'), ('T-000034', %s, 'offline', 'heartbeat'),"
        " ('T-000034', %s, 'online', 'heartbeat')",
        (NOW - timedelta(days=9), NOW - timedelta(hours=6), NOW - timedelta(hours=3)),
    )
    db.execute(
        "INSERT INTO device_state_log (tid, device, field, value, ts) VALUES"
        " ('T-000034', 'printer', 'media', 'jammed', %s)",
        (NOW - timedelta(minutes=50),),
    )
    old = add_incident(db, "T-000034", "printer_paper_out", status="resolved",
                       opened_at=NOW - timedelta(days=2))  # fmt: skip
    page = client.get("/t/T-000034").text
    day = page.split('id="history-day"', 1)[1].split("</table>", 1)[0]
    week = page.split('id="history-week"', 1)[1].split("</table>", 1)[0]
    offline = re.search(r'<tr class="lane-availability">.*?</tr>', day, re.S)
    assert offline is not None
    assert re.search(r'class="seg fault" x="750.0" y="0" width="125.0"', offline[0])
    assert "offline: 4 May 2026 05:00 – 4 May 2026 08:00" in offline[0]
    printer = re.search(r'<tr class="lane-printer">.*?</tr>', day, re.S)
    assert printer is not None
    assert "receipt jammed: 4 May 2026 10:10" in printer[0]
    assert re.search(r'<tr class="lane-operations">.*?class="tick"', day, re.S)
    assert re.search(r'<tr class="lane-incidents">.*?payments failing', week, re.S)
    assert f'href="/incidents/{old}"' in page.split('id="resolved-incidents"', 1)[1]
    assert ('href="https://grafana.example.org/g/d/termwatch-terminal/?var-terminal=T-000034"'
            in page)  # fmt: skip


def test_history_reads_only_its_terminal_and_window(settings: Settings, db: Conn) -> None:
    a_shift(db, settings)
    past = history(db, "T-000042", NOW)
    assert [lane.key for lane in past.day.lanes] == [
        "availability", "printer", "cashAcceptor", "cardReader", "incidents", "operations"
    ]  # fmt: skip
    assert all(not lane.ticks for lane in past.week.lanes)  # T-000042 failed no payment
    assert past.resolved == []
