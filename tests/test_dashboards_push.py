"""``termwatch dashboards push`` against a local HTTP server that answers like Grafana's API
(folders and dashboards endpoints) and records every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboards import generate
from dashboards.push import PushError, push
from termwatch.cli import main

TOKEN = "glsa_test_token_0123456789"


@dataclass
class FakeGrafana:
    """What the fake Grafana holds and what it was asked."""

    url: str = ""
    token: str = TOKEN
    folders: dict[str, str] = field(default_factory=dict)  # uid -> title
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> saved body
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, auth


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``state.requests`` instead."""

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization", "")
            state.requests.append((self.command, self.path, auth))
            if auth != f"Bearer {state.token}":
                self._answer(401, {"message": "invalid API key"})
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path.startswith("/api/folders/"):
                uid = self.path.removeprefix("/api/folders/")
                if uid in state.folders:
                    self._answer(200, {"uid": uid, "title": state.folders[uid]})
                else:
                    self._answer(404, {"message": "folder not found"})
                return
            self._answer(404, {"message": "not found"})

        def do_POST(self) -> None:
            if not self._authorised():
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/api/folders":
                state.folders[body["uid"]] = body["title"]
                self._answer(200, {"uid": body["uid"], "title": body["title"]})
            elif self.path == "/api/dashboards/db":
                uid = body["dashboard"]["uid"]
                if body.get("folderUid") not in state.folders:
                    self._answer(400, {"message": "folder not found"})
                    return
                version = state.dashboards.get(uid, {}).get("version", 0) + 1
                state.dashboards[uid] = {**body, "version": version}
                self._answer(
                    200,
                    {"status": "success", "uid": uid, "url": f"/d/{uid}", "version": version},
                )
            else:
                self._answer(404, {"message": "not found"})

    return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_push_creates_the_folder_and_uploads_every_dashboard_with_the_token(
    grafana: FakeGrafana,
) -> None:
    pushed = push(grafana.url, TOKEN, generate.models())
    uids = [str(spec.build().uid) for spec in generate.DASHBOARDS]
    assert [p.uid for p in pushed] == uids
    assert [p.version for p in pushed] == [1] * len(uids)
    assert grafana.folders == {"termwatch": "termwatch"}
    assert sorted(grafana.dashboards) == sorted(uids)
    for saved in grafana.dashboards.values():
        assert saved["overwrite"] is True
        assert saved["folderUid"] == "termwatch"
        assert "id" not in saved["dashboard"]
    assert grafana.dashboards["termwatch-fleet"]["dashboard"] == {
        k: v for k, v in generate.models()[0].items() if k != "id"
    }
    assert {auth for _, _, auth in grafana.requests} == {f"Bearer {TOKEN}"}
    assert [(m, p) for m, p, _ in grafana.requests[:2]] == [
        ("GET", "/api/folders/termwatch"),
        ("POST", "/api/folders"),
    ]


def test_pushing_again_keeps_the_folder_and_overwrites_the_dashboards(
    grafana: FakeGrafana,
) -> None:
    push(grafana.url, TOKEN, generate.models())
    grafana.requests.clear()
    pushed = push(grafana.url, TOKEN, generate.models())
    assert {p.version for p in pushed} == {2}
    assert ("POST", "/api/folders") not in [(m, p) for m, p, _ in grafana.requests]


def test_the_command_prints_what_it_pushed_and_a_refused_token_exits_1(
    grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboards", "push", "--url", grafana.url, "--token", TOKEN]) == 0
    assert "pushed termwatch-health version 1 /d/termwatch-health" in capsys.readouterr().out
    assert main(["dashboards", "push", "--url", grafana.url, "--token", "wrong-token"]) == 1
    assert "Grafana refused the request (401)" in capsys.readouterr().err


def test_the_token_can_come_from_a_file(
    grafana: FakeGrafana, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    args = ["dashboards", "push", "--url", grafana.url, "--token-file", str(token_file)]
    assert main(args) == 0
    assert main(["dashboards", "push", "--url", grafana.url]) == 2
    assert "give --token or --token-file" in capsys.readouterr().err


def test_an_unreachable_grafana_or_a_bad_url_is_a_clear_error(grafana: FakeGrafana) -> None:
    url = grafana.url
    with pytest.raises(PushError, match="cannot reach Grafana"):
        push("http://127.0.0.1:9", TOKEN, generate.models(), timeout=2)
    with pytest.raises(PushError, match="http:// or https://"):
        push("grafana.local:3000", TOKEN, generate.models())
    assert grafana.requests == []
    assert url.startswith("http://127.0.0.1:")
