"""The console's silences page (engineer role): silences in force, a new silence with a
preview of the open incidents it would match, and expiring one.

The form takes matchers one per line (``severity=~major|critical``), a duration and a
comment; the creator is the signed-in person. ``Preview`` shows the matches and the
warnings and changes nothing; ``Create`` goes through the same checks and write path as
``POST /api/v1/silences``.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from rules import silences
from termwatch.web.console import _base, _check_form, _ctx, _session, view_of
from termwatch.web.http import ApiError
from termwatch.web.models import MatcherIn, SilenceIn, SilencePreviewIn
from termwatch.web.render import page

DURATIONS: Final = (("30m", 30), ("1h", 60), ("2h", 120), ("4h", 240), ("8h", 480),
                    ("1d", 1440), ("3d", 4320), ("7d", 10080))  # fmt: skip
MAX_LINES: Final = 20


def _parse_lines(text: str) -> list[MatcherIn]:
    """The matcher lines of the form; 422 naming the first bad line."""
    lines = [line.strip() for line in text.replace("\x00", "").splitlines() if line.strip()]
    if len(lines) > MAX_LINES:
        raise ApiError(422, f"matchers: at most {MAX_LINES}", field="matchers")
    out = []
    for line in lines:
        try:
            m = silences.parse_matcher(line)
        except ValueError as exc:
            raise ApiError(422, str(exc), field="matchers") from None
        out.append(MatcherIn(label=m.label, op=m.op, value=m.value))  # type: ignore[arg-type]
    if not out:
        raise ApiError(422, "matchers: give at least one", field="matchers")
    return out


def _render(
    request: Request,
    form: dict[str, str],
    *,
    preview: Any = None,
    error: str | None = None,
    created: int | None = None,
    status_code: int = 200,
) -> Response:
    session = _session(request, "engineer")
    view = view_of(request)
    ctx = _ctx(request)
    active = ctx.write().list_silences(view.now)
    context = _base(request, session, view)
    context.update(
        silences=active,
        form=form,
        durations=DURATIONS,
        preview=preview,
        error=error,
        created=created,
    )
    return page("silences.html", context, status_code=status_code)


_EMPTY: Final = {"matchers": "", "duration": "2h", "comment": ""}


async def silences_page(request: Request) -> Response:
    _session(request, "engineer")
    created = request.query_params.get("created", "")
    return await run_in_threadpool(
        _render, request, dict(_EMPTY), created=int(created) if created.isdigit() else None
    )


async def silences_post(request: Request) -> Response:
    session = _session(request, "engineer")
    form = await request.form()
    _check_form(request, form, session)
    entered = {k: str(form.get(k, ""))[:4000] for k in ("matchers", "duration", "comment")}
    minutes = dict(DURATIONS).get(entered["duration"], 120)
    ctx = _ctx(request)
    writer = ctx.write()
    try:
        matchers = _parse_lines(entered["matchers"])
        if form.get("do") == "create":
            body = SilenceIn(
                matchers=matchers,
                duration_s=minutes * 60,
                comment=entered["comment"].strip()[:1000],
            )
            view = view_of(request)
            made = await run_in_threadpool(
                writer.create_silence, body, session.principal.name, view.now
            )
            return RedirectResponse(f"/silences?created={made.id}", status_code=303)
        preview = await run_in_threadpool(
            writer.preview_silence, SilencePreviewIn(matchers=matchers)
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        return await run_in_threadpool(
            _render, request, entered, error=exc.message, status_code=422
        )
    return await run_in_threadpool(_render, request, entered, preview=preview)


async def silence_expire(request: Request) -> Response:
    session = _session(request, "engineer")
    form = await request.form()
    _check_form(request, form, session)
    silence_id = int(request.path_params["id"])
    if silence_id >= 2**63:
        raise ApiError(404, "not found")
    ctx = _ctx(request)
    await run_in_threadpool(ctx.write().expire_silence, silence_id, ctx.clock())
    return RedirectResponse("/silences", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/silences", silences_page, methods=["GET"]),
        Route("/silences", silences_post, methods=["POST"]),
        Route("/silences/{id:int}/expire", silence_expire, methods=["POST"]),
    ]
