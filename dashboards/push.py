"""Upload the termwatch dashboards to a running Grafana through its HTTP API (grafana-client).

For a Grafana that is not provisioned from files (deploy/grafana/ does that). Dashboards go
into one folder, created if missing, and overwrite the versions already there (they are
generated; edits belong in the code).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from termwatch import __version__

log = logging.getLogger(__name__)

FOLDER_UID = "termwatch"
FOLDER_TITLE = "termwatch"


class PushError(RuntimeError):
    """Grafana could not be reached or refused an upload; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Pushed:
    uid: str
    title: str
    url: str  # Grafana's path of the dashboard, as it answered
    version: int


def push(
    url: str,
    token: str,
    dashboards: list[dict[str, Any]],
    *,
    folder_uid: str = FOLDER_UID,
    folder_title: str = FOLDER_TITLE,
    timeout: float = 10.0,
) -> list[Pushed]:
    """Create the folder if missing, then create or overwrite each dashboard in it.

    ``url`` is Grafana's base URL (``https://grafana.example.org`` or with a sub-path);
    ``token`` a service account token with the Editor role. Returns what Grafana answered for
    each dashboard, in order. Raises :class:`PushError` on the first failure; dashboards
    uploaded before it stay uploaded (each upload is whole, never partial).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"--url must be an http:// or https:// URL, got {url!r}")
    if not token:
        raise PushError("the token is empty")
    # grafana-client is not annotated: its API object is handled as Any.
    api: Any = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        _ensure_folder(api, folder_uid, folder_title)
        return [_upload(api, dashboard, folder_uid) for dashboard in dashboards]
    except GrafanaClientError as exc:
        raise PushError(f"Grafana refused the request ({exc.status_code}): {exc.message}") from exc
    except GrafanaException as exc:  # timeout, server error
        raise PushError(f"cannot talk to Grafana at {url}: {exc.message}") from exc
    except OSError as exc:  # connection refused, name not resolved (niquests' errors are OSError)
        raise PushError(f"cannot reach Grafana at {url}: {exc}") from exc


def _ensure_folder(api: Any, uid: str, title: str) -> None:
    try:
        api.folder.get_folder(uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(title, uid=uid)
        log.info("created Grafana folder %s", uid)


def _upload(api: Any, dashboard: dict[str, Any], folder_uid: str) -> Pushed:
    body = dict(dashboard)
    body.pop("id", None)  # Grafana matches on uid; an id from another instance would clash
    answer = api.dashboard.update_dashboard(
        {
            "dashboard": body,
            "folderUid": folder_uid,
            "overwrite": True,
            "message": f"termwatch {__version__}: generated dashboards",
        }
    )
    pushed = Pushed(
        uid=str(answer.get("uid", body.get("uid", ""))),
        title=str(body.get("title", "")),
        url=str(answer.get("url", "")),
        version=int(answer.get("version", 0)),
    )
    log.info("pushed dashboard %s (version %d)", pushed.uid, pushed.version)
    return pushed
