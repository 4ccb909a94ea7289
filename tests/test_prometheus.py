"""The Prometheus files shipped in prometheus/: checked by promtool, rules unit-tested, and a
real Prometheus scraping a running termwatch process."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import termwatch.metrics
from termwatch.db import Row
from termwatch.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "termwatch.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "termwatch_test.yml"
DASHBOARDS = sorted((ROOT / "dashboards" / "json").glob("*.json"))
#: Metrics the rules and dashboards use that termwatch/metrics.py does not define yet.
PENDING_METRICS: set[str] = set()

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)"
)
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="prometheus not installed (Debian package)"
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_the_rules_it_names() -> None:
    result = _promtool("check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


@needs_promtool
def test_promtool_accepts_the_alert_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_a_rule_unit_test_fails_when_an_alert_does_not_fire(tmp_path: Path) -> None:
    # The unit tests can fail: raise the commit latency threshold beyond what they feed.
    rules = tmp_path / "rules"
    rules.mkdir()
    text = RULES.read_text(encoding="utf-8").replace("> 0.5\n", "> 5\n")
    assert text != RULES.read_text(encoding="utf-8")
    (rules / "termwatch.yml").write_text(text, encoding="utf-8")
    tests = tmp_path / "tests"
    tests.mkdir()
    shutil.copy(RULE_TESTS, tests / "termwatch_test.yml")
    result = _promtool("test", "rules", str(tests / "termwatch_test.yml"))
    assert result.returncode != 0
    assert "TermwatchCommitLatencyHigh" in result.stdout + result.stderr


def _exported_names() -> set[str]:
    """Every series name termwatch's metrics can expose, labelled children or not."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("termwatch_"):
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def _used_names(text: str) -> set[str]:
    return set(re.findall(r"\btermwatch_[a-z_]+\b", text))


def test_every_metric_an_alert_rule_uses_is_one_termwatch_exports() -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    used = _used_names(exprs)
    assert "termwatch_messages_total" in used
    assert used - _exported_names() - PENDING_METRICS == set()


def test_every_metric_the_health_dashboard_uses_is_one_termwatch_exports() -> None:
    health = (ROOT / "dashboards" / "json" / "health.json").read_text(encoding="utf-8")
    exprs = " ".join(re.findall(r'"expr": "((?:[^"\\]|\\.)*)"', health))
    used = _used_names(exprs)
    assert {"termwatch_messages_total", "termwatch_commit_seconds_bucket"} <= used
    assert used - _exported_names() - PENDING_METRICS == set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local URL)
            return response.status, response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


def _wait_for(what: str, check: Any, proc: subprocess.Popen[bytes], deadline_s: float) -> Any:
    """Poll ``check()`` until it returns something truthy; fail if ``proc`` dies first."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}")
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {deadline_s} s")


@pytest.fixture
def termwatch_api(clean_db: str, tmp_path: Path) -> Iterator[str]:
    """A running ``termwatch api`` process; yields the host:port serving /metrics."""
    port = _free_port()
    env = {
        **os.environ,
        "TERMWATCH_DATABASE_URL": clean_db,
        "TERMWATCH_HTTP": f"127.0.0.1:{port}",
        "TERMWATCH_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "termwatch"), "api"], env=env, stdout=log, stderr=log
    )
    try:
        _wait_for(
            "termwatch api serving /metrics",
            lambda: _get(f"http://127.0.0.1:{port}/metrics")[0] == 200,
            proc,
            30,
        )
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _test_config(target: str, tmp_path: Path) -> Path:
    """The shipped configuration, pointed at ``target`` and scraping every second."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "termwatch-api"]
    assert jobs, "the shipped configuration has no termwatch-api job"
    jobs[0]["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = jobs
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@needs_prometheus
def test_a_real_prometheus_scrapes_termwatch_and_finds_its_message_counter(
    termwatch_api: str, tmp_path: Path
) -> None:
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={_test_config(termwatch_api, tmp_path)}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    query = urllib.parse.quote('termwatch_messages_total{job="termwatch-api"}')

    def series() -> list[dict[str, Any]]:
        status, body = _get(f"http://127.0.0.1:{port}/api/v1/query?query={query}")
        if status != 200:
            return []
        result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
        return result

    try:
        found = _wait_for("Prometheus has termwatch_messages_total", series, proc, 40)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    kinds = {s["metric"]["kind"] for s in found}
    outcomes = {s["metric"]["outcome"] for s in found}
    assert kinds == set(termwatch.metrics.KINDS)
    assert outcomes == set(termwatch.metrics.OUTCOMES)
    assert all(s["metric"]["instance"] == termwatch_api for s in found)


def _names_in_rules_and_dashboards() -> set[str]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    text = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    for path in DASHBOARDS:
        text += " ".join(re.findall(r'"expr": "((?:[^"\\]|\\.)*)"', path.read_text("utf-8")))
    return _used_names(text)


def test_every_series_the_rules_and_dashboards_read_is_served_by_a_running_serve(
    settings: Settings, db: psycopg.Connection[Row]
) -> None:
    from terminals import registry
    from tests.test_demo import serve
    from tests.test_two_collectors import drop_session

    registry.load(
        db,
        [registry.Terminal("T-METRIC1", "a", "b", "c", "d", None, None, "m", "g")],
    )
    db.commit()
    program = serve(settings, _free_port())
    try:
        program.wait_for_line(r"subscribed to", 60)
        ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        payload = (
            f'{{"v":1,"tid":"T-METRIC1","id":"m-1","ts":"{ts.isoformat()}","seq":1,'
            '"devices":{"printer":{"device":"hardwareError"}}}'
        )
        publish_one(settings, f"{settings.topic_root}/T-METRIC1/status", payload)
        program.poll("/api/v1/incidents?tid=T-METRIC1", "agent-token-1", 30)
        assert _get(f"{program.base}/healthz")[0] in (200, 503)
        status, body = _get(f"{program.base}/metrics")
        assert status == 200
    finally:
        program.interrupt(signal.SIGTERM)
        program.kill()
        drop_session(settings, f"{settings.topic_root}-serve")
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }
    used = _names_in_rules_and_dashboards()
    assert {"termwatch_terminals_registered", "termwatch_incidents_opened_total"} <= used
    assert sorted(used - set(samples)) == []
    assert samples["termwatch_terminals_registered"] == 1


def publish_one(settings: Settings, topic: str, payload: str) -> None:
    assert settings.mqtt_url is not None
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(settings.mqtt_url.host, settings.mqtt_url.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()
