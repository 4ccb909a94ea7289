"""``termwatch console screenshots DIR``: every console page, in each language, as PNG.

Drives a running console (the demo, say) in a headless Chromium through Playwright: signs
in with an agent token, finds through the API a terminal whose payment failed, its
complaint, a terminal incident and a regional one, and saves the start page, a search, the
card with the caller's payment picked, the card with a complaint's verdict, the incident
list, an incident and the regional incident as ``<page>-<lang>.png``. Playwright is an
optional dependency (``pip install 'termwatch[screenshots]'``); the browser is the system's
Chromium, never a download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx

CHROMIUM: Final = "/usr/bin/chromium"
ARGS: Final = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update"]  # fmt: skip
LANGS: Final = ("en", "ru")


class ScreenshotError(RuntimeError):
    """The console, its API or the browser did not give what a screenshot needs."""


@dataclass(frozen=True, slots=True)
class Shot:
    name: str
    path: str


def pages(api: httpx.Client, search: str) -> list[Shot]:
    """The console paths worth showing, found through the API of the running console."""
    found = api.get("/api/v1/incidents", params={"limit": 500})
    if found.status_code != 200:
        raise ScreenshotError(f"GET /api/v1/incidents answered {found.status_code}")
    incidents: list[dict[str, Any]] = found.json()
    terminal = [i for i in incidents if not i["tid"].startswith("region:")]
    region = [i for i in incidents if i["tid"].startswith("region:")]
    if not terminal:
        raise ScreenshotError("the console has no incident yet; let the fleet run a while")
    worst = max(
        terminal,
        key=lambda i: (i["money_at_risk_minor"], i["complaints"], i["status"] != "resolved"),
    )
    tid = worst["tid"]
    card = api.get(f"/api/v1/terminals/{quote(tid)}", params={"limit": 100})
    if card.status_code != 200:
        raise ScreenshotError(f"GET /api/v1/terminals/{tid} answered {card.status_code}")
    body = card.json()
    ops = body["operations"]
    failed = [o for o in ops if o["money_at_risk_minor"] or o["outcome"] != "completed"]
    shots = [Shot("start", "/"), Shot("search", f"/?q={quote(search)}")]
    if ops:
        op = (failed or ops)[0]["op_id"]
        shots.append(Shot("card", f"/t/{quote(tid)}?op={quote(op)}"))
    else:
        shots.append(Shot("card", f"/t/{quote(tid)}"))
    if body["recent_complaints"]:
        shots.append(
            Shot("verdict", f"/t/{quote(tid)}?complaint={body['recent_complaints'][0]['id']}")
        )
    shots += [Shot("incidents", "/incidents"), Shot("incident", f"/incidents/{worst['id']}")]
    if region:
        shots.append(Shot("region", f"/incidents/{region[0]['id']}"))
    return shots


def take(
    url: str, token: str, out: Path, *, chromium: str = CHROMIUM, search: str = "Казань"
) -> list[Path]:
    """Screenshots of :func:`pages` in every language into ``out``; their paths."""
    try:
        import httpx
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ScreenshotError(
            "Playwright or httpx is not installed: pip install 'termwatch[screenshots]'"
        ) from None
    if not Path(chromium).exists():
        raise ScreenshotError(f"no Chromium at {chromium}; install it (apt-get install chromium)")
    base = url.rstrip("/")
    try:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api:
            shots = pages(api, search)
    except httpx.HTTPError as exc:
        raise ScreenshotError(f"cannot reach the console at {base}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            for lang in LANGS:
                context = browser.new_context(
                    timezone_id="Europe/Moscow",
                    locale="ru-RU" if lang == "ru" else "en-GB",
                    viewport={"width": 1366, "height": 900},
                )
                context.add_cookies([{"name": "tw_lang", "value": lang, "url": base}])
                page = context.new_page()
                page.set_default_timeout(20_000)
                page.goto(f"{base}/login")
                page.locator("input[name=token]").fill(token)
                page.locator("input[name=name]").fill("Anna")
                page.locator("form[action='/login'] button").click()
                page.wait_for_url(f"{base}/")
                for shot in shots:
                    page.goto(f"{base}{shot.path}")
                    path = out / f"{shot.name}-{lang}.png"
                    page.screenshot(path=str(path), full_page=True)
                    saved.append(path)
                context.close()
        finally:
            browser.close()
    return saved
