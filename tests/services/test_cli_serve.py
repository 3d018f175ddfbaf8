"""`packloop gateway` as a process: a signal drains it and it exits 0, as a supervisor
(systemd, Docker, Kubernetes) expects of a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services.broker import free_port
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]

#: the real command, with Kafka left out: no start-up check, an in-memory KafkaIO
GATEWAY_WITHOUT_KAFKA = """
import sys
import services.cli.serve
from services.cli import cli
from services.gateway import GatewayConfig
from tests.services.helpers import FakeKafkaIO

services.cli.serve.check_kafka = lambda settings: None
from_settings = GatewayConfig.from_settings.__func__
GatewayConfig.from_settings = classmethod(
    lambda cls, settings, **overrides: from_settings(cls, settings, kafka_io=FakeKafkaIO(),
                                                     **overrides))
cli.main(["gateway", "--host", "127.0.0.1", "--port", sys.argv[1]], prog_name="packloop")
"""


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_stops_the_gateway_with_exit_status_0(sig, monkeypatch) -> None:
    """uvicorn raises the caught signal again once it has drained; the gateway must not die
    of it (status -15 after SIGTERM) nor stop with a KeyboardInterrupt after SIGINT, but
    exit 0 after its shutdown."""
    monkeypatch.setenv("PACKLOOP_GATEWAY_WEBHOOKS", "false")
    monkeypatch.setenv("PACKLOOP_GATEWAY_DISPATCH", "false")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", GATEWAY_WITHOUT_KAFKA, str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: proc.poll() is not None or _accepts(port), 60,
                   "the gateway to listen")
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Finished server process" in stderr and "Traceback" not in stderr
