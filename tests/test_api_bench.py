"""``termwatch bench api`` end to end at a tiny size: it builds its fleet with COPY, runs the
collector under a steady publisher, serves the API, measures, drops its database and ends
with the figures line."""

from __future__ import annotations

import re
import shutil

import psycopg
import pytest

from bench.api import search_queries
from bench.fleet import FleetSize, fleet
from termwatch.cli import main


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_the_benchmark_prints_its_figures_on_the_last_line(
    pg_server_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", pg_server_dsn)
    monkeypatch.delenv("TERMWATCH_CONFIG", raising=False)

    argv = "bench api --terminals 300 --history 20 --days 1 --requests 40 --rate 200"
    code = main([*argv.split(), "--warmup-s", "1"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, out
    [database] = [line.split()[1] for line in out if line.startswith("database ")]
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        assert left.fetchone() is None
    assert re.fullmatch(
        r"api: terminal card p99 [\d.]+ ms \(target 20\), console search p99 [\d.]+ ms"
        r" \(target 50\), ingest [\d,]+ msg/s committed \(target 200\), 300 terminals,"
        r" 20 with 1 days of history",
        out[-1],
    ), out[-1]
    assert any(line.startswith("  operations: 960 rows") for line in out)


def test_the_benchmark_fleet_and_searches_are_the_same_for_the_same_seed() -> None:
    size = FleetSize(terminals=500)
    first, second = fleet(size), fleet(size)
    assert first == second
    assert [t.tid for t in first[:2]] == ["T-000001", "T-000002"]
    assert 0 < sum(t.fault is not None for t in first) < 50
    assert search_queries(first, 10) == search_queries(second, 10)


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_the_benchmark_can_run_the_api_inside_serve(
    pg_server_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", pg_server_dsn)
    monkeypatch.delenv("TERMWATCH_CONFIG", raising=False)

    argv = "bench api --inside-serve --terminals 300 --history 20 --days 1 --requests 30"
    code = main([*argv.split(), "--rate", "200", "--warmup-s", "1"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, out
    assert re.fullmatch(
        r"api, API inside serve: terminal card p99 [\d.]+ ms \(target 20\), console search"
        r" p99 [\d.]+ ms \(target 50\), ingest [\d,]+ msg/s committed \(target 200\),"
        r" 300 terminals, 20 with 1 days of history",
        out[-1],
    ), out[-1]
