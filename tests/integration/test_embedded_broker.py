"""The embedded broker on a port another process holds: a "free" port is only free when
asked, and with two test workers (or two demos) another process can take it before Tansu
binds. A client must never end up talking to that other process's server."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from services import broker as broker_mod
from services.broker import BrokerError, EmbeddedBroker, process_listens_on


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port this test process listens on (and accepts connections at)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)  # never accepted: room for every probe of a slow start
        yield int(sock.getsockname()[1])


def test_the_listener_of_a_port_is_known(squatter: int) -> None:
    assert process_listens_on(os.getpid(), squatter) is True
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert process_listens_on(child.pid, squatter) is False
    finally:
        child.kill()
        child.wait()


def test_a_given_port_held_by_another_process_is_an_error_naming_it(squatter: int) -> None:
    b = EmbeddedBroker(port=squatter, startup_timeout_s=15)
    with pytest.raises(BrokerError, match=f"port {squatter} .* in use by another process"):
        b.start()
    assert not b.is_running()


def test_a_chosen_port_taken_before_the_broker_binds_is_chosen_again(
        squatter: int, monkeypatch: pytest.MonkeyPatch) -> None:
    handed = iter([squatter])
    real = broker_mod.free_port
    monkeypatch.setattr(broker_mod, "free_port", lambda host="127.0.0.1": next(handed, None)
                        or real(host))
    with EmbeddedBroker() as b:
        assert b.port != squatter
        assert b.process is not None and process_listens_on(b.process.pid, b.port) is True
        with socket.create_connection(("127.0.0.1", b.port), timeout=2):
            pass


def test_the_broker_dies_with_a_packloop_broker_killed_with_9() -> None:
    """`packloop broker` killed by SIGKILL (no chance to stop its child) left Tansu
    running, holding the port: the child now gets SIGTERM when its parent dies."""
    import signal
    import sys

    from services.ports import free_port
    from tests.helpers import wait_until
    from tests.integration.helpers import REPO

    port = free_port("127.0.0.1")
    parent = subprocess.Popen([sys.executable, "-m", "services.cli", "broker", "--port",
                               str(port)], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
        except OSError:
            return False
        return True

    try:
        wait_until(listening, 30, "the broker to listen")
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_until(lambda: not listening(), 15, "the broker to stop with its parent")
    finally:
        parent.kill()
