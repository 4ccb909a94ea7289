"""Where complaints go: termwatch's HTTP API when it answers, else MQTT ``support/complaints``.

An HTTP error that says the request itself is wrong (401, 403) stops the run: retrying would
not help and the operator must fix the token. A 422 is logged and counted. A connection
failure or a 5xx sends the complaint over MQTT instead and leaves the API alone for a minute.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)


class ApiRefused(RuntimeError):
    """The API refused our credentials; the run stops."""


@dataclass(slots=True)
class ApiTarget:
    url: str  # base URL, e.g. http://127.0.0.1:8080
    token: str
    timeout_s: float = 5.0


class ComplaintSink:
    def __init__(self, api: ApiTarget | None) -> None:
        self.api = api
        self.via_api = 0
        self.via_mqtt = 0
        self.rejected = 0
        self._api_down_until = 0.0

    def try_api(self, body: bytes) -> bool:
        """POST the complaint; True when the API took it (or rejected it for good), False
        when it should go over MQTT instead. Raises ApiRefused on 401/403."""
        if self.api is None or time.monotonic() < self._api_down_until:
            return False
        if not self.api.url.startswith(("http://", "https://")):
            raise ApiRefused(f"the API URL must be http:// or https://, got {self.api.url!r}")
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked just above)
            self.api.url.rstrip("/") + "/api/v1/complaints",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.api.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.api.timeout_s) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            if exc.code in (401, 403):
                raise ApiRefused(f"the API refused the token ({exc.code}): {detail}") from None
            if exc.code == 422:
                self.rejected += 1
                log.error("complaint rejected by the API: %s", detail)
                return True
            log.warning("the API answered %s; complaints go over MQTT for a minute", exc.code)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            log.warning(
                "the API at %s is not answering (%s); complaints go over MQTT for a minute",
                self.api.url,
                exc,
            )
        else:
            self.via_api += 1
            return True
        self._api_down_until = time.monotonic() + 60.0
        return False
