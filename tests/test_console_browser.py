"""The whole call in a real headless Chromium, in Russian and in English: the agent finds
the terminal from what the caller says, picks the caller's payment, reads the guidance,
registers the complaint, is stopped from registering it twice, and reads the verdict.
Saves a screenshot of the card to ``artifacts/``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

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

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} is not installed"),
]


@dataclass(frozen=True)
class Words:
    """What the agent reads and clicks, per language."""

    lang: str
    locale: str
    token: str
    name: str
    login: str
    search_box: str
    amount: str
    find: str
    ask: str
    picked: str
    money: str
    nothing_explains: str
    category: str
    customer: str
    says: str
    register: str
    registered: str
    verdict: str
    already: str
    refused: str
    other_problem: str


EN = Words(
    lang="en", locale="en-GB", token="Access token", name="Your name", login="Log in",
    search_box="Terminal id, address or city", amount="Amount, ₽", find="Find",
    ask="Ask the caller for the amount",
    picked="Cash of 8,900.00 RUB was accepted at 10:40 but the payment was not credited"
    " (the payment host did not answer). Register a complaint",
    money="8,900.00 RUB", nothing_explains="Nothing on our side explains it",
    category="Category", customer="Customer phone or wallet", says="What the caller says",
    register="Register", registered="registered",
    verdict="cash accepted, payment not sent: money at risk (8,900.00 RUB",
    already="Already registered as", refused="already has a complaint",
    other_problem="Other problems at this terminal now: Printer jammed — T-000034",
)  # fmt: skip
RU = Words(
    lang="ru", locale="ru-RU", token="Токен доступа", name="Ваше имя", login="Войти",
    search_box="Номер терминала, адрес или город", amount="Сумма, ₽", find="Найти",
    ask="Спросите у звонящего сумму",
    picked="Наличные 8\u00a0900,00\u00a0₽ приняты в 10:40, но платёж не зачислен"
    " (платёжный сервер не ответил). Зарегистрируйте жалобу",
    money="8\u00a0900,00\u00a0₽", nothing_explains="С нашей стороны это ничем не объясняется",
    category="Категория", customer="Телефон или кошелёк клиента", says="Со слов клиента",
    register="Зарегистрировать", registered="зарегистрирована",
    verdict="наличные приняты, платёж не отправлен: деньги под угрозой (8\u00a0900,00\u00a0₽",
    already="Уже зарегистрирована жалоба", refused="уже есть жалоба",
    other_problem="Другие проблемы терминала сейчас: Замятие в принтере — T-000034",
)  # fmt: skip


def kazan_kiosk(db: Conn) -> None:
    """T-000034 on Baumana street in Kazan: the caller's 8,900 roubles at 10:40 were taken
    and the payment host never answered; the printer jammed separately."""
    add_terminal(db, "T-000034", name="ТЦ «Мега»", address="ул. Баумана, д. 5", city="Казань",
                 region="Казань", service_group="volga-field")  # fmt: skip
    add_terminal(db, "T-000035", name="аптека", address="ул. Ленина, д. 7", city="Казань",
                 region="Казань", service_group="volga-field")  # fmt: skip
    set_state(db, "T-000034")
    set_devices(db, "T-000034", healthy_devices())
    add_operation(db, "T-000034", "op-early", NOW - timedelta(minutes=50), amount_minor=20000)
    add_operation(
        db, "T-000034", "op-8900", NOW - timedelta(minutes=20), amount_minor=890000,
        outcome="failed", account_last4="1234",
        steps=[
            {"step": "cashAccepted", "result": "success", "amount_minor": 890000},
            {"step": "paymentSent", "result": "timeout", "error": "hostTimeout"},
        ],
    )  # fmt: skip
    add_incident(db, "T-000034", "printer_jam", title="Printer jammed", region="Казань")


@pytest.fixture
def console_url(settings: Settings, db: Conn) -> Iterator[str]:
    kazan_kiosk(db)
    with serve(create_app(with_tokens(settings), clock=lambda: NOW)) as url:
        yield url


@pytest.mark.parametrize("words", [EN, RU], ids=["en", "ru"])
def test_an_agent_takes_the_whole_call_in_the_callers_language(
    console_url: str, db: Conn, words: Words
) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(
                timezone_id="Europe/Moscow",
                locale=words.locale,
                viewport={"width": 1366, "height": 900},
            )
            context.add_cookies([{"name": "tw_lang", "value": words.lang, "url": console_url}])
            page = context.new_page()
            page.set_default_timeout(15_000)

            page.goto(f"{console_url}/")
            page.get_by_label(words.token).fill(AGENT)
            page.get_by_label(words.name).fill("Anna")
            page.get_by_role("button", name=words.login).click()

            # "Kazan, Baumana street": a fragment of each word, as the caller said it.
            page.locator("#q").fill("Казань Баум")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{console_url}/t/T-000034")
            guidance = page.locator("#guidance")
            expect(guidance).to_contain_text(words.ask)

            page.get_by_label(words.amount).first.fill("8900")
            page.locator("#f-at").fill("2026-05-04T10:35")
            page.get_by_role("button", name=words.find, exact=True).last.click()
            caller = page.locator("tr.op.selected")
            expect(caller).to_have_count(1)
            expect(caller).to_contain_text(words.money)
            expect(guidance).to_contain_text(words.picked)
            expect(guidance).to_contain_text(words.nothing_explains)
            expect(guidance).to_contain_text(words.other_problem)

            form = page.locator("#complaint")
            form.get_by_label(words.category).select_option("cash_not_credited")
            form.get_by_label(words.customer).fill("+7 916 000-12-34")
            form.get_by_label(words.says).fill("8900")
            form.get_by_role("button", name=words.register).click()

            result = page.locator("#complaint-result")
            expect(result).to_contain_text(words.registered)
            expect(result.locator(".verdict")).to_contain_text(words.verdict)
            expect(result).to_contain_text("op-8900")
            expect(guidance).to_contain_text(words.already)
            expect(page.locator("#repeat-warning")).to_be_visible()
            assert "916 000" not in page.content()

            # The caller insists: a second registration of the same operation is stopped.
            form.get_by_role("button", name=words.register).click()
            expect(page.locator("#complaint-error")).to_contain_text(words.refused)
            expect(page.locator("#c-confirm")).to_be_visible()
            count = db.execute("SELECT count(*) AS n FROM complaints").fetchone()
            assert count == {"n": 1}

            shot = ARTIFACTS / f"terminal-card-{words.lang}.png"
            page.locator("#terminal-card").screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
