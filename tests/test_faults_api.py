"""The API and /healthz while the database is away (through tests/fix_proxy.py), and
hostile bodies: answers come at once, name what is wrong, and never a 500."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from psycopg.conninfo import conninfo_to_dict

from termwatch import health
from termwatch.settings import Settings
from termwatch.web.app import create_app
from tests.fix_proxy import Proxy, proxy
from tests.test_api import auth, with_tokens
from tests.test_api_fleet import AGENT, NOW, serve
from tests.test_faults_db import through

#: "At once": far below the 10 s a request hung before.
PROMPT_S = 3.0


@pytest.fixture
def pg_proxy(clean_db: str) -> Iterator[Proxy]:
    params = conninfo_to_dict(clean_db)
    with proxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)) as p:
        yield p


@pytest.fixture
def own_parts() -> Iterator[None]:
    """No part registered by another test's collector (one left running) is checked."""
    before = health.registered()
    for name, check in before.items():
        health.unregister(name, check)
    yield
    for name, check in before.items():
        health.register(name, check)


@pytest.fixture
def api(settings: Settings, pg_proxy: Proxy, own_parts: None) -> Iterator[httpx.Client]:
    assert settings.database_url is not None
    local = with_tokens(
        settings.with_(
            database_url=through(settings.database_url, pg_proxy),
            db_connect_timeout_s=1,
            db_statement_timeout_ms=1000,
        )
    )
    with (
        serve(create_app(local, clock=lambda: NOW)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def timed_get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path, headers=auth(AGENT))
    return response, time.monotonic() - started


def test_the_api_answers_503_at_once_while_the_database_is_down_and_recovers_by_itself(
    api: httpx.Client, pg_proxy: Proxy
) -> None:
    assert api.get("/api/v1/incidents", headers=auth(AGENT)).status_code == 200
    pg_proxy.refuse()
    pg_proxy.cut()
    for _ in range(5):
        response, elapsed = timed_get(api, "/api/v1/incidents")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert elapsed < PROMPT_S
    health_response, elapsed = timed_get(api, "/healthz")
    assert health_response.status_code == 503
    assert health_response.json()["down"] == ["database"]
    assert elapsed < PROMPT_S
    pg_proxy.pass_()
    deadline = time.monotonic() + 30
    while api.get("/api/v1/incidents", headers=auth(AGENT)).status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover by itself"
        time.sleep(0.2)
    assert api.get("/healthz").status_code == 200


def test_healthz_names_a_registered_part_that_is_down(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {
        "status": "ok",
        "down": [],
        "parts": {"database": "up"},
    }

    def broker_down() -> bool:
        return False

    health.register("broker", broker_down)
    try:
        response = api.get("/healthz")
    finally:
        health.unregister("broker", broker_down)
    assert response.status_code == 503
    assert response.json()["down"] == ["broker"]


@pytest.mark.parametrize(
    "body",
    [b"[" * 30_000, b"{" * 30_000, b'{"ref": ', b"\xff\xfe", b'{"a": 1e999999}'],
    ids=["brackets", "braces", "truncated", "not-utf8", "huge-number"],
)
def test_a_malformed_or_deeply_nested_complaint_body_is_a_422_naming_the_problem(
    api: httpx.Client, body: bytes
) -> None:
    response = api.post(
        "/api/v1/complaints",
        content=body,
        headers={**auth(AGENT), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]
    assert response.json()["field"] in ("body", None)
