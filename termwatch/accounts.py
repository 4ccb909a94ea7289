"""People's accounts: a name, a role and a bearer token, of which only the hash is kept.

A token is 32 random bytes (``tw_`` + base64url), shown once when it is made (``add``,
``rotate``); the table keeps its SHA-256, so a copy of the database gives no working token.
A presented token is found by its hash (:func:`lookup`); a revoked account's token is
refused from then on, and so are the console sessions made with it (they are signed with
the token's hash).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg
from psycopg import errors

from termwatch.db import Row
from termwatch.settings import ROLES

Conn = psycopg.Connection[Row]
NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
TOKEN_PREFIX: Final = "tw_"  # noqa: S105 (a prefix, not a secret)


class AccountError(ValueError):
    """A name or role the accounts table refuses, or an unknown account; says which."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str
    token_sha256: str


def hash_token(token: str) -> str:
    """The SHA-256 of ``token``, hex: what the accounts table keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _check(name: str, role: str | None = None) -> str:
    name = name.strip().lower()
    if not NAME_RE.fullmatch(name):
        raise AccountError(
            f"name: {name!r}: lower-case letters, digits and . _ @ -, 1 to 64 characters"
        )
    if role is not None and role not in ROLES:
        raise AccountError(f"role: one of {', '.join(ROLES)}, got {role!r}")
    return name


def add(conn: Conn, name: str, role: str, now: datetime) -> str:
    """Create an account; return its token (shown once). Raises AccountError when the name
    is malformed or taken, or the role unknown."""
    name = _check(name, role)
    token = new_token()
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO accounts (name, role, token_sha256, created_at)"
                " VALUES (%s, %s, %s, %s)",
                (name, role, hash_token(token), now),
            )
    except errors.UniqueViolation:
        raise AccountError(f"name: an account {name!r} exists already") from None
    return token


def rotate(conn: Conn, name: str, now: datetime) -> str:
    """A new token for an active account (the old one stops working); return it."""
    name = _check(name)
    token = new_token()
    with conn.transaction():
        row = conn.execute(
            "UPDATE accounts SET token_sha256 = %s, rotated_at = %s"
            " WHERE name = %s AND revoked_at IS NULL RETURNING id",
            (hash_token(token), now, name),
        ).fetchone()
    if row is None:
        raise AccountError(f"no active account {name!r}")
    return token


def revoke(conn: Conn, name: str, now: datetime) -> None:
    """Refuse the account's token from now on. Raises AccountError when there is no active
    account of that name."""
    name = _check(name)
    with conn.transaction():
        row = conn.execute(
            "UPDATE accounts SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL"
            " RETURNING id",
            (now, name),
        ).fetchone()
    if row is None:
        raise AccountError(f"no active account {name!r}")


def listing(conn: Conn) -> list[Row]:
    """Every account (never a token or its hash), by name."""
    return conn.execute(
        "SELECT name, role, created_at, rotated_at, revoked_at FROM accounts ORDER BY name"
    ).fetchall()


def lookup(conn: Conn, token: str) -> Account | None:
    """The active account whose token is ``token``, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = conn.execute(
        "SELECT name, role, token_sha256 FROM accounts"
        " WHERE token_sha256 = %s AND revoked_at IS NULL",
        (hash_token(token),),
    ).fetchone()
    return Account(row["name"], row["role"], row["token_sha256"]) if row else None


def named(conn: Conn, name: str) -> Account | None:
    """The active account called ``name``, or None."""
    row = conn.execute(
        "SELECT name, role, token_sha256 FROM accounts WHERE name = %s AND revoked_at IS NULL",
        (name,),
    ).fetchone()
    return Account(row["name"], row["role"], row["token_sha256"]) if row else None
