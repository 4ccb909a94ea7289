"""Bearer tokens and roles: ``agent`` < ``engineer`` < ``admin``.

Two kinds of token. A person's token (``tw_...``, :mod:`termwatch.accounts`) is found by its
hash in the accounts table and acts as that person: the actor of every change is the
account's name. A role token from ``settings.api_tokens`` (small installations, tests)
acts as its role. A presented token is compared with every configured role token in
constant time (:func:`hmac.compare_digest`), so timing tells nothing about how much of it
was right, and it is never logged or echoed. With neither kind, every request is refused
(401).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from termwatch.accounts import Account
from termwatch.settings import ApiToken
from termwatch.web.http import ApiError

RANK: Final = {"agent": 1, "engineer": 2, "admin": 3}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a role, and a name for the record. ``personal`` when the credential
    is a person's (the name is the account's); a role token's name is its role."""

    role: str
    name: str
    personal: bool = False

    def may(self, role: str) -> bool:
        """True when this principal's role is ``role`` or above."""
        return RANK[self.role] >= RANK[role]


class TokenBook:
    """The configured role tokens and the accounts; answers who a token belongs to.

    ``by_token`` and ``by_name`` look an active account up (by the presented token, by its
    name); without them only role tokens are known.
    """

    def __init__(
        self,
        tokens: Sequence[ApiToken],
        by_token: Callable[[str], Account | None] | None = None,
        by_name: Callable[[str], Account | None] | None = None,
    ) -> None:
        self._tokens = [(t.role, t.token.encode()) for t in tokens]
        self._by_token = by_token
        self._by_name = by_name

    def account(self, presented: str) -> Account | None:
        """The active account whose token is ``presented``, or None."""
        return self._by_token(presented) if self._by_token is not None else None

    def account_named(self, name: str) -> Account | None:
        """The active account called ``name``, or None."""
        return self._by_name(name) if self._by_name is not None else None

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
        if role is not None:
            return Principal(role=role, name=role)
        account = self.account(presented.strip())
        if account is None:
            raise ApiError(401, "unknown token")
        return Principal(role=account.role, name=account.name, personal=True)


def require(principal: Principal, role: str) -> Principal:
    """``principal`` when its role is ``role`` or above; else 403."""
    if not principal.may(role):
        raise ApiError(403, f"the {principal.role} role may not do this; {role} or above may")
    return principal
