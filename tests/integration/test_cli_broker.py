"""The `packloop broker`, `topics create` and `demo` commands, run as a user would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

from services.broker import free_port
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.helpers import wait_until
from tests.integration.helpers import PACKLOOP, packloop


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_broker_command_prints_address_and_stops_on_sigterm() -> None:
    """The broker command waits until the port accepts, prints it, and stops cleanly."""
    port = free_port()
    proc = subprocess.Popen([*PACKLOOP, "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == f"127.0.0.1:{port}"
        created = packloop("topics", "create", "--bootstrap", line)
        assert created.returncode == 0, created.stderr
        assert "hub-events\tcreated" in created.stdout
        again = packloop("topics", "create", "--bootstrap", line)
        assert "hub-events\texists" in again.stdout  # idempotent
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    # The broker's child process is gone: the port is free again.
    wait_until(lambda: not listening(port), 5, "the broker's port to close after SIGTERM")


def test_topics_respect_prefix(kafka: KafkaConnection) -> None:
    """PACKLOOP_TOPIC_PREFIX puts every topic under the prefix, for shared clusters."""
    env = {**os.environ, "PACKLOOP_TOPIC_PREFIX": "teamx."}
    done = packloop("topics", "create", "--bootstrap", kafka.bootstrap_servers, env=env)
    assert done.returncode == 0, done.stderr
    names = {line.split("\t")[0] for line in done.stdout.splitlines()}
    prefixed = Topics("teamx.")
    assert {prefixed.hub_events, prefixed.dead_letter, prefixed.pickup_requests} <= names
