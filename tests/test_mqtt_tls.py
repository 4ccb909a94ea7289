"""The shipped broker's TLS listener with certificates made by deploy/mosquitto/make-certs.sh:
a terminal with its own certificate connects (as its tid) and publishes under its own
topic; a client without a certificate, or with one of another CA, is refused."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from termwatch.embedded import free_port, port_open
from tests.test_acl import DEPLOY, PASSWORDS, WAIT_S, adapted_conf, build_passwd

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None or shutil.which("openssl") is None,
    reason="mosquitto or openssl is not installed",
)
SCRIPT = DEPLOY / "make-certs.sh"


def make_certs(folder: Path, *args: str) -> str:
    result = subprocess.run(
        ["sh", str(SCRIPT), *args],
        env={"CERTS_DIR": str(folder), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def tls_block(certs: Path, port: int) -> list[str]:
    """The shipped TLS listener block with the test's certificates and port."""
    lines = (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    begin = next(i for i, line in enumerate(lines) if line.startswith("# BEGIN TLS listener"))
    end = next(i for i, line in enumerate(lines) if line.startswith("# END TLS listener"))
    block = "\n".join(lines[begin : end + 1])
    assert "listener 8883\n" in block
    return (
        block.replace("listener 8883", f"listener {port} 127.0.0.1")
        .replace("/mosquitto/config/certs", str(certs))
        .splitlines()
    )


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    certs = tmp_path / "certs"
    make_certs(certs, "ca")
    make_certs(certs, "broker", "localhost", "127.0.0.1")
    make_certs(certs, "terminal", "T-A")
    port = free_port()
    conf = adapted_conf(tmp_path, build_passwd(tmp_path, PASSWORDS), free_port(), free_port())
    conf.write_text(
        conf.read_text(encoding="utf-8") + "\n".join(tls_block(certs, port)) + "\n",
        encoding="utf-8",
    )
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=out, stderr=out)
    deadline = time.monotonic() + WAIT_S
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"mosquitto did not start:\n{log.read_text()}")
        time.sleep(0.05)  # a port coming up has nothing to await
    try:
        yield port, certs
    finally:
        proc.terminate()
        proc.wait(WAIT_S)


def connect(port: int, ca: Path, cert: Path | None, key: Path | None) -> str:
    """Connect over TLS; the outcome: 'connected', or the reason it was refused."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    client.tls_set_context(context)
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
        outcome.append("connected" if not getattr(reason, "is_failure", True) else str(reason))
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect("127.0.0.1", port)
        client.loop_start()
        if not answered.wait(WAIT_S):
            outcome.append("no answer")
    except (ssl.SSLError, OSError) as exc:
        outcome.append(f"refused: {exc.__class__.__name__}")
    finally:
        client.loop_stop()
        client.disconnect()
    return outcome[0] if outcome else "closed"


def test_a_terminal_connects_with_its_own_certificate(tls_broker: tuple[int, Path]) -> None:
    port, certs = tls_broker
    terminal = certs / "terminals"
    assert connect(port, certs / "ca.crt", terminal / "T-A.crt", terminal / "T-A.key") == (
        "connected"
    )


def test_a_client_without_a_certificate_or_with_another_cas_is_refused(
    tls_broker: tuple[int, Path], tmp_path: Path
) -> None:
    port, certs = tls_broker
    assert connect(port, certs / "ca.crt", None, None) != "connected"
    other = tmp_path / "other"
    make_certs(other, "ca")
    make_certs(other, "terminal", "T-A")
    forged = connect(
        port, certs / "ca.crt", other / "terminals/T-A.crt", other / "terminals/T-A.key"
    )
    assert forged != "connected"


def test_make_certs_never_overwrites_and_refuses_a_bad_tid(tmp_path: Path) -> None:
    make_certs(tmp_path, "ca")
    again = subprocess.run(
        ["sh", str(SCRIPT), "ca"], env={"CERTS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "exists" in again.stderr
    bad = subprocess.run(
        ["sh", str(SCRIPT), "terminal", "T 1;rm"], env={"CERTS_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "usage" in bad.stderr
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0
