"""The pages behind the signed links of alerts: ``/a/{token}``.

``GET`` verifies the link and shows what it would do, with a button; it changes nothing,
so a chat app's link preview, a mail scanner or a prefetch acts on nothing. ``POST`` (the
button) verifies the link again and acts, as the link's recipient, without a login; the
link is then used (:meth:`~termwatch.web.write.Writer.act_by_link`). A forged, expired or
used link gets a page that says so (403, 410, 410).
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from termwatch.links import Link, LinkRefused
from termwatch.web import incident_read
from termwatch.web.context import Context
from termwatch.web.http import ApiError
from termwatch.web.render import View, page

_STATUS = {"forged": 403, "expired": 410, "used": 410}


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)


def _view(request: Request) -> View:
    from termwatch.web.console import view_of  # the console's viewer (language, offset)

    return view_of(request)


def _context(request: Request, view: View, **values: Any) -> dict[str, Any]:
    token = request.path_params.get("token", "")
    return {"v": view, "session": None, "path": request.url.path, "request_token": token, **values}


def _refused(request: Request, view: View, exc: LinkRefused, at: str = "") -> Response:
    message = view.t(f"link.{exc.reason}", at=at)
    context = _context(request, view, state="refused", message=message, link=None, incident=None)
    return page("link.html", context, status_code=_STATUS[exc.reason])


def _verify(request: Request, view: View) -> Link:
    ctx = _ctx(request)
    if ctx.links is None:
        raise ApiError(404, view.t("link.disabled"))
    return ctx.links.verify(request.path_params["token"], view.now)


async def link_page(request: Request) -> Response:
    """What the link would do, and the button; changes nothing."""
    view = _view(request)
    try:
        link = _verify(request, view)
    except LinkRefused as exc:
        return _refused(request, view, exc, _when_expired(request, view, exc))
    ctx = _ctx(request)
    used_at = await run_in_threadpool(ctx.write().link_used_at, link)
    if used_at is not None:
        return _refused(request, view, LinkRefused("used", "used"), view.when(used_at))

    def read() -> Any:
        with ctx.connection() as conn:
            return incident_read.incident_detail(conn, link.incident_id)

    incident = await run_in_threadpool(read)
    if incident is None:
        raise ApiError(404, "not found")
    context = _context(request, view, state="confirm", link=link, incident=incident, message="")
    return page("link.html", context)


async def link_post(request: Request) -> Response:
    """Act as the link's recipient; the link is used once."""
    view = _view(request)
    form = await request.form()
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise ApiError(403, "cross-origin form")
    try:
        link = _verify(request, view)
    except LinkRefused as exc:
        return _refused(request, view, exc, _when_expired(request, view, exc))
    note = str(form.get("note", "")).strip()[:2000].replace("\x00", "") or None
    ctx = _ctx(request)
    try:
        status = await run_in_threadpool(ctx.write().act_by_link, link, note, view.now)
    except LinkRefused as exc:
        used_at = await run_in_threadpool(ctx.write().link_used_at, link)
        return _refused(request, view, exc, view.when(used_at))
    if status is None:
        message = view.t(f"link.done.{link.action}", id=link.incident_id, who=link.actor)
        code = 200
    else:
        status_word = view.t(f"status.{status}")
        message = view.t("link.already", id=link.incident_id, status=status_word)
        code = 409
    context = _context(request, view, state="done", link=link, incident=None, message=message)
    return page("link.html", context, status_code=code)


def _when_expired(request: Request, view: View, exc: LinkRefused) -> str:
    """The expiry shown on an expired link's page (the signature was good)."""
    if exc.reason != "expired":
        return ""
    return str(exc).removeprefix("this link expired at ")


def routes() -> list[BaseRoute]:
    return [
        Route("/a/{token}", link_page, methods=["GET"]),
        Route("/a/{token}", link_post, methods=["POST"]),
    ]
