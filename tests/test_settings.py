"""Settings: typed, loaded once, and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from termwatch.cli import main
from termwatch.settings import HostPort, MqttUrl, SettingsError, load_settings


def test_it_reads_every_kind_of_value_from_the_environment() -> None:
    settings = load_settings(
        {
            "TERMWATCH_DATABASE_URL": "postgresql://tw@db:5432/tw",
            "TERMWATCH_MQTT_URL": "mqtts://user:p%40ss@broker:8883",
            "TERMWATCH_TOPIC_ROOT": "acme/terminals",
            "TERMWATCH_METRICS": "0.0.0.0:9100",
            "TERMWATCH_API_TOKENS": "agent:abcdefgh12, admin:ijklmnop34",
            "TERMWATCH_SHARE_GROUP": "collectors",
            "TERMWATCH_BATCH_SIZE": "5000",
            "TERMWATCH_FLUSH_MS": "40",
        }
    )
    assert settings.database_url == "postgresql://tw@db:5432/tw"
    assert settings.mqtt_url == MqttUrl("broker", 8883, "user", "p@ss", tls=True)
    assert settings.topic_root == "acme/terminals"
    assert settings.metrics == HostPort("0.0.0.0", 9100)
    assert [t.role for t in settings.api_tokens] == ["agent", "admin"]
    assert (settings.share_group, settings.batch_size, settings.flush_ms) == (
        "collectors",
        5000,
        40,
    )


def test_unset_values_take_their_defaults() -> None:
    settings = load_settings({})
    assert settings.topic_root == "terminals"
    assert settings.metrics == HostPort("127.0.0.1", 9464)
    assert settings.database_url is None
    with pytest.raises(SettingsError, match="TERMWATCH_DATABASE_URL"):
        settings.require_database()
    with pytest.raises(SettingsError, match="TERMWATCH_MQTT_URL"):
        settings.require_mqtt()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TERMWATCH_DATABASE_URL", "mysql://db"),
        ("TERMWATCH_MQTT_URL", "http://broker"),
        ("TERMWATCH_MQTT_URL", "mqtt://broker:notaport"),
        ("TERMWATCH_TOPIC_ROOT", "terminals/#"),
        ("TERMWATCH_METRICS", "localhost"),
        ("TERMWATCH_HTTP", "127.0.0.1:70000"),
        ("TERMWATCH_API_TOKENS", "root:abcdefgh12"),
        ("TERMWATCH_API_TOKENS", "agent:short"),
        ("TERMWATCH_BATCH_SIZE", "many"),
        ("TERMWATCH_FLUSH_MS", "0"),
        ("TERMWATCH_QUEUE_MAX", "10"),
        ("TERMWATCH_SHARE_GROUP", "a/b"),
        ("TERMWATCH_CLIENT_ID", "has space"),
        ("TERMWATCH_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


def test_a_toml_file_sets_the_same_keys_and_the_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "termwatch.toml"
    config.write_text('topic_root = "fleet"\nbatch_size = 100\n', encoding="utf-8")
    settings = load_settings({"TERMWATCH_BATCH_SIZE": "200"}, config)
    assert (settings.topic_root, settings.batch_size) == ("fleet", 200)
    config.write_text("batch_size = 0\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="batch_size"):
        load_settings({}, config)
    config.write_text("colour = 1\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="colour"):
        load_settings({}, config)


def test_the_command_stops_at_start_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TERMWATCH_FLUSH_MS", "soon")
    assert main(["db", "migrate"]) == 2
    assert "TERMWATCH_FLUSH_MS" in capsys.readouterr().err
