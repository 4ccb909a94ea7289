"""The docker-compose deployment: Debian's docker-compose accepts it, and what it mounts,
configures and starts fits termwatch. No container engine runs here; the Mosquitto
configuration is checked by starting Debian's mosquitto with it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from termwatch.settings import SettingsError, load_settings
from tests.test_acl import PASSWORDS, build_passwd, start_shipped_mosquitto

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed"
)


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` on the shipped file with ``env_file`` as its .env."""
    return subprocess.run(
        [
            "docker-compose",
            "--project-directory", str(ROOT),
            "--env-file", str(env_file),
            "-f", str(COMPOSE),
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    result = compose_config(ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


@needs_compose
def test_docker_compose_accepts_the_file_with_the_documented_env_example(
    config: dict[str, Any],
) -> None:
    assert set(config["services"]) == {
        "mosquitto",
        "timescaledb",
        "termwatch",
        "prometheus",
        "alertmanager",
        "grafana",
        "simulator",
    }
    assert config["services"]["simulator"]["profiles"] == ["simulator"]
    assert config["services"]["timescaledb"]["image"].startswith("timescale/timescaledb:")


@needs_compose
def test_it_refuses_to_start_without_a_required_secret(tmp_path: Path) -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    env = tmp_path / ".env"
    env.write_text(
        "\n".join(line for line in lines if not line.startswith("MQTT_TERMWATCH_PASSWORD=")),
        encoding="utf-8",
    )
    result = compose_config(env)
    assert result.returncode != 0
    assert "set MQTT_TERMWATCH_PASSWORD in .env" in result.stderr


@needs_compose
def test_every_host_path_it_mounts_is_shipped(config: dict[str, Any]) -> None:
    # Debian's docker-compose prints volumes as "source:target:mode"; binds have a path.
    missing = [
        f"{name}: {source}"
        for name, service in config["services"].items()
        for volume in service.get("volumes", [])
        if (source := volume.split(":")[0]).startswith("/") and not Path(source).exists()
    ]
    assert missing == []


def real_env(tmp_path: Path) -> Path:
    """.env.example with every change-me replaced, as the deployment guide says."""
    env = tmp_path / ".env"
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    env.write_text(text.replace("change-me", "s3cr3t-0123456789abcdef"), encoding="utf-8")
    return env


@needs_compose
def test_termwatch_refuses_the_change_me_secrets_of_the_env_example(
    config: dict[str, Any],
) -> None:
    env = {k: str(v) for k, v in config["services"]["termwatch"]["environment"].items()}
    with pytest.raises(SettingsError, match="change-me"):
        load_settings(env)
    for service in ("mosquitto", "timescaledb", "grafana"):
        assert "*change-me*) echo" in " ".join(config["services"][service]["entrypoint"])


@needs_compose
def test_every_image_is_pinned_every_service_has_a_healthcheck_and_binds_loopback(
    config: dict[str, Any],
) -> None:
    for name, service in config["services"].items():
        tag = service["image"].rpartition(":")[2]
        assert tag not in ("", "latest", "2"), (name, service["image"])
        assert "/" not in tag, (name, service["image"])
        assert "healthcheck" in service, name
    for name in ("termwatch", "grafana", "prometheus", "alertmanager"):
        for port in config["services"][name]["ports"]:
            published = port if isinstance(port, str) else f"{port.get('host_ip')}:"
            assert str(published).startswith("127.0.0.1:"), (name, port)
    assert any("8883" in str(p) for p in config["services"]["mosquitto"]["ports"])
    assert isinstance(config["services"]["termwatch"]["command"], list)


@needs_compose
def test_termwatch_accepts_the_settings_the_deployment_gives_it(tmp_path: Path) -> None:
    result = compose_config(real_env(tmp_path))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    env = {k: str(v) for k, v in config["services"]["termwatch"]["environment"].items()}
    settings = load_settings(env)
    assert settings.link_key
    assert settings.mqtt_url is not None
    assert (settings.mqtt_url.host, settings.mqtt_url.port) == ("mosquitto", 1884)
    assert settings.mqtt_url.username == "termwatch"
    assert settings.database_url is not None
    assert "@timescaledb:5432/termwatch" in settings.database_url
    assert {t.role for t in settings.api_tokens} == {"agent", "engineer", "admin"}
    assert settings.share_group == "termwatch"
    # The ACL grants the termwatch account exactly this root.
    acl = (ROOT / "deploy" / "mosquitto" / "acl").read_text(encoding="utf-8")
    assert f"topic read {settings.topic_root}/#" in acl


def test_the_grafana_data_sources_carry_the_uids_the_dashboards_use() -> None:
    from dashboards.kit import POSTGRES_TYPE, POSTGRES_UID, PROMETHEUS_UID

    provisioning = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "termwatch.yaml"
    sources = {s["uid"]: s for s in yaml.safe_load(provisioning.read_text())["datasources"]}
    assert set(sources) == {POSTGRES_UID, PROMETHEUS_UID}
    assert sources[POSTGRES_UID]["type"] == POSTGRES_TYPE
    assert sources[POSTGRES_UID]["user"] == "termwatch_grafana"
    assert sources[PROMETHEUS_UID]["url"] == "http://prometheus:9090"


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_the_shipped_mosquitto_conf_starts_debians_mosquitto(tmp_path: Path) -> None:
    version = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    running, _ = start_shipped_mosquitto(tmp_path, build_passwd(tmp_path, PASSWORDS))
    exit_code = running.stop()
    log = running.log.read_text(encoding="utf-8", errors="replace")
    assert exit_code == 0, log
    assert "Error" not in log, log
    assert version.stdout.splitlines()[0].startswith("mosquitto version 2.")


@needs_compose
def test_prometheus_scrapes_termwatch_by_its_service_name_and_port(
    config: dict[str, Any],
) -> None:
    """Inside the compose network 127.0.0.1 is Prometheus itself: every target must name a
    service, on a port that service serves (termwatch serve: API and /metrics on 8080)."""
    mounted = [
        volume.split(":")[0]
        for volume in config["services"]["prometheus"]["volumes"]
        if volume.split(":")[1] == "/etc/prometheus/prometheus.yml"
    ]
    assert [Path(m).resolve() for m in mounted] == [
        (ROOT / "deploy" / "prometheus" / "prometheus.yml").resolve()
    ]
    prometheus = yaml.safe_load(Path(mounted[0]).read_text())
    rules = (ROOT / "prometheus" / "rules" / "termwatch.yml").read_text()
    for job in prometheus["scrape_configs"]:
        assert f'job="{job["job_name"]}"' in rules
    served = {("termwatch", "8080")}
    targets = [
        (job["job_name"], target)
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert targets
    wrong = [
        (job, target)
        for job, target in targets
        if tuple(target.rsplit(":", 1)) not in served | {("prometheus", "9090")}
    ]
    assert wrong == [], f"not reachable in docker-compose.yml: {wrong}"
    assert "termwatch" in config["services"]
