"""The HTTP API, version 1 (shared/contract/api.md): complaints, incidents, terminals,
silences. JSON in and out; ``Authorization: Bearer <token>``.

Order of checks for every request: the token (401), the role (403), then the input (422
naming the field), then the work. Handlers that only read are plain functions, run by
Starlette on its thread pool; handlers that read a body are coroutines that hand the
database work to the thread pool.
"""

from __future__ import annotations

import functools
from datetime import timedelta, timezone
from typing import Final, Literal, TypeVar, cast

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from terminals.contract import Complaint
from terminals.kinds import INCIDENT_KINDS
from termwatch.metrics import MESSAGES
from termwatch.settings import TID_RE
from termwatch.web import incident_read
from termwatch.web.auth import Principal, require
from termwatch.web.card import CardQuery, terminal_card
from termwatch.web.context import Context
from termwatch.web.http import ApiError, JSONResponse, Params, reject_nul, validation_error
from termwatch.web.models import INCIDENT_STATUSES, NoteIn, SilenceIn, SilencePreviewIn
from termwatch.web.openapi import openapi_document
from termwatch.web.read import OperationFilter
from termwatch.web.search import search

_T = TypeVar("_T")
MAX_BODY: Final = 64 * 1024
MAX_ID: Final = 2**63 - 1
_COMPLAINT_FIELDS: Final = tuple(Complaint.__struct_fields__)
_NOTE_FIELDS: Final = tuple(NoteIn.__struct_fields__)
_SILENCE_FIELDS: Final = tuple(SilenceIn.__struct_fields__)
_PREVIEW_FIELDS: Final = tuple(SilencePreviewIn.__struct_fields__)


def ctx_of(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)


def principal(request: Request, role: str, params: tuple[str, ...] = ()) -> Principal:
    """The caller, if its token is known (401) and its role is ``role`` or above (403); then
    a 422 for a query parameter not in ``params``."""
    ctx = ctx_of(request)
    who = require(ctx.tokens.from_header(request.headers.get("authorization")), role)
    Params(request.query_params, params)
    return who


async def _body(request: Request) -> bytes:
    """The request body; 413 as soon as it passes :data:`MAX_BODY` (it is not read on)."""
    too_big = ApiError(413, f"the body may be at most {MAX_BODY} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_big
    return bytes(body)


def _decode(body: bytes, kind: type[_T], fields: tuple[str, ...]) -> _T:
    """``body`` decoded strictly into ``kind``; 422 naming the field otherwise.

    A JSON number with a zero fraction (``50000.0``) is the same number as ``50000`` (RFC
    8259, JSON Schema) and is accepted for an integer field; a string never is.
    """
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(422, f"the body is not valid JSON: {exc}", field="body") from None
    except RecursionError:
        raise ApiError(422, "the body is nested too deeply", field="body") from None
    if isinstance(raw, dict):
        raw = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in raw.items()}
    try:
        value = msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, fields) from None
    reject_nul({name: getattr(value, name) for name in fields})
    return value


def actor_of(who: Principal, by: str | None) -> str:
    """Who a change is recorded as: a person's token is that person (a ``by`` naming anyone
    else is refused, 422); a role token is ``by`` when given, else the role."""
    given = (by or "").strip()
    if who.personal:
        if given and given != who.name:
            raise ApiError(
                422,
                f"by: the actor is taken from your token ({who.name}); leave by out",
                field="by",
            )
        return who.name
    return given or who.name


def _path_id(request: Request) -> int:
    value = int(request.path_params["id"])
    if value > MAX_ID:
        raise ApiError(404, f"no such id {value}")
    return value


# --- complaints ---------------------------------------------------------------------------


async def post_complaint(request: Request) -> Response:
    """Register a complaint; 201 when new, 200 with the first result for a known ``ref``,
    409 when its operation already has a complaint and ``confirm_repeat`` is not true."""
    who = principal(request, "agent", ("confirm_repeat",))
    params = Params(request.query_params, ("confirm_repeat",))
    confirmed = params.choice("confirm_repeat", ("true", "false"), default="false") == "true"
    ctx = ctx_of(request)
    try:
        complaint = _decode(await _body(request), Complaint, _COMPLAINT_FIELDS)
    except ApiError:
        MESSAGES.labels("complaints", "rejected").inc()
        raise
    result = await run_in_threadpool(
        functools.partial(ctx.write().submit_complaint, confirmed=confirmed),
        complaint,
        ctx.clock(),
        who.name,
    )
    return JSONResponse(result, status_code=201 if result.created else 200)


# --- incidents ----------------------------------------------------------------------------


def list_incidents(request: Request) -> Response:
    known = ("status", "kind", "tid", "service_group", "limit")
    principal(request, "agent", known)
    params = Params(request.query_params, known)
    status = params.choice("status", INCIDENT_STATUSES)
    kind = params.choice("kind", INCIDENT_KINDS)
    tid = params.text("tid", max_length=64)
    group = params.text("service_group", max_length=200)
    limit = params.integer("limit", lo=1, hi=1000, default=100) or 100
    with ctx_of(request).connection() as conn:
        found = incident_read.incidents(
            conn,
            statuses=(status,) if status else (),
            tid=tid,
            kind=kind,
            service_group=group,
            limit=limit,
        )
    return JSONResponse(found)


def get_incident(request: Request) -> Response:
    principal(request, "agent")
    incident_id = _path_id(request)
    with ctx_of(request).connection() as conn:
        found = incident_read.incident_detail(conn, incident_id)
    if found is None:
        raise ApiError(404, f"no incident {incident_id}")
    return JSONResponse(found)


async def _change_incident(request: Request, action: Literal["ack", "resolve"]) -> Response:
    who = principal(request, "engineer")
    incident_id = _path_id(request)
    body = await _body(request)
    note = _decode(body, NoteIn, _NOTE_FIELDS) if body.strip() else NoteIn()
    ctx = ctx_of(request)
    writer = ctx.write()
    change = writer.acknowledge if action == "ack" else writer.resolve
    actor = actor_of(who, note.by)
    detail = await run_in_threadpool(change, incident_id, actor, note.note, ctx.clock())
    return JSONResponse(detail)


async def ack_incident(request: Request) -> Response:
    return await _change_incident(request, "ack")


async def resolve_incident(request: Request) -> Response:
    return await _change_incident(request, "resolve")


# --- terminals ----------------------------------------------------------------------------


def search_terminals(request: Request) -> Response:
    principal(request, "agent", ("q", "limit"))
    params = Params(request.query_params, ("q", "limit"))
    query = params.text("q", max_length=200)
    if query is None or not query.strip():
        raise ApiError(422, "q: a search text is required", field="q")
    limit = params.integer("limit", lo=1, hi=100, default=20) or 20
    with ctx_of(request).connection() as conn:
        hits = search(conn, query, limit)
    return JSONResponse(hits)


CARD_PARAMS: Final = (
    "lang", "amount_minor", "at", "window_min", "limit", "tz_offset_min", "op_id"
)  # fmt: skip


def card_query(params: Params, tid: str, default_lang: str) -> CardQuery:
    """The card's options from query parameters (shared with the console)."""
    lang = params.choice("lang", ("en", "ru"), default=default_lang) or default_lang
    amount = params.integer("amount_minor", lo=0, hi=10**15)
    around = params.timestamp("at")
    window = params.integer("window_min", lo=1, hi=24 * 60, default=30) or 30
    limit = params.integer("limit", lo=1, hi=200, default=20) or 20
    offset = params.integer("tz_offset_min", lo=-720, hi=840, default=0) or 0
    return CardQuery(
        tid=tid,
        lang=cast(Literal["en", "ru"], lang),
        operations=OperationFilter(
            amount_minor=amount,
            around=around,
            window=timedelta(minutes=window),
            limit=limit,
        ),
        op_id=params.text("op_id", max_length=128),
        tz=timezone(timedelta(minutes=offset)),
    )


def get_terminal(request: Request) -> Response:
    principal(request, "agent", CARD_PARAMS)
    ctx = ctx_of(request)
    tid = request.path_params["tid"]
    if not TID_RE.fullmatch(tid):
        raise ApiError(404, "no such terminal")
    query = card_query(Params(request.query_params, CARD_PARAMS), tid, ctx.settings.language)
    with ctx.connection() as conn:
        card = terminal_card(conn, query, ctx.clock())
    if card is None:
        raise ApiError(404, f"no terminal {tid}")
    return JSONResponse(card)


# --- silences -----------------------------------------------------------------------------


def list_silences(request: Request) -> Response:
    principal(request, "engineer")
    ctx = ctx_of(request)
    return JSONResponse(ctx.write().list_silences(ctx.clock()))


async def create_silence(request: Request) -> Response:
    who = principal(request, "engineer")
    body = _decode(await _body(request), SilenceIn, _SILENCE_FIELDS)
    ctx = ctx_of(request)
    actor = actor_of(who, body.by)
    silence = await run_in_threadpool(ctx.write().create_silence, body, actor, ctx.clock())
    return JSONResponse(silence, status_code=201)


async def preview_silence(request: Request) -> Response:
    """The open incidents a silence with these matchers would match (*extension*)."""
    principal(request, "engineer")
    body = _decode(await _body(request), SilencePreviewIn, _PREVIEW_FIELDS)
    ctx = ctx_of(request)
    return JSONResponse(await run_in_threadpool(ctx.write().preview_silence, body))


def expire_silence(request: Request) -> Response:
    principal(request, "engineer")
    silence_id = _path_id(request)
    ctx = ctx_of(request)
    ctx.write().expire_silence(silence_id, ctx.clock())
    return JSONResponse({"id": silence_id, "expired": True})


async def silences(request: Request) -> Response:
    """One route for both methods, so that a 405 lists both in ``Allow``."""
    if request.method == "POST":
        return await create_silence(request)
    return await run_in_threadpool(list_silences, request)


def get_openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


def routes() -> list[BaseRoute]:
    """The API's routes, all under ``/api/v1``."""
    return [
        Route("/api/v1/openapi.json", get_openapi, methods=["GET"]),
        Route("/api/v1/complaints", post_complaint, methods=["POST"]),
        Route("/api/v1/incidents", list_incidents, methods=["GET"]),
        Route("/api/v1/incidents/{id:int}", get_incident, methods=["GET"]),
        Route("/api/v1/incidents/{id:int}/ack", ack_incident, methods=["POST"]),
        Route("/api/v1/incidents/{id:int}/resolve", resolve_incident, methods=["POST"]),
        Route("/api/v1/terminals", search_terminals, methods=["GET"]),
        Route("/api/v1/terminals/{tid}", get_terminal, methods=["GET"]),
        Route("/api/v1/silences", silences, methods=["GET", "POST"]),
        Route("/api/v1/silences/preview", preview_silence, methods=["POST"]),
        Route("/api/v1/silences/{id:int}", expire_silence, methods=["DELETE"]),
    ]
