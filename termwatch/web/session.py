"""Console sessions: a signed cookie made at login with an API token.

The cookie holds the role, a display name and an expiry, signed with HMAC-SHA256 keyed by
the token used to log in. The token itself is not stored in the cookie, so the cookie can
be verified against the configured tokens of that role, in constant time, and stops being
valid as soon as that token is removed from the configuration. Forms carry a CSRF token
derived from the session's signature; the cookie is ``HttpOnly`` and ``SameSite=Strict``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Final

from termwatch.web.auth import RANK, Principal, TokenBook

COOKIE: Final = "tw_session"
LIFETIME_S: Final = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(token: bytes, payload: str) -> bytes:
    return hmac.new(token, payload.encode(), hashlib.sha256).digest()


def _csrf(signature: bytes) -> str:
    return hmac.new(signature, b"csrf", hashlib.sha256).hexdigest()[:32]


def issue(tokens: TokenBook, presented: str, name: str, now_s: float) -> str | None:
    """A cookie value for a login with ``presented``; None when the token is unknown."""
    role = tokens.role_of(presented)
    if role is None:
        return None
    shown = "".join(ch for ch in name if ch.isprintable()).strip()[:64]
    body = {"r": role, "n": shown or role, "e": int(now_s) + LIFETIME_S}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_b64(_sign(presented.encode(), payload))}"


def verify(tokens: TokenBook, cookie: str | None, now_s: float) -> Session | None:
    """The session in ``cookie``, or None when it is missing, forged or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, signature_text = cookie.split(".")
    try:
        signature = _unb64(signature_text)
        body = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    role, name, expires = body.get("r"), body.get("n"), body.get("e")
    if role not in RANK or not isinstance(name, str) or not isinstance(expires, int):
        return None
    if expires <= now_s:
        return None
    valid = False
    for token in tokens.tokens_of(str(role)):
        valid |= hmac.compare_digest(_sign(token, payload), signature)
    if not valid:
        return None
    return Session(principal=Principal(role=str(role), name=name), csrf=_csrf(signature))
