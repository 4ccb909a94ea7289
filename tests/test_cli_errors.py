"""Conditions of the world (a database down or empty, a bad file) end a command with lines
a person can act on, a non-zero exit and no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from rules.config import RuleFileError, parse_rules
from terminals import registry
from termwatch.schema import SchemaError, timescale_path
from termwatch.settings import SettingsError, load_settings

HEADER = "tid,name,address,city,region,lat,lon,model,service_group\n"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def termwatch(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "termwatch.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(HEADER + "T-000001,a,b,c,d,55,37,m,g\n", encoding="utf-8")
    complaints = tmp_path / "complaints.csv"
    complaints.write_text(
        "ref,tid,category,at,phone\nCRM-1,T-000001,no_receipt,2026-12-01T10:00:00+03:00,"
        "+79161234567\n",
        encoding="utf-8",
    )
    truth = tmp_path / "truth.jsonl"
    truth.write_text("", encoding="utf-8")
    return {
        "FLEET": str(fleet),
        "COMPLAINTS": str(complaints),
        "TRUTH": str(truth),
        "OUT": str(tmp_path / "report.csv"),
    }


DATABASE_COMMANDS = [
    "db migrate",
    "terminals import FLEET",
    "complaints import COMPLAINTS",
    "incidents list",
    "incidents show 1",
    "incidents ack 1",
    "incidents resolve 1",
    "silences list",
    "silences add --tid T-000001 --for 1h",
    "silences expire 1",
    "notifications summary",
    "notifications history 1",
    "status T-000001",
    "evaluate --truth TRUTH",
    "dashboards check --from 2026-12-01 --to 2026-12-02",
    "report availability --from 2026-12-01 --to 2026-12-02 --out OUT",
    "serve",
    "collector",
    "api",
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_a_database_that_refuses_is_one_line_naming_it_without_the_password(
    command: str, files: dict[str, str]
) -> None:
    port = closed_port()
    args = [files.get(word, word) for word in command.split()]
    result = termwatch(
        *args,
        env={
            "TERMWATCH_DATABASE_URL": f"postgresql://tw:s3cret-pw@127.0.0.1:{port}/fleet",
            "TERMWATCH_MQTT_URL": f"mqtt://127.0.0.1:{closed_port()}",
            "TERMWATCH_HTTP": f"127.0.0.1:{closed_port()}",
            "TERMWATCH_METRICS": f"127.0.0.1:{closed_port()}",
            "TERMWATCH_PII_KEY": "a-pii-key-for-the-error-tests",
            "TERMWATCH_LINK_KEY": "a-link-key-for-the-error-tests-0123456789",
            "TERMWATCH_API_TOKENS": "agent:an-agent-token-for-tests",
        },
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"termwatch: cannot use PostgreSQL at 127.0.0.1:{port}, database fleet:"
        " Connection refused; is PostgreSQL running there? check TERMWATCH_DATABASE_URL"
    ]
    assert "s3cret" not in result.stdout + result.stderr


def test_a_database_that_does_not_exist_says_how_to_create_it(pg_server_dsn: str) -> None:
    params = conninfo_to_dict(pg_server_dsn)
    params["dbname"] = "tw_no_such_database"
    result = termwatch(
        "incidents",
        "list",
        env={"TERMWATCH_DATABASE_URL": make_conninfo(**params)},  # type: ignore[arg-type]
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert 'database "tw_no_such_database" does not exist' in line
    assert line.endswith("create it (createdb) or fix TERMWATCH_DATABASE_URL")


@pytest.mark.parametrize("command", ["incidents list", "serve", "collector", "api"])
def test_a_database_without_the_schema_says_to_migrate(command: str, empty_database: str) -> None:
    result = termwatch(
        *command.split(),
        env={
            "TERMWATCH_DATABASE_URL": empty_database,
            "TERMWATCH_MQTT_URL": f"mqtt://127.0.0.1:{closed_port()}",
            "TERMWATCH_HTTP": f"127.0.0.1:{closed_port()}",
            "TERMWATCH_METRICS": f"127.0.0.1:{closed_port()}",
            "TERMWATCH_PII_KEY": "a-pii-key-for-the-error-tests",
            "TERMWATCH_LINK_KEY": "a-link-key-for-the-error-tests-0123456789",
        },
    )
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("termwatch: ")
    assert "termwatch schema" in line
    assert line.endswith("run: termwatch db migrate")


BAD_RULES = """\
version: 1
rules:
  - name: paper
    kind: printer_paper_out
  - name: jam
    title: Jam
    severity: huge
"""


@pytest.mark.parametrize("command", ["serve", "collector", "rules check"])
def test_a_bad_rules_file_is_reported_with_every_mistake_and_its_line(
    command: str, tmp_path: Path, db_dsn: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BAD_RULES, encoding="utf-8")
    result = termwatch(
        *command.split(),
        env={
            "TERMWATCH_DATABASE_URL": db_dsn,
            "TERMWATCH_MQTT_URL": f"mqtt://127.0.0.1:{closed_port()}",
            "TERMWATCH_HTTP": f"127.0.0.1:{closed_port()}",
            "TERMWATCH_METRICS": f"127.0.0.1:{closed_port()}",
            "TERMWATCH_RULES_FILE": str(rules),
            "TERMWATCH_PII_KEY": "a-pii-key-for-the-error-tests",
            "TERMWATCH_LINK_KEY": "a-link-key-for-the-error-tests-0123456789",
        },
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(f"termwatch: {rules}:3: ")
    assert lines[1].startswith(f"termwatch: {rules}:5: ")
    assert "Traceback" not in result.stderr


def test_a_rules_file_reports_every_rule_s_mistake_up_to_a_bound() -> None:
    broken = "".join(f"  - name: r{i}\n    kind: k{i}\n" for i in range(30))
    with pytest.raises(RuleFileError) as refused:
        parse_rules("version: 1\nrules:\n" + broken, "many.yaml")
    lines = str(refused.value).splitlines()
    assert len(lines) == 21
    assert lines[0].startswith("many.yaml:3: ")
    assert lines[19].startswith("many.yaml:41: ")
    assert lines[20] == "many.yaml: 10 more problems not shown"


def test_a_registry_file_reports_every_bad_line(tmp_path: Path) -> None:
    text = (
        HEADER
        + "T-000001,a,b,c,d,55,37,m,g\n"
        + "bad id,a,b,c,d,55,37,m,g\n"
        + "T-000003,a,b,c,d,955,37,m,g\n"
        + "T-000001,a,b,c,d,55,37,m,g\n"
        + "T-000005,a,b,c\n"
    )
    with pytest.raises(registry.RegistryError) as refused:
        registry.parse(text)
    assert [line for line, _ in refused.value.problems] == [3, 4, 5, 6]
    assert "lat 955 is outside -90..90" in refused.value.problems[1][1]
    assert "already on line 2" in refused.value.problems[2][1]


def test_the_import_command_prints_every_bad_line_then_the_verdict(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    rows = "".join(f"T-{i:06d},a,b,c,d,{100 + i},37,m,g\n" for i in range(25))
    path.write_text(HEADER + rows, encoding="utf-8")
    result = termwatch("terminals", "import", str(path), env={})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 21
    assert lines[0] == f"termwatch: {path}:2: lat 100 is outside -90..90"
    assert lines[-1] == (
        f"termwatch: {path}: refused, 25 problems (5 more problems not shown); nothing was imported"
    )


@pytest.mark.parametrize(
    ("mode", "available", "created", "preloaded", "expected"),
    [
        ("auto", False, False, False, False),  # plain PostgreSQL
        ("auto", True, False, True, True),  # TimescaleDB ready
        ("auto", True, True, True, True),  # already a TimescaleDB database
        ("off", True, False, True, False),  # plain tables asked for
        ("off", True, True, True, True),  # a TimescaleDB database stays one
    ],
)
def test_the_timescale_path_is_taken_only_where_it_works(
    mode: str, available: bool, created: bool, preloaded: bool, expected: bool
) -> None:
    assert timescale_path(mode, available, created, preloaded) is expected


def test_timescaledb_installed_but_not_preloaded_is_refused_with_the_fix() -> None:
    with pytest.raises(SchemaError) as refused:
        timescale_path("auto", available=True, created=False, preloaded=False)
    assert "add timescaledb to shared_preload_libraries" in str(refused.value)
    assert "TERMWATCH_TIMESCALEDB=off" in str(refused.value)


def test_migrate_on_plain_postgresql_takes_the_plain_path(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        flags = {r[0] for r in conn.execute("SELECT timescale FROM schema_migrations")}
        has_extension = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
    assert flags == {has_extension is not None}


def test_a_retention_inside_the_aggregates_refresh_window_is_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"TERMWATCH_RETENTION_DAYS": "30"})
    message = str(refused.value)
    assert "TERMWATCH_RETENTION_DAYS (30)" in message
    assert "TERMWATCH_AGGREGATE_REFRESH_DAYS (35)" in message
    settings = load_settings(
        {"TERMWATCH_RETENTION_DAYS": "30", "TERMWATCH_AGGREGATE_REFRESH_DAYS": "7"}
    )
    assert settings.retention_days == 30
