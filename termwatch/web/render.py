"""Server-side HTML rendering of the console: the Jinja environment and its helpers.

Templates are autoescaped. Times are shown in the viewer's offset from UTC (the browser
reports it in the ``tw_tzo`` cookie; UTC without it), amounts in roubles, words in the
session's language.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.responses import HTMLResponse

from termwatch.web.i18n import duration, failure, incident_title, money, text, when, word
from termwatch.web.models import Incident, Operation

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("termwatch.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.globals["quote"] = quote


class View:
    """Per-request helpers for templates: ``t``, ``when``, ``ago``, ``rub``."""

    def __init__(self, lang: str, tz: tzinfo, now: datetime) -> None:
        self.lang = lang
        self.tz = tz
        self.now = now

    def t(self, key: str, **values: object) -> str:
        return text(self.lang, key, **values)

    def when(self, ts: datetime | None) -> str:
        """The date and time in the viewer's offset and language; empty for None."""
        if ts is None:
            return ""
        return when(self.lang, ts, self.tz)

    def word(self, vocabulary: str, code: str | None) -> str:
        """A code (kind, severity, service, step, result, error) in plain words."""
        return word(self.lang, vocabulary, code)

    def title(self, incident: Incident) -> str:
        """The incident's title in the viewer's language (from its kind and place)."""
        return incident_title(self.lang, incident.kind, incident.tid, incident.region)

    def failure(self, op: Operation) -> str:
        """Where and why ``op`` failed: ``receipt printed: receipt jammed``."""
        return failure(self.lang, op.failed_step, op.failed_error, op.failed_result)

    def actor(self, name: str) -> str:
        """Who acted, with the rule engine named in words."""
        return text(self.lang, "ui.rules_actor") if name == "rules" else name

    def event(self, name: str | None) -> str:
        """An XFS4IoT event name (``Printer.MediaPresentedEvent``) without its code look
        in Russian, where only its device is said; as sent in English."""
        if not name:
            return ""
        return name if self.lang == "en" else text(self.lang, "ui.event")

    def segment(self, lane: str, code: str) -> str:
        """What one stretch of a history lane was, in words."""
        if lane == "availability":
            return text(self.lang, "ui.online" if code == "online" else "ui.offline")
        if lane == "incidents":
            return word(self.lang, "kind", code)
        return text(self.lang, f"state.{code}")

    def iso(self, ts: datetime | None) -> str:
        return ts.isoformat() if ts is not None else ""

    def ago(self, ts: datetime | None) -> str:
        """How long ago ``ts`` was (``2 h 15 min``)."""
        if ts is None:
            return ""
        return duration(self.lang, max(self.now - ts, timedelta()))

    def rub(self, minor: int | None, currency: str = "RUB") -> str:
        return "" if minor is None else money(self.lang, minor, currency)

    def local_input(self, ts: datetime | None) -> str:
        """A value for ``<input type=datetime-local>``."""
        if ts is None:
            return ""
        return ts.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M")

    @property
    def tz_label(self) -> str:
        offset = self.now.astimezone(self.tz).utcoffset() or timedelta()
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def offset_zone(minutes: int) -> tzinfo:
    return timezone(timedelta(minutes=minutes))


def page(name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render template ``name`` with ``context``."""
    html = _ENV.get_template(name).render(**context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' data:; style-src 'self';"
                " script-src 'self'; frame-ancestors 'none'; form-action 'self'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )
