"""The console in a real headless Chromium: an agent finds the terminal by its address,
sees the printer out of paper, finds the caller's payment, registers the complaint and
reads the verdict. Saves a screenshot of the terminal card to ``artifacts/``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from termwatch.settings import Settings
from termwatch.web.app import create_app
from tests.test_api import with_tokens
from tests.test_api_fleet import AGENT, NOW, Conn, paper_out_terminal, serve

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


@pytest.fixture
def console_url(settings: Settings, db: Conn) -> Iterator[str]:
    with serve(create_app(with_tokens(settings), clock=lambda: NOW)) as url:
        yield url


def test_an_agent_finds_the_callers_payment_and_registers_the_complaint(
    console_url: str, db: Conn
) -> None:
    from playwright.sync_api import expect, sync_playwright

    incident_id = paper_out_terminal(db)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(
                timezone_id="Europe/Moscow", locale="en-GB", viewport={"width": 1366, "height": 900}
            )
            page = context.new_page()
            page.set_default_timeout(15_000)

            page.goto(f"{console_url}/")
            page.get_by_label("Access token").fill(AGENT)
            page.get_by_label("Your name").fill("Anna")
            page.get_by_role("button", name="Log in").click()

            page.get_by_label("Terminal id, address or city").first.fill("Tverskaya 12")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{console_url}/t/T-000042")
            expect(page.locator("#device-printer")).to_contain_text("out of paper")
            expect(page.locator("#liveness")).to_contain_text("online")
            expect(page.locator("#guidance")).to_contain_text("cannot print receipts now")

            page.get_by_label("Amount, ₽").first.fill("500")
            page.locator("#f-at").fill("2026-05-04T10:30")
            page.get_by_role("button", name="Find").click()
            caller = page.locator("tr.op.selected")
            expect(caller).to_have_count(1)
            expect(caller).to_contain_text("04.05.2026 10:31")
            expect(caller).to_contain_text("500.00 RUB")
            expect(caller).to_contain_text("receiptPrinted: paperOut")
            expect(page.locator("#guidance")).to_contain_text(
                "The payment of 500.00 RUB at 10:31 went through and was credited"
            )

            form = page.locator("#complaint")
            expect(form.get_by_label("Amount, ₽")).to_have_value("500.00")
            expect(form.get_by_label("When it happened")).to_have_value("2026-05-04T10:31")
            form.get_by_label("Category").select_option("no_receipt")
            form.get_by_label("Customer phone or wallet").fill("+7 916 123-45-67")
            form.get_by_label("What the caller says").fill("paid 500, no receipt")
            form.get_by_role("button", name="Register").click()

            result = page.locator("#complaint-result")
            expect(result).to_contain_text("registered")
            expect(result.locator(".verdict")).to_contain_text("receipt not printed")
            expect(result).to_contain_text(f"#{incident_id}")
            expect(result).to_contain_text("T-000042-op-caller")
            assert "916 123" not in page.content()

            page.locator("body").press("/")
            assert page.evaluate("document.activeElement.id") == "top-q"

            shot = ARTIFACTS / "terminal-card.png"
            page.locator("#terminal-card").screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
