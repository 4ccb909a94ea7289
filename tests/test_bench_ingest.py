"""The benchmarks that run the collector: ``bench ingest`` as deployed (default rules on)
beside the collector alone, and ``bench fleet`` with ``serve`` and a large registry."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_the_ingest_benchmark_runs_with_and_without_the_rules(pg_server_dsn: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "termwatch.cli", "bench", "ingest", "--messages", "3000",
         "--terminals", "100", "--window", "1000", "--database-server", pg_server_dsn],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert "-- rules off" in lines
    assert "-- rules on (default rules, complaint intake)" in lines
    assert re.fullmatch(
        r"ingest: \d+ msg/s committed, 0 lost, commit p99 [\d.]+ ms, rss \d+ MB, rules on;"
        r" rules off \d+ msg/s",
        lines[-1],
    ), lines[-1]


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_the_fleet_benchmark_runs_serve_and_prints_its_figures(pg_server_dsn: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "termwatch.cli", "bench", "fleet", "--terminals", "2000",
         "--seconds", "3", "--interval", "20", "--probe-rate", "10",
         "--database-server", pg_server_dsn],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"fleet: 2000 terminals, card p99 [\d.]+ ms under heartbeats, [\d.]+ ms in the storm;"
        r" storm of 4000 messages drained in [\d.]+ s; 0 false incidents; rss \d+ MB after"
        r" the storm; CPU \d+ us/msg \(\d+ us/msg with 2000 terminals, [+-]\d+ %\)",
        last,
    ), last
