"""The ``alertmanager`` target against a real Alertmanager (Debian's prometheus-alertmanager):
an incident shows up in its API with the right labels, is pushed again while open, and
resolves when it is resolved."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from notify.routes import RoutesError, parse_routes
from notify.worker import Resent
from termwatch.db import Row
from termwatch.settings import Settings
from tests.fix_proc import Lines
from tests.test_notify_support import Fleet, at, free_port, running_worker, write_routes

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
START_DEADLINE_S = 30

ROUTES = """
version: 1
targets:
  am: {{alertmanager: "{url}", resend: 30s}}
default:
  targets: [am]
  min_severity: major
  group_wait: 30s
  repeat_interval: 0
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free local port, with a receiver that sends nowhere."""
    if BINARY is None:
        pytest.skip("prometheus-alertmanager is not installed")
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n",
        encoding="utf-8",
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        Lines(proc.stderr).wait_for('msg="Listening on"', START_DEADLINE_S)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def alerts_of(url: str, tid: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"filter": f'tid="{tid}"'})
    with urllib.request.urlopen(f"{url}/api/v2/alerts?{query}", timeout=10) as answer:  # noqa: S310
        found: list[dict[str, Any]] = json.loads(answer.read())
    return found


def test_an_incident_reaches_alertmanager_with_its_labels_is_resent_and_resolves(
    settings: Settings, db: psycopg.Connection[Row], tmp_path: Path, alertmanager: str
) -> None:
    fleet = Fleet(db)
    fleet.terminal("N-01", "north", region="North")
    incident = fleet.open("N-01", "cash_acceptor_jam", "critical", when=at(0))
    fleet.evidence(incident, "shutter jammed")
    routes_file = write_routes(tmp_path, ROUTES.format(url=alertmanager))
    with running_worker(settings, routes_file) as worker:
        first = worker.run_once(at(0))
        assert first.resent == [Resent("am", 0, "sent", None)]  # nothing paged yet
        assert alerts_of(alertmanager, "N-01") == []

        paged = worker.run_once(at(31))
        assert [(a.target, a.result) for a in paged.attempts] == [("am", "sent")]
        [alert] = alerts_of(alertmanager, "N-01")
        assert alert["labels"] == {
            "alertname": "TermwatchIncident",
            "kind": "cash_acceptor_jam",
            "tid": "N-01",
            "region": "North",
            "service_group": "north",
            "severity": "critical",
        }
        assert alert["annotations"]["summary"] == "Cash acceptor jam: Kiosk N-01"
        assert alert["annotations"]["description"] == "shutter jammed"
        assert alert["annotations"]["console"] == f"https://tw.example/incidents/{incident}"
        assert alert["generatorURL"] == f"https://tw.example/incidents/{incident}"
        assert alert["status"]["state"] == "active"
        assert paged.resent == [Resent("am", 1, "sent", None)]  # due 30s after the first

        assert worker.run_once(at(45)).resent == []  # not due again before at(61)
        assert worker.run_once(at(62)).resent == [Resent("am", 1, "sent", None)]

        fleet.resolve(incident, at(70))
        worker.run_once(at(71))  # the resolved message waits for group_wait
        assert [a["status"]["state"] for a in alerts_of(alertmanager, "N-01")] == ["active"]
        worker.run_once(at(102))
    assert alerts_of(alertmanager, "N-01") == []  # endsAt passed: resolved, no longer listed
    sent = db.execute(
        "SELECT m.event FROM notifications n JOIN notify_messages m ON m.id = n.message_id"
        " WHERE n.target = 'am' AND n.status = 'sent' ORDER BY n.id"
    ).fetchall()
    assert [r["event"] for r in sent] == ["opened", "resolved"]


def test_an_unreachable_alertmanager_is_retried_not_dropped(
    settings: Settings, db: psycopg.Connection[Row], tmp_path: Path
) -> None:
    fleet = Fleet(db)
    fleet.terminal("N-01", "north")
    fleet.open("N-01", "cash_acceptor_jam", "critical", when=at(0))
    dead = f"http://127.0.0.1:{free_port()}"
    with running_worker(settings, write_routes(tmp_path, ROUTES.format(url=dead))) as worker:
        worker.run_once(at(0))
        report = worker.run_once(at(31))
    assert [(a.target, a.result) for a in report.attempts] == [("am", "retry")]
    assert report.resent[0].result == "retry"


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ('{alertmanager: "ftp://am:9093"}', "expected the http:// or https:// base URL"),
        ('{alertmanager: "http://am:9093", resend: 10m}', "resend: at most 4m"),
        ('{webhook: "http://hook", resend: 1m}', "resend is for alertmanager targets"),
        ('{webhook: "http://hook", alertmanager: "http://am"}', "exactly one of"),
    ],
)
def test_the_routes_file_checks_alertmanager_targets(target: str, problem: str) -> None:
    with pytest.raises(RoutesError, match=problem):
        parse_routes(f"targets:\n  am: {target}\ndefault:\n  targets: [am]\n")


def test_a_resolved_message_ends_its_alerts_and_an_open_one_leaves_the_end_to_alertmanager() -> (
    None
):
    from notify.alertmanager import to_alerts

    item = {"tid": "N-01", "kind": "printer_jam", "severity": "major", "region": None,
            "status": "resolved", "resolved_at": "2026-05-04T09:01:10+00:00",
            "since": "2026-05-04T09:00:00+00:00", "title": "Printer jam", "url": "u"}  # fmt: skip
    [ended] = to_alerts([item], "resolved", at(0))
    assert ended["endsAt"] == "2026-05-04T09:01:10+00:00"
    assert "region" not in ended["labels"]
    [still] = to_alerts([{**item, "status": "open", "resolved_at": None}], "opened", at(0))
    assert "endsAt" not in still


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed")
def test_amtool_accepts_the_shipped_alertmanager_config() -> None:
    shipped = (
        Path(__file__).resolve().parent.parent / "deploy" / "alertmanager" / "alertmanager.yml"
    )
    result = subprocess.run(
        ["amtool", "check-config", str(shipped)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
