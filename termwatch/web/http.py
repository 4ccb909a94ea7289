"""HTTP plumbing shared by the API and the console: JSON responses, errors, query parameters.

Every bad input becomes an :class:`ApiError` naming the offending field, so a handler never
lets a malformed value reach the database (where it would surface as a server error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from starlette.responses import Response

_ENCODER = msgspec.json.Encoder()
_DECODE_ERROR_AT = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)")
_MISSING_FIELD = re.compile(r"(?:required|unknown) field `([^`]{1,64})`")


class ApiError(Exception):
    """An error the client can act on: ``status``, a message, and the field it concerns.

    Rendered as ``{"error": message, "field": field}`` by the API and as an error page by the
    console. ``retry_after`` (seconds) is set when trying again later may succeed.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.retry_after = retry_after


class JSONResponse(Response):
    """A response whose body is ``content`` encoded by msgspec (structs, datetimes, dicts)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content)


def error_response(exc: ApiError) -> JSONResponse:
    headers: dict[str, str] = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="termwatch"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(
        {"error": exc.message, "field": exc.field}, status_code=exc.status, headers=headers
    )


def validation_error(exc: msgspec.ValidationError, fields: tuple[str, ...]) -> ApiError:
    """A 422 naming the field a msgspec validation error is about.

    msgspec names the path (``... - at `$.ref```) or the missing field; an error raised by a
    struct's own check names the field in its message, so the first known field name
    mentioned there is taken.
    """
    text = str(exc)
    match = _DECODE_ERROR_AT.search(text) or _MISSING_FIELD.search(text)
    field = match[1] if match else None
    if field is None:
        for name in fields:
            if re.search(rf"\b{re.escape(name)}\b", text):
                field = name
                break
    return ApiError(422, text, field=field)


def reject_nul(values: Mapping[str, Any]) -> None:
    """Raise a 422 for a text value containing NUL, which PostgreSQL cannot store."""
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(422, f"{name}: NUL characters are not allowed", field=name)


class Params:
    """Typed access to query parameters; every malformed value is a 422 naming it.

    An absent parameter takes its default; an empty one is absent for free text and
    malformed for numbers, choices and timestamps. A parameter not in ``known`` is refused,
    so that a misspelt filter (``?satus=open``) cannot silently match everything.
    """

    def __init__(self, query: Mapping[str, str], known: tuple[str, ...]) -> None:
        for name in query:
            if name not in known:
                shown = name[:40]
                raise ApiError(422, f"{shown}: unknown parameter", field=shown)
        self._query = query

    def text(self, name: str, *, max_length: int = 200, default: str | None = None) -> str | None:
        value = self._query.get(name)
        if value is None or value == "":
            return default
        if len(value) > max_length:
            raise ApiError(422, f"{name}: at most {max_length} characters", field=name)
        if "\x00" in value:
            raise ApiError(422, f"{name}: NUL characters are not allowed", field=name)
        return value

    def integer(self, name: str, *, lo: int, hi: int, default: int | None = None) -> int | None:
        value = self._query.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ApiError(
                422, f"{name}: expected an integer, got {value[:40]!r}", field=name
            ) from None
        if not lo <= number <= hi:
            raise ApiError(422, f"{name}: must be between {lo} and {hi}", field=name)
        return number

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
        value = self._query.get(name)
        if value is None:
            return default
        if value not in allowed:
            raise ApiError(422, f"{name}: must be one of {', '.join(allowed)}", field=name)
        return value

    def timestamp(self, name: str) -> datetime | None:
        """An RFC 3339 timestamp with an offset."""
        value = self._query.get(name)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ApiError(422, f"{name}: expected an RFC 3339 timestamp", field=name) from None
        if parsed.tzinfo is None:
            raise ApiError(422, f"{name}: the timestamp needs an offset", field=name)
        return parsed
