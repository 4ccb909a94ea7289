"""Bearer tokens and roles: ``agent`` < ``engineer`` < ``admin``.

Tokens come from ``settings.api_tokens``. A presented token is compared with every
configured one in constant time (:func:`hmac.compare_digest`), so timing tells nothing
about how much of it was right, and it is never logged or echoed. With no tokens
configured every request is refused (401).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from termwatch.settings import ApiToken
from termwatch.web.http import ApiError

RANK: Final = {"agent": 1, "engineer": 2, "admin": 3}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a role, and a name for the record (the role unless told)."""

    role: str
    name: str

    def may(self, role: str) -> bool:
        """True when this principal's role is ``role`` or above."""
        return RANK[self.role] >= RANK[role]


class TokenBook:
    """The configured tokens; answers who a presented token belongs to."""

    def __init__(self, tokens: Sequence[ApiToken]) -> None:
        self._tokens = [(t.role, t.token.encode()) for t in tokens]

    def role_of(self, presented: str) -> str | None:
        """The role of ``presented``, or None. Takes the same time for any wrong token."""
        given = presented.encode()
        found: str | None = None
        for role, token in self._tokens:
            if hmac.compare_digest(token, given) and (found is None or RANK[role] > RANK[found]):
                found = role
        return found

    def tokens_of(self, role: str) -> list[bytes]:
        """The configured tokens of exactly ``role`` (used to sign console sessions)."""
        return [token for r, token in self._tokens if r == role]

    def from_header(self, header: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer`` header; 401 when missing or unknown."""
        if not header:
            raise ApiError(401, "an Authorization: Bearer token is required")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise ApiError(401, "an Authorization: Bearer token is required")
        role = self.role_of(presented.strip())
        if role is None:
            raise ApiError(401, "unknown token")
        return Principal(role=role, name=role)


def require(principal: Principal, role: str) -> Principal:
    """``principal`` when its role is ``role`` or above; else 403."""
    if not principal.may(role):
        raise ApiError(403, f"the {principal.role} role may not do this; {role} or above may")
    return principal
