"""One typed settings object, read once at start from the environment and an optional TOML file.

Every name is ``TERMWATCH_<KEY>`` in the environment; a TOML file (``TERMWATCH_CONFIG`` or
``--config``) may set the same keys in lower case without the prefix (``database_url = ...``).
The environment wins over the file. A bad value raises :class:`SettingsError` naming the
variable; nothing else in termwatch reads the environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import unquote, urlsplit

ROLES = ("agent", "engineer", "admin")
TID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_T = TypeVar("_T")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class MqttUrl:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    def __str__(self) -> str:
        auth = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ApiToken:
    role: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    mqtt_url: MqttUrl | None = None
    topic_root: str = "terminals"
    http: HostPort = HostPort("127.0.0.1", 8080)
    api_tokens: tuple[ApiToken, ...] = ()
    metrics: HostPort = HostPort("127.0.0.1", 9464)
    routes_file: Path | None = None
    rules_file: Path | None = None
    # Extensions beyond the contract.
    share_group: str | None = None
    client_id: str | None = None
    pii_key: str = field(default="", repr=False)
    link_key: str = field(default="", repr=False)
    language: str = "en"
    public_url: str = ""
    grafana_url: str = ""
    batch_size: int = 2000
    flush_ms: int = 25
    queue_max: int = 100_000
    retention_days: int = 90
    compress_after_days: int = 7
    #: How far back the continuous aggregates are re-materialised (TimescaleDB): late rows
    #: within it reach the dashboards' hourly views; it must stay inside the retention.
    aggregate_refresh_days: int = 35
    #: "auto": TimescaleDB when the server has the extension, "off": plain PostgreSQL.
    timescaledb: str = "auto"
    notify_log: Path | None = None
    log_level: str = "INFO"
    # Bounds of every database wait (termwatch/db.py, docs/collector.md).
    db_connect_timeout_s: int = 5
    db_statement_timeout_ms: int = 30_000
    db_idle_in_transaction_timeout_ms: int = 60_000
    # Rejected messages: how long they are kept, and how many a terminal may add a minute.
    rejected_retention_days: int = 14
    rejected_per_terminal_per_min: int = 60

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields replaced (for tests and sub-commands)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)

    def require_database(self) -> str:
        if not self.database_url:
            raise SettingsError("TERMWATCH_DATABASE_URL is not set")
        return self.database_url

    def require_link_key(self) -> str:
        """The key that signs the acknowledge/resolve links of alerts; a process that sends
        alerts or serves the links refuses to start without it."""
        if not self.link_key:
            raise SettingsError(
                "TERMWATCH_LINK_KEY is not set: alerts carry signed links to acknowledge and"
                " resolve, signed with this key (make one with: openssl rand -hex 32)"
            )
        return self.link_key

    def require_mqtt(self) -> MqttUrl:
        if self.mqtt_url is None:
            raise SettingsError("TERMWATCH_MQTT_URL is not set")
        return self.mqtt_url

    @property
    def base_url(self) -> str:
        """Where people reach the console: ``public_url`` or the HTTP address."""
        return self.public_url.rstrip("/") or f"http://{self.http}"


def parse_host_port(value: str, name: str) -> HostPort:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}: expected host:port, got {value!r}")
    return HostPort(host.strip("[]"), int(port))


def parse_mqtt_url(value: str, name: str) -> MqttUrl:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise SettingsError(f"{name}: scheme must be mqtt:// or mqtts://, got {value!r}")
    if not parts.hostname:
        raise SettingsError(f"{name}: no host in {value!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    return MqttUrl(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def parse_tokens(value: str, name: str) -> tuple[ApiToken, ...]:
    tokens: list[ApiToken] = []
    for i, item in enumerate(p.strip() for p in value.split(",")):
        if not item:
            continue
        role, sep, token = item.partition(":")
        if not sep or role not in ROLES:
            raise SettingsError(
                f"{name}: item {i + 1} must be role:token with role one of {', '.join(ROLES)}"
            )
        if len(token) < 8:
            raise SettingsError(f"{name}: item {i + 1}: a token must be at least 8 characters")
        tokens.append(ApiToken(role, token))
    return tuple(tokens)


def _int(lo: int, hi: int) -> Callable[[str, str], int]:
    def parse(value: str, name: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {value!r}") from None
        if not lo <= number <= hi:
            raise SettingsError(f"{name}: must be between {lo} and {hi}, got {number}")
        return number

    return parse


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(value: str, name: str) -> str:
        if value not in allowed:
            raise SettingsError(f"{name}: must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


def _path(value: str, name: str) -> Path:
    if not value:
        raise SettingsError(f"{name}: empty path")
    return Path(value)


def _topic_root(value: str, name: str) -> str:
    if not value or any(c in value for c in "#+") or value.startswith("/") or value.endswith("/"):
        raise SettingsError(
            f"{name}: must be a plain topic prefix without wildcards, got {value!r}"
        )
    return value


def _dsn(value: str, name: str) -> str:
    if not value.startswith(("postgresql://", "postgres://")) and "=" not in value:
        raise SettingsError(f"{name}: expected a postgresql:// URL or a key=value DSN")
    return value


def _text(value: str, name: str) -> str:
    return value


def _secret_key(value: str, name: str) -> str:
    if len(value) < 32:
        raise SettingsError(f"{name}: at least 32 characters (e.g. openssl rand -hex 32)")
    return value


def _http_url(value: str, name: str) -> str:
    if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise SettingsError(f"{name}: expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _share_group(value: str, name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise SettingsError(f"{name}: letters, digits, _ and - only, got {value!r}")
    return value


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "database_url": _dsn,
    "mqtt_url": parse_mqtt_url,
    "topic_root": _topic_root,
    "http": parse_host_port,
    "api_tokens": parse_tokens,
    "metrics": parse_host_port,
    "routes_file": _path,
    "rules_file": _path,
    "share_group": _share_group,
    "client_id": _share_group,
    "pii_key": _text,
    "link_key": _secret_key,
    "language": _choice("en", "ru"),
    "public_url": _text,
    "grafana_url": _http_url,
    "batch_size": _int(1, 100_000),
    "flush_ms": _int(1, 10_000),
    "queue_max": _int(100, 10_000_000),
    "retention_days": _int(1, 36_500),
    "compress_after_days": _int(1, 36_500),
    "aggregate_refresh_days": _int(1, 36_500),
    "timescaledb": _choice("auto", "off"),
    "notify_log": _path,
    "log_level": _choice("DEBUG", "INFO", "WARNING", "ERROR"),
    "db_connect_timeout_s": _int(1, 300),
    "db_statement_timeout_ms": _int(100, 3_600_000),
    "db_idle_in_transaction_timeout_ms": _int(100, 3_600_000),
    "rejected_retention_days": _int(1, 36_500),
    "rejected_per_terminal_per_min": _int(1, 1_000_000),
}


#: Settings that hold secrets (or URLs with a password): a placeholder in one is refused.
_SECRETS: Final = ("database_url", "mqtt_url", "api_tokens", "pii_key", "link_key")
_PLACEHOLDER: Final = re.compile(r"change[-_]?me", re.IGNORECASE)


def load_settings(
    env: Mapping[str, str] | None = None, config_file: str | os.PathLike[str] | None = None
) -> Settings:
    """Build the settings from ``env`` (default ``os.environ``) and an optional TOML file.

    Raises :class:`SettingsError` naming the variable on the first bad value, and when a
    secret (database or MQTT URL, API tokens, PII or link key) still holds the ``change-me``
    placeholder of ``.env.example``.
    """
    env = os.environ if env is None else env
    raw: dict[str, tuple[str, str]] = {}
    path = config_file or env.get("TERMWATCH_CONFIG")
    if path:
        raw.update(_read_toml(Path(path)))
    for key in _PARSERS:
        name = f"TERMWATCH_{key.upper()}"
        if name in env and env[name] != "":
            raw[key] = (name, env[name])
    values: dict[str, Any] = {key: _PARSERS[key](value, name) for key, (name, value) in raw.items()}
    for key in _SECRETS:
        if key in raw and _PLACEHOLDER.search(raw[key][1]):
            raise SettingsError(
                f"{raw[key][0]}: still holds the 'change-me' placeholder of .env.example;"
                " set a real secret (e.g. openssl rand -hex 24)"
            )
    settings = Settings(**values)
    _check_together(settings)
    return settings


def _check_together(settings: Settings) -> None:
    """Refuse values that are each valid but wrong together."""
    if settings.retention_days <= settings.aggregate_refresh_days:
        raise SettingsError(
            f"TERMWATCH_RETENTION_DAYS ({settings.retention_days}) must be longer than"
            f" TERMWATCH_AGGREGATE_REFRESH_DAYS ({settings.aggregate_refresh_days}): the"
            " continuous aggregates would re-materialise hours whose raw rows are already"
            " dropped and erase their history; raise the retention or shorten the refresh"
        )


def _read_toml(path: Path) -> dict[str, tuple[str, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"TERMWATCH_CONFIG: no such file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"TERMWATCH_CONFIG: {path}: {exc}") from None
    out: dict[str, tuple[str, str]] = {}
    for key, value in data.items():
        norm = key.lower().removeprefix("termwatch_")
        if norm not in _PARSERS:
            raise SettingsError(f"{path}: unknown key {key!r}")
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        out[norm] = (f"{path}: {key}", str(value))
    return out
