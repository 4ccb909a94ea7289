"""Property-based testing of the HTTP API from its OpenAPI document: every operation, with
generated valid and invalid input, must answer as documented and never with a server
error. Bounded: a couple of dozen examples per operation.

The cases are generated from the document the app serves at ``/api/v1/openapi.json`` (the
fixture checks that the served document is this very one), sent to the served app over
HTTP with httpx, and the answers checked by schemathesis' own checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from termwatch.db import connect
from termwatch.settings import Settings
from termwatch.web.app import create_app
from termwatch.web.openapi import openapi_document
from tests.fix_db import truncate_all
from tests.test_api import with_tokens
from tests.test_api_fleet import ADMIN, NOW, paper_out_terminal, serve

EXAMPLES = 25
DOCUMENT = openapi_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def send(client: httpx.Client, case: Any, base_url: str) -> httpx.Response:
    """Send a generated case; its request is described in ``requests`` terms."""
    kwargs = case.as_transport_kwargs(
        base_url=base_url, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    data = kwargs.pop("data", None)
    if isinstance(data, str):
        data = data.encode()
    response = client.request(
        kwargs.pop("method"),
        kwargs.pop("url"),
        headers=kwargs.pop("headers"),
        params=kwargs.pop("params", None),
        cookies=kwargs.pop("cookies", None),
        content=data,
        **({"json": kwargs.pop("json")} if "json" in kwargs else {}),
    )
    assert not kwargs, f"a request option this test does not send: {sorted(kwargs)}"
    return response


@pytest.fixture(scope="module")
def api(db_dsn: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client and the URL of the app served on a local port, over a database holding one
    terminal and its incident."""
    truncate_all(db_dsn)
    with connect(db_dsn, autocommit=True) as conn:
        paper_out_terminal(conn)
    app_settings = with_tokens(Settings(database_url=db_dsn, pii_key="test-pii-key-0123456789"))
    app = create_app(app_settings, clock=lambda: NOW)
    with serve(app) as url, httpx.Client(timeout=30) as client:
        served = client.get(f"{url}/api/v1/openapi.json").json()
        assert served == DOCUMENT
        yield client, url


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_answers_every_generated_request_as_documented(
    case: Any, api: tuple[httpx.Client, str]
) -> None:
    client, url = api
    response = send(client, case, url)
    # Authentication is covered endpoint by endpoint in test_api.py; schemathesis' own
    # probe of it re-sends requests through a transport this test does not use.
    excluded = [ignored_auth]
    if case.operation.label in ("POST /api/v1/silences", "POST /api/v1/silences/preview"):
        # A silence must end in the future and within 90 days of now (422 otherwise), which
        # a JSON Schema cannot say of ``ends_at``; nor can it say that a matcher's value is
        # a known kind or a regular expression that compiles.
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded)
