"""Console sessions: a signed cookie made at login with an API token.

The cookie holds the role, a display name and an expiry, signed with HMAC-SHA256 keyed by
the token used to log in. The token itself is not stored in the cookie, so the cookie can
be verified against the configured tokens of that role, in constant time, and stops being
valid as soon as that token is removed from the configuration. A person's login (an account
token) is signed with the hash the accounts table keeps of the token and names the account
(``"u": 1``; the display name is the account's): revoking or rotating the token ends the
session. Forms carry a CSRF token
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
        account = tokens.account(presented)
        if account is None:
            return None
        body: dict[str, object] = {
            "r": account.role,
            "n": account.name,
            "u": 1,
            "e": int(now_s) + LIFETIME_S,
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{_b64(_sign(account.token_sha256.encode(), payload))}"
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
    if body.get("u") == 1:
        account = tokens.account_named(name)
        if account is None or account.role != role:
            return None
        key = account.token_sha256.encode()
        if not hmac.compare_digest(_sign(key, payload), signature):
            return None
        principal = Principal(role=account.role, name=account.name, personal=True)
        return Session(principal=principal, csrf=_csrf(signature))
    valid = False
    for token in tokens.tokens_of(str(role)):
        valid |= hmac.compare_digest(_sign(token, payload), signature)
    if not valid:
        return None
    return Session(principal=Principal(role=str(role), name=name), csrf=_csrf(signature))
