"""Sending one message to one target, and telling the caller whether to try again.

Four kinds of target: a plain JSON webhook (POST, our own payload), anything Apprise
understands (Telegram, e-mail, Slack, Matrix, ``json://`` ...), an Alertmanager (its
``/api/v2/alerts``, :mod:`notify.alertmanager`), and the log. Every send is
bounded by the target's timeout. The result says ``sent``, ``retry`` (transient: timeout,
connection refused or reset, HTTP 5xx, 408, 425, 429) or ``failed`` (permanent: any other
HTTP 4xx, a URL the sender cannot use); nothing is raised for a failed delivery.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from pathlib import Path
from typing import Any, Final

import apprise

from notify import alertmanager
from notify.routes import Target

log = logging.getLogger(__name__)

_TRANSIENT_HTTP: Final = frozenset({408, 425, 429})
_APPRISE_CODE = re.compile(r"error=(\d{3})")
_MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered message on its way to one target."""

    notification_id: int
    attempt: int  # 1 for the first try
    event: str
    severity: str  # the highest severity in the message
    title: str
    body: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """``result`` is ``sent``, ``retry`` or ``failed``; ``error`` says why when not sent."""

    result: str
    error: str | None = None

    @classmethod
    def sent(cls) -> Outcome:
        return cls("sent")

    @classmethod
    def retry(cls, error: str) -> Outcome:
        return cls("retry", error[:_MAX_ERROR])

    @classmethod
    def failed(cls, error: str) -> Outcome:
        return cls("failed", error[:_MAX_ERROR])


def http_outcome(status: int, reason: str) -> Outcome:
    """The outcome of an HTTP answer: 2xx sent, 5xx/408/425/429 retry, anything else failed."""
    if 200 <= status < 300:
        return Outcome.sent()
    error = f"HTTP {status} {reason}".strip()
    if status >= 500 or status in _TRANSIENT_HTTP:
        return Outcome.retry(error)
    return Outcome.failed(error)


class Sender:
    """Sends :class:`Outgoing` messages; safe to use from several threads at once."""

    def __init__(self, notify_log: Path | None = None) -> None:
        self._notify_log = notify_log

    def send(self, target: Target, message: Outgoing) -> Outcome:
        """Deliver ``message`` to ``target`` within its timeout; never raises for a failure."""
        if target.kind == "webhook":
            return self._webhook(target, message)
        if target.kind == "apprise":
            return self._apprise(target, message)
        if target.kind == "alertmanager":
            now = datetime.now(UTC)  # only for an endsAt the payload does not give
            alerts = alertmanager.to_alerts(
                message.payload.get("incidents", []), message.event, now
            )
            return self.push_alerts(target, alerts)
        if target.kind == "log":
            return self._log(message)
        return Outcome.failed(f"unknown target kind {target.kind!r}")

    def push_alerts(self, target: Target, alerts: list[dict[str, Any]]) -> Outcome:
        """POST ``alerts`` to an Alertmanager target within its timeout; never raises."""
        if not alerts:
            return Outcome.sent()
        data = json.dumps(alerts, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "termwatch-notify",
            **dict(target.headers),
        }
        url = alertmanager.alerts_url(target)
        return self._post(url, data, headers, target.timeout, with_body=True)

    def _webhook(self, target: Target, message: Outgoing) -> Outcome:
        payload = dict(message.payload)
        payload["notification_id"] = message.notification_id
        payload["attempt"] = message.attempt
        data = json.dumps(payload, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "termwatch-notify",
            # The same key on every attempt lets a receiver drop a duplicate after a lost answer.
            "Idempotency-Key": f"termwatch-{message.notification_id}",
            **dict(target.headers),
        }
        return self._post(target.url, data, headers, target.timeout)

    def _post(
        self,
        url: str,
        data: bytes,
        headers: dict[str, str],
        timeout: float,
        *,
        with_body: bool = False,
    ) -> Outcome:
        """POST ``data``; ``with_body`` adds the start of an error answer's body to the
        error (Alertmanager says there which label or time it refused)."""
        try:
            # http(s) only: the scheme was checked when the routes were read.
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read(65536)
                return http_outcome(response.status, "")
        except urllib.error.HTTPError as exc:
            body = exc.read(300).decode(errors="replace").strip() if with_body else ""
            exc.close()
            return http_outcome(exc.code, f"{exc.reason} {body}".strip())
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return Outcome.retry(f"timed out after {timeout:g}s")
            return Outcome.retry(f"cannot connect: {exc.reason}")
        except TimeoutError:
            return Outcome.retry(f"timed out after {timeout:g}s")
        except (ConnectionError, HTTPException) as exc:
            return Outcome.retry(f"connection lost: {exc.__class__.__name__} {exc}")
        except OSError as exc:
            return Outcome.retry(f"network error: {exc}")
        except ValueError as exc:  # http.client.InvalidURL and the like: no retry will help
            return Outcome.failed(f"bad URL: {exc}")

    def _apprise(self, target: Target, message: Outgoing) -> Outcome:
        client = apprise.Apprise()
        if not client.add(target.url):
            return Outcome.failed("Apprise does not understand this URL")
        if message.event == "resolved":
            kind = apprise.NotifyType.SUCCESS
        elif message.severity == "critical":
            kind = apprise.NotifyType.FAILURE
        else:
            kind = apprise.NotifyType.WARNING
        result = client.notify(
            body=message.body,
            title=message.title,
            notify_type=kind,
            body_format=apprise.NotifyFormat.TEXT,
            timeout=target.timeout,
        )
        if result:
            return Outcome.sent()
        lines = [entry.message for entry in result.logs()]
        error = " | ".join(lines) or f"Apprise reported {result.status.name}"
        if result.status == apprise.AppriseResultStatus.TIMEOUT:
            return Outcome.retry(f"timed out after {target.timeout:g}s: {error}")
        codes = [int(m[1]) for m in map(_APPRISE_CODE.search, lines) if m]
        if codes:
            return http_outcome(codes[-1], error)
        # Apprise does not say more (connection refused, SMTP errors): worth another try.
        return Outcome.retry(error)

    def _log(self, message: Outgoing) -> Outcome:
        text = f"{message.title}\n{message.body}\n"
        if self._notify_log is None:
            log.warning("notification (no route targets): %s", text)
            return Outcome.sent()
        try:
            with self._notify_log.open("a", encoding="utf-8") as out:
                out.write(text + "\n")
        except OSError as exc:
            return Outcome.retry(f"cannot write {self._notify_log}: {exc}")
        return Outcome.sent()
