"""Every console page in Russian and in English: the Russian view shows no code and no
English word of the known vocabularies (incident kinds, severities, services, steps and
their results, error codes, verdict phrases), money as ``8 900,00 ₽``, one time zone."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator

import httpx
import pytest

from termwatch.settings import Settings
from termwatch.web import i18n, vocab
from termwatch.web.app import create_app
from tests.console_shift import Shift, a_shift
from tests.test_api import with_tokens
from tests.test_api_fleet import AGENT, ENGINEER, NOW, Conn, serve
from tests.test_console import login


def visible_text(page: str) -> str:
    """What a reader sees: the body without tags, scripts or attribute values."""
    body = page.split("<body>", 1)[-1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", body)))


def forbidden_in_russian() -> list[str]:
    """Codes and English phrases of the vocabularies, and the fixed English parts of the
    verdicts and guidance."""
    words: set[str] = set()
    for table in vocab.VOCABULARIES.values():
        for code, (english, _) in table.items():
            words.add(code)
            if len(english) > 3:
                words.add(english)
    for key, phrase in i18n._EN.items():
        if key.startswith(("v.", "g.")):
            for part in re.split(r"\{[^}]*\}", phrase):
                part = part.strip(" .;:,()")
                if len(part) >= 12:
                    words.add(part)
    return sorted(words)


FORBIDDEN = forbidden_in_russian()


def leaks(text: str) -> list[str]:
    return [w for w in FORBIDDEN if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]


@pytest.fixture
def shift_console(settings: Settings, db: Conn) -> Iterator[tuple[str, Shift]]:
    shift = a_shift(db, settings)
    with serve(create_app(with_tokens(settings), clock=lambda: NOW)) as url:
        yield url, shift


def pages(shift: Shift) -> list[str]:
    return [
        "/",
        "/?q=Kiosk",
        "/t/T-000034",
        "/t/T-000034?op=op-8900",
        f"/t/T-000034?complaint={shift.complaint_id}",
        "/t/T-000042?amount=500&at=2026-05-04T10:30",
        "/incidents",
        "/incidents?status=all",
        f"/incidents/{shift.payments_incident}",
        f"/incidents/{shift.region_incident}",
        f"/incidents/{shift.printer_incident}",
        "/t/T-404404",
    ]


def test_the_vocabulary_list_covers_codes_and_verdict_phrases() -> None:
    assert {"mediaJammed", "hostTimeout", "transport_card", "receiptPrinted", "critical",
            "payment_failures", "cash accepted, payment not sent"} <= set(FORBIDDEN)  # fmt: skip
    assert leaks("сбой: receiptPrinted: mediaJammed") == ["mediaJammed", "receiptPrinted"]
    assert leaks("T-000042-op-caller") == []


def test_every_page_reads_in_russian_without_codes_or_english(
    shift_console: tuple[str, Shift],
) -> None:
    url, shift = shift_console
    for token in (AGENT, ENGINEER):
        client = login(url, token)
        client.cookies.set("tw_lang", "ru")
        login_page = httpx.get(f"{url}/login", cookies={"tw_lang": "ru"}).text
        assert leaks(visible_text(login_page)) == []
        for path in pages(shift):
            response = client.get(path)
            assert response.status_code in (200, 404), (path, response.status_code)
            text = visible_text(response.text)
            assert leaks(text) == [], path
            assert "UTC+03:00" in text
            assert not re.search(r"\d,\d{3}\.\d\d", text), path
        client.close()


def test_the_russian_card_speaks_of_the_failed_payment_in_plain_words(
    shift_console: tuple[str, Shift],
) -> None:
    url, _ = shift_console
    client = login(url, AGENT)
    client.cookies.set("tw_lang", "ru")
    text = visible_text(client.get("/t/T-000034?op=op-8900").text)
    assert "отправка платежа: платёжный сервер не ответил" in text
    assert "мобильная связь" in text
    assert "8\u00a0900,00\u00a0₽" in text
    assert "Платежи не проходят — T-000034" in text
    assert "критический" in text
    assert "CRM-2026-000777" in text
    assert "наличные приняты, платёж не отправлен" in text
    client.close()


def test_the_english_view_shows_the_same_facts_in_english(
    shift_console: tuple[str, Shift],
) -> None:
    url, shift = shift_console
    client = login(url, AGENT)
    text = visible_text(client.get("/t/T-000034?op=op-8900").text)
    assert "payment sent: the payment host did not answer" in text
    assert "8,900.00 RUB" in text
    assert "Payments failing — T-000034" in text
    assert "cash accepted, payment not sent" in text
    detail = visible_text(client.get(f"/incidents/{shift.payments_incident}").text)
    assert detail.index("opened") < detail.index("updated")
    client.close()
