"""The API and console served on a local port for a test module, with the role tokens of
tests/test_api_fleet.py and a fixed clock; import ``served`` and ``client`` to use them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from termwatch.settings import ApiToken, Settings
from termwatch.web.app import create_app
from tests.test_api_fleet import NOW, TOKENS, serve


@pytest.fixture(scope="module")
def served(db_dsn: str) -> Iterator[str]:
    settings = Settings(
        database_url=db_dsn,
        pii_key="test-pii-key-0123456789",
        api_tokens=tuple(ApiToken(r, t) for r, t in TOKENS.items()),
    )
    with serve(create_app(settings, clock=lambda: NOW)) as url:
        yield url


@pytest.fixture
def client(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as http:
        yield http
