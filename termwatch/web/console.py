"""The support agent's and field engineer's web console: server-rendered pages.

Pages: search (``/``), terminal card (``/t/{tid}``) with the operation finder, guidance and
the complaint form, incident list and incident page with acknowledge / resolve. Sign-in is
a token login (:mod:`termwatch.web.session`); every form carries the session's CSRF token
and is refused from another origin. The complaint form goes through the same validation
(the contract's :class:`~terminals.contract.Complaint`) and the same write path as
``POST /api/v1/complaints``.
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Any, Final, Literal, cast
from urllib.parse import quote, urlsplit

import msgspec
import psycopg
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from terminals.contract import COMPLAINT_CATEGORIES, Complaint
from terminals.kinds import INCIDENT_KINDS
from termwatch.metrics import MESSAGES
from termwatch.settings import TID_RE
from termwatch.web import incident_read, read, shift, verdict
from termwatch.web.card import CardQuery, build_card
from termwatch.web.context import Context
from termwatch.web.history import history
from termwatch.web.http import ApiError, reject_nul, validation_error
from termwatch.web.i18n import LANGUAGES
from termwatch.web.models import INCIDENT_STATUSES, IncidentDetail
from termwatch.web.read import OperationFilter
from termwatch.web.render import View, offset_zone, page
from termwatch.web.search import search
from termwatch.web.session import COOKIE, LIFETIME_S, Session, issue, verify
from termwatch.web.write import RepeatedComplaint

LANG_COOKIE: Final = "tw_lang"
#: The uid of the terminal drill-down dashboard (dashboards.terminal.UID).
TERMINAL_DASHBOARD: Final = "termwatch-terminal"
TZ_COOKIE: Final = "tw_tzo"
WINDOWS: Final = (15, 30, 60, 180, 720)
STATUS_FILTERS: Final = ("active", *INCIDENT_STATUSES, "all")
_AMOUNT: Final = re.compile(r"^\d{1,12}(?:[.,]\d{1,2})?$")


class LoginRequired(Exception):
    """No valid session: the app answers with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)


def _session(request: Request, role: str = "agent") -> Session:
    ctx = _ctx(request)
    found = verify(ctx.tokens, request.cookies.get(COOKIE), ctx.clock().timestamp())
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if not found.principal.may(role):
        raise ApiError(403, "forbidden")
    return found


def view_of(request: Request) -> View:
    """Language and time offset of this viewer (cookies), with the clock's now."""
    ctx = _ctx(request)
    lang = request.cookies.get(LANG_COOKIE)
    if lang not in LANGUAGES:
        lang = ctx.settings.language
    try:
        offset = int(request.cookies.get(TZ_COOKIE, "0"))
    except ValueError:
        offset = 0
    offset = offset if -720 <= offset <= 840 else 0
    return View(lang, offset_zone(offset), ctx.clock())


def _check_form(request: Request, form: FormData, session: Session | None) -> None:
    """Refuse a form posted from another origin or without this session's CSRF token."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise ApiError(403, "cross-origin form")
    if session is not None:
        sent = str(form.get("csrf", ""))
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise ApiError(403, "the form is stale; reload the page")


def _local_path(value: str | None) -> str:
    """``value`` when it is a path on this site, else ``/`` (no open redirects)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _base(request: Request, session: Session | None, view: View) -> dict[str, Any]:
    return {
        "v": view,
        "session": session,
        "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }


def error_page(request: Request, exc: ApiError) -> Response:
    """The console's answer to an :class:`ApiError`: a page saying what is wrong."""
    ctx = _ctx(request)
    view = view_of(request)
    try:
        session = verify(ctx.tokens, request.cookies.get(COOKIE), ctx.clock().timestamp())
    except (psycopg.OperationalError, PoolTimeout):  # a person's session needs the database
        session = None
    key = {"forbidden": "ui.forbidden", "not found": "ui.not_found"}.get(exc.message)
    context = _base(request, session, view)
    context["message"] = view.t(key) if key else exc.message
    return page("error.html", context, status_code=exc.status)


# --- login, language ----------------------------------------------------------------------


def login_page(request: Request) -> Response:
    view = view_of(request)
    context = _base(request, None, view)
    context["next"] = _local_path(request.query_params.get("next"))
    context["error"] = None
    return page("login.html", context)


async def login_post(request: Request) -> Response:
    form = await request.form()
    _check_form(request, form, None)
    ctx = _ctx(request)
    now = ctx.clock()
    token = str(form.get("token", ""))
    cookie = issue(ctx.tokens, token.strip(), str(form.get("name", "")), now.timestamp())
    next_path = _local_path(str(form.get("next", "/")))
    if cookie is None:
        view = view_of(request)
        context = _base(request, None, view)
        context.update(next=next_path, error=view.t("ui.bad_token"))
        return page("login.html", context, status_code=401)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=LIFETIME_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout_post(request: Request) -> Response:
    form = await request.form()
    ctx = _ctx(request)
    session = verify(ctx.tokens, request.cookies.get(COOKIE), ctx.clock().timestamp())
    _check_form(request, form, session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response


def set_language(request: Request) -> Response:
    lang = request.path_params["lang"]
    if lang not in LANGUAGES:
        raise ApiError(404, "no such language")
    response = RedirectResponse(_local_path(request.query_params.get("next")), status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


# --- search and the terminal card ---------------------------------------------------------


def home(request: Request) -> Response:
    session = _session(request)
    view = view_of(request)
    query = (request.query_params.get("q") or "").strip()[:200].replace("\x00", "")
    hits = []
    if query:
        with _ctx(request).connection() as conn:
            hits = search(conn, query, limit=21)
        if len(hits) == 1:
            return RedirectResponse(f"/t/{quote(hits[0].tid)}", status_code=303)
    context = _base(request, session, view)
    now_board = None
    if not query:
        with _ctx(request).connection() as conn:
            now_board = shift.board(conn, view.now)
    context.update(q=query, hits=hits[:20], more=len(hits) > 20, board=now_board)
    return page("home.html", context)


def parse_rub(value: str | None, field: str) -> int | None:
    """Roubles as typed (``500``, ``500.50``, ``1 500,5``) in kopecks; 422 when malformed."""
    if value is None or not value.strip():
        return None
    cleaned = value.strip().replace(" ", "").replace("\u00a0", "")
    if not _AMOUNT.match(cleaned):
        raise ApiError(422, f"{field}: an amount such as 500 or 500.50", field=field)
    whole, _, cents = cleaned.replace(",", ".").partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


#: The complaint form's label of each field a 422 can name.
_FIELD_WORDS: Final = {
    "amount_minor": "ui.amount",
    "occurred_at": "ui.occurred_at",
    "ref": "ui.ref",
    "category": "ui.category",
    "customer": "ui.customer",
    "text": "ui.text",
}


def _amount_text(minor: int, lang: str) -> str:
    """An amount as the viewer types it: ``500.00``, ``500,00``."""
    typed = f"{minor / 100:.2f}"
    return typed.replace(".", ",") if lang == "ru" else typed


def parse_local(value: str | None, view: View, field: str) -> datetime | None:
    """A ``datetime-local`` value in the viewer's offset; 422 when malformed."""
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(
            422, f"{field}: a date and time such as 2026-05-04T10:30", field=field
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=view.tz)


def _card_context(
    request: Request,
    session: Session,
    view: View,
    tid: str,
    values: dict[str, str],
    complaint_error: ApiError | None = None,
    complaint_form: dict[str, str] | None = None,
) -> tuple[dict[str, Any], bool]:
    """The card page's context and whether the terminal exists (runs on a worker thread)."""
    errors: dict[str, str] = {}
    amount = around = None
    try:
        amount = parse_rub(values.get("amount"), "amount")
    except ApiError:
        errors["amount"] = view.t("ui.bad_amount")
    try:
        around = parse_local(values.get("at"), view, "at")
    except ApiError:
        errors["at"] = view.t("ui.bad_time")
    window = int(values["window"]) if values.get("window", "") in map(str, WINDOWS) else 30
    complaint_id = values.get("complaint", "")
    query = CardQuery(
        tid=tid,
        lang=cast(Literal["en", "ru"], view.lang),
        operations=OperationFilter(
            amount_minor=amount, around=around, window=timedelta(minutes=window)
        ),
        op_id=(values.get("op") or None),
        complaint_id=int(complaint_id) if re.fullmatch(r"\d{1,18}", complaint_id) else None,
        tz=view.tz,
    )
    with _ctx(request).connection() as conn:
        built = build_card(conn, query, view.now)
        past = history(conn, tid, view.now) if built is not None else None
    context = _base(request, session, view)
    if built is None:
        return context, False
    card = built.card
    selected = card.selected_operation
    complaint = None
    if query.complaint_id is not None:
        shown = [c for c in built.op_complaints if c.id == query.complaint_id]
        shown += [c for c in card.recent_complaints if c.id == query.complaint_id]
        complaint = shown[0] if shown else None
    form = complaint_form or {
        "ref": f"TW-{view.now:%Y%m%d}-{secrets.token_hex(4).upper()}",
        "category": "no_receipt",
        "amount": _amount_text(selected.amount_minor, view.lang)
        if selected
        else values.get("amount", ""),
        "occurred_at": view.local_input(selected.ts if selected else around),
        "customer": "",
        "text": "",
        "op": selected.op_id if selected else "",
    }
    repeat = [c.ref for c in built.op_complaints]
    context.update(
        card=card,
        values=values,
        errors=errors,
        windows=WINDOWS,
        window=window,
        complaint=complaint if complaint and complaint.tid == tid else None,
        form=form,
        categories=COMPLAINT_CATEGORIES,
        complaint_error=complaint_error,
        repeat_refs=repeat,
        history=past,
        grafana=grafana_link(_ctx(request).settings.grafana_url, tid),
        ask_confirm=bool(repeat) or (complaint_error is not None and complaint_error.status == 409),
    )
    return context, True


def grafana_link(base: str, tid: str) -> str | None:
    """The terminal's dashboard (``dashboards/terminal.py``) in Grafana, when configured."""
    if not base:
        return None
    return f"{base}/d/{TERMINAL_DASHBOARD}/?var-terminal={quote(tid)}"


def card_page(request: Request) -> Response:
    session = _session(request)
    view = view_of(request)
    tid = request.path_params["tid"]
    if not TID_RE.fullmatch(tid):
        raise ApiError(404, "not found")
    query = request.query_params
    values = {
        k: query.get(k, "")[:128].replace("\x00", "") for k in ("amount", "at", "window", "op")
    }
    values["complaint"] = request.query_params.get("complaint", "")[:20]
    context, found = _card_context(request, session, view, tid, values)
    if not found:
        raise ApiError(404, "not found")
    return page("terminal.html", context)


async def complaint_post(request: Request) -> Response:
    session = _session(request)
    form = await request.form()
    _check_form(request, form, session)
    view = view_of(request)
    tid = request.path_params["tid"]
    if not TID_RE.fullmatch(tid):
        raise ApiError(404, "not found")
    entered = {k: str(form.get(k, ""))[:4000] for k in
               ("ref", "category", "amount", "occurred_at", "customer", "text", "op")}  # fmt: skip
    confirmed = form.get("confirm_repeat") == "yes"
    ctx = _ctx(request)
    try:
        occurred = parse_local(entered["occurred_at"], view, "occurred_at") or view.now
        data = {
            "ref": entered["ref"].strip(),
            "received_at": view.now.isoformat(),
            "channel": "phone",
            "category": entered["category"],
            "tid": tid,
            "occurred_at": occurred.isoformat(),
            "amount_minor": parse_rub(entered["amount"], "amount_minor"),
            "customer": entered["customer"].strip() or None,
            "text": entered["text"].strip().replace("\x00", "") or None,
        }
        fields = tuple(Complaint.__struct_fields__)
        try:
            complaint = msgspec.convert(data, Complaint)
        except msgspec.ValidationError as exc:
            raise validation_error(exc, fields) from None
        reject_nul({name: getattr(complaint, name) for name in fields})
        picked = entered["op"] if re.fullmatch(r"[\w.:-]{1,128}", entered["op"]) else None
        result = await run_in_threadpool(
            functools.partial(ctx.write().submit_complaint, confirmed=confirmed, op_id=picked),
            complaint,
            view.now,
            session.principal.name,
        )
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        if isinstance(exc, RepeatedComplaint):
            refs = ", ".join(exc.refs)
            exc = ApiError(409, view.t("ui.duplicate_refused", op_id=exc.op_id, refs=refs))
        else:
            MESSAGES.labels("complaints", "rejected").inc()
            field = _FIELD_WORDS.get(exc.field or "")
            if field is not None:  # the field in the viewer's words, the detail as validated
                exc = ApiError(422, f"{view.t(field)}: {exc.message}", field=exc.field)
        op = entered["op"] if re.fullmatch(r"[\w.:-]{1,128}", entered["op"]) else ""
        values = {"amount": "", "at": "", "window": "", "op": op, "complaint": ""}
        context, _ = await run_in_threadpool(
            _card_context, request, session, view, tid, values, exc, entered
        )
        return page("terminal.html", context, status_code=exc.status)
    return RedirectResponse(f"/t/{quote(tid)}?complaint={result.id}", status_code=303)


# --- incidents ----------------------------------------------------------------------------


def incidents_page(request: Request) -> Response:
    session = _session(request)
    view = view_of(request)
    q = request.query_params
    status = q.get("status", "active")
    status = status if status in STATUS_FILTERS else "active"
    kind = q.get("kind") if q.get("kind") in INCIDENT_KINDS else None
    group = (q.get("group") or "").strip()[:200].replace("\x00", "") or None
    statuses: tuple[str, ...] = {
        "active": ("open", "acknowledged"),
        "all": (),
    }.get(status, (status,))
    with _ctx(request).connection() as conn:
        found = incident_read.incidents(
            conn, statuses=statuses, kind=kind, service_group=group, limit=200
        )
    context = _base(request, session, view)
    context.update(
        incidents=found,
        status=status,
        statuses=STATUS_FILTERS,
        kind=kind,
        kinds=INCIDENT_KINDS,
        group=group or "",
    )
    return page("incidents.html", context)


def incident_page(request: Request) -> Response:
    session = _session(request)
    view = view_of(request)
    incident_id = int(request.path_params["id"])
    with _ctx(request).connection() as conn:
        found = incident_read.incident_detail(conn, incident_id) if incident_id < 2**63 else None
        if found is not None:
            found = localized(conn, found, view)
        grouped = (
            shift.region(conn, found.id)
            if found is not None and found.tid.startswith("region:")
            else None
        )
    if found is None:
        raise ApiError(404, "not found")
    context = _base(request, session, view)
    context.update(
        incident=found,
        can_change=session.principal.may("engineer"),
        region=grouped,
        region_lines=shift.region_guidance(view.lang, found, grouped, view.now, view.tz)
        if grouped
        else [],
        region_complaints=[
            msgspec.structs.replace(c, verdict=verdict.render(f, view.lang, view.tz))
            for c, f in grouped.complaints
        ]
        if grouped
        else [],
    )
    return page("incident.html", context)


#: The order of log actions written at one instant (an incident opens before it is updated).
_LOG_ORDER: Final = {"opened": 0, "reopened": 1, "grouped": 2, "updated": 3}


def localized(conn: read.Conn, detail: IncidentDetail, view: View) -> IncidentDetail:
    """``detail`` with its complaints' verdicts in the viewer's language and time zone, and
    its history in the order things happened."""
    ids = [c.id for c in detail.evidence.complaints]
    facts = read.complaints_with_facts(conn, ids)
    complaints = [
        msgspec.structs.replace(c, verdict=verdict.render(facts[c.id][1], view.lang, view.tz))
        if c.id in facts
        else c
        for c in detail.evidence.complaints
    ]
    log = sorted(detail.log, key=lambda e: (e.at, _LOG_ORDER.get(e.action, 9)))
    evidence = msgspec.structs.replace(detail.evidence, complaints=complaints)
    return msgspec.structs.replace(detail, evidence=evidence, log=log)


async def incident_action(request: Request) -> Response:
    session = _session(request, "engineer")
    form = await request.form()
    _check_form(request, form, session)
    incident_id = int(request.path_params["id"])
    action = request.path_params["action"]
    if incident_id >= 2**63 or action not in ("ack", "resolve"):
        raise ApiError(404, "not found")
    note = str(form.get("note", "")).strip()[:2000].replace("\x00", "") or None
    ctx = _ctx(request)
    writer = ctx.write()
    change = writer.acknowledge if action == "ack" else writer.resolve
    await run_in_threadpool(change, incident_id, session.principal.name, note, ctx.clock())
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout_post, methods=["POST"]),
        Route("/lang/{lang}", set_language, methods=["GET"]),
        Route("/t/{tid}", card_page, methods=["GET"]),
        Route("/t/{tid}/complaint", complaint_post, methods=["POST"]),
        Route("/incidents", incidents_page, methods=["GET"]),
        Route("/incidents/{id:int}", incident_page, methods=["GET"]),
        Route("/incidents/{id:int}/{action:str}", incident_action, methods=["POST"]),
    ]
