"""Signed action links: acknowledge or resolve an incident from the alert, without a login.

A link names an incident, an action (``ack`` or ``resolve``), a recipient (``route:<name>``
for the targets of a route, ``user:<name>`` for one person) and an expiry, and carries a
random link id; all of it is signed with HMAC-SHA256 under ``TERMWATCH_LINK_KEY``. The
token is ``<payload>.<signature>``, both base64url. :meth:`LinkSigner.verify` checks the
signature in constant time, then the expiry; it never touches the database. That a link is
used once is kept by the database (``action_links``, keyed by the link id), in the same
transaction as the change it makes (:mod:`termwatch.web.links`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

ACTIONS: Final = ("ack", "resolve")
LIFETIME: Final = timedelta(hours=24)
_RECIPIENT = re.compile(r"(route|user):[^\s\x00]{1,128}")
_MAX_TOKEN: Final = 1024


class LinkRefused(ValueError):
    """A link that cannot be used; ``reason`` is ``forged``, ``expired`` or ``used``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Link:
    """What a verified link allows: ``action`` on ``incident_id``, as ``recipient``."""

    id: str
    incident_id: int
    action: str
    recipient: str
    expires_at: datetime

    @property
    def actor(self) -> str:
        """The name written to the incident's history: the person, or ``route:<name>``."""
        return self.recipient.removeprefix("user:")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Makes and verifies action links with one key (at least 32 characters)."""

    def __init__(self, key: str, lifetime: timedelta = LIFETIME) -> None:
        if len(key) < 32:
            raise ValueError("a link key has at least 32 characters")
        self._key = key.encode()
        self.lifetime = lifetime

    def _sign(self, payload: str) -> bytes:
        return hmac.new(
            self._key, b"termwatch-link\x00" + payload.encode(), hashlib.sha256
        ).digest()

    def make(self, incident_id: int, action: str, recipient: str, now: datetime) -> str:
        """A token for ``action`` on ``incident_id`` by ``recipient``, valid until
        ``now + lifetime``. Raises ValueError for an unknown action or a malformed recipient."""
        if action not in ACTIONS:
            raise ValueError(f"action: one of {', '.join(ACTIONS)}")
        if not _RECIPIENT.fullmatch(recipient):
            raise ValueError("recipient: route:<name> or user:<name>")
        body = {
            "i": int(incident_id),
            "a": action,
            "r": recipient,
            "e": int((now + self.lifetime).timestamp()),
            "n": secrets.token_hex(12),
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._sign(payload))}"

    def url(
        self, base_url: str, incident_id: int, action: str, recipient: str, now: datetime
    ) -> str:
        """The link's address on the console at ``base_url``."""
        token = self.make(incident_id, action, recipient, now)
        return f"{base_url.rstrip('/')}/a/{token}"

    def verify(self, token: str, now: datetime) -> Link:
        """The link in ``token``; raises :class:`LinkRefused` (forged or expired)."""
        forged = LinkRefused("forged", "this link is not one termwatch made (forged or damaged)")
        if len(token) > _MAX_TOKEN or token.count(".") != 1:
            raise forged
        payload, signature_text = token.split(".")
        try:
            signature = _unb64(signature_text)
        except ValueError:
            raise forged from None
        if not hmac.compare_digest(self._sign(payload), signature):
            raise forged
        try:
            body = json.loads(_unb64(payload))
            link = Link(
                id=str(body["n"]),
                incident_id=int(body["i"]),
                action=str(body["a"]),
                recipient=str(body["r"]),
                expires_at=datetime.fromtimestamp(int(body["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, OverflowError):
            raise forged from None
        if link.action not in ACTIONS:
            raise forged
        if link.expires_at <= now:
            raise LinkRefused(
                "expired", f"this link expired at {link.expires_at:%Y-%m-%d %H:%M} UTC"
            )
        return link
