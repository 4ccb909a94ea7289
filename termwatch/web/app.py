"""The ASGI application: HTTP API, web console, ``/metrics``, static files.

``create_app(settings, pool=None)`` is what ``termwatch api`` and ``termwatch serve`` mount.
With no pool given, the app opens one from ``settings.database_url`` when it starts and
closes it when it stops; a given pool belongs to the caller.

Errors: an :class:`~termwatch.web.http.ApiError` is JSON under ``/api/`` and an error page
elsewhere; a lost database is 503 with ``Retry-After`` (retrying later may succeed), never
a silent 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from termwatch import accounts, health
from termwatch.db import Row, Timeouts, make_pool
from termwatch.links import LinkSigner
from termwatch.metrics import HTTP_SECONDS
from termwatch.settings import Settings
from termwatch.web import api, console, links, silences_page
from termwatch.web.auth import TokenBook
from termwatch.web.context import Clock, Context
from termwatch.web.http import ApiError, JSONResponse, error_response
from termwatch.web.write import Writer

log = logging.getLogger(__name__)


def wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    pool: ConnectionPool[psycopg.Connection[Row]] | None = None,
    *,
    clock: Clock = wall_clock,
) -> Starlette:
    """The termwatch web application.

    ``clock`` gives "now" for the card's durations and operation look-back, and for
    complaints, acknowledgements and silences: the wall clock by default; a process that
    runs the collector may pass its event clock (with the wall clock before the first
    message), so that a replay at speed reads consistently.
    """
    ctx = Context(
        settings=settings,
        tokens=TokenBook(settings.api_tokens),
        clock=clock,
        links=LinkSigner(settings.link_key) if settings.link_key else None,
    )

    def by_token(presented: str) -> accounts.Account | None:
        with ctx.connection() as conn:
            return accounts.lookup(conn, presented)

    def by_name(name: str) -> accounts.Account | None:
        with ctx.connection() as conn:
            return accounts.named(conn, name)

    ctx.tokens = TokenBook(settings.api_tokens, by_token=by_token, by_name=by_name)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = pool is None
        ctx.pool = (
            make_pool(
                settings.require_database(),
                name="termwatch-web",
                timeouts=Timeouts.from_settings(settings),
            )
            if own
            else pool
        )
        assert ctx.pool is not None
        ctx.writer = Writer(settings, ctx.pool)
        if not settings.api_tokens:
            log.info("TERMWATCH_API_TOKENS is not set: only people's tokens are accepted")
        try:
            yield
        finally:
            if own:
                ctx.pool.close()
            ctx.pool = None
            ctx.writer = None

    static = resources.files("termwatch.web") / "static"
    app = Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            *api.routes(),
            *console.routes(),
            *links.routes(),
            *silences_page.routes(),
            Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
        ],
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            console.LoginRequired: on_login_required,
            psycopg.OperationalError: on_database_down,
            PoolTimeout: on_database_down,
        },
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.add_middleware(Timing)
    return app


def metrics(request: Request) -> Response:
    """Prometheus text format, no token (api.md)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def healthz(request: Request) -> Response:
    """200 when the database answers and every part of this process that registered
    (:mod:`termwatch.health`: the collector's broker link and writer) works; else 503. The
    JSON body names each part ``up`` or ``down``."""
    ctx: Context = request.app.state.ctx
    parts = {"database": True}
    try:
        with ctx.connection() as conn:
            conn.execute("SELECT 1")
    except (psycopg.OperationalError, PoolTimeout):
        parts["database"] = False
    parts.update(health.report())
    down = [name for name, up in parts.items() if not up]
    body = {
        "status": "down" if down else "ok",
        "down": down,
        "parts": {name: "up" if up else "down" for name, up in parts.items()},
    }
    return JSONResponse(body, status_code=503 if down else 200)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if _is_api(request):
        return error_response(exc)
    return console.error_page(request, exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = ApiError(exc.status_code, exc.detail or "error")
    response = await on_api_error(request, error)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, console.LoginRequired)
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='')}", status_code=303)


async def on_database_down(request: Request, exc: Exception) -> Response:
    log.error("database unavailable: %s", exc)
    return await on_api_error(
        request, ApiError(503, "the database is unavailable; retry shortly", retry_after=5)
    )


class Timing:
    """Records ``termwatch_http_request_seconds`` by route template and status class."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_SECONDS.labels(template, f"{status // 100}xx").observe(
                time.perf_counter() - started
            )
